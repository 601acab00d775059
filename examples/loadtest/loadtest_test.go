package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/internal/leaktest"
)

func TestMain(m *testing.M) {
	// -spawn self re-runs this binary as "loadtest serve", and the publish
	// phase as "loadtest publish".
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(serveMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "burst-serve" {
		os.Exit(burstServeMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "publish" {
		os.Exit(publishMain(context.Background(), os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
	}
	leaktest.VerifyTestMain(m)
}

// testLog sends a run's progress lines to t.Log.
type testLog struct {
	t  *testing.T
	mu sync.Mutex
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startTestServer runs the hub's HTTP path in-process on loopback.
func startTestServer(t *testing.T, cfg serverConfig) *server {
	t.Helper()
	if cfg.broker.RetryHint == 0 {
		// Cut subscribers come back quickly, so the test stays short.
		cfg.broker.RetryHint = 100 * time.Millisecond
	}
	s, err := startServer(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, s.close(ctx), "closing the server")
	})
	return s
}

func runWorkload(t *testing.T, cfg Config) *Result {
	t.Helper()
	cfg.Settle = 10 * time.Millisecond
	cfg.Timeout = 2 * time.Minute
	cfg, err := cfg.withDefaults()
	require.NoError(t, err)
	res, err := run(context.Background(), cfg, &testLog{t: t})
	require.NoError(t, err)
	var out bytes.Buffer
	res.print(&out)
	t.Log(out.String())
	return res
}

// checkDelivery asserts what every workload must achieve: every event to
// every reader, exactly once, in order.
func checkDelivery(t *testing.T, res *Result, subscribers, events int) {
	t.Helper()
	d := res.Delivery
	assert.Equal(t, subscribers, res.Connect.Opened, "opened %d of %d subscribers", res.Connect.Opened, subscribers)
	assert.False(t, res.Publish.OK != events || res.Publish.Failed != 0, "published %d ok, %d failed, want %d ok: %s", res.Publish.OK, res.Publish.Failed, events, res.Publish.FirstError)
	want := int64(subscribers * events)
	assert.False(t, d.Expected != want || d.Unique != want, "expected %d, unique %d, want %d", d.Expected, d.Unique, want)
	assert.False(t, d.Loss != 0 || d.Duplicates != 0 || d.Jumps != 0 || d.OutOfOrder != 0 || d.ServerGapEvents != 0 || d.Unexpected != 0, "loss %d, duplicates %d, gaps %d, out of order %d, server gaps %d, unexpected %d: want all 0", d.Loss, d.Duplicates, d.Jumps, d.OutOfOrder, d.ServerGapEvents, d.Unexpected)
	assert.Equal(t, subscribers, d.Complete, "%d of %d subscribers complete", d.Complete, subscribers)
	assert.Equal(t, subscribers*events, res.Latency.Samples, "%d latency samples, want %d", res.Latency.Samples, subscribers*events)
}

func failedChecks(res *Result) []check {
	var out []check
	for _, c := range res.Checks {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

func TestFanout(t *testing.T) {
	srv := startTestServer(t, serverConfig{broker: core.Config{HistorySize: 4096}})
	res := runWorkload(t, Config{Workload: "fanout", URL: srv.url() + "/events", Subscribers: 20, Events: 200})
	checkDelivery(t, res, 20, 200)
	bad := failedChecks(res)
	assert.Empty(t, bad, "failed checks: %+v", bad)
	st := res.StatsAfter
	assert.False(t, st == nil || st.Published != 200 || st.Connections != 20, "server stats after the run: %+v", st)
}

func TestRate(t *testing.T) {
	srv := startTestServer(t, serverConfig{})
	res := runWorkload(t, Config{Workload: "rate", URL: srv.url() + "/events", Subscribers: 20,
		Rate: 200, Duration: time.Second, Publishers: 2, Publisher: "inline"})
	require.Equal(t, 200, res.Events, "rate 200/s for 1s: %d events, want 200", res.Events)
	// Two publishers: order is not checked, loss and duplicates are.
	assert.False(t, res.Delivery.Jumps != -1 || res.Delivery.OutOfOrder != -1, "gaps counted with two publishers: %+v", res.Delivery)
	res.Delivery.Jumps, res.Delivery.OutOfOrder = 0, 0
	checkDelivery(t, res, 20, 200)
	bad := failedChecks(res)
	assert.Empty(t, bad, "failed checks: %+v", bad)
}

// TestIdle also reads /proc, with this process standing in for the
// server (the figures mean nothing here; the path is what is tested).
func TestIdle(t *testing.T) {
	srv := startTestServer(t, serverConfig{})
	res := runWorkload(t, Config{Workload: "idle", URL: srv.url() + "/events", Subscribers: 100, ServerPID: os.Getpid()})
	checkDelivery(t, res, 100, 1)
	s := res.Server
	assert.False(t, s == nil || s.RSSBeforeMiB <= 0 || s.RSSIdleMiB <= 0 || s.PID != os.Getpid(), "server figures: %+v", s)
	assert.Equal(t, 100, res.Connect.ServerConnections, "server counted %d connections, want 100", res.Connect.ServerConnections)
}

// TestSlow: subscribers that never read are cut for good, readers that
// stop reading for a while are cut and then replayed what they missed
// (exactly once, in order), and a late joiner gets a new event at once.
// The server's sockets have small send buffers (and the clients small
// receive buffers) so the stalls show within a small burst.
func TestSlow(t *testing.T) {
	srv := startTestServer(t, serverConfig{
		broker: core.Config{HistorySize: 1000, ClientBufferSize: 32},
		sndBuf: 16 << 10,
	})
	res := runWorkload(t, Config{Workload: "slow", URL: srv.url() + "/events", Subscribers: 10, NonReaders: 2,
		Events: 500, NonReaderRcvBuf: 4 << 10, PauseReaders: 3, PauseAt: 50, ReaderRcvBuf: 8 << 10})
	checkDelivery(t, res, 10, 500)
	d := res.Delivery
	assert.False(t, d.SubscribersReconnected < 3 || d.Reconnects < 3, "%d subscribers reconnected (%d times), want the 3 paused ones at least", d.SubscribersReconnected, d.Reconnects)
	st := res.StatsAfter
	assert.False(t, st == nil || st.Replayed == 0, "nothing replayed: %+v", st)
	n := res.NonReaders
	assert.False(t, n == nil || n.Count != 2 || n.ClosedByServer != 2 || n.StillOnline != 0 || n.DroppedSlowConsumer == 0, "non-readers: %+v, want both cut by the server", n)
	l := res.LateJoiner
	assert.False(t, l == nil || !l.Got || l.Error != "", "late joiner: %+v", l)
	assert.Equal(t, 1024, res.Size, "slow events are %d bytes, want 1024", res.Size)
	bad := failedChecks(res)
	assert.Empty(t, bad, "failed checks: %+v", bad)
}

// TestSpawnSelf runs the server as a child process ("loadtest serve",
// here this test binary) with a publish secret and both profiles, and has
// it publish the events in-process.
func TestSpawnSelf(t *testing.T) {
	dir := t.TempDir()
	res := runWorkload(t, Config{Workload: "custom", Spawn: "self", Subscribers: 10, Events: 100,
		Secret: "s3cret", CPUProfile: dir + "/cpu.pprof", MemProfile: dir + "/heap.pprof", Publisher: "server"})
	checkDelivery(t, res, 10, 100)
	s := res.Server
	assert.False(t, s == nil || s.PID <= 0 || s.PID == os.Getpid() || s.HeapIdle == nil || s.HeapIdle.Goroutines == 0, "server figures: %+v", s)
	for _, f := range []string{"cpu.pprof", "heap.pprof"} {
		fi, err := os.Stat(dir + "/" + f)
		assert.False(t, err != nil || fi.Size() == 0, "profile %s: %v", f, err)
	}
}

// TestSpawnHub builds examples/hub and runs a small fan-out against it,
// with the hub's publish secret: one event per POST /publish, then
// batches of 7 (the hub's JSON-array publish; the last batch holds 2).
func TestSpawnHub(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command to build the hub")
	}
	bin, tmp, err := buildHub(context.Background(), &testLog{t: t})
	require.NoError(t, err)
	defer os.RemoveAll(tmp)
	for _, batch := range []int{1, 7} {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			res := runWorkload(t, Config{Workload: "custom", Spawn: "hub", HubBin: bin, Subscribers: 10, Events: 100,
				Batch: batch, Secret: "s3cret", HubArgs: []string{"-retry", "100ms"}})
			checkDelivery(t, res, 10, 100)
			assert.False(t, res.Server == nil || res.Server.PID <= 0, "no server process figures: %+v", res.Server)
			got := strings.Join(res.ServerArgs, " ")
			assert.Equal(t, "-retry 100ms", got, "server args %q", got)
			want := (100 + batch - 1) / batch
			assert.False(t, res.Batch != batch || res.Publish.Requests != want, "batch %d in %d requests, want %d in %d", res.Batch, res.Publish.Requests, batch, want)
		})
	}
}

// TestBatch runs the fan-out with batched publishing against the
// in-process server, from the publisher process and in-server, and with a
// rate: the same guarantees, and the rate stays in events/s.
func TestBatch(t *testing.T) {
	srv := startTestServer(t, serverConfig{broker: core.Config{HistorySize: 4096}})
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"process", Config{Workload: "fanout", Subscribers: 20, Events: 200, Batch: 50}},
		{"in-server", Config{Workload: "fanout", Subscribers: 20, Events: 200, Batch: 30, Publisher: "server"}},
		{"rate", Config{Workload: "rate", Subscribers: 20, Rate: 400, Duration: 500 * time.Millisecond, Batch: 20, Publisher: "inline"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.URL = srv.url() + "/events"
			res := runWorkload(t, cfg)
			checkDelivery(t, res, cfg.Subscribers, res.Events)
			bad := failedChecks(res)
			assert.Empty(t, bad, "failed checks: %+v", bad)
			want := (res.Events + cfg.Batch - 1) / cfg.Batch
			assert.False(t, res.Batch != cfg.Batch || res.Publish.Requests != want, "batch %d in %d requests, want %d in %d", res.Batch, res.Publish.Requests, cfg.Batch, want)
			// 200 events at 400/s: the last batch is due after 0.45 s.
			assert.False(t, cfg.Rate > 0 && res.Publish.Seconds < 0.3, "%d events at %v/s published in %.2fs: the rate is not in events/s", res.Events, cfg.Rate, res.Publish.Seconds)
		})
	}
}

// TestBatchAccounting: a batch the server refuses midway counts the
// events its answer lists as published, and the rest as failed.
func TestBatchAccounting(t *testing.T) {
	var calls atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var items []json.RawMessage
		assert.NoError(t, json.NewDecoder(r.Body).Decode(&items), "the publisher did not send an array")
		ids := make([]string, len(items))
		for i := range ids {
			ids[i] = fmt.Sprint(calls.Load(), "-", i)
		}
		w.Header().Set("Content-Type", "application/json")
		if calls.Add(1) == 2 { // the second batch fails after 1 event
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": "shutting down", "index": 1, "ids": ids[:1]})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ids": ids})
	}))
	defer hs.Close()
	p := newPublisher(Config{PublishURL: hs.URL, Batch: 4, Publishers: 1})
	defer p.close()
	pr := p.publishAll(context.Background(), 10, 0, 1)
	want := []bool{true, true, true, true, true, false, false, false, true, true}
	assert.False(t, pr.ok != 7 || pr.failed != 3 || !slices.Equal(pr.published, want) || len(pr.calls) != 3, "ok %d failed %d published %v in %d calls; want 7, 3, %v in 3", pr.ok, pr.failed, pr.published, len(pr.calls), want)
	assert.False(t, pr.firstErr == nil || !strings.Contains(pr.firstErr.Error(), "503"), "first error %v", pr.firstErr)
}

func TestWrongSecret(t *testing.T) {
	srv := startTestServer(t, serverConfig{secret: "right"})
	cfg, err := Config{Workload: "custom", URL: srv.url() + "/events", Subscribers: 2, Events: 3,
		Secret: "wrong", Settle: time.Millisecond, DrainTimeout: 100 * time.Millisecond}.withDefaults()
	require.NoError(t, err)
	res, err := run(context.Background(), cfg, io.Discard)
	require.NoError(t, err)
	assert.False(t, !res.Failed() || res.Publish.Failed != 3 || !strings.Contains(res.Publish.FirstError, "401"), "wrong secret: publish %+v, checks %+v", res.Publish, res.Checks)
}

func TestFlags(t *testing.T) {
	parse := func(args ...string) (Config, error) {
		c, _, err := parseFlags(args, func(string) string { return "" }, io.Discard)
		return c, err
	}
	c, err := parse("-workload", "slow")
	require.NoError(t, err)
	assert.False(t, c.Subscribers != 200 || c.NonReaders != 5 || c.Events != 20000 || c.Size != 1024 || !c.LateJoiner || c.Rate != 0, "slow preset: %+v", c)
	assert.Equal(t, "http://127.0.0.1:8080/events", c.URL, "default URL %q", c.URL)
	c, err = parse("-workload", "rate", "-subscribers", "7", "-duration", "2s")
	require.NoError(t, err)
	assert.False(t, c.Subscribers != 7 || c.Rate != 100 || c.Events != 200, "rate with overrides: %d subscribers, rate %v, %d events", c.Subscribers, c.Rate, c.Events)
	assert.Equal(t, 1, c.Batch, "default batch %d, want 1", c.Batch)
	if c, err := parse("-workload", "fanout"); assert.NoError(t, err, "-workload fanout") {
		assert.Equal(t, 500, c.Batch, "fanout batch: want the preset's 500")
	}
	if c, err := parse("-batch", "50"); assert.NoError(t, err, "-batch 50") {
		assert.Equal(t, 50, c.Batch, "-batch 50")
	}
	c, err = parse("-workload", "idle")
	assert.False(t, err != nil || c.Subscribers != 10000 || c.Events != 1, "idle preset: %+v, %v", c, err)
	c, _, err = parseFlags(nil, func(k string) string {
		if k == "SSEKIT_PUBLISH_SECRET" {
			return "env-secret"
		}
		return ""
	}, io.Discard)
	assert.False(t, err != nil || c.Secret != "env-secret" || c.Workload != "fanout" || c.Subscribers != 1000 || c.Events != 2000, "defaults: %+v, %v", c, err)
	for _, bad := range [][]string{
		{"-workload", "nope"},
		{"-spawn", "hub", "-url", "http://127.0.0.1:1/events"},
		{"-spawn", "docker"},
		{"-cpuprofile", "x"},
		{"-publisher", "carrier-pigeon"},
		{"-publisher", "server", "-spawn", "hub"},
		{"-rate", "-1"},
		{"-subscribers", "-1"},
		{"-events", "20000000"},
		{"-batch", "-1"},
		{"-batch", "1000000"},
		{"extra"},
	} {
		_, err := parse(bad...)
		assert.Error(t, err, "%q: no error", bad)
	}
	code := cliMain(context.Background(), []string{"-h"}, func(string) string { return "" }, io.Discard, io.Discard)
	assert.Equal(t, 0, code, "-h: exit %d", code)
	code = cliMain(context.Background(), []string{"-workload", "x"}, func(string) string { return "" }, io.Discard, io.Discard)
	assert.Equal(t, 2, code, "bad workload: exit %d, want 2", code)
}

func TestLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/events", "http://localhost/events", "http://[::1]:1/x"} {
		err := requireLoopback(u)
		assert.NoError(t, err, "%s", u)
	}
	for _, u := range []string{"http://10.0.0.1/events", "http://example.com/events", "http://0.0.0.0:8080/"} {
		err := requireLoopback(u)
		assert.Error(t, err, "%s: accepted", u)
	}
	c := Config{URL: "http://192.0.2.1/events"}
	assert.Error(t, c.deriveURLs(), "a remote URL was accepted without -allow-remote")
	c = Config{URL: "http://192.0.2.1:9/a/events?x=1", AllowRemote: true}
	err := c.deriveURLs()
	assert.False(t, err != nil || c.PublishURL != "http://192.0.2.1:9/publish" || c.StatsURL != "http://192.0.2.1:9/stats", "derived %+v, %v", c, err)
}

func TestPayload(t *testing.T) {
	for _, size := range []int{0, 10, 27, 28, 29, 1024} {
		p := string(appendPayload(nil, 12345, 1700000000123456789, size))
		assert.False(t, size > 28 && len(p) != size, "size %d: payload of %d bytes", size, len(p))
		seq, ts, ok := parsePayload(p)
		assert.False(t, !ok || seq != 12345 || ts != 1700000000123456789, "size %d: parsed %d %d %v from %q", size, seq, ts, ok, p)
	}
	for _, bad := range []string{"", "x", "1", "1 x", "x 1"} {
		_, _, ok := parsePayload(bad)
		assert.False(t, ok, "%q parsed", bad)
	}
}

// TestAccounting feeds a subscriber a stream by hand.
func TestAccounting(t *testing.T) {
	s, err := newSubscriber("http://127.0.0.1:1/events", "", nil, 10)
	require.NoError(t, err)
	for _, seq := range []int{1, 2, 2, 5, 3, 6, 11, 0} {
		s.record(string(appendPayload(nil, seq, time.Now().UnixNano(), 0)), time.Now().UnixNano())
	}
	s.record("garbage", 0)
	assert.False(t, s.unique.Load() != 5 || s.dups != 1 || s.jumps != 1 || s.outOfOrder != 1 || s.unexpected != 3, "unique %d, dups %d, jumps %d, out of order %d, unexpected %d; want 5 1 1 1 3", s.unique.Load(), s.dups, s.jumps, s.outOfOrder, s.unexpected)
	for seq, want := range map[int]bool{1: true, 3: true, 4: false, 6: true, 7: false, 10: false} {
		assert.Equal(t, want, s.has(seq), "has(%d) = %v", seq, !want)
	}
	close(s.done)
	var r Result
	r.setDelivery([]*subscriber{s}, publishResult{ok: 10, published: []bool{true, true, true, true, true, true, true, true, true, false}, start: time.Now()}, 1)
	assert.False(t, r.Delivery.Loss != 4 || r.Delivery.Complete != 0 || r.Delivery.Expected != 10, "loss %d (want 4: 4, 7, 8, 9), complete %d, expected %d", r.Delivery.Loss, r.Delivery.Complete, r.Delivery.Expected)
}

func TestProcAndThousands(t *testing.T) {
	s, err := readProc(0)
	require.NoError(t, err)
	assert.False(t, s.RSS <= 0 || s.Threads <= 0 || s.CPU < 0, "/proc/self: %+v", s)
	assert.Greater(t, clockTicks, int64(0), "clock ticks %d", clockTicks)
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 2000000: "2,000,000", -12345: "-12,345"} {
		got := thousands(n)
		assert.Equal(t, want, got, "thousands(%d) = %q, want %q", n, got, want)
	}
}

// TestServerModes runs the in-process server's stream modes (taken over
// from net/http or not, coalesced writes): same guarantees.
func TestServerModes(t *testing.T) {
	for name, cfg := range map[string]serverConfig{
		"handler":  {},
		"takeover": {takeover: true},
		"coalesce": {takeover: true, broker: core.Config{FlushInterval: 5 * time.Millisecond}},
	} {
		t.Run(name, func(t *testing.T) {
			srv := startTestServer(t, cfg)
			res := runWorkload(t, Config{Workload: "custom", URL: srv.url() + "/events", Subscribers: 10, Events: 100, Publisher: "server"})
			checkDelivery(t, res, 10, 100)
		})
	}
}
