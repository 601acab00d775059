package sseecho_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	sseecho "github.com/ssekit/ssekit/adapters/echo"
	"github.com/ssekit/ssekit/core"
)

// TestRouteMiddlewareWriters puts Gzip and BodyDump in front of the
// stream. Both replace c.Response() with a writer of their own; the stream
// is written beneath them, to echo's Response: it is not compressed (the
// client asks for gzip), events arrive at once, it outlives the server's
// WriteTimeout, and BodyDump does not collect it. Other routes are still
// compressed.
func TestRouteMiddlewareWriters(t *testing.T) {
	adaptertest.ForEachProto(t, func(t *testing.T, proto int) {
		b := adaptertest.NewBroker(t, core.Config{})
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
		srv := adaptertest.Serve(t, e, proto)

		// The client's transport asks for gzip and would inflate.
		c := adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil)
		assert.False(t, c.Resp.Uncompressed || c.Resp.Header.Get("Content-Encoding") != "", "stream compressed (Content-Encoding %q)", c.Resp.Header.Get("Content-Encoding"))
		adaptertest.CheckStreaming(t, b, c)
		c.Close()

		resp, err := srv.Client().Get(srv.URL + "/page")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		assert.True(t, resp.Uncompressed, "other routes are no longer compressed: the test proves nothing")
		select {
		case res := <-dumped:
			assert.Equal(t, "", res, "BodyDump collected the stream: %.80q", res)
		case <-time.After(adaptertest.WaitTimeout):
			require.FailNow(t, "BodyDump never saw the stream request end")
		}
	})
}

// plainWriter is a ResponseWriter that cannot flush, as an outer net/http
// middleware without Unwrap would hand to echo.
type plainWriter struct{ http.ResponseWriter }

// TestWriterThatCannotFlush: echo's Response.Flush panics when the writer
// beneath it cannot flush; the handler answers 500 and logs instead.
func TestWriterThatCannotFlush(t *testing.T) {
	b := adaptertest.NewBroker(t, core.Config{})
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
			assert.NotNil(t, recover(), "echo.Response.Flush did not panic on a writer that cannot flush: the trap is gone, update the docs")
		}()
		e.ServeHTTP(plainWriter{httptest.NewRecorder()}, httptest.NewRequest(http.MethodGet, "/flush", nil))
	}()

	rec := httptest.NewRecorder()
	e.ServeHTTP(plainWriter{rec}, httptest.NewRequest(http.MethodGet, "/events", nil))
	assert.Equal(t, http.StatusInternalServerError, rec.Code, "status %d, want 500", rec.Code)
	assert.False(t, len(logged) != 1 || !errors.Is(logged[0], core.ErrFlushUnsupported), "logged %v, want ErrFlushUnsupported", logged)
	n := b.Stats().Connections
	assert.Equal(t, 0, n, "%d connections registered", n)
}

// panickyWriter is a middleware's writer whose Flush assumes too much.
type panickyWriter struct{ http.ResponseWriter }

func (w panickyWriter) Flush()                      { panic("middleware Flush called") }
func (w panickyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestMiddlewareFlushNotCalled: a middleware writer in front of echo's
// Response is bypassed, so its Flush cannot break the stream.
func TestMiddlewareFlushNotCalled(t *testing.T) {
	b := adaptertest.NewBroker(t, core.Config{})
	e := echo.New()
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c *echo.Context) error {
			c.SetResponse(panickyWriter{c.Response()})
			return next(c)
		}
	})
	e.GET("/events", sseecho.Handler(b))
	srv := adaptertest.Serve(t, e, 1)
	adaptertest.CheckStreaming(t, b, adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil))
}

// TestAutoHandleHEAD: with the router answering HEAD from GET routes, a
// HEAD request is refused at once instead of streaming into a writer that
// never flushes.
func TestAutoHandleHEAD(t *testing.T) {
	b := adaptertest.NewBroker(t, core.Config{})
	e := echo.NewWithConfig(echo.Config{Router: echo.NewRouter(echo.RouterConfig{AutoHandleHEAD: true})})
	e.GET("/events", sseecho.Handler(b))
	srv := adaptertest.Serve(t, e, 1)
	ctx, cancel := context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, srv.URL+"/events", nil)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.False(t, resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, OPTIONS", "HEAD: %d Allow %q, want 405 with Allow: GET, OPTIONS", resp.StatusCode, resp.Header.Get("Allow"))
}

// TestShutdown starts echo the v5 way, with StartConfig and a context,
// and CloseOnShutdown: cancelling the context ends the streams with a
// reconnect hint, and Start returns well within GracefulTimeout.
func TestShutdown(t *testing.T) {
	adaptertest.CheckShutdown(t, func(t *testing.T, b *core.Broker) (string, func(context.Context) error) {
		e := echo.New()
		e.GET("/events", sseecho.Handler(b))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		sc := echo.StartConfig{
			Listener: ln, HideBanner: true, HidePort: true,
			GracefulTimeout: adaptertest.WaitTimeout,
			OnShutdownError: func(err error) { assert.Fail(t, fmt.Sprintf("graceful shutdown: %v", err)) },
			BeforeServeFunc: func(s *http.Server) error {
				s.WriteTimeout = time.Second
				return sseecho.CloseOnShutdown(b, 10*time.Second)(s)
			},
		}
		started := make(chan error, 1)
		go func() { started <- sc.Start(ctx, e) }()
		return "http://" + ln.Addr().String(), func(context.Context) error {
			cancel()
			if err := <-started; err != nil {
				return fmt.Errorf("Start: %w", err)
			}
			return nil
		}
	})
}

// TestShutdownServer serves e with an http.Server of its own and stops it
// with sseecho.Shutdown: the streams end with a reconnect hint, taken over
// or not.
func TestShutdownServer(t *testing.T) {
	for _, v := range []struct {
		name string
		opts []sseecho.Option
	}{{"Plain", nil}, {"Takeover", []sseecho.Option{sseecho.WithTakeover()}}} {
		t.Run(v.name, func(t *testing.T) {
			adaptertest.CheckShutdown(t, func(t *testing.T, b *core.Broker) (string, func(context.Context) error) {
				e := echo.New()
				e.GET("/events", sseecho.Handler(b, v.opts...))
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				srv := &http.Server{Handler: e, ReadHeaderTimeout: time.Minute, WriteTimeout: time.Second}
				served := make(chan error, 1)
				go func() { served <- srv.Serve(ln) }()
				return "http://" + ln.Addr().String(), func(ctx context.Context) error {
					if err := sseecho.Shutdown(ctx, srv, b); err != nil {
						return fmt.Errorf("Shutdown: %w", err)
					}
					if err := <-served; !errors.Is(err, http.ErrServerClosed) {
						return fmt.Errorf("Serve: %w", err)
					}
					return nil
				}
			})
		})
	}
}

// TestErrorLog: why Serve ended a stream reaches WithErrorLog.
func TestErrorLog(t *testing.T) {
	t.Parallel()
	adaptertest.CheckErrorLog(t, func(t *testing.T, b *core.Broker, log func(error)) string {
		e := echo.New()
		e.GET("/events", sseecho.Handler(b, sseecho.WithErrorLog(log)))
		return adaptertest.Serve(t, e, 1).URL
	})
}

// TestCORS runs the suite's CORS checks on WithCORS.
func TestCORS(t *testing.T) {
	t.Parallel()
	adaptertest.RunCORS(t, func(t *testing.T, b *core.Broker, origin string) http.Handler {
		e := echo.New()
		e.GET("/events", sseecho.Handler(b, sseecho.WithCORS(sseecho.CORS{AllowedOrigins: []string{origin}})))
		return e
	})
}

// TestInvalidOption: New refuses an invalid option, Handler panics on it.
func TestInvalidOption(t *testing.T) {
	b := adaptertest.NewBroker(t, core.Config{})
	bad := sseecho.CORS{AllowedOrigins: []string{"*"}, AllowCredentials: true}
	_, err := sseecho.New(b, sseecho.WithCORS(bad))
	assert.Error(t, err, "New accepted \"*\" with credentials")
	defer func() {
		assert.NotNil(t, recover(), "Handler did not panic on an invalid option")
	}()
	sseecho.Handler(b, sseecho.WithCORS(bad))
}
