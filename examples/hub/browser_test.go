package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/examples/internal/exampletest"
)

// screenshotEnv=1 makes the browser test write docs/hub.png, the README's
// picture of the demo page. Off by default so that test runs leave the tree
// alone. (exampletest.ChromiumEnv chooses the browser.)
const screenshotEnv = "SSEKIT_UPDATE_SCREENSHOT"

// logEntry is one received event as the page shows it.
type logEntry struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Dup  bool   `json:"dup"`
}

// TestBrowserEndToEnd drives the demo page in headless Chromium against a
// hub served in-process. The page's EventSource receives a user push, a
// topic push and a broadcast published through POST /publish. Then the
// HTTP server is stopped (cutting the stream) while the broker and its
// history are kept, more events are published into the broker, and a new
// server is started on the same address: the browser reconnects by itself
// with Last-Event-ID and the page must show every event published
// meanwhile, once, in order, and none it is not entitled to.
func TestBrowserEndToEnd(t *testing.T) {
	exe := exampletest.Chromium(t)

	// A short retry hint makes the browser come back within a second.
	broker, err := core.New(core.Config{RetryHint: 200 * time.Millisecond, Authenticator: core.InsecureQueryAuthenticator()})
	require.NoError(t, err)
	h, err := newHub(broker, hubConfig{takeover: true})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	base := "http://" + addr
	srv := serve(h, ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = nethttp.Shutdown(ctx, srv.Server, broker)
	}()

	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	p := openBrowser(t, exe)
	publish := func(body string) string {
		t.Helper()
		status, resp := post(t, client, base, "", body)
		require.Equal(t, http.StatusOK, status, "publish %s: %d %s", body, status, resp)
		return decodeID(t, resp)
	}
	// While the server is down, publishing goes through the same handler
	// in-process, into the kept broker.
	publishDown := func(body string) string {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/publish", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code, "publish %s: %d %s", body, rec.Code, rec.Body)
		return decodeID(t, rec.Body.String())
	}

	// 1. Open the page and connect as a user subscribed to "news".
	user := uuid.NewString()
	other := uuid.NewString()
	p.connect(base, user, "news", "notification, news, alert")
	p.waitFor("the stream to open", 10*time.Second, func() bool { return p.state() == "open" })
	require.True(t, broker.IsUserOnline(uuid.MustParse(user)), "the page is open but the broker does not see the user online")

	// 2. A user push, a topic push and a broadcast through POST /publish.
	want := []logEntry{
		{ID: publish(`{"user":"` + user + `","event":"notification","data":{"text":"Your order #1042 has shipped"}}`), Type: "notification"},
		{ID: publish(`{"topic":"news","event":"news","data":{"headline":"ssekit hub is live"}}`), Type: "news"},
		{ID: publish(`{"broadcast":true,"event":"alert","data":"Maintenance tonight at 22:00 UTC"}`), Type: "alert"},
	}
	p.waitFor("the three live events", 10*time.Second, func() bool { return len(p.entries()) >= len(want) })
	require.Equal(t, want, p.entries(), "live events")

	// 3. Stop the HTTP server: every connection is cut, the broker and its
	// history stay.
	require.NoError(t, srv.cut())
	p.waitFor("the broker to see the stream gone", 10*time.Second, func() bool { return broker.Stats().Connections == 0 })
	p.waitFor("the page to show it reconnecting", 10*time.Second, func() bool { return p.state() == "reconnecting" })

	// 4. Publish while the hub is down: three events for the page, two it
	// is not entitled to (another user, a topic it did not subscribe to).
	want = append(want, logEntry{ID: publishDown(`{"user":"` + user + `","event":"notification","data":{"text":"Payment received"}}`), Type: "notification"})
	publishDown(`{"user":"` + other + `","event":"notification","data":"not for this page"}`)
	want = append(want, logEntry{ID: publishDown(`{"topic":"news","event":"news","data":{"headline":"Published while you were away"}}`), Type: "news"})
	publishDown(`{"topic":"sports","event":"news","data":"not subscribed"}`)
	want = append(want, logEntry{ID: publishDown(`{"broadcast":true,"event":"alert","data":"Back online"}`), Type: "alert"})

	// 5. Start the hub again on the same address; the browser reconnects by
	// itself, with Last-Event-ID, and is replayed what it missed.
	ln2 := relisten(t, addr)
	srv = serve(h, ln2)
	p.waitFor("the replayed events", 15*time.Second, func() bool { return len(p.entries()) >= len(want) })
	p.waitFor("the stream to be open again", 10*time.Second, func() bool { return p.state() == "open" })

	// 6. A last event sent from the page's own form, live after the replay:
	// nothing may sit between the replay and it.
	p.do("send from the form", 10*time.Second,
		chromedp.Click(chromedp.CSS(`input[name="target"][value="broadcast"]`)),
		chromedp.SetValue(chromedp.ID("pub-event"), "chat"),
		chromedp.SetValue(chromedp.ID("pub-data"), `{"from":"demo page","text":"hello, everyone"}`),
		chromedp.Click(chromedp.ID("send")),
		chromedp.WaitVisible(chromedp.CSS(`#pub-result[data-id]`)),
	)
	formID := exampletest.Eval[string](t, p.ctx, `document.getElementById('pub-result').dataset.id`)
	want = append(want, logEntry{ID: formID, Type: "chat"})
	p.waitFor("the event sent from the form", 10*time.Second, func() bool { return len(p.entries()) >= len(want) })

	got := p.entries()
	require.True(t, slices.Equal(got, want), "events after the restart (want every one once, in order):\n got %+v\nwant %+v", got, want)
	gaps := exampletest.Eval[int](t, p.ctx, `document.querySelectorAll('#log li[data-type="ssekit.gap"]').length`)
	assert.Equal(t, 0, gaps, "the page got %d gap events; the history covered the outage", gaps)
	lastID := exampletest.Eval[string](t, p.ctx, `document.getElementById('last-id').textContent`)
	assert.Equal(t, formID, lastID, "Last-Event-ID shown %q, want %q", lastID, formID)
	st := broker.Stats()
	assert.Equal(t, uint64(3), st.Replayed, "broker replayed %d events, want 3", st.Replayed)

	if os.Getenv(screenshotEnv) == "1" {
		screenshot(t, p.ctx, broker)
	}
}

// page is the demo page open in a headless browser tab.
type page struct {
	t   *testing.T
	ctx context.Context
}

// openBrowser starts headless Chromium with a fresh profile, in a window
// the size of the README's screenshot; the browser is stopped when the test
// ends.
func openBrowser(t *testing.T, exe string) page {
	return page{t: t, ctx: exampletest.NewBrowser(t, exe,
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 900),
	)}
}

// do runs browser steps, failing the test on error.
func (p page) do(what string, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	c, cancel := context.WithTimeout(p.ctx, timeout)
	defer cancel()
	err := chromedp.Do(c, steps...)
	require.NoError(p.t, err, "%s", what)
}

// connect opens the page at base and connects as user to topics,
// listening for types.
func (p page) connect(base, user, topics, types string) {
	p.t.Helper()
	p.do("open the page", 20*time.Second,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("connect")),
	)
	p.setValues(map[string]string{"user": user, "topics": topics, "types": types})
	p.do("connect", 5*time.Second, chromedp.Click(chromedp.ID("connect")))
}

// setValues fills form fields by id. (chromedp.SetValue cannot set an
// empty value: it checks the result, and "" comes back as undefined.)
func (p page) setValues(fields map[string]string) {
	p.t.Helper()
	js, err := json.Marshal(fields)
	require.NoError(p.t, err)
	exampletest.Eval[chromedp.Void](p.t, p.ctx, `for (const [id, v] of Object.entries(`+string(js)+`)) document.getElementById(id).value = v`)
}

// state is the connection state the page shows (#state[data-state]).
func (p page) state() string {
	return exampletest.Eval[string](p.t, p.ctx, `document.getElementById('state').dataset.state`)
}

// entries are the received events the page logs, oldest first.
func (p page) entries() []logEntry {
	return exampletest.Eval[[]logEntry](p.t, p.ctx, `Array.from(document.querySelectorAll('#log li[data-id]'), li => ({id: li.dataset.id, type: li.dataset.type, dup: !!li.dataset.dup}))`)
}

// waitFor polls cond until it holds, failing the test after timeout.
func (p page) waitFor(what string, timeout time.Duration, cond func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		require.False(p.t, time.Now().After(deadline), "timed out after %v waiting for %s; page state %q, log %+v", timeout, what, p.state(), p.entries())
		time.Sleep(50 * time.Millisecond)
	}
}

// screenshot writes docs/hub.png once the stats panel shows the broker's
// current figures.
func screenshot(t *testing.T, ctx context.Context, broker *core.Broker) {
	t.Helper()
	want := fmt.Sprint(broker.Stats().Published)
	deadline := time.Now().Add(5 * time.Second)
	for exampletest.Eval[string](t, ctx, `document.querySelector('#stats dd[data-stat="published"]').textContent`) != want && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	require.NoError(t, err, "screenshot")
	path := filepath.Join("..", "..", "docs", "hub.png")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, png, 0o644))
	t.Logf("wrote %s (%d bytes)", path, len(png))
}

// serve runs an http.Server for h on ln until it is closed.
// testServer is the hub's http.Server, able to die as a process does.
type testServer struct {
	*http.Server
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func serve(h http.Handler, ln net.Listener) *testServer {
	s := &testServer{Server: newServer(h), conns: map[net.Conn]struct{}{}}
	s.ConnState = func(c net.Conn, state http.ConnState) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch state {
		case http.StateNew:
			s.conns[c] = struct{}{}
		case http.StateClosed:
			delete(s.conns, c)
		}
	}
	go func() { _ = s.Serve(ln) }()
	return s
}

// cut stops the server and closes every connection it accepted, the
// streams taken over from net/http (which http.Server.Close leaves alone)
// included: what the clients see when the hub's process dies.
func (s *testServer) cut() error {
	err := s.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
	return err
}

// relisten binds addr again, retrying briefly in case the old socket is
// still being released.
func relisten(t *testing.T, addr string) net.Listener {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln
		}
		require.False(t, time.Now().After(deadline), "listening again on %s: %v", addr, err)
		time.Sleep(50 * time.Millisecond)
	}
}

func decodeID(t *testing.T, body string) string {
	t.Helper()
	var out struct {
		ID string `json:"id"`
	}
	err := json.Unmarshal([]byte(body), &out)
	require.NoError(t, err, "publish response %q: %v", body, errors.Join(err, errors.New("no id")))
	require.NotEqual(t, "", out.ID, "publish response %q: %v", body, errors.Join(err, errors.New("no id")))
	return out.ID
}

// TestBrowserGapAndRejected checks the page's handling of the hub's two
// control events in a real browser: ssekit.rejected when the hub is at its
// connection limit (the browser backs off and gets in once a slot frees),
// and ssekit.gap when the hub restarts without its history (the page asks
// the user to refetch, and goes on receiving new events).
func TestBrowserGapAndRejected(t *testing.T) {
	exe := exampletest.Chromium(t)
	newBroker := func() (*core.Broker, http.Handler) {
		b, err := core.New(core.Config{
			RetryHint:      100 * time.Millisecond,
			MaxConnections: 1,
			Authenticator:  core.InsecureQueryAuthenticator(),
		})
		require.NoError(t, err)
		h, err := newHub(b, hubConfig{takeover: true})
		require.NoError(t, err)
		return b, h
	}
	broker, h := newBroker()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	base := "http://" + addr
	srv := serve(h, ln)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = nethttp.Shutdown(ctx, srv.Server, broker)
	}()
	client := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()

	// Someone else holds the only connection slot.
	_, stopOther := openStream(t, &http.Client{Transport: &http.Transport{}}, base+"/events")
	user := uuid.NewString()
	p := openBrowser(t, exe)
	p.connect(base, user, "", "note")
	p.waitFor("ssekit.rejected", 10*time.Second, func() bool {
		return exampletest.Eval[int](t, p.ctx, `document.querySelectorAll('#log li[data-type="ssekit.rejected"]').length`) > 0
	})
	stopOther()
	p.waitFor("a slot to free and the page to get in", 15*time.Second, func() bool {
		return p.state() == "open" && broker.IsUserOnline(uuid.MustParse(user))
	})
	status, body := post(t, client, base, "", `{"user":"`+user+`","event":"note","data":"before the restart"}`)
	require.Equal(t, http.StatusOK, status, "publish: %d %s", status, body)
	first := decodeID(t, body)
	p.waitFor("the first event", 10*time.Second, func() bool { return slices.ContainsFunc(p.entries(), func(e logEntry) bool { return e.ID == first }) })

	// Restart as a new process would: a new broker, whose history has never
	// heard of the page's Last-Event-ID.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, nethttp.Shutdown(ctx, srv.Server, broker))
	broker, h = newBroker()
	srv = serve(h, relisten(t, addr))
	p.waitFor("the gap event", 15*time.Second, func() bool {
		return exampletest.Eval[bool](t, p.ctx, `!document.getElementById('gap-banner').hidden`)
	})
	p.waitFor("the stream to open", 10*time.Second, func() bool { return p.state() == "open" })
	status, body = post(t, client, base, "", `{"user":"`+user+`","event":"note","data":"after the restart"}`)
	require.Equal(t, http.StatusOK, status, "publish: %d %s", status, body)
	after := decodeID(t, body)
	p.waitFor("the event after the gap", 10*time.Second, func() bool { return slices.ContainsFunc(p.entries(), func(e logEntry) bool { return e.ID == after }) })

	// The page may have been refused more than once before the slot freed.
	got := p.entries()
	var types []string
	for _, e := range got {
		if e.Type != "ssekit.rejected" || len(types) == 0 || types[len(types)-1] != e.Type {
			types = append(types, e.Type)
		}
	}
	want := []string{"ssekit.rejected", "note", "ssekit.gap", "note"}
	require.True(t, slices.Equal(types, want), "event types %v, want %v (log %+v)", types, want, got)
	last := got[len(got)-1]
	assert.Equal(t, after, last.ID, "last event ID %q, want %q", last.ID, after)
}
