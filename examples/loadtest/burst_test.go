package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBurst runs the in-process burst mode end to end, small: both
// servers as child processes (this test binary as "loadtest burst-serve"),
// readers, slow readers, never-readers and a late joiner. The reference
// must lose nothing; for ssekit, whatever today's core does, the report's
// arithmetic must add up (the core's own work is to make it lossless). No
// timing is asserted.
func TestBurst(t *testing.T) {
	for _, kind := range []string{"broadcast", "user"} {
		t.Run(kind, func(t *testing.T) {
			cfg, err := burstConfig{Workload: "burst-custom", Readers: 20, Slow: 2, SlowRate: 256 << 10, Never: 2,
				Events: 200, Size: 128, Kind: kind, Late: true, Wait: 30 * time.Second, Quiet: 5 * time.Second}.withDefaults()
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			rep, err := runBurst(ctx, cfg, &testLog{t: t})
			require.NoError(t, err)
			var out bytes.Buffer
			rep.print(&out)
			t.Log("\n" + out.String())
			require.Len(t, rep.Runs, 2, "runs %+v, want ssekit then ring", rep.Runs)
			require.Equal(t, "ssekit", rep.Runs[0].Server, "runs %+v, want ssekit then ring", rep.Runs)
			require.Equal(t, "ring", rep.Runs[1].Server, "runs %+v, want ssekit then ring", rep.Runs)
			for _, r := range rep.Runs {
				checkBurstArithmetic(t, cfg, r)
			}
			ring := rep.run("ring")
			for name, cr := range map[string]classResult{"readers": ring.Readers, "slow": ring.Slow} {
				assert.False(t, !cr.exact() || cr.Complete != cr.Clients || cr.Reconn != 0, "reference %s: %+v, want every event exactly once", name, cr)
			}
			assert.Equal(t, "broadcast", ring.Burst.Kind, "reference published %q, want broadcast", ring.Burst.Kind)
			n := ring.Never
			assert.False(t, n == nil || n.Count != 2, "reference never-readers: %+v", n)
			s := rep.run("ssekit")
			wantCalls := cfg.Events
			if kind == "user" {
				// One SendToUser per event per online user: the readers,
				// slow readers and never-readers.
				wantCalls *= cfg.Readers + cfg.Slow + cfg.Never
			}
			assert.False(t, s.Burst.Kind != kind || s.Burst.Calls != wantCalls || s.Burst.Failed != 0, "ssekit burst: %+v, want %d %s calls, none failed", s.Burst, wantCalls, kind)
			assert.NotEmpty(t, s.Stats, "no ssekit Stats in the report")
			want := s.DeliveredPerSec / ring.DeliveredPerSec
			assert.LessOrEqual(t, math.Abs(rep.ThroughputRatio-want), 1e-9, "throughput ratio %v, want %v", rep.ThroughputRatio, want)
			for _, want := range []string{"delivered events/s", "server CPU per million delivered", "server peak RSS",
				"longest call", "late joiner: new event after", "throughput ssekit/reference"} {
				assert.Contains(t, out.String(), want, "the report has no %q", want)
			}
		})
	}
}

// checkBurstArithmetic asserts what every run's figures must satisfy,
// lossy or not.
func checkBurstArithmetic(t *testing.T, cfg burstConfig, r *burstRun) {
	t.Helper()
	for name, c := range map[string]struct {
		cr      classResult
		clients int
	}{"readers": {r.Readers, cfg.Readers}, "slow": {r.Slow, cfg.Slow}} {
		cr := c.cr
		assert.False(t, cr.Clients != c.clients || cr.Expected != int64(c.clients*cfg.Events), "%s %s: %d clients expecting %d, want %d expecting %d", r.Server, name, cr.Clients, cr.Expected, c.clients, c.clients*cfg.Events)
		assert.False(t, cr.Received+cr.Lost != cr.Expected || cr.Received < 0 || cr.Lost < 0, "%s %s: received %d + lost %d != expected %d", r.Server, name, cr.Received, cr.Lost, cr.Expected)
		assert.Equal(t, cr.Received+cr.Dups, cr.Delivered, "%s %s: delivered %d != received %d + duplicates %d", r.Server, name, cr.Delivered, cr.Received, cr.Dups)
		assert.False(t, cr.Complete > cr.Clients || cr.Complete == cr.Clients && cr.Lost != 0, "%s %s: %d of %d complete with %d lost", r.Server, name, cr.Complete, cr.Clients, cr.Lost)
	}
	assert.False(t, r.Burst.Events != cfg.Events || r.Burst.Size != cfg.Size || r.Burst.StartUnixNano == 0 || r.Burst.MaxCallMs <= 0, "%s burst reply: %+v", r.Server, r.Burst)
	assert.False(t, r.PID <= 0 || r.PeakRSSMiB <= 0 || r.CPUSeconds < 0, "%s server figures: pid %d, peak RSS %v MiB, CPU %v s", r.Server, r.PID, r.PeakRSSMiB, r.CPUSeconds)
	delivered := r.Readers.Delivered + r.Slow.Delivered
	want := r.CPUSeconds / float64(delivered) * 1e6
	assert.False(t, delivered > 0 && math.Abs(r.CPUPerMillion-want) > 1e-9, "%s CPU per million %v, want %v", r.Server, r.CPUPerMillion, want)
	if r.Readers.Delivered > 0 {
		assert.False(t, r.DeliverySeconds <= 0 || math.Abs(r.DeliveredPerSec-float64(r.Readers.Delivered)/r.DeliverySeconds) > 1e-6, "%s: %v events/s over %v s for %d delivered", r.Server, r.DeliveredPerSec, r.DeliverySeconds, r.Readers.Delivered)
	}
	l := r.Late
	assert.False(t, l == nil || !l.Got || l.BurstEvents != 0, "%s late joiner: %+v, want the new event and no burst event", r.Server, l)
	switch r.WaitEnded {
	case "complete", "quiet", "timeout":
	default:
		assert.Fail(t, fmt.Sprintf("%s wait ended %q", r.Server, r.WaitEnded))
	}
}

// TestStreamClientParse feeds the burst client a stream by hand: the
// counting, the gap event, the ID it would resume from, the retry hint.
func TestStreamClientParse(t *testing.T) {
	c, err := newStreamClient("reader", "http://127.0.0.1:1/events", nil, 10, 0)
	require.NoError(t, err)
	ev := func(id string, seq int) string {
		return "id: " + id + "\nevent: " + eventType + "\ndata: " + string(appendPayload(nil, seq, 1, 40)) + "\n\n"
	}
	stream := ": preamble\nretry: 2500\n\n" + ev("a", 1) + ev("b", 2) + ev("b", 2) + ev("e", 5) + ev("c", 3) +
		"id: g\r\nevent: ssekit.gap\r\ndata: {}\r\n\r\n" + "event: other\ndata: x\n\n" + ev("z", 11) + "id: last\n\n"
	err = c.parse(bufio.NewReader(strings.NewReader(stream)))
	require.Error(t, err, "parse ended with %v, want EOF", err)
	require.Equal(t, "EOF", err.Error(), "parse ended with %v, want EOF", err)
	assert.False(t, c.unique.Load() != 4 || c.dups != 1 || c.skips != 1 || c.outOfOrder != 1 || c.gapEvents != 1 || c.unexpected != 2, "unique %d, dups %d, skips %d, out of order %d, gap events %d, unexpected %d; want 4 1 1 1 1 2", c.unique.Load(), c.dups, c.skips, c.outOfOrder, c.gapEvents, c.unexpected)
	assert.False(t, string(c.lastID) != "last" || c.retry != 2500*time.Millisecond, "last ID %q, retry %v; want \"last\", 2.5s", c.lastID, c.retry)
	var r burstRun
	r.tally([]*streamClient{c}, 10, 0)
	cr := r.Readers
	assert.False(t, cr.Expected != 10 || cr.Received != 4 || cr.Lost != 6 || cr.Delivered != 5 || cr.Complete != 0, "tally: %+v", cr)
}

func TestBurstFlags(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		burst bool
	}{
		{[]string{"-workload", "burst-fanout"}, true},
		{[]string{"--workload=burst-mixed", "-kind", "user"}, true},
		{[]string{"-workload", "fanout"}, false},
		{[]string{"-subscribers", "3"}, false},
	} {
		got := isBurstWorkload(tc.args)
		assert.Equal(t, tc.burst, got, "isBurstWorkload(%q) = %v", tc.args, got)
	}
	cfg, _, err := parseBurstFlags([]string{"-workload", "burst-mixed"}, &bytes.Buffer{})
	assert.False(t, err != nil || cfg.Readers != 200 || cfg.Slow != 5 || cfg.Never != 5 || cfg.Events != 20000 || cfg.Size != 1024 ||
		cfg.SlowRate != 1<<20 || !cfg.Late || strings.Join(cfg.Servers, ",") != "ssekit,ring", "burst-mixed: %+v, %v", cfg, err)
	cfg, _, err = parseBurstFlags([]string{"-workload", "burst-fanout", "-readers", "7"}, &bytes.Buffer{})
	assert.False(t, err != nil || cfg.Readers != 7 || cfg.Events != 2000 || cfg.Size != 128 || cfg.Slow != 0, "burst-fanout -readers 7: %+v, %v", cfg, err)
	for _, bad := range [][]string{{"-workload", "burst-x"}, {"-workload", "burst-fanout", "-kind", "multicast"},
		{"-workload", "burst-fanout", "-servers", "ssekit,nginx"}, {"-workload", "burst-fanout", "-size", "100000"}} {
		_, _, err := parseBurstFlags(bad, &bytes.Buffer{})
		assert.Error(t, err, "%q accepted", bad)
	}
}
