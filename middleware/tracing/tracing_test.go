package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/tracing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TestPublishToDeliver follows one event from the HTTP request that
// publishes it to the write that delivers it.
func TestPublishToDeliver(t *testing.T) {
	tp, sr := newProvider(t)
	tr := tracing.New(tracing.WithTracerProvider(tp))
	b := newBroker(t, core.Config{Observer: tr.Observer()})
	ctx := context.Background()
	http := tp.Tracer("net/http") // stands in for otelhttp

	// The stream request opens the connection span.
	streamCtx, streamReq := http.Start(ctx, "GET /events", trace.WithSpanKind(trace.SpanKindServer))
	alice := uuid.New()
	c := connect(t, streamCtx, b, core.SubscribeRequest{Identity: core.Identity{User: alice}, Topics: []string{"orders"}})

	// Another request publishes.
	pubCtx, pubReq := http.Start(ctx, "POST /notes", trace.WithSpanKind(trace.SpanKindServer))
	callerMeta := map[string]string{"origin": "api"}
	id, err := b.Publish(pubCtx, core.Message{
		Target:   core.Target{Users: []uuid.UUID{alice}},
		Event:    core.Event{Type: "note", Data: "hello"},
		Metadata: callerMeta,
	})
	require.NoError(t, err)
	c.st.WaitEvents(t, 1) // one write per event
	require.NoError(t, b.SendToTopic(pubCtx, "orders", "order", "42"))
	pubReq.End()
	assert.Equal(t, map[string]string{"origin": "api"}, callerMeta, "the caller's map is not written to")

	evs := c.st.WaitEvents(t, 2)
	delivers := waitOperation(t, sr, tracing.SpanDeliver, 2)
	c.close(t)
	streamReq.End()
	spans := sr.Ended()

	publish := named(spans, "publish user")
	require.Len(t, publish, 1)
	p := publish[0]
	assert.Equal(t, trace.SpanKindProducer, p.SpanKind())
	assert.Equal(t, pubReq.SpanContext().TraceID(), p.SpanContext().TraceID())
	assert.Equal(t, pubReq.SpanContext().SpanID(), p.Parent().SpanID(), "publish span is a child of the request span")
	assert.Equal(t, map[attribute.Key]attribute.Value{
		"messaging.system":         attribute.StringValue("ssekit"),
		"messaging.operation.name": attribute.StringValue("publish"),
		"messaging.operation.type": attribute.StringValue("send"),
		"messaging.message.id":     attribute.StringValue(id),
		"ssekit.target.kind":       attribute.StringValue("user"),
		"ssekit.recipients":        attribute.IntValue(1),
	}, attrs(p), "no destination name: user IDs are never recorded")
	assert.Equal(t, codes.Unset, p.Status().Code)

	topic := named(spans, "publish topic")
	require.Len(t, topic, 1, "named by the kind of target, never the topic")
	assert.Equal(t, "orders", attrs(topic[0])["messaging.destination.name"].AsString())
	assert.Equal(t, "topic", attrs(topic[0])["ssekit.target.kind"].AsString())

	conns := named(spans, tracing.SpanConnection)
	require.Len(t, conns, 1)
	conn := conns[0]
	assert.Equal(t, trace.SpanKindInternal, conn.SpanKind())
	assert.Equal(t, streamReq.SpanContext().SpanID(), conn.Parent().SpanID(), "connection span is a child of the stream request")
	ca := attrs(conn)
	assert.Equal(t, "client_gone", ca["ssekit.close_reason"].AsString())
	assert.Equal(t, []string{"orders"}, ca["ssekit.topics"].AsStringSlice())
	assert.NotEmpty(t, ca["ssekit.connection.id"].AsString())
	assert.EqualValues(t, 0, ca["ssekit.dropped_events"].AsInt64())

	// One deliver span per write (the test waited for each event), each
	// a child of the connection span, linked to its publish span, named
	// and described like it.
	require.Len(t, delivers, 2)
	for i, d := range delivers {
		assert.Equal(t, []string{"deliver user", "deliver topic"}[i], d.Name())
		assert.Equal(t, trace.SpanKindConsumer, d.SpanKind())
		assert.Equal(t, conn.SpanContext().SpanID(), d.Parent().SpanID())
		assert.Equal(t, conn.SpanContext().TraceID(), d.SpanContext().TraceID())
		require.Len(t, d.Links(), 1)
		pub := []sdktrace.ReadOnlySpan{p, topic[0]}[i]
		assert.Equal(t, pub.SpanContext().SpanID(), d.Links()[0].SpanContext.SpanID())
		assert.Equal(t, pub.SpanContext().TraceID(), d.Links()[0].SpanContext.TraceID())
		assert.Contains(t, d.Links()[0].Attributes, attribute.String("messaging.message.id", evs[i].ID))
		frame, err := core.AppendEvent(nil, evs[i])
		require.NoError(t, err)
		want := map[attribute.Key]attribute.Value{
			"messaging.system":              attribute.StringValue("ssekit"),
			"messaging.operation.name":      attribute.StringValue("deliver"),
			"messaging.operation.type":      attribute.StringValue("process"),
			"messaging.batch.message_count": attribute.IntValue(1),
			"messaging.message.id":          attribute.StringValue(evs[i].ID),
			"ssekit.target.kind":            attribute.StringValue([]string{"user", "topic"}[i]),
			"ssekit.bytes":                  attribute.IntValue(len(frame)),
		}
		if i == 1 {
			want["messaging.destination.name"] = attribute.StringValue("orders")
		}
		assert.Equal(t, want, attrs(d))
		assert.False(t, d.EndTime().Before(d.StartTime()))
		assert.False(t, d.StartTime().Before(pub.StartTime().Add(-1e6)), "starts about when the event was published")
	}
}

// TestBroadcastBudget checks that a broadcast makes a bounded number of
// deliver spans, however many connections it reaches.
func TestBroadcastBudget(t *testing.T) {
	for _, tc := range []struct {
		max, want int
	}{{2, 2}, {0, 0}, {-1, 5}, {10, 5}} {
		t.Run(fmt.Sprint("max=", tc.max), func(t *testing.T) {
			tp, sr := newProvider(t)
			tr := tracing.New(tracing.WithTracerProvider(tp), tracing.WithMaxDeliverSpansPerMessage(tc.max))
			b := newBroker(t, core.Config{Observer: tr.Observer()})
			ctx := context.Background()
			var clients []*client
			for range 5 {
				clients = append(clients, connect(t, ctx, b, core.SubscribeRequest{}))
			}
			for i := range 2 {
				require.NoError(t, b.Broadcast(ctx, "news", fmt.Sprint(i)))
				for _, c := range clients {
					c.st.WaitEvents(t, i+1)
				}
			}
			for _, c := range clients {
				c.close(t) // Serve returns after its last Flush hook
			}
			spans := sr.Ended()
			pubs := named(spans, "publish broadcast")
			require.Len(t, pubs, 2)
			links := map[trace.SpanID]int{}
			for _, d := range named(spans, "deliver broadcast") {
				for _, l := range d.Links() {
					links[l.SpanContext.SpanID()]++
				}
			}
			for _, p := range pubs {
				assert.EqualValues(t, 5, attrs(p)["ssekit.recipients"].AsInt64())
				assert.Equal(t, tc.want, links[p.SpanContext().SpanID()])
			}
		})
	}
}

func TestMaxLinks(t *testing.T) {
	tp, sr := newProvider(t)
	tr := tracing.New(tracing.WithTracerProvider(tp), tracing.WithMaxLinks(2))
	b := newBroker(t, core.Config{Observer: tr.Observer()})
	ctx := context.Background()
	u := uuid.New()
	sub, err := b.Subscribe(ctx, core.SubscribeRequest{Identity: core.Identity{User: u}})
	require.NoError(t, err)
	for i := range 5 { // queued before Serve: written as one batch
		require.NoError(t, b.SendToUser(ctx, u, "e", fmt.Sprint(i)))
	}
	st := newMemStream()
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Serve(sctx, sub, st) }()
	st.WaitEvents(t, 5)
	cancel()
	<-done
	d := named(sr.Ended(), "deliver user")
	require.Len(t, d, 1)
	assert.Len(t, d[0].Links(), 2)
	_, single := attrs(d[0])["messaging.message.id"]
	assert.False(t, single, "a batch has no message ID")
	assert.EqualValues(t, 5, attrs(d[0])["messaging.batch.message_count"].AsInt64())
	assert.EqualValues(t, 3, attrs(d[0])["ssekit.unlinked_events"].AsInt64())
}

// copyBus is a Bus that hands every attached broker its own copy of each
// message, as a network Bus does: only what a message carries survives.
type copyBus struct {
	core.History
	mu       sync.Mutex
	delivers []func(*core.Message)
	err      error
}

func (c *copyBus) Publish(ctx context.Context, m *core.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if err := c.History.Append(ctx, m); err != nil {
		return err
	}
	for _, deliver := range c.delivers {
		md := make(map[string]string, len(m.Metadata))
		for k, v := range m.Metadata {
			md[k] = v
		}
		deliver(&core.Message{Target: m.Target, Event: m.Event, Metadata: md, PublishedAt: m.PublishedAt})
	}
	return nil
}

func (c *copyBus) Attach(deliver func(*core.Message)) (func(), error) {
	c.mu.Lock()
	c.delivers = append(c.delivers, deliver)
	c.mu.Unlock()
	return func() {}, nil
}

// TestAcrossBus publishes on one broker and delivers on another: the link
// travels in Message.Metadata.
func TestAcrossBus(t *testing.T) {
	tp, sr := newProvider(t)
	bus := &copyBus{History: core.NewMemoryHistory(core.HistoryLimits{Events: 16})}
	cfg := core.Config{Backend: bus, Observer: tracing.New(tracing.WithTracerProvider(tp)).Observer()}
	node1, node2 := newBroker(t, cfg), newBroker(t, cfg)
	ctx := context.Background()
	c := connect(t, ctx, node2, core.SubscribeRequest{Topics: []string{"orders/eu"}})
	pubCtx, req := tp.Tracer("test").Start(ctx, "POST /orders")
	require.NoError(t, node1.SendToTopic(pubCtx, "orders/eu", "order", "42"))
	req.End()
	c.st.WaitEvents(t, 1)
	c.close(t)

	spans := sr.Ended()
	pub := named(spans, "publish topic")
	require.Len(t, pub, 1)
	assert.Equal(t, "orders/eu", attrs(pub[0])["messaging.destination.name"].AsString())
	_, known := attrs(pub[0])["ssekit.recipients"]
	assert.False(t, known, "the Bus delivers later: recipients unknown to the publisher")
	d := named(spans, "deliver topic")
	require.Len(t, d, 1)
	assert.Equal(t, "orders/eu", attrs(d[0])["messaging.destination.name"].AsString())
	require.Len(t, d[0].Links(), 1)
	assert.Equal(t, pub[0].SpanContext(), d[0].Links()[0].SpanContext.WithRemote(false))
}

func TestPublishError(t *testing.T) {
	tp, sr := newProvider(t)
	bus := &copyBus{History: core.NewMemoryHistory(core.HistoryLimits{Events: 16}), err: errors.New("bus down")}
	b := newBroker(t, core.Config{Backend: bus, Observer: tracing.New(tracing.WithTracerProvider(tp)).Observer()})
	require.Error(t, b.Broadcast(context.Background(), "e", "x"))
	p := named(sr.Ended(), "publish broadcast")
	require.Len(t, p, 1)
	assert.Equal(t, codes.Error, p[0].Status().Code)
	assert.Equal(t, "bus down", p[0].Status().Description)
	require.Len(t, p[0].Events(), 1)
	assert.Equal(t, "exception", p[0].Events()[0].Name)
}

// TestUnsampledStream checks that a stream the sampler dropped costs no
// deliver spans, while publishes are still traced.
func TestUnsampledStream(t *testing.T) {
	tp, sr := newProvider(t, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	b := newBroker(t, core.Config{Observer: tracing.New(tracing.WithTracerProvider(tp)).Observer()})
	// The stream request came with a traceparent whose sampled flag is off.
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
	c := connect(t, ctx, b, core.SubscribeRequest{})
	require.NoError(t, b.Broadcast(context.Background(), "e", "x"))
	c.st.WaitEvents(t, 1)
	c.close(t)
	spans := sr.Ended()
	assert.Len(t, named(spans, "publish broadcast"), 1)
	assert.Empty(t, operation(spans, tracing.SpanDeliver))
	assert.Empty(t, named(spans, tracing.SpanConnection))
}

func TestTenantAttribute(t *testing.T) {
	for _, on := range []bool{false, true} {
		tp, sr := newProvider(t)
		opts := []tracing.Option{tracing.WithTracerProvider(tp)}
		if on {
			opts = append(opts, tracing.WithTenantAttribute())
		}
		b := newBroker(t, core.Config{Observer: tracing.New(opts...).Observer()})
		ctx := context.Background()
		sub, err := b.Subscribe(ctx, core.SubscribeRequest{Identity: core.Identity{Tenant: "acme"}})
		require.NoError(t, err)
		require.NoError(t, b.Tenant("acme").Broadcast(ctx, "e", "x"))
		sub.Close()
		for _, name := range []string{"publish broadcast", tracing.SpanConnection} {
			s := named(sr.Ended(), name)
			require.Len(t, s, 1, name)
			v, ok := attrs(s[0])["ssekit.tenant"]
			assert.Equal(t, on, ok, name)
			if on {
				assert.Equal(t, "acme", v.AsString())
			}
		}
	}
}

func TestRejectAndReplayEvents(t *testing.T) {
	tp, sr := newProvider(t)
	b := newBroker(t, core.Config{Observer: tracing.New(tracing.WithTracerProvider(tp)).Observer()})
	ctx, req := tp.Tracer("net/http").Start(context.Background(), "GET /events")
	_, err := b.Subscribe(ctx, core.SubscribeRequest{Topics: []string{"bad//topic"}})
	require.ErrorIs(t, err, core.ErrBadRequest)
	req.End()
	r := named(sr.Ended(), "GET /events")
	require.Len(t, r, 1)
	require.Len(t, r[0].Events(), 1)
	assert.Equal(t, "ssekit.rejected", r[0].Events()[0].Name)

	c := connect(t, context.Background(), b, core.SubscribeRequest{LastEventID: "deadbeef-7"})
	assert.Equal(t, core.GapEventType, c.st.WaitEvents(t, 1)[0].Type)
	c.close(t)
	conn := named(sr.Ended(), tracing.SpanConnection)
	require.Len(t, conn, 1)
	require.Len(t, conn[0].Events(), 1)
	ev := conn[0].Events()[0]
	assert.Equal(t, "replay", ev.Name)
	assert.Contains(t, ev.Attributes, attribute.Bool("ssekit.replay.gap", true))
	assert.Contains(t, ev.Attributes, attribute.String("ssekit.last_event_id", "deadbeef-7"))
	assert.Equal(t, "deadbeef-7", attrs(conn[0])["ssekit.last_event_id"].AsString())
}

func TestDroppedEvents(t *testing.T) {
	tp, sr := newProvider(t)
	b := newBroker(t, core.Config{
		Observer: tracing.New(tracing.WithTracerProvider(tp)).Observer(), ClientBufferSize: 1, SlowConsumer: core.DropNewest,
	})
	ctx := context.Background()
	u := uuid.New()
	sub, err := b.Subscribe(ctx, core.SubscribeRequest{Identity: core.Identity{User: u}})
	require.NoError(t, err)
	for range 4 {
		require.NoError(t, b.SendToUser(ctx, u, "e", "x"))
	}
	sub.Close()
	conn := named(sr.Ended(), tracing.SpanConnection)
	require.Len(t, conn, 1)
	assert.EqualValues(t, 3, attrs(conn[0])["ssekit.dropped_events"].AsInt64())
}

// TestNoProvider checks that without an SDK nothing is recorded and no
// Metadata is added.
func TestNoProvider(t *testing.T) {
	tr := tracing.New(tracing.WithTracerProvider(noop.NewTracerProvider()))
	m := &core.Message{Target: core.Target{Broadcast: true}}
	done := tr.Observer().Publish(context.Background(), m)
	assert.Nil(t, done)
	assert.Nil(t, m.Metadata)
}

func TestTraceparent(t *testing.T) {
	assert.Empty(t, tracing.Traceparent(context.Background()))
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	ctx := trace.ContextWithSpanContext(context.Background(), sc)
	assert.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracing.Traceparent(ctx))

	// What the browser gets equals what the W3C propagator would send.
	tr := tracing.New()
	m := &core.Message{Metadata: map[string]string{"traceparent": tracing.Traceparent(ctx)}}
	assert.Equal(t, sc.WithRemote(true), trace.SpanContextFromContext(tr.Extract(context.Background(), m)))
}
