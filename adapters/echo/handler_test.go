package sseecho_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	sseecho "github.com/ssekit/ssekit/adapters/echo"
	"github.com/ssekit/ssekit/core"
)

// newBroker returns a broker closed at the end of the test.
func newBroker(t *testing.T, cfg core.Config) *core.Broker {
	t.Helper()
	b, err := core.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("broker.Close: %v", err)
		}
	})
	return b
}

// serve starts a test server for h with the suite's short WriteTimeout,
// over HTTP/1.1 or HTTP/2. Register it after the broker: cleanups run in
// reverse, so the broker ends the streams before the server waits for them.
func serve(t *testing.T, h http.Handler, proto int) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.WriteTimeout = adaptertest.ServerWriteTimeout
	if proto == 2 {
		srv.EnableHTTP2 = true
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

// streams checks that events reach c while the handler runs, and that the
// stream outlives the server's WriteTimeout.
func streams(t *testing.T, b *core.Broker, c *adaptertest.Conn) {
	t.Helper()
	c.Opened(t) // the preamble arrives before anything is published
	if err := b.Broadcast(context.Background(), "e", "one"); err != nil {
		t.Fatal(err)
	}
	if ev := c.Event(t); ev.Data != "one" {
		t.Fatalf("got %+v", ev)
	}
	c.Quiet(t, adaptertest.ServerWriteTimeout+1500*time.Millisecond)
	if err := b.Broadcast(context.Background(), "e", "two"); err != nil {
		t.Fatal(err)
	}
	if ev := c.Event(t); ev.Data != "two" {
		t.Fatalf("got %+v", ev)
	}
}

// TestRouteMiddlewareWriters puts Gzip and BodyDump in front of the
// stream. Both replace c.Response() with a writer of their own; the stream
// is written beneath them, to echo's Response: it is not compressed (the
// client asks for gzip), events arrive at once, it outlives the server's
// WriteTimeout, and BodyDump does not collect it. Other routes are still
// compressed.
func TestRouteMiddlewareWriters(t *testing.T) {
	for _, proto := range []int{1, 2} {
		t.Run("HTTP"+string(rune('0'+proto)), func(t *testing.T) {
			t.Parallel()
			b := newBroker(t, core.Config{HeartbeatInterval: time.Hour})
			dumped := make(chan string, 4)
			e := echo.New()
			e.Use(middleware.Gzip())
			e.Use(middleware.BodyDump(func(c *echo.Context, _, res []byte, _ error) {
				if c.Path() == "/events" {
					dumped <- string(res)
				}
			}))
			e.GET("/events", sseecho.Handler(b))
			e.GET("/page", func(c *echo.Context) error { return c.String(http.StatusOK, strings.Repeat("page ", 100)) })
			srv := serve(t, e, proto)

			// The client's transport asks for gzip and would inflate.
			c := adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil)
			if c.Resp.Uncompressed || c.Resp.Header.Get("Content-Encoding") != "" {
				t.Errorf("stream compressed (Content-Encoding %q)", c.Resp.Header.Get("Content-Encoding"))
			}
			streams(t, b, c)
			c.Close()

			resp, err := srv.Client().Get(srv.URL + "/page")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if !resp.Uncompressed {
				t.Error("other routes are no longer compressed: the test proves nothing")
			}
			select {
			case res := <-dumped:
				if res != "" {
					t.Errorf("BodyDump collected the stream: %.80q", res)
				}
			case <-time.After(adaptertest.WaitTimeout):
				t.Fatal("BodyDump never saw the stream request end")
			}
		})
	}
}

// plainWriter is a ResponseWriter that cannot flush, as an outer net/http
// middleware without Unwrap would hand to echo.
type plainWriter struct{ http.ResponseWriter }

// TestWriterThatCannotFlush: echo's Response.Flush panics when the writer
// beneath it cannot flush; the handler answers 500 and logs instead.
func TestWriterThatCannotFlush(t *testing.T) {
	b := newBroker(t, core.Config{})
	var logged []error
	e := echo.New()
	e.GET("/events", sseecho.Handler(b, sseecho.WithErrorLog(func(err error) { logged = append(logged, err) })))
	e.GET("/flush", func(c *echo.Context) error {
		http.NewResponseController(c.Response()).Flush()
		return nil
	})

	// The trap: flushing echo's Response panics.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("echo.Response.Flush did not panic on a writer that cannot flush: the trap is gone, update the docs")
			}
		}()
		e.ServeHTTP(plainWriter{httptest.NewRecorder()}, httptest.NewRequest(http.MethodGet, "/flush", nil))
	}()

	rec := httptest.NewRecorder()
	e.ServeHTTP(plainWriter{rec}, httptest.NewRequest(http.MethodGet, "/events", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", rec.Code)
	}
	if len(logged) != 1 || !errors.Is(logged[0], core.ErrFlushUnsupported) {
		t.Errorf("logged %v, want ErrFlushUnsupported", logged)
	}
	if n := b.Stats().Connections; n != 0 {
		t.Errorf("%d connections registered", n)
	}
}

// panickyWriter is a middleware's writer whose Flush assumes too much.
type panickyWriter struct{ http.ResponseWriter }

func (w panickyWriter) Flush()                      { panic("middleware Flush called") }
func (w panickyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestMiddlewareFlushNotCalled: a middleware writer in front of echo's
// Response is bypassed, so its Flush cannot break the stream.
func TestMiddlewareFlushNotCalled(t *testing.T) {
	b := newBroker(t, core.Config{HeartbeatInterval: time.Hour})
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			c.SetResponse(panickyWriter{c.Response()})
			return next(c)
		}
	})
	e.GET("/events", sseecho.Handler(b))
	srv := serve(t, e, 1)
	streams(t, b, adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil))
}

// TestAutoHandleHEAD: with the router answering HEAD from GET routes, a
// HEAD request is refused at once instead of streaming into a writer that
// never flushes.
func TestAutoHandleHEAD(t *testing.T) {
	b := newBroker(t, core.Config{})
	e := echo.NewWithConfig(echo.Config{Router: echo.NewRouter(echo.RouterConfig{AutoHandleHEAD: true})})
	e.GET("/events", sseecho.Handler(b))
	srv := serve(t, e, 1)
	ctx, cancel := context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, srv.URL+"/events", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, OPTIONS" {
		t.Errorf("HEAD: %d Allow %q, want 405 with Allow: GET, OPTIONS", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestShutdown starts echo the v5 way, with StartConfig and a context,
// and CloseOnShutdown: cancelling the context ends the stream with a
// reconnect hint, and Start returns well within GracefulTimeout.
func TestShutdown(t *testing.T) {
	hint := 2 * time.Second
	b, err := core.New(core.Config{RetryHint: hint})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.GET("/events", sseecho.Handler(b))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sc := echo.StartConfig{
		Listener: ln, HideBanner: true, HidePort: true,
		GracefulTimeout: adaptertest.WaitTimeout,
		OnShutdownError: func(err error) { t.Errorf("graceful shutdown: %v", err) },
		BeforeServeFunc: func(s *http.Server) error {
			s.WriteTimeout = time.Second
			return sseecho.CloseOnShutdown(b, 10*time.Second)(s)
		},
	}
	started := make(chan error, 1)
	go func() { started <- sc.Start(ctx, e) }()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := adaptertest.Dial(t, &http.Client{Transport: tr}, "http://"+ln.Addr().String()+"/events", nil)
	c.Opened(t)

	start := time.Now()
	cancel()
	c.Comment(t, string(core.ReasonShutdown))
	_, retry, err := c.End(t)
	if !errors.Is(err, io.EOF) || retry < hint || retry > hint*3/2 {
		t.Errorf("stream ended with %v and retry %v, want EOF and %v plus jitter", err, retry, hint)
	}
	if err := <-started; err != nil {
		t.Errorf("Start: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("shutdown took %v with a stream open", took)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Errorf("broker not closed: %v", err)
	}
}

func TestOptions(t *testing.T) {
	const app = "https://app.example.com"
	b := newBroker(t, core.Config{})
	e := echo.New()
	e.GET("/events", sseecho.Handler(b, sseecho.WithCORS(sseecho.CORS{AllowedOrigins: []string{app}})))
	srv := serve(t, e, 1)

	c := adaptertest.Dial(t, srv.Client(), srv.URL+"/events", http.Header{"Origin": {app}})
	if got := c.Resp.Header.Get("Access-Control-Allow-Origin"); got != app {
		t.Errorf("ACAO %q, want %q", got, app)
	}
	c.Opened(t)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/events", nil)
	req.Header.Set("Origin", "https://evil.example.com")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("unknown origin: %d, want 403", resp.StatusCode)
	}

	bad := sseecho.CORS{AllowedOrigins: []string{"*"}, AllowCredentials: true}
	if _, err := sseecho.New(b, sseecho.WithCORS(bad)); err == nil {
		t.Error("New accepted \"*\" with credentials")
	}
	defer func() {
		if recover() == nil {
			t.Error("Handler did not panic on an invalid option")
		}
	}()
	sseecho.Handler(b, sseecho.WithCORS(bad))
}
