// Package traptest holds the tests of the fasthttp traps that the Fiber v3
// and Fiber v2 adapters share, beyond the conformance suite
// (adaptertest.RunServer): a client that vanishes from an idle stream, the
// request view outliving the recycled context, compression, write and read
// timeouts, token expiry and the app's shutdown.
package traptest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

// DisconnectBound is the longest a vanished idle client may stay
// registered. The measured delay is far shorter (the README has it); the
// bound leaves room for a slow, shared test machine.
const DisconnectBound = time.Second

// Server is one app under test.
type Server struct {
	// URL is the base URL; streams are at URL+"/events".
	URL string
	// Shutdown is the adapter's Shutdown(ctx, app, broker).
	Shutdown func(ctx context.Context) error
	// ShutdownApp is app.ShutdownWithContext alone.
	ShutdownApp func(ctx context.Context) error
}

// Options say how to build the app.
type Options struct {
	// Compress puts the framework's compress middleware in front of every
	// route, excluding "/events" with its Next function as the README
	// shows, and mounts GET "/big", a compressible 8 KiB text.
	Compress bool
	// CORS, when set, is passed to the adapter's WithCORS.
	CORS *nethttp.CORS
	// ErrorLog, when set, is passed to the adapter's WithErrorLog.
	ErrorLog func(error)
}

// Start starts an app serving b's streams at "/events" with the adapter's
// Handler, its WriteTimeout and ReadTimeout set to
// adaptertest.ServerWriteTimeout, and shuts it down in t.Cleanup.
type Start func(t *testing.T, b *core.Broker, o Options) Server

// App is a Fiber app as Serve runs it.
type App struct {
	// Listen serves the app on ln until it is shut down: app.Listener.
	Listen func(ln net.Listener) error
	// Shutdown is app.ShutdownWithContext.
	Shutdown func(ctx context.Context) error
	// ShutdownWithBroker is the adapter's Shutdown(ctx, app, broker).
	ShutdownWithBroker func(ctx context.Context) error
}

// Serve serves app on a new loopback listener and returns it as a Server
// whose Shutdown and ShutdownApp shut it down at most once between them.
// At the end of t it shuts the app down, if that has not been done, and
// fails t if that fails or if Listen returned an error.
func Serve(t *testing.T, app App) Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Listen(ln) }()
	var once sync.Once
	shutdownApp := func(ctx context.Context) (err error) {
		once.Do(func() { err = app.Shutdown(ctx) })
		return err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
		defer cancel()
		if err := shutdownApp(ctx); err != nil {
			t.Errorf("app shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Listener: %v", err)
		}
	})
	return Server{
		URL:         "http://" + ln.Addr().String(),
		ShutdownApp: shutdownApp,
		Shutdown: func(ctx context.Context) (err error) {
			once.Do(func() { err = app.ShutdownWithBroker(ctx) })
			return err
		},
	}
}

// BigBody is what "/big" answers.
var BigBody = strings.Repeat("compress me ", 700)

// Run runs the conformance suite and every trap test against start.
func Run(t *testing.T, start Start) {
	t.Run("Conformance", func(t *testing.T) {
		t.Parallel()
		adaptertest.RunServer(t, func(t *testing.T, b *core.Broker) string { return start(t, b, Options{}).URL })
	})
	for _, tc := range []struct {
		name string
		run  func(*testing.T, Start)
	}{
		{"IdleClientCloses", func(t *testing.T, s Start) { idleDisconnect(t, s, false) }},
		{"IdleClientResets", func(t *testing.T, s Start) { idleDisconnect(t, s, true) }},
		{"RequestOutlivesContext", requestOutlivesContext},
		{"CompressExcluded", compressExcluded},
		{"TokenExpiry", tokenExpiry},
		{"Shutdown", shutdown},
		{"AppShutdownAlone", appShutdownAlone},
		{"ErrorLog", errorLog},
		{"CORS", corsAnswers},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, start)
		})
	}
}

// client returns an http.Client whose connections are closed at the end of t.
func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// idleDisconnect: a client leaves an idle stream (nothing published, no
// heartbeat due), by closing its connection (FIN) or resetting it (RST).
// The broker must unregister it within DisconnectBound.
func idleDisconnect(t *testing.T, start Start, reset bool) {
	gone := make(chan core.CloseReason, 1)
	b := adaptertest.NewBroker(t, core.Config{Observer: &core.Observer{
		Disconnect: func(_ context.Context, _ *core.Subscription, r core.CloseReason) { gone <- r },
	}})
	srv := start(t, b, Options{})
	addr := strings.TrimPrefix(srv.URL, "http://")
	var delays []time.Duration
	for range 5 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /events HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", addr)
		// Read up to the opening comment: the stream is registered.
		_ = conn.SetReadDeadline(time.Now().Add(adaptertest.WaitTimeout))
		br := bufio.NewReader(conn)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the stream's opening: %v", err)
			}
			if strings.HasSuffix(line, ": ok\n") {
				break
			}
		}
		time.Sleep(50 * time.Millisecond) // idle
		if reset {
			_ = conn.(*net.TCPConn).SetLinger(0)
		}
		closed := time.Now()
		_ = conn.Close()
		for b.Stats().Connections != 0 {
			if time.Since(closed) > adaptertest.WaitTimeout {
				t.Fatalf("the vanished client is still registered after %v", adaptertest.WaitTimeout)
			}
			time.Sleep(100 * time.Microsecond)
		}
		delays = append(delays, time.Since(closed))
		if r := <-gone; r != core.ReasonClientGone {
			t.Errorf("close reason %q, want %q", r, core.ReasonClientGone)
		}
	}
	slices.Sort(delays)
	t.Logf("disconnect detected after (sorted) %v", delays)
	if worst := delays[len(delays)-1]; worst > DisconnectBound {
		t.Errorf("a vanished idle client was unregistered after %v, want within %v", worst, DisconnectBound)
	}
}

// requestOutlivesContext: an Authenticator keeps the request view (here in
// Identity.Claims) and reads it long after the handler returned and Fiber
// reused its context for other requests. It must still see its own
// request, and the race detector nothing.
func requestOutlivesContext(t *testing.T, start Start) {
	type seen struct{ header, query, cookie, addr string }
	views := make(chan seen, 64)
	auth := core.AuthenticatorFunc(func(_ context.Context, r core.Request) (core.Identity, error) {
		if q := r.Query("token"); len(q) != 1 || q[0] != "good" {
			return core.Identity{}, core.ErrUnauthenticated
		}
		return core.Identity{Claims: r}, nil
	})
	b := adaptertest.NewBroker(t, core.Config{Authenticator: auth, Observer: &core.Observer{
		Flush: func(_ context.Context, s *core.Subscription, _ core.FlushInfo) {
			r := s.Identity().Claims.(core.Request)
			q := r.Query("client")
			views <- seen{r.Header("X-Client"), strings.Join(q, ","), r.Cookie("client"), r.RemoteAddr()}
		},
	}})
	srv := start(t, b, Options{})
	c := client(t)
	dial := func(id string) *adaptertest.Conn {
		h := http.Header{"X-Client": {id}, "Cookie": {"other=1; client=" + id}}
		return adaptertest.Dial(t, c, srv.URL+"/events?token=good&client="+id, h)
	}
	var conns []*adaptertest.Conn
	for i := range 4 {
		conn := dial(fmt.Sprint("stream", i))
		conn.Opened(t)
		conns = append(conns, conn)
	}
	// Refused requests recycle the contexts the streams were opened with.
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			id := fmt.Sprint("intruder", i)
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/events?token=bad&client="+id, nil)
			req.Header.Set("X-Client", id)
			req.Header.Set("Cookie", "client="+id)
			resp, err := c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("refused request: status %d, want 401", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	id, err := b.Publish(context.Background(), core.Message{Target: core.Target{Broadcast: true}, Event: core.Event{Type: "e", Data: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, conn := range conns {
		if ev := conn.Event(t); ev.ID != id {
			t.Errorf("got event %q, want %q", ev.ID, id)
		}
		v := <-views
		if !strings.HasPrefix(v.header, "stream") || v.query != v.header || v.cookie != v.header || v.addr == "" {
			t.Errorf("a kept request view reads %+v: want its own stream's header, query, cookie and address", v)
		}
		got[v.header] = true
	}
	if len(got) != len(conns) {
		t.Errorf("views of %d distinct streams, want %d", len(got), len(conns))
	}
}

// compressExcluded: behind the framework's compress middleware, excluded
// from "/events" as documented, a stream is not compressed and its events
// arrive while it streams; other routes are still compressed.
func compressExcluded(t *testing.T, start Start) {
	b := adaptertest.NewBroker(t, core.Config{})
	srv := start(t, b, Options{Compress: true})
	c := client(t)
	gz := http.Header{"Accept-Encoding": {"gzip"}}

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/big", nil)
	req.Header = gz.Clone()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if enc := resp.Header.Get("Content-Encoding"); enc != "gzip" {
		t.Fatalf("/big has Content-Encoding %q: the compress middleware is not in place", enc)
	}

	conn := adaptertest.Dial(t, c, srv.URL+"/events", gz)
	if enc := conn.Resp.Header.Get("Content-Encoding"); enc != "" {
		t.Errorf("stream has Content-Encoding %q, want none", enc)
	}
	conn.Opened(t)
	for i := range 3 {
		id, err := b.Publish(context.Background(), core.Message{Target: core.Target{Broadcast: true}, Event: core.Event{Type: "e", Data: fmt.Sprint(i)}})
		if err != nil {
			t.Fatal(err)
		}
		if ev := conn.Event(t); ev.ID != id {
			t.Errorf("got event %q, want %q", ev.ID, id)
		}
	}
}

// tokenExpiry: a stream whose credentials expire ends with its reconnect
// hint and a clean end, not cut.
func tokenExpiry(t *testing.T, start Start) {
	auth := core.AuthenticatorFunc(func(context.Context, core.Request) (core.Identity, error) {
		return core.Identity{ExpiresAt: time.Now().Add(time.Second)}, nil
	})
	b := adaptertest.NewBroker(t, core.Config{Authenticator: auth})
	srv := start(t, b, Options{})
	conn := adaptertest.Dial(t, client(t), srv.URL+"/events", nil)
	conn.Opened(t)
	conn.Comment(t, string(core.ReasonTokenExpired))
	if _, retry, err := conn.End(t); err != io.EOF || retry <= 0 {
		t.Errorf("stream ended with %v and retry %v, want io.EOF and the reconnect hint", err, retry)
	}
}

// shutdown: the adapter's Shutdown ends every stream with a reconnect hint
// and a clean end, closes the broker, and returns at once.
func shutdown(t *testing.T, start Start) {
	adaptertest.CheckShutdown(t, func(t *testing.T, b *core.Broker) (string, func(context.Context) error) {
		srv := start(t, b, Options{})
		return srv.URL, srv.Shutdown
	})
}

// appShutdownAlone: shutting the app down without closing the broker still
// ends the streams (cleanly, with the retry of their preamble) and
// unregisters them, so the app's shutdown does not hang.
func appShutdownAlone(t *testing.T, start Start) {
	b := adaptertest.NewBroker(t, core.Config{})
	srv := start(t, b, Options{})
	conn := adaptertest.Dial(t, client(t), srv.URL+"/events", nil)
	conn.Opened(t)
	ctx, cancel := context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
	defer cancel()
	if err := srv.ShutdownApp(ctx); err != nil {
		t.Fatalf("app shutdown: %v", err)
	}
	if _, retry, err := conn.End(t); err != io.EOF || retry <= 0 {
		t.Errorf("stream ended with %v and retry %v, want io.EOF after the preamble's retry", err, retry)
	}
	if n := b.Stats().Connections; n != 0 {
		t.Errorf("%d connections after the app shut down", n)
	}
}

// errorLog: why Serve ended a stream reaches the adapter's WithErrorLog
// (fasthttp runs the stream after the handler returned, where an error
// would otherwise be lost).
func errorLog(t *testing.T, start Start) {
	adaptertest.CheckErrorLog(t, func(t *testing.T, b *core.Broker, log func(error)) string {
		return start(t, b, Options{ErrorLog: log}).URL
	})
}

// corsAnswers: with WithCORS, a stream from the allowed origin opens with
// Access-Control-Allow-Origin and Vary: Origin, another origin gets 403
// without a stream, and a same-origin request (no Origin) streams without
// CORS headers.
func corsAnswers(t *testing.T, start Start) {
	const allowed = "https://app.example.com"
	b := adaptertest.NewBroker(t, core.Config{})
	srv := start(t, b, Options{CORS: &nethttp.CORS{AllowedOrigins: []string{allowed}}})
	c := client(t)
	conn := adaptertest.Dial(t, c, srv.URL+"/events", http.Header{"Origin": {allowed}})
	if got := conn.Resp.Header.Get("Access-Control-Allow-Origin"); got != allowed {
		t.Errorf("allowed origin: Access-Control-Allow-Origin %q, want %q", got, allowed)
	}
	if vary := conn.Resp.Header.Values("Vary"); !slices.Contains(vary, "Origin") {
		t.Errorf("allowed origin: Vary %q, want Origin", vary)
	}
	conn.Opened(t)

	req, err := http.NewRequest(http.MethodGet, srv.URL+"/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "https://evil.example.com")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("unknown origin: %d with Access-Control-Allow-Origin %q, want 403 without it",
			resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	if n := b.Stats().Connections; n != 1 {
		t.Errorf("%d connections after the refusal, want the 1 allowed stream", n)
	}

	same := adaptertest.Dial(t, c, srv.URL+"/events", nil)
	if got := same.Resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("no Origin: Access-Control-Allow-Origin %q, want none", got)
	}
	same.Opened(t)
}
