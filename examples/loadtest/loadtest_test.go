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
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.close(ctx); err != nil {
			t.Errorf("closing the server: %v", err)
		}
	})
	return s
}

func runWorkload(t *testing.T, cfg Config) *Result {
	t.Helper()
	cfg.Settle = 10 * time.Millisecond
	cfg.Timeout = 2 * time.Minute
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	res, err := run(context.Background(), cfg, &testLog{t: t})
	if err != nil {
		t.Fatal(err)
	}
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
	if res.Connect.Opened != subscribers {
		t.Errorf("opened %d of %d subscribers", res.Connect.Opened, subscribers)
	}
	if res.Publish.OK != events || res.Publish.Failed != 0 {
		t.Errorf("published %d ok, %d failed, want %d ok: %s", res.Publish.OK, res.Publish.Failed, events, res.Publish.FirstError)
	}
	if want := int64(subscribers * events); d.Expected != want || d.Unique != want {
		t.Errorf("expected %d, unique %d, want %d", d.Expected, d.Unique, want)
	}
	if d.Loss != 0 || d.Duplicates != 0 || d.Jumps != 0 || d.OutOfOrder != 0 || d.ServerGapEvents != 0 || d.Unexpected != 0 {
		t.Errorf("loss %d, duplicates %d, gaps %d, out of order %d, server gaps %d, unexpected %d: want all 0",
			d.Loss, d.Duplicates, d.Jumps, d.OutOfOrder, d.ServerGapEvents, d.Unexpected)
	}
	if d.Complete != subscribers {
		t.Errorf("%d of %d subscribers complete", d.Complete, subscribers)
	}
	if res.Latency.Samples != subscribers*events {
		t.Errorf("%d latency samples, want %d", res.Latency.Samples, subscribers*events)
	}
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
	if bad := failedChecks(res); len(bad) > 0 {
		t.Errorf("failed checks: %+v", bad)
	}
	if st := res.StatsAfter; st == nil || st.Published != 200 || st.Connections != 20 {
		t.Errorf("server stats after the run: %+v", st)
	}
}

func TestRate(t *testing.T) {
	srv := startTestServer(t, serverConfig{})
	res := runWorkload(t, Config{Workload: "rate", URL: srv.url() + "/events", Subscribers: 20,
		Rate: 200, Duration: time.Second, Publishers: 2, Publisher: "inline"})
	if res.Events != 200 {
		t.Fatalf("rate 200/s for 1s: %d events, want 200", res.Events)
	}
	// Two publishers: order is not checked, loss and duplicates are.
	if res.Delivery.Jumps != -1 || res.Delivery.OutOfOrder != -1 {
		t.Errorf("gaps counted with two publishers: %+v", res.Delivery)
	}
	res.Delivery.Jumps, res.Delivery.OutOfOrder = 0, 0
	checkDelivery(t, res, 20, 200)
	if bad := failedChecks(res); len(bad) > 0 {
		t.Errorf("failed checks: %+v", bad)
	}
}

// TestIdle also reads /proc, with this process standing in for the
// server (the figures mean nothing here; the path is what is tested).
func TestIdle(t *testing.T) {
	srv := startTestServer(t, serverConfig{})
	res := runWorkload(t, Config{Workload: "idle", URL: srv.url() + "/events", Subscribers: 100, ServerPID: os.Getpid()})
	checkDelivery(t, res, 100, 1)
	if s := res.Server; s == nil || s.RSSBeforeMiB <= 0 || s.RSSIdleMiB <= 0 || s.PID != os.Getpid() {
		t.Errorf("server figures: %+v", s)
	}
	if res.Connect.ServerConnections != 100 {
		t.Errorf("server counted %d connections, want 100", res.Connect.ServerConnections)
	}
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
	if d := res.Delivery; d.SubscribersReconnected < 3 || d.Reconnects < 3 {
		t.Errorf("%d subscribers reconnected (%d times), want the 3 paused ones at least", d.SubscribersReconnected, d.Reconnects)
	}
	if st := res.StatsAfter; st == nil || st.Replayed == 0 {
		t.Errorf("nothing replayed: %+v", st)
	}
	n := res.NonReaders
	if n == nil || n.Count != 2 || n.ClosedByServer != 2 || n.StillOnline != 0 || n.DroppedSlowConsumer == 0 {
		t.Errorf("non-readers: %+v, want both cut by the server", n)
	}
	if l := res.LateJoiner; l == nil || !l.Got || l.Error != "" {
		t.Errorf("late joiner: %+v", l)
	}
	if res.Size != 1024 {
		t.Errorf("slow events are %d bytes, want 1024", res.Size)
	}
	if bad := failedChecks(res); len(bad) > 0 {
		t.Errorf("failed checks: %+v", bad)
	}
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
	if s == nil || s.PID <= 0 || s.PID == os.Getpid() || s.HeapIdle == nil || s.HeapIdle.Goroutines == 0 {
		t.Errorf("server figures: %+v", s)
	}
	for _, f := range []string{"cpu.pprof", "heap.pprof"} {
		if fi, err := os.Stat(dir + "/" + f); err != nil || fi.Size() == 0 {
			t.Errorf("profile %s: %v", f, err)
		}
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
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	for _, batch := range []int{1, 7} {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			res := runWorkload(t, Config{Workload: "custom", Spawn: "hub", HubBin: bin, Subscribers: 10, Events: 100,
				Batch: batch, Secret: "s3cret", HubArgs: []string{"-retry", "100ms"}})
			checkDelivery(t, res, 10, 100)
			if res.Server == nil || res.Server.PID <= 0 {
				t.Errorf("no server process figures: %+v", res.Server)
			}
			if got := strings.Join(res.ServerArgs, " "); got != "-retry 100ms" {
				t.Errorf("server args %q", got)
			}
			if want := (100 + batch - 1) / batch; res.Batch != batch || res.Publish.Requests != want {
				t.Errorf("batch %d in %d requests, want %d in %d", res.Batch, res.Publish.Requests, batch, want)
			}
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
			if bad := failedChecks(res); len(bad) > 0 {
				t.Errorf("failed checks: %+v", bad)
			}
			if want := (res.Events + cfg.Batch - 1) / cfg.Batch; res.Batch != cfg.Batch || res.Publish.Requests != want {
				t.Errorf("batch %d in %d requests, want %d in %d", res.Batch, res.Publish.Requests, cfg.Batch, want)
			}
			if cfg.Rate > 0 && res.Publish.Seconds < 0.3 {
				// 200 events at 400/s: the last batch is due after 0.45 s.
				t.Errorf("%d events at %v/s published in %.2fs: the rate is not in events/s", res.Events, cfg.Rate, res.Publish.Seconds)
			}
		})
	}
}

// TestBatchAccounting: a batch the server refuses midway counts the
// events its answer lists as published, and the rest as failed.
func TestBatchAccounting(t *testing.T) {
	var calls atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var items []json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&items); err != nil {
			t.Errorf("the publisher did not send an array: %v", err)
		}
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
	if pr.ok != 7 || pr.failed != 3 || !slices.Equal(pr.published, want) || len(pr.calls) != 3 {
		t.Errorf("ok %d failed %d published %v in %d calls; want 7, 3, %v in 3", pr.ok, pr.failed, pr.published, len(pr.calls), want)
	}
	if pr.firstErr == nil || !strings.Contains(pr.firstErr.Error(), "503") {
		t.Errorf("first error %v", pr.firstErr)
	}
}

func TestWrongSecret(t *testing.T) {
	srv := startTestServer(t, serverConfig{secret: "right"})
	cfg, err := Config{Workload: "custom", URL: srv.url() + "/events", Subscribers: 2, Events: 3,
		Secret: "wrong", Settle: time.Millisecond, DrainTimeout: 100 * time.Millisecond}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	res, err := run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Failed() || res.Publish.Failed != 3 || !strings.Contains(res.Publish.FirstError, "401") {
		t.Errorf("wrong secret: publish %+v, checks %+v", res.Publish, res.Checks)
	}
}

func TestFlags(t *testing.T) {
	parse := func(args ...string) (Config, error) {
		c, _, err := parseFlags(args, func(string) string { return "" }, io.Discard)
		return c, err
	}
	c, err := parse("-workload", "slow")
	if err != nil {
		t.Fatal(err)
	}
	if c.Subscribers != 200 || c.NonReaders != 5 || c.Events != 20000 || c.Size != 1024 || !c.LateJoiner || c.Rate != 0 {
		t.Errorf("slow preset: %+v", c)
	}
	if c.URL != "http://127.0.0.1:8080/events" {
		t.Errorf("default URL %q", c.URL)
	}
	c, err = parse("-workload", "rate", "-subscribers", "7", "-duration", "2s")
	if err != nil {
		t.Fatal(err)
	}
	if c.Subscribers != 7 || c.Rate != 100 || c.Events != 200 {
		t.Errorf("rate with overrides: %d subscribers, rate %v, %d events", c.Subscribers, c.Rate, c.Events)
	}
	if c.Batch != 1 {
		t.Errorf("default batch %d, want 1", c.Batch)
	}
	if c, err := parse("-workload", "fanout"); err != nil || c.Batch != 500 {
		t.Errorf("fanout batch %d, %v; want the preset's 500", c.Batch, err)
	}
	if c, err := parse("-batch", "50"); err != nil || c.Batch != 50 {
		t.Errorf("-batch 50: %d, %v", c.Batch, err)
	}
	c, err = parse("-workload", "idle")
	if err != nil || c.Subscribers != 10000 || c.Events != 1 {
		t.Errorf("idle preset: %+v, %v", c, err)
	}
	c, _, err = parseFlags(nil, func(k string) string {
		if k == "SSEKIT_PUBLISH_SECRET" {
			return "env-secret"
		}
		return ""
	}, io.Discard)
	if err != nil || c.Secret != "env-secret" || c.Workload != "fanout" || c.Subscribers != 1000 || c.Events != 2000 {
		t.Errorf("defaults: %+v, %v", c, err)
	}
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
		if _, err := parse(bad...); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if code := cliMain(context.Background(), []string{"-h"}, func(string) string { return "" }, io.Discard, io.Discard); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
	if code := cliMain(context.Background(), []string{"-workload", "x"}, func(string) string { return "" }, io.Discard, io.Discard); code != 2 {
		t.Errorf("bad workload: exit %d, want 2", code)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:8080/events", "http://localhost/events", "http://[::1]:1/x"} {
		if err := requireLoopback(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://10.0.0.1/events", "http://example.com/events", "http://0.0.0.0:8080/"} {
		if err := requireLoopback(u); err == nil {
			t.Errorf("%s: accepted", u)
		}
	}
	c := Config{URL: "http://192.0.2.1/events"}
	if err := c.deriveURLs(); err == nil {
		t.Error("a remote URL was accepted without -allow-remote")
	}
	c = Config{URL: "http://192.0.2.1:9/a/events?x=1", AllowRemote: true}
	if err := c.deriveURLs(); err != nil || c.PublishURL != "http://192.0.2.1:9/publish" || c.StatsURL != "http://192.0.2.1:9/stats" {
		t.Errorf("derived %+v, %v", c, err)
	}
}

func TestPayload(t *testing.T) {
	for _, size := range []int{0, 10, 27, 28, 29, 1024} {
		p := string(appendPayload(nil, 12345, 1700000000123456789, size))
		if size > 28 && len(p) != size {
			t.Errorf("size %d: payload of %d bytes", size, len(p))
		}
		seq, ts, ok := parsePayload(p)
		if !ok || seq != 12345 || ts != 1700000000123456789 {
			t.Errorf("size %d: parsed %d %d %v from %q", size, seq, ts, ok, p)
		}
	}
	for _, bad := range []string{"", "x", "1", "1 x", "x 1"} {
		if _, _, ok := parsePayload(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestAccounting feeds a subscriber a stream by hand.
func TestAccounting(t *testing.T) {
	s, err := newSubscriber("http://127.0.0.1:1/events", "", nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int{1, 2, 2, 5, 3, 6, 11, 0} {
		s.record(string(appendPayload(nil, seq, time.Now().UnixNano(), 0)), time.Now().UnixNano())
	}
	s.record("garbage", 0)
	if s.unique.Load() != 5 || s.dups != 1 || s.jumps != 1 || s.outOfOrder != 1 || s.unexpected != 3 {
		t.Errorf("unique %d, dups %d, jumps %d, out of order %d, unexpected %d; want 5 1 1 1 3",
			s.unique.Load(), s.dups, s.jumps, s.outOfOrder, s.unexpected)
	}
	for seq, want := range map[int]bool{1: true, 3: true, 4: false, 6: true, 7: false, 10: false} {
		if s.has(seq) != want {
			t.Errorf("has(%d) = %v", seq, !want)
		}
	}
	close(s.done)
	var r Result
	r.setDelivery([]*subscriber{s}, publishResult{ok: 10, published: []bool{true, true, true, true, true, true, true, true, true, false}, start: time.Now()}, 1)
	if r.Delivery.Loss != 4 || r.Delivery.Complete != 0 || r.Delivery.Expected != 10 {
		t.Errorf("loss %d (want 4: 4, 7, 8, 9), complete %d, expected %d", r.Delivery.Loss, r.Delivery.Complete, r.Delivery.Expected)
	}
}

func TestProcAndThousands(t *testing.T) {
	s, err := readProc(0)
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.Threads <= 0 || s.CPU < 0 {
		t.Errorf("/proc/self: %+v", s)
	}
	if clockTicks <= 0 {
		t.Errorf("clock ticks %d", clockTicks)
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 2000000: "2,000,000", -12345: "-12,345"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
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
