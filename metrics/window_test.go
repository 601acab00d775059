package metrics_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/metrics"
)

// TestHistoryGaugesAgreeWithStats checks that the gauges Track adds read
// the broker's own Stats, so the dashboard and /stats never disagree.
func TestHistoryGaugesAgreeWithStats(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	b, err := core.New(core.Config{Observer: m.Observer()})
	require.NoError(t, err)
	defer b.Close(context.Background())
	m.Track(b)
	for range 10 {
		require.NoError(t, b.Broadcast(context.Background(), "e", strings.Repeat("x", 100)))
	}
	st := b.Stats()
	require.Positive(t, st.HeldBytes)
	held := testutil.ToFloat64(collectorFor(t, reg, "ssekit_history_held_bytes"))
	assert.Equal(t, float64(st.HeldBytes), held)
}

// TestLagIsObservedPerWrite checks that each write reports the backlog
// left behind it.
func TestLagIsObservedPerWrite(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	b, err := core.New(core.Config{Observer: m.Observer()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := b.Subscribe(ctx, core.SubscribeRequest{})
	require.NoError(t, err)
	st := newMemStream()
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, sub, st) }()
	require.NoError(t, b.Broadcast(ctx, "e", "x"))
	st.WaitEvents(t, 1)
	cancel()
	<-done
	require.NoError(t, b.Close(context.Background()))
	n, err := testutil.GatherAndCount(reg, "ssekit_connection_lag_events", "ssekit_connection_lag_bytes")
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	text, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range text {
		if strings.HasPrefix(mf.GetName(), "ssekit_connection_lag_") {
			assert.Equal(t, uint64(1), mf.GetMetric()[0].GetHistogram().GetSampleCount(), mf.GetName())
		}
	}
}

// collectorFor gathers reg and returns the one gauge named name as a
// collector testutil can read.
func collectorFor(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "copy"})
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
			return g
		}
	}
	t.Fatalf("%s not gathered", name)
	return nil
}
