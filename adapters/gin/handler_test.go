package ssegin_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-contrib/gzip"
	"github.com/gin-gonic/gin"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	ssegin "github.com/ssekit/ssekit/adapters/gin"
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

// TestGzip puts gin-contrib/gzip in front of the stream. It compresses the
// stream and flushes the compressor at every batch, so events still arrive
// at once; the handler reaches the connection beneath gzip's writer (which
// has no Unwrap) to lift the server's WriteTimeout. Excluding the route
// serves the stream uncompressed.
func TestGzip(t *testing.T) {
	for _, proto := range []int{1, 2} {
		t.Run("HTTP"+string(rune('0'+proto)), func(t *testing.T) {
			t.Parallel()
			t.Run("Compressed", func(t *testing.T) {
				t.Parallel()
				b := newBroker(t, core.Config{HeartbeatInterval: time.Hour})
				r := gin.New()
				r.Use(gzip.Gzip(gzip.DefaultCompression))
				r.GET("/events", ssegin.Handler(b))
				srv := serve(t, r, proto)
				// The client's transport asks for gzip and inflates.
				c := adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil)
				if !c.Resp.Uncompressed {
					t.Fatal("the stream was not compressed: the test proves nothing")
				}
				streams(t, b, c)
			})
			t.Run("ExcludedPath", func(t *testing.T) {
				t.Parallel()
				b := newBroker(t, core.Config{HeartbeatInterval: time.Hour})
				r := gin.New()
				r.Use(gzip.Gzip(gzip.DefaultCompression, gzip.WithExcludedPaths([]string{"/events"})))
				r.GET("/events", ssegin.Handler(b))
				r.GET("/page", func(c *gin.Context) { c.String(http.StatusOK, strings.Repeat("page ", 100)) })
				srv := serve(t, r, proto)
				c := adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil)
				if c.Resp.Uncompressed || c.Resp.Header.Get("Content-Encoding") != "" {
					t.Errorf("stream compressed (Content-Encoding %q) on an excluded path", c.Resp.Header.Get("Content-Encoding"))
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
	b := newBroker(t, core.Config{HeartbeatInterval: time.Hour})
	r := gin.New()
	r.GET("/events", ssegin.Handler(b))
	r.GET("/stream", func(c *gin.Context) { c.Stream(func(io.Writer) bool { return false }) })

	// The trap the handler avoids: gin's own c.Stream.
	func() {
		defer func() {
			if recover() == nil {
				t.Error("c.Stream did not panic without CloseNotify: the trap is gone, update the docs")
			}
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
		t.Fatal("handler returned before flushing")
	case <-time.After(adaptertest.WaitTimeout):
		t.Fatal("no flush")
	}
	if n := b.Stats().Connections; n != 1 {
		t.Errorf("%d connections while streaming, want 1", n)
	}
	cancel() // the client leaves: no CloseNotify, no c.Done() needed
	select {
	case <-done:
	case <-time.After(adaptertest.WaitTimeout):
		t.Fatal("handler did not return after the request context ended")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.status != http.StatusOK || !strings.HasPrefix(w.body.String(), ": ok\n") || w.header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("got %d %q %q, want a 200 stream", w.status, w.header.Get("Content-Type"), w.body.String())
	}
}

// TestContextWithFallback: the stream ends when the client leaves whether
// or not the engine falls back to the request context (c.Done() is nil
// without it, and the handler does not use it).
func TestContextWithFallback(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		b := newBroker(t, core.Config{HeartbeatInterval: time.Hour})
		r := gin.New()
		r.ContextWithFallback = fallback
		r.GET("/events", ssegin.Handler(b))
		srv := serve(t, r, 1)
		c := adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil)
		c.Opened(t)
		c.Close()
		deadline := time.Now().Add(adaptertest.WaitTimeout)
		for b.Stats().Connections != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("ContextWithFallback=%v: stream still registered after the client left", fallback)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestShutdown serves the engine with an http.Server and stops it with
// nethttp.Shutdown: the stream ends with a reconnect hint.
func TestShutdown(t *testing.T) {
	hint := 2 * time.Second
	b, err := core.New(core.Config{RetryHint: hint})
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	r.GET("/events", ssegin.Handler(b))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: time.Minute, WriteTimeout: time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := adaptertest.Dial(t, &http.Client{Transport: tr}, "http://"+ln.Addr().String()+"/events", nil)
	c.Opened(t)

	ctx, cancel := context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
	defer cancel()
	start := time.Now()
	if err := nethttp.Shutdown(ctx, srv, b); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Shutdown took %v with a stream open", took)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
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
	r := gin.New()
	r.GET("/events", ssegin.Handler(b, ssegin.WithCORS(ssegin.CORS{AllowedOrigins: []string{app}})))
	srv := serve(t, r, 1)

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

	bad := ssegin.CORS{AllowedOrigins: []string{"*"}, AllowCredentials: true}
	if _, err := ssegin.New(b, ssegin.WithCORS(bad)); err == nil {
		t.Error("New accepted \"*\" with credentials")
	}
	defer func() {
		if recover() == nil {
			t.Error("Handler did not panic on an invalid option")
		}
	}()
	ssegin.Handler(b, ssegin.WithCORS(bad))
}
