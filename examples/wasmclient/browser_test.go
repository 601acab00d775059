package wasmclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/examples/internal/exampletest"
)

// front is the origin the page is loaded from: it serves the page, Go's
// wasm_exec.js and the app, and passes /events and /publish to the hub,
// as the reverse proxy in front of a real deployment does.
//
// Why not load the page from the hub, or from another origin? The hub
// serves only its embedded demo page, and it has no CORS option for
// /events: a page on another origin could not read the stream. (A Go
// client, unlike EventSource, also sends Last-Event-ID, SSEKit-Reject and
// Cache-Control headers, so a cross-origin fetch needs a preflight, which
// the hub would have to answer.) One origin needs neither.
type front struct {
	*httptest.Server
	mu   sync.Mutex
	ids  []string // the Last-Event-ID header of every /events request, in order
	sent []bool   // whether that request had the header at all
}

func newFront(t *testing.T, hubBase string) *front {
	t.Helper()
	target, err := url.Parse(hubBase)
	require.NoError(t, err)
	// Its own transport, whose idle connections to the old hub process
	// are closed at the end.
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	proxy := &httputil.ReverseProxy{
		Rewrite:       func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport:     tr,
		FlushInterval: -1, // every event at once (the proxy also does this for text/event-stream)
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// The hub is down (restarting): 502, which the client retries.
			http.Error(w, "hub unavailable: "+err.Error(), http.StatusBadGateway)
		},
	}
	f := &front{}
	mux := http.NewServeMux()
	file := func(path string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Cache-Control", "no-store")
			http.ServeFile(w, r, path) // .wasm is served as application/wasm, which instantiateStreaming needs
		}
	}
	mux.HandleFunc("GET /{$}", file(filepath.Join("web", "index.html")))
	mux.HandleFunc("GET /main.js", file(filepath.Join("web", "main.js")))
	mux.HandleFunc("GET /wasm_exec.js", file(filepath.Join(goroot, "lib", "wasm", "wasm_exec.js")))
	mux.HandleFunc("GET /app.wasm", file(appWasm))
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		id, sent := r.Header["Last-Event-Id"]
		f.ids = append(f.ids, r.Header.Get("Last-Event-ID"))
		f.sent = append(f.sent, sent && len(id) > 0)
		f.mu.Unlock()
		proxy.ServeHTTP(w, r)
	})
	mux.Handle("/publish", proxy)
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

// lastEventIDs returns what each /events request sent as Last-Event-ID
// ("" when none), in order.
func (f *front) lastEventIDs() (ids []string, sent []bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ids), slices.Clone(f.sent)
}

// TestBrowser loads a page that runs the client compiled to js/wasm in
// headless Chromium, where Go's net/http is the browser's fetch. The
// client receives a user push, a topic push and a broadcast from the hub
// binary. Then the hub is restarted on the same address (SIGTERM, a new
// process): its history is in memory, so the new process has never heard
// of the client's last event. The client must reconnect by itself sending
// that ID as Last-Event-ID, be told of the gap with an ssekit.gap event
// naming it (reason "unknown"), as the hub documents, and go on receiving
// new events: every event once, in order, nothing but the gap between.
func TestBrowser(t *testing.T) {
	exe := exampletest.Chromium(t)
	addr := freeAddr(t)
	hub := startHub(t, addr)
	site := newFront(t, hub.base)
	user, other := uuid.NewString(), uuid.NewString()
	page := site.URL + "/?" + url.Values{"url": {streamURL(site.URL, user)}, "timeout": {appTimeout}}.Encode()

	ctx := exampletest.NewBrowser(t, exe)
	c, cancel := context.WithTimeout(ctx, startGuard)
	err := chromedp.Do(c, chromedp.Navigate(page))
	cancel()
	require.NoError(t, err, "opening %s", page)
	reports := func() []report { return pageReports(t, ctx) }
	waitFor(t, "the stream to open", startGuard, reports, isOpen)
	hub.waitOnline(user)

	// 1. Live events, and two the page is not entitled to.
	want := []event{
		{hub.publish(`{"user":"` + user + `","event":"notification","data":"your order shipped\nit arrives tomorrow ✓"}`), "notification", "your order shipped\nit arrives tomorrow ✓"},
		{hub.publish(`{"topic":"news","event":"headline","data":{"title":"hello"}}`), "headline", `{"title":"hello"}`},
	}
	hub.publish(`{"user":"` + other + `","event":"notification","data":"not for this page"}`)
	hub.publish(`{"topic":"sports","event":"headline","data":"not subscribed"}`)
	want = append(want, event{hub.publish(`{"broadcast":true,"event":"alert","data":"restarting soon"}`), "alert", "restarting soon"})
	waitFor(t, "the live events", stepGuard, reports, func(rs []report) bool { return len(events(rs)) >= len(want) })
	got := events(reports())
	require.True(t, slices.Equal(got, want), "live events in the browser:\n got %q\nwant %q", got, want)
	lastBefore := want[len(want)-1].ID

	// 2. Restart the hub on the same address, as a deploy does.
	hub.stop()
	hub = startHub(t, addr)
	waitFor(t, "the gap event after the restart", stepGuard, reports, func(rs []report) bool {
		return slices.ContainsFunc(events(rs), func(e event) bool { return e.Type == "ssekit.gap" })
	})
	hub.waitOnline(user)
	var gap event
	for _, e := range events(reports()) {
		if e.Type == "ssekit.gap" {
			gap = e
		}
	}
	var gapData struct {
		LastEventID string `json:"lastEventId"`
		Reason      string `json:"reason"`
	}
	require.NoError(t, json.Unmarshal([]byte(gap.Data), &gapData), "gap event data %q", gap.Data)
	assert.Equal(t, lastBefore, gapData.LastEventID, "gap event data %q: lastEventId", gap.Data)
	assert.Equal(t, "unknown", gapData.Reason, "gap event data %q: reason (the new process never issued the ID)", gap.Data)
	want = append(want, gap)

	// 3. Events from the new process reach the page; the stop event ends
	// the app.
	want = append(want,
		event{hub.publish(`{"user":"` + user + `","event":"notification","data":"back after the restart"}`), "notification", "back after the restart"},
		event{hub.publish(`{"topic":"news","event":"headline","data":"still subscribed"}`), "headline", "still subscribed"},
		event{hub.publish(`{"user":"` + user + `","event":"` + stopType + `"}`), stopType, ""},
	)
	waitFor(t, "the app to end on the stop event", stepGuard, reports, isDone)
	rs := reports()
	got = events(rs)
	require.True(t, slices.Equal(got, want), "events in the browser (want each once, in order, the gap between the two hubs):\n got %q\nwant %q\nreports:\n%s", got, want, dump(rs))
	last := rs[len(rs)-1]
	assert.Equal(t, "done", last.Kind, "last report %+v", last)
	assert.Empty(t, last.Error, "last report %+v", last)

	// The client reconnected by itself, sending the last ID it had: the
	// first request had none, every later one (refused while the hub was
	// down, then the one the new hub took) the last event's.
	ids, sent := site.lastEventIDs()
	require.GreaterOrEqual(t, len(ids), 2, "stream requests' Last-Event-ID %q (sent %v): want a first request without one, then reconnections", ids, sent)
	require.False(t, sent[0], "stream requests' Last-Event-ID %q (sent %v): want a first request without one, then reconnections", ids, sent)
	for i, id := range ids[1:] {
		assert.True(t, sent[i+1], "reconnection %d sent no Last-Event-ID", i+1)
		assert.Equal(t, lastBefore, id, "reconnection %d: Last-Event-ID", i+1)
	}
	var stats struct {
		Gaps     uint64 `json:"gaps"`
		Replayed uint64 `json:"replayed"`
	}
	hub.get("/stats", &stats)
	assert.Equal(t, uint64(1), stats.Gaps, "new hub's stats: gaps")
	assert.Zero(t, stats.Replayed, "new hub's stats: replayed")

	var retries []string
	for _, r := range rs {
		if r.Kind == "retry" {
			retries = append(retries, r.Error)
		}
	}
	t.Logf("the browser's client received %d events and the gap, reconnecting %d times across the restart: %q", len(want)-1, len(ids)-1, retries)
}

// pageReports reads the app's reports out of the page. Before the app has
// started, there are none.
func pageReports(t *testing.T, ctx context.Context) []report {
	t.Helper()
	lines := exampletest.Eval[[]string](t, ctx, `globalThis.ssekitWasm ?? (globalThis.ssekitWasmError ? ["{\"kind\":\"done\",\"error\":" + JSON.stringify("loading the wasm: " + globalThis.ssekitWasmError) + "}"] : [])`)
	rs := make([]report, 0, len(lines))
	for _, l := range lines {
		var r report
		err := json.Unmarshal([]byte(l), &r)
		require.NoError(t, err, "the page reported %q", l)
		rs = append(rs, r)
	}
	return rs
}
