package adaptertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

// This file holds what an adapter's own tests (the framework's traps,
// beyond the suite) share: a broker and a server set up the way the suite
// sets up its own, a check that a stream streams, and the checks that need
// more from the adapter than a Factory gives: CORS and a server's
// shutdown.

// ForEachProto runs f in a parallel subtest for each protocol Run covers:
// "HTTP1" with proto 1 and "HTTP2" with proto 2, as Serve takes them.
func ForEachProto(t *testing.T, f func(t *testing.T, proto int)) {
	t.Helper()
	for _, proto := range []int{1, 2} {
		name := "HTTP1"
		if proto == 2 {
			name = "HTTP2"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, proto)
		})
	}
}

// NewBroker returns a broker with cfg, closed (within WaitTimeout) at the
// end of t; t fails if Close does. As in the suite, a zero
// cfg.HeartbeatInterval means no heartbeat (an hour) rather than the
// default: a heartbeat's write would notice a client gone that the adapter
// failed to notice, and hide the bug.
//
// Register the broker before the server: cleanups run in reverse, so the
// broker ends the streams before the server waits for them.
func NewBroker(t testing.TB, cfg core.Config) *core.Broker {
	t.Helper()
	b := newBroker(t, cfg)
	t.Cleanup(func() { closeBroker(t, b, "") })
	return b
}

// newBroker is core.New(cfg) without a heartbeat unless cfg asks for one.
func newBroker(t testing.TB, cfg core.Config) *core.Broker {
	t.Helper()
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = time.Hour
	}
	b, err := core.New(cfg)
	if err != nil {
		t.Fatalf("core.New: %v", err)
	}
	return b
}

// closeBroker closes b within WaitTimeout, failing t if it does not.
func closeBroker(t testing.TB, b *core.Broker, why string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Errorf("broker.Close: %v%s", err, why)
	}
}

// Serve starts a test server for h with WriteTimeout ServerWriteTimeout,
// as Run does: over HTTP/1.1 for proto 1, over HTTP/2 with TLS for proto 2
// (its Client speaks it). The server is closed at the end of t.
func Serve(t testing.TB, h http.Handler, proto int) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.WriteTimeout = ServerWriteTimeout
	if proto == 2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

// CheckStreaming checks that c, a stream of b just dialled, streams: its
// preamble arrives before anything is published, an event b broadcasts
// reaches it at once, it stays open and quiet for longer than
// ServerWriteTimeout, and an event broadcast after that reaches it too.
// It is for a stream served behind the framework's middleware, which the
// suite does not put in front of the adapter.
func CheckStreaming(t testing.TB, b *core.Broker, c *Conn) {
	t.Helper()
	c.Opened(t)
	for i, data := range []string{"one", "two"} {
		if i > 0 {
			c.Quiet(t, ServerWriteTimeout+1500*time.Millisecond)
		}
		if err := b.Broadcast(context.Background(), "e", data); err != nil {
			t.Fatal(err)
		}
		if ev := c.Event(t); ev.Data != data {
			t.Fatalf("got %+v, want the event with data %q", ev, data)
		}
	}
}

// CORSFactory builds the adapter under test around b with CORS allowing
// the one origin allowedOrigin, without credentials, and returns an
// http.Handler that serves b's streams at "/events".
type CORSFactory func(t *testing.T, b *core.Broker, allowedOrigin string) http.Handler

// RunCORS checks the CORS option of an adapter (nethttp.WithCORS and the
// options that wrap it) over HTTP/1.1 and HTTP/2, as Run serves its
// checks: a stream requested from the allowed origin opens with
// Access-Control-Allow-Origin naming it and Vary: Origin; a request from
// another origin is refused with 403, without Access-Control-Allow-Origin
// and without a stream registered; a request without Origin (same-origin)
// streams without Access-Control-Allow-Origin.
func RunCORS(t *testing.T, f CORSFactory) {
	t.Helper()
	const allowed = "https://app.example.com"
	factory := func(t *testing.T, b *core.Broker) http.Handler { return f(t, b, allowed) }
	ForEachProto(t, func(t *testing.T, proto int) {
		s := &suite{proto: proto, startServer: handlerServer(factory, proto)}
		e := s.start(t, core.Config{}, startOptions{})

		c := e.dial(t, "", http.Header{"Origin": {allowed}})
		if got := c.Resp.Header.Get("Access-Control-Allow-Origin"); got != allowed {
			t.Errorf("allowed origin: Access-Control-Allow-Origin %q, want %q", got, allowed)
		}
		if vary := c.Resp.Header.Values("Vary"); !hasToken(vary, "Origin") {
			t.Errorf("allowed origin: Vary %q, want Origin: the answer depends on it", vary)
		}
		c.Opened(t)

		r := e.get(t, "", http.Header{"Origin": {"https://evil.example.com"}})
		if r.status != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("unknown origin: %d %q with Access-Control-Allow-Origin %q, want 403 without it",
				r.status, r.body, r.header.Get("Access-Control-Allow-Origin"))
		}
		if n := e.b.Stats().Connections; n != 1 {
			t.Errorf("%d connections after the refusal, want the 1 allowed stream", n)
		}

		same := e.dial(t, "", nil)
		if got := same.Resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("no Origin: Access-Control-Allow-Origin %q, want none", got)
		}
		same.Opened(t)
	})
}

// ShutdownStart starts the adapter under test around b on a server of its
// own, serving b's streams at "/events", the way the adapter documents for
// production. It returns the server's base URL ("http://127.0.0.1:port")
// and stop, which shuts the server down the documented way, closing b with
// it (as nethttp.Shutdown does), and returns once the server has stopped:
// nil, or an error from the shutdown or from the call that served.
type ShutdownStart func(t *testing.T, b *core.Broker) (baseURL string, stop func(ctx context.Context) error)

// HTTPServerStart is the ShutdownStart of an adapter that net/http
// serves: the handler f builds, on an http.Server with a WriteTimeout of
// one second (which streams must outlive), stopped with nethttp.Shutdown.
func HTTPServerStart(f Factory) ShutdownStart {
	return func(t *testing.T, b *core.Broker) (string, func(context.Context) error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: f(t, b), ReadHeaderTimeout: time.Minute, WriteTimeout: time.Second}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		return "http://" + ln.Addr().String(), func(ctx context.Context) error {
			if err := nethttp.Shutdown(ctx, srv, b); err != nil {
				return fmt.Errorf("nethttp.Shutdown: %w", err)
			}
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("Serve: %w", err)
			}
			return nil
		}
	}
}

// ShutdownBound is the longest CheckShutdown lets stop take with streams
// open: far more than a conforming adapter needs, far less than a server
// waiting for streams that never end.
const ShutdownBound = 5 * time.Second

// CheckShutdown checks that stopping the server start starts ends its
// streams at once and cleanly. It opens two streams, calls stop (with a
// context of WaitTimeout) and fails t if stop fails or takes longer than
// ShutdownBound; each stream must then get the shutdown comment
// (core.ReasonShutdown) and end cleanly (io.EOF) with a retry of the
// broker's RetryHint plus up to 50% jitter, and the broker must be
// closed. If t ends before, stop is called in t.Cleanup.
func CheckShutdown(t *testing.T, start ShutdownStart) {
	t.Helper()
	const hint = 2 * time.Second
	b := NewBroker(t, core.Config{RetryHint: hint})
	base, stop := start(t, b)
	var once sync.Once
	stopOnce := func(ctx context.Context) (err error) {
		err = errors.New("already stopped")
		once.Do(func() { err = stop(ctx) })
		return err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
		defer cancel()
		_ = stopOnce(ctx) // only if the check ended before it stopped the server
	})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	conns := []*Conn{Dial(t, client, base+"/events", nil), Dial(t, client, base+"/events", nil)}
	for _, c := range conns {
		c.Opened(t)
	}

	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	begin := time.Now()
	if err := stopOnce(ctx); err != nil {
		t.Fatalf("stopping the server: %v", err)
	}
	took := time.Since(begin)
	t.Logf("stopping the server with %d streams open took %v", len(conns), took)
	if took > ShutdownBound {
		t.Errorf("stopping the server took %v with streams open, want within %v", took, ShutdownBound)
	}
	for i, c := range conns {
		c.Comment(t, string(core.ReasonShutdown))
		_, retry, err := c.End(t)
		if !errors.Is(err, io.EOF) || retry < hint || retry > hint*3/2 {
			t.Errorf("stream %d ended with %v and retry %v, want EOF and %v plus up to 50%% jitter", i, err, retry, hint)
		}
	}
	if _, err := b.Publish(context.Background(), core.Message{Target: bcast, Event: core.Event{Type: "e", Data: "late"}}); !errors.Is(err, core.ErrClosed) {
		t.Errorf("Publish after the server stopped: %v, want core.ErrClosed (stop must close the broker)", err)
	}
	closeCtx, closeCancel := context.WithTimeout(context.Background(), time.Second)
	defer closeCancel()
	if err := b.Close(closeCtx); err != nil {
		t.Errorf("broker.Close after the server stopped: %v (streams left)", err)
	}
}
