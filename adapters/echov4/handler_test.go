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

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	sseecho "github.com/ssekit/ssekit/adapters/echov4"
	"github.com/ssekit/ssekit/core"
)

// TestGzip puts middleware.Gzip in front of the stream. In v4 it wraps
// the writer beneath echo's Response, so it compresses the stream; it
// flushes the compressor at every batch, so events still arrive at once,
// and the handler lifts the server's WriteTimeout through its Unwrap.
// With a Skipper for the route, the stream is served uncompressed.
func TestGzip(t *testing.T) {
	adaptertest.ForEachProto(t, func(t *testing.T, proto int) {
		t.Run("Compressed", func(t *testing.T) {
			t.Parallel()
			b := adaptertest.NewBroker(t, core.Config{})
			e := echo.New()
			e.Use(middleware.Gzip())
			e.GET("/events", sseecho.Handler(b))
			srv := adaptertest.Serve(t, e, proto)
			// The client's transport asks for gzip and inflates.
			c := adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil)
			require.True(t, c.Resp.Uncompressed, "the stream was not compressed: the test proves nothing")
			adaptertest.CheckStreaming(t, b, c)
		})
		t.Run("Skipped", func(t *testing.T) {
			t.Parallel()
			b := adaptertest.NewBroker(t, core.Config{})
			e := echo.New()
			e.Use(middleware.GzipWithConfig(middleware.GzipConfig{
				Skipper: func(c echo.Context) bool { return c.Path() == "/events" },
			}))
			e.GET("/events", sseecho.Handler(b))
			e.GET("/page", func(c echo.Context) error { return c.String(http.StatusOK, strings.Repeat("page ", 100)) })
			srv := adaptertest.Serve(t, e, proto)
			c := adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil)
			assert.False(t, c.Resp.Uncompressed || c.Resp.Header.Get("Content-Encoding") != "", "stream compressed (Content-Encoding %q) on a skipped route", c.Resp.Header.Get("Content-Encoding"))
			adaptertest.CheckStreaming(t, b, c)
			resp, err := srv.Client().Get(srv.URL + "/page")
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			assert.True(t, resp.Uncompressed, "other routes are no longer compressed")
		})
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
	e.GET("/flush", func(c echo.Context) error {
		c.Response().Flush()
		return nil
	})

	// The trap: flushing echo's Response panics.
	func() {
		defer func() {
			assert.NotNil(t, recover(), "echo.Response.Flush did not panic on a writer that cannot flush: the trap is gone, update the docs")
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
		assert.Equal(t, http.StatusInternalServerError, rec.Code, "%s: status %d, want 500", tc.path, rec.Code)
		assert.False(t, len(logged) != 1 || !errors.Is(logged[0], core.ErrFlushUnsupported), "%s: logged %v, want ErrFlushUnsupported", tc.path, logged)
	}
	n := b.Stats().Connections
	assert.Equal(t, 0, n, "%d connections registered", n)
}

// TestShutdown starts echo the v4 way, with e.Start, and stops it with
// sseecho.Shutdown: the streams end with a reconnect hint, taken over or
// not.
func TestShutdown(t *testing.T) {
	for _, v := range []struct {
		name string
		opts []sseecho.Option
	}{{"Plain", nil}, {"Takeover", []sseecho.Option{sseecho.WithTakeover()}}} {
		t.Run(v.name, func(t *testing.T) { checkShutdown(t, v.opts...) })
	}
}

func checkShutdown(t *testing.T, opts ...sseecho.Option) {
	adaptertest.CheckShutdown(t, func(t *testing.T, b *core.Broker) (string, func(context.Context) error) {
		e := echo.New()
		e.HideBanner, e.HidePort = true, true
		e.GET("/events", sseecho.Handler(b, opts...))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		e.Listener = ln
		e.Server.WriteTimeout = time.Second
		started := make(chan error, 1)
		go func() { started <- e.Start("") }()
		return "http://" + ln.Addr().String(), func(ctx context.Context) error {
			if err := sseecho.Shutdown(ctx, e, b); err != nil {
				return fmt.Errorf("Shutdown: %w", err)
			}
			if err := <-started; !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("Start: %w", err)
			}
			return nil
		}
	})
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
