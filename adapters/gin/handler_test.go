package ssegin_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-contrib/gzip"
	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	ssegin "github.com/ssekit/ssekit/adapters/gin"
	"github.com/ssekit/ssekit/core"
)

// TestGzip puts gin-contrib/gzip in front of the stream. It compresses the
// stream and flushes the compressor at every batch, so events still arrive
// at once; the handler reaches the connection beneath gzip's writer (which
// has no Unwrap) to lift the server's WriteTimeout. Excluding the route
// serves the stream uncompressed.
func TestGzip(t *testing.T) {
	adaptertest.ForEachProto(t, func(t *testing.T, proto int) {
		t.Run("Compressed", func(t *testing.T) {
			t.Parallel()
			b := adaptertest.NewBroker(t, core.Config{})
			r := gin.New()
			r.Use(gzip.Gzip(gzip.DefaultCompression))
			r.GET("/events", ssegin.Handler(b))
			srv := adaptertest.Serve(t, r, proto)
			// The client's transport asks for gzip and inflates.
			c := adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil)
			require.True(t, c.Resp.Uncompressed, "the stream was not compressed: the test proves nothing")
			adaptertest.CheckStreaming(t, b, c)
		})
		t.Run("ExcludedPath", func(t *testing.T) {
			t.Parallel()
			b := adaptertest.NewBroker(t, core.Config{})
			r := gin.New()
			r.Use(gzip.Gzip(gzip.DefaultCompression, gzip.WithExcludedPaths([]string{"/events"})))
			r.GET("/events", ssegin.Handler(b))
			r.GET("/page", func(c *gin.Context) { c.String(http.StatusOK, strings.Repeat("page ", 100)) })
			srv := adaptertest.Serve(t, r, proto)
			c := adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil)
			assert.False(t, c.Resp.Uncompressed || c.Resp.Header.Get("Content-Encoding") != "", "stream compressed (Content-Encoding %q) on an excluded path", c.Resp.Header.Get("Content-Encoding"))
			adaptertest.CheckStreaming(t, b, c)
			resp, err := srv.Client().Get(srv.URL + "/page")
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			assert.True(t, resp.Uncompressed, "other routes are no longer compressed")
		})
	})
}

// noCloseNotify is a ResponseWriter without CloseNotify, as many wrappers
// and test recorders are: gin's c.Stream panics on it.
type noCloseNotify struct {
	mu      sync.Mutex
	header  http.Header
	status  int
	body    strings.Builder
	flushed chan struct{}
}

func (w *noCloseNotify) Header() http.Header { return w.header }
func (w *noCloseNotify) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.status = code
}

func (w *noCloseNotify) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.body.Write(p)
}

func (w *noCloseNotify) Flush() {
	select {
	case w.flushed <- struct{}{}:
	default:
	}
}

// TestWriterWithoutCloseNotify: the handler streams with c.Writer and the
// request context, so a writer without CloseNotify works, the preamble is
// flushed while the handler runs, and cancelling the request ends it.
func TestWriterWithoutCloseNotify(t *testing.T) {
	b := adaptertest.NewBroker(t, core.Config{})
	r := gin.New()
	r.GET("/events", ssegin.Handler(b))
	r.GET("/stream", func(c *gin.Context) { c.Stream(func(io.Writer) bool { return false }) })

	// The trap the handler avoids: gin's own c.Stream.
	func() {
		defer func() {
			assert.NotNil(t, recover(), "c.Stream did not panic without CloseNotify: the trap is gone, update the docs")
		}()
		w := &noCloseNotify{header: http.Header{}, flushed: make(chan struct{}, 1)}
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/stream", nil))
	}()

	w := &noCloseNotify{header: http.Header{}, flushed: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/events", nil).WithContext(ctx))
	}()
	select {
	case <-w.flushed:
	case <-done:
		require.FailNow(t, "handler returned before flushing")
	case <-time.After(adaptertest.WaitTimeout):
		require.FailNow(t, "no flush")
	}
	n := b.Stats().Connections
	assert.Equal(t, 1, n, "%d connections while streaming, want 1", n)
	cancel() // the client leaves: no CloseNotify, no c.Done() needed
	select {
	case <-done:
	case <-time.After(adaptertest.WaitTimeout):
		require.FailNow(t, "handler did not return after the request context ended")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	assert.False(t, w.status != http.StatusOK || !strings.HasPrefix(w.body.String(), ": ok\n") || w.header.Get("Content-Type") != "text/event-stream", "got %d %q %q, want a 200 stream", w.status, w.header.Get("Content-Type"), w.body.String())
}

// TestContextWithFallback: the stream ends when the client leaves whether
// or not the engine falls back to the request context (c.Done() is nil
// without it, and the handler does not use it).
func TestContextWithFallback(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		b := adaptertest.NewBroker(t, core.Config{})
		r := gin.New()
		r.ContextWithFallback = fallback
		r.GET("/events", ssegin.Handler(b))
		srv := adaptertest.Serve(t, r, 1)
		c := adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil)
		c.Opened(t)
		c.Close()
		deadline := time.Now().Add(adaptertest.WaitTimeout)
		for b.Stats().Connections != 0 {
			require.False(t, time.Now().After(deadline), "ContextWithFallback=%v: stream still registered after the client left", fallback)
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestShutdown serves the engine with an http.Server and stops it with
// ssegin.Shutdown: the streams end with a reconnect hint, taken over or
// not.
func TestShutdown(t *testing.T) {
	for _, v := range []struct {
		name string
		opts []ssegin.Option
	}{{"Plain", nil}, {"Takeover", []ssegin.Option{ssegin.WithTakeover()}}} {
		t.Run(v.name, func(t *testing.T) {
			adaptertest.CheckShutdown(t, func(t *testing.T, b *core.Broker) (string, func(context.Context) error) {
				r := gin.New()
				r.GET("/events", ssegin.Handler(b, v.opts...))
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				srv := &http.Server{Handler: r, ReadHeaderTimeout: time.Minute, WriteTimeout: time.Second}
				served := make(chan error, 1)
				go func() { served <- srv.Serve(ln) }()
				return "http://" + ln.Addr().String(), func(ctx context.Context) error {
					if err := ssegin.Shutdown(ctx, srv, b); err != nil {
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
		r := gin.New()
		r.GET("/events", ssegin.Handler(b, ssegin.WithErrorLog(log)))
		return adaptertest.Serve(t, r, 1).URL
	})
}

// TestTakeoverBehindGzip: gin-contrib/gzip sets Content-Encoding before
// the handler runs and compresses through its writer, which a taken-over
// stream would bypass (a plain body under "Content-Encoding: gzip"). So
// take-over declines behind it and the stream goes out compressed; without
// gzip in front the stream is taken over.
func TestTakeoverBehindGzip(t *testing.T) {
	t.Parallel()
	for _, gzipped := range []bool{true, false} {
		t.Run(fmt.Sprint("gzip=", gzipped), func(t *testing.T) {
			t.Parallel()
			b := adaptertest.NewBroker(t, core.Config{})
			r := gin.New()
			if gzipped {
				r.Use(gzip.Gzip(gzip.DefaultCompression))
			}
			r.GET("/events", ssegin.Handler(b, ssegin.WithTakeover()))
			srv := httptest.NewUnstartedServer(r)
			var hijacked atomic.Int32
			srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
				if st == http.StateHijacked {
					hijacked.Add(1)
				}
			}
			srv.Start()
			t.Cleanup(srv.Close)
			// The client's transport asks for gzip and inflates: a plain
			// body under "Content-Encoding: gzip" fails to read.
			c := adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil)
			c.Opened(t)
			require.NoError(t, b.Broadcast(context.Background(), "e", "hello"))
			ev := c.Event(t)
			require.Equal(t, "hello", ev.Data, "got %+v, want the event with data hello", ev)
			assert.Equal(t, gzipped, c.Resp.Uncompressed, "compressed %v behind gzip=%v", c.Resp.Uncompressed, gzipped)
			takenOver := hijacked.Load() == 1
			assert.NotEqual(t, gzipped, takenOver, "taken over %v behind gzip=%v", takenOver, gzipped)
		})
	}
}

// TestCORS runs the suite's CORS checks on WithCORS.
func TestCORS(t *testing.T) {
	t.Parallel()
	adaptertest.RunCORS(t, func(t *testing.T, b *core.Broker, origin string) http.Handler {
		r := gin.New()
		r.GET("/events", ssegin.Handler(b, ssegin.WithCORS(ssegin.CORS{AllowedOrigins: []string{origin}})))
		return r
	})
}

// TestInvalidOption: New refuses an invalid option, Handler panics on it.
func TestInvalidOption(t *testing.T) {
	b := adaptertest.NewBroker(t, core.Config{})
	bad := ssegin.CORS{AllowedOrigins: []string{"*"}, AllowCredentials: true}
	_, err := ssegin.New(b, ssegin.WithCORS(bad))
	assert.Error(t, err, "New accepted \"*\" with credentials")
	defer func() {
		assert.NotNil(t, recover(), "Handler did not panic on an invalid option")
	}()
	ssegin.Handler(b, ssegin.WithCORS(bad))
}
