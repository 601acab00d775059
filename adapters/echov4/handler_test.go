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

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	sseecho "github.com/ssekit/ssekit/adapters/echov4"
	"github.com/ssekit/ssekit/adapters/nethttp"
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

// TestGzip puts middleware.Gzip in front of the stream. In v4 it wraps
// the writer beneath echo's Response, so it compresses the stream; it
// flushes the compressor at every batch, so events still arrive at once,
// and the handler lifts the server's WriteTimeout through its Unwrap.
// With a Skipper for the route, the stream is served uncompressed.
func TestGzip(t *testing.T) {
	for _, proto := range []int{1, 2} {
		t.Run("HTTP"+string(rune('0'+proto)), func(t *testing.T) {
			t.Parallel()
			t.Run("Compressed", func(t *testing.T) {
				t.Parallel()
				b := newBroker(t, core.Config{HeartbeatInterval: time.Hour})
				e := echo.New()
				e.Use(middleware.Gzip())
				e.GET("/events", sseecho.Handler(b))
				srv := serve(t, e, proto)
				// The client's transport asks for gzip and inflates.
				c := adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil)
				if !c.Resp.Uncompressed {
					t.Fatal("the stream was not compressed: the test proves nothing")
				}
				streams(t, b, c)
			})
			t.Run("Skipped", func(t *testing.T) {
				t.Parallel()
				b := newBroker(t, core.Config{HeartbeatInterval: time.Hour})
				e := echo.New()
				e.Use(middleware.GzipWithConfig(middleware.GzipConfig{
					Skipper: func(c echo.Context) bool { return c.Path() == "/events" },
				}))
				e.GET("/events", sseecho.Handler(b))
				e.GET("/page", func(c echo.Context) error { return c.String(http.StatusOK, strings.Repeat("page ", 100)) })
				srv := serve(t, e, proto)
				c := adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil)
				if c.Resp.Uncompressed || c.Resp.Header.Get("Content-Encoding") != "" {
					t.Errorf("stream compressed (Content-Encoding %q) on a skipped route", c.Resp.Header.Get("Content-Encoding"))
				}
				streams(t, b, c)
				resp, err := srv.Client().Get(srv.URL + "/page")
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if !resp.Uncompressed {
					t.Error("other routes are no longer compressed")
				}
			})
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
	e.GET("/flush", func(c echo.Context) error {
		c.Response().Flush()
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

	// A middleware replacing the writer beneath the Response with one
	// that cannot flush and does not unwrap.
	e.GET("/wrapped", sseecho.Handler(b, sseecho.WithErrorLog(func(err error) { logged = append(logged, err) })),
		func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error {
				c.Response().Writer = plainWriter{c.Response().Writer}
				return next(c)
			}
		})
	for _, tc := range []struct {
		path string
		w    func(*httptest.ResponseRecorder) http.ResponseWriter
	}{
		{"/events", func(rec *httptest.ResponseRecorder) http.ResponseWriter { return plainWriter{rec} }},
		{"/wrapped", func(rec *httptest.ResponseRecorder) http.ResponseWriter { return rec }},
	} {
		logged = nil
		rec := httptest.NewRecorder()
		e.ServeHTTP(tc.w(rec), httptest.NewRequest(http.MethodGet, tc.path, nil))
		if rec.Code != http.StatusInternalServerError {
			t.Errorf("%s: status %d, want 500", tc.path, rec.Code)
		}
		if len(logged) != 1 || !errors.Is(logged[0], core.ErrFlushUnsupported) {
			t.Errorf("%s: logged %v, want ErrFlushUnsupported", tc.path, logged)
		}
	}
	if n := b.Stats().Connections; n != 0 {
		t.Errorf("%d connections registered", n)
	}
}

// TestShutdown starts echo the v4 way, with e.Start, and stops it with
// nethttp.Shutdown on e.Server: the stream ends with a reconnect hint.
func TestShutdown(t *testing.T) {
	hint := 2 * time.Second
	b, err := core.New(core.Config{RetryHint: hint})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/events", sseecho.Handler(b))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.Listener = ln
	e.Server.WriteTimeout = time.Second
	started := make(chan error, 1)
	go func() { started <- e.Start("") }()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := adaptertest.Dial(t, &http.Client{Transport: tr}, "http://"+ln.Addr().String()+"/events", nil)
	c.Opened(t)

	ctx, cancel := context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
	defer cancel()
	start := time.Now()
	if err := nethttp.Shutdown(ctx, e.Server, b); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Shutdown took %v with a stream open", took)
	}
	if err := <-started; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Start: %v", err)
	}
	c.Comment(t, string(core.ReasonShutdown))
	_, retry, err := c.End(t)
	if !errors.Is(err, io.EOF) || retry < hint || retry > hint*3/2 {
		t.Errorf("stream ended with %v and retry %v, want EOF and %v plus jitter", err, retry, hint)
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
