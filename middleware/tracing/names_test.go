package tracing_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/tracing"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// orderTemplate is the WithTopicTemplate of these tests: "order-123" has
// the template "order-{id}", other topics none.
func orderTemplate(topic string) string {
	if strings.HasPrefix(topic, "order-") {
		return "order-{id}"
	}
	return ""
}

// names returns the distinct names of spans, sorted.
func names(spans []sdktrace.ReadOnlySpan) []string {
	set := map[string]bool{}
	for _, s := range spans {
		set[s.Name()] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// TestSpanNamesAtScale publishes to 1,000 distinct topics of each kind, to
// 1,000 distinct users, in 1,000 distinct tenants: span names stay a
// handful, the destination is in the attributes.
func TestSpanNamesAtScale(t *testing.T) {
	const n = 1000
	tp, sr := newProvider(t)
	tr := tracing.New(tracing.WithTracerProvider(tp), tracing.WithTenantAttribute(), tracing.WithTopicTemplate(orderTemplate))
	b := newBroker(t, core.Config{Observer: tr.Observer()})
	ctx := context.Background()

	// want is what each publish span must say, by event ID.
	type want struct {
		tenant, topic, template string
		user                    uuid.UUID
	}
	wants := map[string]want{}
	publish := func(w want, tg core.Target) {
		t.Helper()
		tg.Tenant = w.tenant
		id, err := b.Publish(ctx, core.Message{Target: tg, Event: core.Event{Type: "e", Data: "x"}})
		require.NoError(t, err)
		wants[id] = w
	}
	for i := range n {
		tenant := fmt.Sprint("tenant-", i)
		room, order, user := fmt.Sprint("room-", i), fmt.Sprint("order-", i), uuid.New()
		publish(want{tenant: tenant, topic: room}, core.Target{Topics: []string{room}})
		publish(want{tenant: tenant, topic: order, template: "order-{id}"}, core.Target{Topics: []string{order}})
		publish(want{tenant: tenant, user: user}, core.Target{Users: []uuid.UUID{user}})
		if i%100 == 0 {
			publish(want{tenant: tenant}, core.Target{Broadcast: true})
			publish(want{tenant: tenant, user: user}, core.Target{Users: []uuid.UUID{user}, Topics: []string{room}})
		}
	}

	spans := operation(sr.Ended(), tracing.SpanPublish)
	require.Len(t, spans, len(wants))
	got := names(spans)
	assert.Equal(t, []string{"publish", "publish broadcast", "publish order-{id}", "publish topic", "publish user"}, got)
	assert.LessOrEqual(t, len(got), 5, "span names must not grow with topics, users or tenants")

	topics := map[string]bool{}
	for _, s := range spans {
		a := attrs(s)
		w, ok := wants[a["messaging.message.id"].AsString()]
		require.True(t, ok, "a publish span without its event ID: %v", a)
		assert.Equal(t, w.tenant, a["ssekit.tenant"].AsString())
		if w.topic != "" {
			assert.Equal(t, w.topic, a["messaging.destination.name"].AsString())
			topics[w.topic] = true
		}
		tmpl, ok := a["messaging.destination.template"]
		assert.Equal(t, w.template != "", ok, "template of %s", w.topic)
		assert.Equal(t, w.template, tmpl.AsString())
		if w.user != uuid.Nil {
			for k, v := range a {
				assert.NotContains(t, v.Emit(), w.user.String(), "%s holds a user ID", k)
			}
		}
	}
	assert.Len(t, topics, 2*n, "every topic is in an attribute")
}

// TestTopicTemplate checks the names and destination attributes of a
// publish span for each shape of target.
func TestTopicTemplate(t *testing.T) {
	user := uuid.New()
	for _, tc := range []struct {
		target   core.Target
		name     string
		dest     string   // messaging.destination.name
		template string   // messaging.destination.template
		topics   []string // ssekit.topics
	}{
		{core.Target{Topics: []string{"order-7"}}, "publish order-{id}", "order-7", "order-{id}", nil},
		{core.Target{Topics: []string{"order-7", "order-8"}}, "publish order-{id}", "", "order-{id}", []string{"order-7", "order-8"}},
		{core.Target{Topics: []string{"order-7", "room-1"}}, "publish topic", "", "", []string{"order-7", "room-1"}},
		{core.Target{Topics: []string{"room-1", "order-7"}}, "publish topic", "", "", []string{"room-1", "order-7"}},
		{core.Target{Topics: []string{"room-1"}}, "publish topic", "room-1", "", nil},
		{core.Target{Users: []uuid.UUID{user}, Topics: []string{"order-7"}}, "publish", "", "", []string{"order-7"}},
		{core.Target{Users: []uuid.UUID{user}}, "publish user", "", "", nil},
		{core.Target{Broadcast: true}, "publish broadcast", "", "", nil},
	} {
		t.Run(tc.name+" "+fmt.Sprint(tc.target.Topics), func(t *testing.T) {
			tp, sr := newProvider(t)
			tr := tracing.New(tracing.WithTracerProvider(tp), tracing.WithTopicTemplate(orderTemplate))
			done := tr.Observer().Publish(context.Background(), &core.Message{Target: tc.target})
			require.NotNil(t, done)
			done(core.PublishDone{ID: "e-1", Recipients: -1})
			spans := sr.Ended()
			require.Len(t, spans, 1)
			assert.Equal(t, tc.name, spans[0].Name())
			a := attrs(spans[0])
			for key, want := range map[attribute.Key]string{
				"messaging.destination.name":     tc.dest,
				"messaging.destination.template": tc.template,
			} {
				v, ok := a[key]
				assert.Equal(t, want != "", ok, "%s set", key)
				assert.Equal(t, want, v.AsString(), key)
			}
			assert.Equal(t, tc.topics, a["ssekit.topics"].AsStringSlice())
			assert.Equal(t, tc.target.Kind(), a["ssekit.target.kind"].AsString())
		})
	}
}

// TestDeliverSpanNames checks that a deliver span is named like the
// publish spans of the events it wrote, when they agree, and by its
// operation alone when they do not.
func TestDeliverSpanNames(t *testing.T) {
	tp, sr := newProvider(t)
	tr := tracing.New(tracing.WithTracerProvider(tp), tracing.WithTopicTemplate(orderTemplate))
	b := newBroker(t, core.Config{Observer: tr.Observer()})
	ctx := context.Background()
	alice := uuid.New()
	sub, err := b.Subscribe(ctx, core.SubscribeRequest{
		Identity: core.Identity{User: alice}, Topics: []string{"order-1", "order-2", "room-1"},
	})
	require.NoError(t, err)
	// Queued before Serve: written as one batch of every kind.
	require.NoError(t, b.SendToTopic(ctx, "order-1", "e", "x"))
	require.NoError(t, b.SendToUser(ctx, alice, "e", "x"))
	st := newMemStream()
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Serve(sctx, sub, st) }()
	st.WaitEvents(t, 2)
	waitOperation(t, sr, tracing.SpanDeliver, 1)

	// Then one event per write.
	sends := []func() error{
		func() error { return b.SendToTopic(ctx, "order-1", "e", "x") },
		func() error { return b.SendToTopic(ctx, "order-2", "e", "x") },
		func() error { return b.SendToTopic(ctx, "room-1", "e", "x") },
		func() error { return b.SendToUser(ctx, alice, "e", "x") },
		func() error { return b.Broadcast(ctx, "e", "x") },
	}
	for i, send := range sends {
		require.NoError(t, send())
		st.WaitEvents(t, 3+i)
		waitOperation(t, sr, tracing.SpanDeliver, 2+i)
	}
	cancel()
	<-done

	var got []string
	for _, d := range operation(sr.Ended(), tracing.SpanDeliver) {
		a := attrs(d)
		got = append(got, fmt.Sprintf("%s|%s|%s", d.Name(), a["messaging.destination.name"].AsString(), a["messaging.destination.template"].AsString()))
	}
	assert.Equal(t, []string{
		"deliver||", // a topic and a user: nothing in common
		"deliver order-{id}|order-1|order-{id}",
		"deliver order-{id}|order-2|order-{id}",
		"deliver topic|room-1|",
		"deliver user||",
		"deliver broadcast||",
	}, got)
}
