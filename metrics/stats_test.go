package metrics_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/metrics"
)

// lossyBus is an in-process Bus that can also report lost events, as the
// Redis Bus does when its stream was trimmed past a node's position: it
// delivers a gap event to a whole tenant, which is in no History.
type lossyBus struct {
	mu sync.Mutex
	core.History
	deliver func(*core.Message)
	last    string // the newest ID: where the stream resumes after a loss
}

func (l *lossyBus) Publish(ctx context.Context, m *core.Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.History.Append(ctx, m); err != nil {
		return err
	}
	l.last = m.Event.ID
	l.deliver(m)
	return nil
}

func (l *lossyBus) Attach(deliver func(*core.Message)) (func(), error) {
	l.mu.Lock()
	l.deliver = deliver
	l.mu.Unlock()
	return func() {}, nil
}

// lose delivers the gap event of the default tenant, with the ID of the
// position delivery resumes from, as the Redis Bus does.
func (l *lossyBus) lose() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.deliver(&core.Message{
		Target:      core.Target{Broadcast: true},
		Event:       core.Event{ID: l.last, Type: core.GapEventType, Data: `{"reason":"trimmed"}`},
		PublishedAt: time.Now(),
	})
}

// TestStatsAgreeWithMetrics drives a broker through every figure of
// core.Stats that has a series (publishes, a refused publish, live events,
// a gap event from the Bus, a replay and a replay gap) and checks each
// figure against its series, so /stats and the dashboard never disagree.
func TestStatsAgreeWithMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		m, err := metrics.New(reg)
		require.NoError(t, err)
		bus := &lossyBus{History: core.NewMemoryHistory(core.HistoryLimits{})}
		b, err := core.New(core.Config{Observer: m.Observer(), Backend: bus})
		require.NoError(t, err)
		// Within the bubble: a failed require still ends every stream.
		t.Cleanup(func() { _ = b.Close(context.Background()) })
		m.Track(b)
		ctx := context.Background()
		user := uuid.New()

		stA := newMemStream()
		serve(t, b, core.SubscribeRequest{Identity: core.Identity{User: user}, Topics: []string{"t"}}, stA)
		stB := newMemStream()
		serve(t, b, core.SubscribeRequest{}, stB)
		require.NoError(t, b.SendToUser(ctx, user, "e", "1"))
		require.NoError(t, b.SendToTopic(ctx, "t", "e", "2"))
		require.NoError(t, b.Broadcast(ctx, "e", "3"))
		require.NoError(t, b.Broadcast(ctx, "e", "4"))
		require.Error(t, b.Broadcast(ctx, "", "refused"), "refused: counted nowhere")
		bus.lose()
		evsA, evsB := stA.WaitEvents(t, 5), stB.WaitEvents(t, 3)
		assert.Equal(t, core.GapEventType, evsA[4].Type)
		assert.Equal(t, core.GapEventType, evsB[2].Type)

		stC := newMemStream() // missed the second broadcast
		serve(t, b, core.SubscribeRequest{LastEventID: evsB[0].ID}, stC)
		assert.Equal(t, "4", stC.WaitEvents(t, 1)[0].Data)
		stD := newMemStream() // from before a restart
		serve(t, b, core.SubscribeRequest{LastEventID: "gone-1"}, stD)
		assert.Equal(t, core.GapEventType, stD.WaitEvents(t, 1)[0].Type)
		synctest.Wait() // every write counted

		st := b.Stats()
		assert.Equal(t, core.Stats{
			Connections: 4, Users: 1, Topics: 1, Tenants: 1,
			Published: 4, Delivered: 5, Sent: 6, Replayed: 1, Gaps: 3,
			Dropped: st.Dropped, HeldBytes: st.HeldBytes, OldestAge: st.OldestAge,
		}, st, "the scenario's own counts")
		checkAgree(t, reg, st)

		require.NoError(t, b.Close(ctx))
		checkAgree(t, reg, b.Stats())
	})
}

// checkAgree checks every figure of st that has a series against it.
// Users, Topics and Tenants have none: they are for /stats, not alerts.
func checkAgree(t *testing.T, reg prometheus.Gatherer, st core.Stats) {
	t.Helper()
	assert.Equal(t, float64(st.Connections), value(t, reg, "ssekit_connections_open"), "Connections")
	published := 0.0
	for _, target := range []string{"user", "topic", "broadcast"} {
		published += value(t, reg, "ssekit_events_published_total", "target", target)
	}
	assert.Equal(t, float64(st.Published), published, "Published")
	assert.Equal(t, float64(st.Delivered), value(t, reg, "ssekit_events_delivered_total"), "Delivered")
	assert.Equal(t, float64(st.Sent), value(t, reg, "ssekit_events_sent_total"), "Sent")
	assert.Equal(t, float64(st.Replayed), value(t, reg, "ssekit_events_replayed_total"), "Replayed")
	assert.Equal(t, float64(st.Gaps), value(t, reg, "ssekit_gap_events_total"), "Gaps")
	require.Len(t, st.Dropped, 3)
	for reason, n := range st.Dropped {
		assert.Equal(t, float64(n), value(t, reg, "ssekit_events_dropped_total", "reason", string(reason)), fmt.Sprint("Dropped ", reason))
	}
	assert.Equal(t, float64(st.HeldBytes), value(t, reg, "ssekit_history_held_bytes"), "HeldBytes")
	// The bubble's clock stands still: Stats and the scrape read one time.
	assert.Equal(t, st.OldestAge.Seconds(), value(t, reg, "ssekit_history_oldest_age_seconds"), "OldestAge")
}

// TestRejectUnavailableCounted checks that an Authenticator's outage is
// counted as unavailable, not as the unauthenticated it also wraps.
func TestRejectUnavailableCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	b := newBroker(t, core.Config{
		Observer: m.Observer(),
		Authenticator: core.AuthenticatorFunc(func(context.Context, core.Request) (core.Identity, error) {
			return core.Identity{}, fmt.Errorf("%w: jwks: %w", core.ErrUnauthenticated, core.ErrUnavailable)
		}),
	})
	_, err = b.Connect(context.Background(), request{})
	require.ErrorIs(t, err, core.ErrUnavailable)
	assert.Equal(t, 1.0, value(t, reg, "ssekit_connections_rejected_total", "reason", metrics.RejectUnavailable))
	assert.Zero(t, value(t, reg, "ssekit_connections_rejected_total", "reason", metrics.RejectUnauthenticated))
}

// fixedStats is a StatsSource with set figures, as a broker on a cluster
// backend reports them.
type fixedStats core.Stats

func (f fixedStats) Stats() core.Stats { return core.Stats(f) }

// TestClusterGauges: with a backend that knows the cluster, Track exports
// its brokers and connections (the largest view among tracked brokers, not
// a sum); without one, neither series exists.
func TestClusterGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	m.Track(fixedStats{Connections: 3})
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		assert.NotContains(t, mf.GetName(), "ssekit_cluster_", "no cluster series without a cluster")
	}

	m.Track(fixedStats{Connections: 5, Cluster: &core.ClusterStats{Brokers: 3, Connections: 12}})
	m.Track(fixedStats{Connections: 7, Cluster: &core.ClusterStats{Brokers: 3, Connections: 14}})
	assert.Equal(t, 3.0, value(t, reg, "ssekit_cluster_brokers"))
	assert.Equal(t, 14.0, value(t, reg, "ssekit_cluster_connections"))
}
