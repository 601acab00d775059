package metrics_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/metrics"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scenarioNames are the series runScenario's expected text covers; the
// latency histogram is checked apart, its sum depending on timing.
var scenarioNames = []string{
	"ssekit_connections_open",
	"ssekit_connections_opened_total",
	"ssekit_connections_closed_total",
	"ssekit_connections_rejected_total",
	"ssekit_events_published_total",
	"ssekit_publish_errors_total",
	"ssekit_events_sent_total",
	"ssekit_written_bytes_total",
	"ssekit_events_dropped_total",
	"ssekit_events_replayed_total",
	"ssekit_gap_events_total",
}

// runScenario drives a real broker through a script whose every count is
// known, and returns the registry and the text exposition expected of it.
//
//	A  user+topic "orders", reads everything   3 live events, ends on shutdown
//	B  user, stops reading                     cut as a slow consumer, losing
//	                                           its queue (5 events, as in Stats)
//	   forbidden topic, bad topic, no credentials, over MaxConnections: 4 rejects
//	C  user whose token expires                ends on token_expired
//	D  reconnects after A's 2nd event          1 event replayed, client_gone
//	E  reconnects with an unknown ID           gap event, ends on shutdown
func runScenario(t *testing.T) (*prometheus.Registry, string) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	b, err := core.New(core.Config{
		Observer:         m.Observer(),
		ClientBufferSize: 4,
		MaxConnections:   2,
		Authenticator: core.AuthenticatorFunc(func(context.Context, core.Request) (core.Identity, error) {
			return core.Identity{}, core.ErrUnauthenticated
		}),
		Authorizer: core.AuthorizerFunc(func(_ context.Context, _ core.Identity, topics []string) error {
			for _, topic := range topics {
				if topic == "secret" {
					return core.ErrForbidden
				}
			}
			return nil
		}),
	})
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = b.Close(context.Background())
		}
	})
	ctx := context.Background()
	userA, userB, userC := uuid.New(), uuid.New(), uuid.New()

	stA := newMemStream()
	a := serve(t, b, core.SubscribeRequest{Identity: core.Identity{User: userA}, Topics: []string{"orders"}}, stA)
	stB := newStuckStream()
	bb := serve(t, b, core.SubscribeRequest{Identity: core.Identity{User: userB}}, stB)

	_, err = b.Subscribe(ctx, core.SubscribeRequest{Topics: []string{"secret"}})
	require.ErrorIs(t, err, core.ErrForbidden)
	_, err = b.Subscribe(ctx, core.SubscribeRequest{Topics: []string{"bad//topic"}})
	require.ErrorIs(t, err, core.ErrBadRequest)
	_, err = b.Connect(ctx, request{})
	require.ErrorIs(t, err, core.ErrUnauthenticated)
	_, err = b.Subscribe(ctx, core.SubscribeRequest{})
	require.ErrorIs(t, err, core.ErrTooManyConnections)

	require.NoError(t, b.SendToUser(ctx, userA, "note", `{"n":1}`))
	stA.WaitEvents(t, 1)
	require.NoError(t, b.SendToTopic(ctx, "orders", "order", `{"n":2}`))
	stA.WaitEvents(t, 2)
	require.NoError(t, b.Broadcast(ctx, "news", `{"n":3}`))
	evsA := stA.WaitEvents(t, 3)

	<-stB.blocked // B took the broadcast and stopped reading
	for i := range 5 {
		require.NoError(t, b.SendToUser(ctx, userB, "note", fmt.Sprint(i)))
	}
	require.ErrorIs(t, bb.wait(t), core.ErrSlowConsumer)

	c := serve(t, b, core.SubscribeRequest{Identity: core.Identity{User: userC, ExpiresAt: time.Now().Add(50 * time.Millisecond)}}, newMemStream())
	require.ErrorIs(t, c.wait(t), core.ErrTokenExpired)

	stD := newMemStream()
	d := serve(t, b, core.SubscribeRequest{Topics: []string{"orders"}, LastEventID: evsA[1].ID}, stD)
	assert.Equal(t, "news", stD.WaitEvents(t, 1)[0].Type)
	require.NoError(t, d.close(t))

	stE := newMemStream()
	e := serve(t, b, core.SubscribeRequest{LastEventID: "deadbeef-1"}, stE)
	assert.Equal(t, core.GapEventType, stE.WaitEvents(t, 1)[0].Type)

	require.NoError(t, b.Close(ctx))
	closed = true
	require.NoError(t, a.wait(t))
	require.NoError(t, e.wait(t))

	written := 0
	for _, ev := range evsA {
		frame, err := core.AppendEvent(nil, core.Event{ID: ev.ID, Type: ev.Type, Data: ev.Data})
		require.NoError(t, err)
		written += len(frame)
	}
	return reg, fmt.Sprintf(scenarioExpected, written)
}

const scenarioExpected = `
# HELP ssekit_connections_closed_total SSE connections ended, by reason.
# TYPE ssekit_connections_closed_total counter
ssekit_connections_closed_total{reason="client_gone"} 1
ssekit_connections_closed_total{reason="shutdown"} 2
ssekit_connections_closed_total{reason="slow_consumer"} 1
ssekit_connections_closed_total{reason="timeout"} 0
ssekit_connections_closed_total{reason="token_expired"} 1
ssekit_connections_closed_total{reason="write_error"} 0
# HELP ssekit_connections_open Open SSE connections (registered and not yet ended).
# TYPE ssekit_connections_open gauge
ssekit_connections_open 0
# HELP ssekit_connections_opened_total SSE connections registered.
# TYPE ssekit_connections_opened_total counter
ssekit_connections_opened_total 5
# HELP ssekit_connections_rejected_total SSE connection requests refused, by reason.
# TYPE ssekit_connections_rejected_total counter
ssekit_connections_rejected_total{reason="bad_request"} 1
ssekit_connections_rejected_total{reason="forbidden"} 1
ssekit_connections_rejected_total{reason="limit"} 1
ssekit_connections_rejected_total{reason="other"} 0
ssekit_connections_rejected_total{reason="shutdown"} 0
ssekit_connections_rejected_total{reason="unauthenticated"} 1
ssekit_connections_rejected_total{reason="unavailable"} 0
# HELP ssekit_events_dropped_total Events that did not reach a connection they were meant for, by reason.
# TYPE ssekit_events_dropped_total counter
ssekit_events_dropped_total{reason="queue_full_newest"} 0
ssekit_events_dropped_total{reason="queue_full_oldest"} 0
ssekit_events_dropped_total{reason="slow_consumer"} 5
# HELP ssekit_events_published_total Events published, by target kind (user, topic or broadcast).
# TYPE ssekit_events_published_total counter
ssekit_events_published_total{target="broadcast"} 1
ssekit_events_published_total{target="topic"} 1
ssekit_events_published_total{target="user"} 6
# HELP ssekit_events_replayed_total Events replayed to reconnecting clients after their Last-Event-ID.
# TYPE ssekit_events_replayed_total counter
ssekit_events_replayed_total 1
# HELP ssekit_events_sent_total Live events written to connections (replays and gap events excluded); core.Stats.Sent.
# TYPE ssekit_events_sent_total counter
ssekit_events_sent_total 3
# HELP ssekit_gap_events_total Gap events written to clients: on reconnect when the Last-Event-ID could not be replayed, and when the Bus lost events; core.Stats.Gaps.
# TYPE ssekit_gap_events_total counter
ssekit_gap_events_total 1
# HELP ssekit_publish_errors_total Publishes that failed in the History or Bus, by target kind.
# TYPE ssekit_publish_errors_total counter
ssekit_publish_errors_total{target="broadcast"} 0
ssekit_publish_errors_total{target="topic"} 0
ssekit_publish_errors_total{target="user"} 0
# HELP ssekit_written_bytes_total Bytes of live events written to connections.
# TYPE ssekit_written_bytes_total counter
ssekit_written_bytes_total %d
`

func TestScenario(t *testing.T) {
	reg, expected := runScenario(t)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(expected), scenarioNames...))

	h := histogram(t, reg, "ssekit_delivery_latency_seconds")
	assert.EqualValues(t, 3, h.GetSampleCount(), "one latency per write, and A got one event per write")
	assert.Positive(t, h.GetSampleSum())
	assert.Less(t, h.GetSampleSum(), 30.0)
	assert.NotNil(t, h.Schema, "native histogram enabled")
	assert.Len(t, h.GetBucket(), len(metrics.DefaultLatencyBuckets), "classic buckets kept")
}

// histogram gathers the one histogram named name.
func histogram(t *testing.T, g prometheus.Gatherer, name string) *dto.Histogram {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			require.Len(t, mf.GetMetric(), 1)
			return mf.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// value gathers the value of the counter or gauge name whose labels
// include the given name-value pairs.
func value(t *testing.T, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}
