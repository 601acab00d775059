package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/metrics"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newBroker(t testing.TB, cfg core.Config) *core.Broker {
	t.Helper()
	b, err := core.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

func TestDropPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy core.SlowConsumerPolicy
		reason string
	}{
		{core.DropNewest, "queue_full_newest"},
		{core.DropOldest, "queue_full_oldest"},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m, err := metrics.New(reg)
			require.NoError(t, err)
			b := newBroker(t, core.Config{Observer: m.Observer(), ClientBufferSize: 2, SlowConsumer: tc.policy})
			ctx := context.Background()
			u := uuid.New()
			// Never served: the queue fills and every further event drops.
			sub, err := b.Subscribe(ctx, core.SubscribeRequest{Identity: core.Identity{User: u}})
			require.NoError(t, err)
			for range 5 {
				require.NoError(t, b.SendToUser(ctx, u, "e", "x"))
			}
			assert.InDelta(t, 3, value(t, reg, "ssekit_events_dropped_total", "reason", tc.reason), 0)
			assert.EqualValues(t, 3, b.Stats().Dropped[core.DropReason(tc.reason)], "agrees with Stats")
			sub.Close()
			require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ssekit_connections_closed_total SSE connections ended, by reason.
# TYPE ssekit_connections_closed_total counter
ssekit_connections_closed_total{reason="client_gone"} 1
ssekit_connections_closed_total{reason="shutdown"} 0
ssekit_connections_closed_total{reason="slow_consumer"} 0
ssekit_connections_closed_total{reason="timeout"} 0
ssekit_connections_closed_total{reason="token_expired"} 0
ssekit_connections_closed_total{reason="write_error"} 0
# HELP ssekit_connections_open Open SSE connections (registered and not yet ended).
# TYPE ssekit_connections_open gauge
ssekit_connections_open 0
`), "ssekit_connections_closed_total", "ssekit_connections_open"))
		})
	}
}

func TestTenantCap(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.WithTenantLabel(2))
	require.NoError(t, err)
	b := newBroker(t, core.Config{Observer: m.Observer()})
	ctx := context.Background()
	// The default tenant has its own series and does not count against
	// the cap; "a" and "b" fill it; "c" and "d" share "other".
	for _, tenant := range []string{"", "a", "b", "c", "d", "a"} {
		require.NoError(t, b.Tenant(tenant).Broadcast(ctx, "e", "x"))
	}
	sub, err := b.Subscribe(ctx, core.SubscribeRequest{Identity: core.Identity{Tenant: "e"}})
	require.NoError(t, err)
	sub.Close()
	// A refused tenant name never takes a place under the cap.
	_, err = b.Subscribe(ctx, core.SubscribeRequest{Identity: core.Identity{Tenant: "not a tenant!"}})
	require.ErrorIs(t, err, core.ErrBadRequest)

	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ssekit_events_published_total Events published, by target kind (user, topic or broadcast).
# TYPE ssekit_events_published_total counter
ssekit_events_published_total{target="broadcast",tenant=""} 1
ssekit_events_published_total{target="broadcast",tenant="a"} 2
ssekit_events_published_total{target="broadcast",tenant="b"} 1
ssekit_events_published_total{target="broadcast",tenant="other"} 2
ssekit_events_published_total{target="topic",tenant=""} 0
ssekit_events_published_total{target="topic",tenant="a"} 0
ssekit_events_published_total{target="topic",tenant="b"} 0
ssekit_events_published_total{target="topic",tenant="other"} 0
ssekit_events_published_total{target="user",tenant=""} 0
ssekit_events_published_total{target="user",tenant="a"} 0
ssekit_events_published_total{target="user",tenant="b"} 0
ssekit_events_published_total{target="user",tenant="other"} 0
# HELP ssekit_connections_opened_total SSE connections registered.
# TYPE ssekit_connections_opened_total counter
ssekit_connections_opened_total{tenant=""} 0
ssekit_connections_opened_total{tenant="a"} 0
ssekit_connections_opened_total{tenant="b"} 0
ssekit_connections_opened_total{tenant="other"} 1
`), "ssekit_events_published_total", "ssekit_connections_opened_total"))
	assert.InDelta(t, 1, value(t, reg, "ssekit_connections_rejected_total", "tenant", metrics.OtherTenant, "reason", metrics.RejectBadRequest), 0)

	// However many tenants come, the number of series stays put.
	before := testutil.CollectAndCount(m)
	for i := range 50 {
		require.NoError(t, b.Tenant(fmt.Sprint("t", i)).Broadcast(ctx, "e", "x"))
	}
	assert.Equal(t, before, testutil.CollectAndCount(m))
}

func TestLint(t *testing.T) {
	for _, opts := range [][]metrics.Option{nil, {metrics.WithTenantLabel(10)}} {
		m, err := metrics.New(nil, opts...)
		require.NoError(t, err)
		problems, err := testutil.CollectAndLint(m)
		require.NoError(t, err)
		assert.Empty(t, problems)
	}
}

func TestRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := metrics.New(reg)
	require.NoError(t, err)
	_, err = metrics.New(reg)
	var already prometheus.AlreadyRegisteredError
	require.ErrorAs(t, err, &already, "a second Metrics on one registry needs WithConstLabels")

	// Two brokers on one registry, told apart by a constant label.
	reg = prometheus.NewRegistry()
	for _, name := range []string{"chat", "feed"} {
		_, err = metrics.New(reg, metrics.WithConstLabels(prometheus.Labels{"broker": name}))
		require.NoError(t, err)
	}
	n, err := testutil.GatherAndCount(reg, "ssekit_connections_open")
	require.NoError(t, err)
	assert.Equal(t, 2, n)

	// New(nil) registers nothing, anywhere.
	m, err := metrics.New(nil)
	require.NoError(t, err)
	mfs, err := prometheus.DefaultGatherer.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		assert.False(t, strings.HasPrefix(mf.GetName(), "ssekit_"), mf.GetName())
	}
	assert.Positive(t, testutil.CollectAndCount(m))

	_, err = metrics.New(nil, metrics.WithLatencyBuckets(nil))
	require.Error(t, err)
}

func TestRejectReason(t *testing.T) {
	for err, want := range map[error]string{
		core.ErrUnauthenticated:                                        metrics.RejectUnauthenticated,
		fmt.Errorf("%w: no token", core.ErrUnauthenticated):            metrics.RejectUnauthenticated,
		core.ErrForbidden:                                              metrics.RejectForbidden,
		fmt.Errorf("%w: %w", core.ErrBadRequest, core.ErrInvalidTopic): metrics.RejectBadRequest,
		core.ErrInvalidTenant:                                          metrics.RejectBadRequest,
		core.ErrTooManyConnections:                                     metrics.RejectLimit,
		core.ErrTooManyUserConnections:                                 metrics.RejectLimit,
		core.ErrClosed:                                                 metrics.RejectShutdown,
		errors.New("database down"):                                    metrics.RejectOther,
		core.ErrUnavailable:                                            metrics.RejectUnavailable,
		context.DeadlineExceeded:                                       metrics.RejectUnavailable,
		fmt.Errorf("%w: jwks: %w", core.ErrUnauthenticated, core.ErrUnavailable): metrics.RejectUnavailable,
		fmt.Errorf("%w: %w", core.ErrBadRequest, core.ErrTooManyTopics):          metrics.RejectBadRequest,
		core.ErrInvalidUTF8: metrics.RejectBadRequest,
	} {
		assert.Equal(t, want, metrics.RejectReason(err), err.Error())
	}
}

// TestHooks calls the hooks directly for what a scripted broker cannot
// reach quickly (write timeouts, write errors).
func TestHooks(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	b := newBroker(t, core.Config{})
	sub, err := b.Subscribe(context.Background(), core.SubscribeRequest{})
	require.NoError(t, err)
	defer sub.Close()
	o := m.Observer()
	for _, r := range []core.CloseReason{core.ReasonTimeout, core.ReasonWriteError, core.ReasonWriteError, "future_reason"} {
		ctx := o.Connect(context.Background(), sub)
		o.Disconnect(ctx, sub, r)
	}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ssekit_connections_closed_total SSE connections ended, by reason.
# TYPE ssekit_connections_closed_total counter
ssekit_connections_closed_total{reason="client_gone"} 0
ssekit_connections_closed_total{reason="future_reason"} 1
ssekit_connections_closed_total{reason="shutdown"} 0
ssekit_connections_closed_total{reason="slow_consumer"} 0
ssekit_connections_closed_total{reason="timeout"} 1
ssekit_connections_closed_total{reason="token_expired"} 0
ssekit_connections_closed_total{reason="write_error"} 2
`), "ssekit_connections_closed_total"))

	// A failed publish is an error, not a publish.
	done := o.Publish(context.Background(), &core.Message{Target: core.Target{Topics: []string{"t"}}})
	done(core.PublishDone{Recipients: -1, Err: errors.New("bus down")})
	assert.InDelta(t, 1, value(t, reg, "ssekit_publish_errors_total", "target", "topic"), 0)

	// Latency is never negative, and a message without PublishedAt is
	// not timed.
	now := time.Now()
	ctx := o.Connect(context.Background(), sub)
	o.Flush(ctx, sub, core.FlushInfo{Messages: []*core.Message{{PublishedAt: now.Add(time.Second)}, {}}, Bytes: 10, At: now})
	h := histogram(t, reg, "ssekit_delivery_latency_seconds")
	assert.EqualValues(t, 1, h.GetSampleCount())
	assert.Zero(t, h.GetSampleSum())
}

func TestLatencyPerWriteOrEvent(t *testing.T) {
	b := newBroker(t, core.Config{})
	sub, err := b.Subscribe(context.Background(), core.SubscribeRequest{})
	require.NoError(t, err)
	defer sub.Close()
	now := time.Now()
	batch := []*core.Message{
		{PublishedAt: now.Add(-3 * time.Second)}, // the oldest comes first
		{PublishedAt: now.Add(-2 * time.Second)},
		{PublishedAt: now.Add(-time.Second)},
	}
	for _, tc := range []struct {
		opts       []metrics.Option
		count, sum float64
	}{
		{nil, 1, 3},
		{[]metrics.Option{metrics.WithLatencyPerEvent()}, 3, 6},
	} {
		reg := prometheus.NewRegistry()
		m, err := metrics.New(reg, tc.opts...)
		require.NoError(t, err)
		o := m.Observer()
		ctx := o.Connect(context.Background(), sub)
		o.Flush(ctx, sub, core.FlushInfo{Messages: batch, Bytes: 300, At: now})
		h := histogram(t, reg, "ssekit_delivery_latency_seconds")
		assert.InDelta(t, tc.count, h.GetSampleCount(), 0)
		assert.InDelta(t, tc.sum, h.GetSampleSum(), 1e-9)
		assert.InDelta(t, 3, value(t, reg, "ssekit_events_sent_total"), 0)
		o.Disconnect(ctx, sub, core.ReasonClientGone)
	}
}

// TestHooksDoNotAllocate keeps the per-write and per-publish hooks free of
// allocations.
func TestHooksDoNotAllocate(t *testing.T) {
	for _, opts := range [][]metrics.Option{nil, {metrics.WithTenantLabel(10)}} {
		m, err := metrics.New(nil, opts...)
		require.NoError(t, err)
		b := newBroker(t, core.Config{})
		sub, err := b.Subscribe(context.Background(), core.SubscribeRequest{Identity: core.Identity{Tenant: ""}})
		require.NoError(t, err)
		o := m.Observer()
		ctx := o.Connect(context.Background(), sub)
		now := time.Now()
		batch := []*core.Message{{PublishedAt: now.Add(-time.Millisecond)}, {PublishedAt: now.Add(-2 * time.Millisecond)}}
		msg := &core.Message{Target: core.Target{Tenant: "acme", Broadcast: true}}
		allocs := testing.AllocsPerRun(1000, func() {
			o.Flush(ctx, sub, core.FlushInfo{Messages: batch, Bytes: 200, At: now})
			o.Publish(context.Background(), msg)(core.PublishDone{ID: "x", Recipients: 3})
			o.Drop(ctx, sub, msg, core.DropQueueFullNewest, 1)
		})
		assert.Zero(t, allocs, "options %d", len(opts))
		o.Disconnect(ctx, sub, core.ReasonClientGone)
		sub.Close()
	}
}
