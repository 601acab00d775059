package nethttp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

// newBroker returns a broker closed at the end of the test.
func newBroker(t *testing.T, cfg core.Config) *core.Broker {
	t.Helper()
	b, err := core.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
		defer cancel()
		assert.NoError(t, b.Close(ctx), "broker.Close")
	})
	return b
}

// serve starts an HTTP/1.1 test server for h. Register it after the broker:
// cleanups run in reverse, so the broker ends the streams before the
// server waits for its handlers.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request whose answer ends by itself and reads it in full.
func do(t *testing.T, srv *httptest.Server, method, target string, h http.Header) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, srv.URL+target, nil)
	require.NoError(t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "%s %s", method, target)
	return resp, string(body)
}

func TestCORS(t *testing.T) {
	const app, evil = "https://app.example.com", "https://evil.example.com"
	cors := nethttp.CORS{AllowedOrigins: []string{app}, AllowCredentials: true, MaxAge: 10 * time.Minute}
	b := newBroker(t, core.Config{Authenticator: core.InsecureQueryAuthenticator()})
	srv := serve(t, nethttp.Handler(b, nethttp.WithCORS(cors)))
	origin := func(o string) http.Header { return http.Header{"Origin": {o}} }

	t.Run("AllowedOriginWithCredentials", func(t *testing.T) {
		c := adaptertest.Dial(t, srv.Client(), srv.URL+"/?topic=a", origin(app))
		h := c.Resp.Header
		assert.False(t, h.Get("Access-Control-Allow-Origin") != app || h.Get("Access-Control-Allow-Credentials") != "true", "ACAO %q ACAC %q, want %q and true", h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Allow-Credentials"), app)
		assert.True(t, slices.Contains(h.Values("Vary"), "Origin"), "Vary = %q, want Origin: the answer depends on it", h.Values("Vary"))
		c.Opened(t)
	})
	t.Run("DisallowedOrigin", func(t *testing.T) {
		resp, body := do(t, srv, http.MethodGet, "/", origin(evil))
		assert.False(t, resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "", "got %d %q with ACAO %q, want 403 without ACAO", resp.StatusCode, body, resp.Header.Get("Access-Control-Allow-Origin"))
		resp, _ = do(t, srv, http.MethodOptions, "/", origin(evil))
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "preflight from a disallowed origin: %d, want 403", resp.StatusCode)
	})
	t.Run("Preflight", func(t *testing.T) {
		h := origin(app)
		h.Set("Access-Control-Request-Method", "GET")
		h.Set("Access-Control-Request-Headers", "last-event-id")
		resp, _ := do(t, srv, http.MethodOptions, "/", h)
		require.Equal(t, http.StatusNoContent, resp.StatusCode, "preflight: %d, want 204", resp.StatusCode)
		got := resp.Header
		assert.False(t, got.Get("Access-Control-Allow-Origin") != app || got.Get("Access-Control-Allow-Credentials") != "true" ||
			got.Get("Access-Control-Allow-Methods") != "GET" || got.Get("Access-Control-Max-Age") != "600" ||
			!strings.Contains(got.Get("Access-Control-Allow-Headers"), "Last-Event-ID"), "preflight headers %v", got)
	})
	t.Run("RejectionIsReadable", func(t *testing.T) {
		// A browser can only read why it was refused if the CORS headers
		// are on the refusal too.
		resp, _ := do(t, srv, http.MethodGet, "/?topic=a//b", origin(app))
		assert.False(t, resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Access-Control-Allow-Origin") != app, "got %d with ACAO %q, want 400 with ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), app)
	})
	t.Run("SameOrigin", func(t *testing.T) {
		c := adaptertest.Dial(t, srv.Client(), srv.URL+"/", nil)
		v := c.Resp.Header.Get("Access-Control-Allow-Origin")
		assert.Equal(t, "", v, "ACAO %q without an Origin header", v)
		c.Opened(t)
	})
	t.Run("AnyOrigin", func(t *testing.T) {
		b := newBroker(t, core.Config{})
		srv := serve(t, nethttp.Handler(b, nethttp.WithCORS(nethttp.CORS{AllowedOrigins: []string{"*"}})))
		c := adaptertest.Dial(t, srv.Client(), srv.URL+"/", origin(evil))
		h := c.Resp.Header
		assert.False(t, h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Credentials") != "", "ACAO %q ACAC %q, want * and none", h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Allow-Credentials"))
		c.Opened(t)
	})
	t.Run("InvalidConfig", func(t *testing.T) {
		for _, c := range []nethttp.CORS{
			{AllowedOrigins: []string{"*"}, AllowCredentials: true},
			{AllowedOrigins: []string{app, "*"}, AllowCredentials: true},
			{},
		} {
			_, err := nethttp.New(b, nethttp.WithCORS(c))
			assert.Error(t, err, "New accepted %+v", c)
		}
		defer func() {
			assert.NotNil(t, recover(), "Handler did not panic on \"*\" with credentials")
		}()
		nethttp.Handler(b, nethttp.WithCORS(nethttp.CORS{AllowedOrigins: []string{"*"}, AllowCredentials: true}))
	})
}

func TestMethodNotAllowed(t *testing.T) {
	b := newBroker(t, core.Config{})
	srv := serve(t, nethttp.Handler(b))
	for _, method := range []string{http.MethodPost, http.MethodHead, http.MethodOptions} {
		resp, _ := do(t, srv, method, "/", nil)
		assert.False(t, resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, OPTIONS", "%s: %d Allow %q, want 405 with Allow: GET, OPTIONS", method, resp.StatusCode, resp.Header.Get("Allow"))
	}
	n := b.Stats().Connections
	assert.Equal(t, 0, n, "%d connections registered", n)
}

// plainWriter is a ResponseWriter that cannot flush.
type plainWriter struct{ http.ResponseWriter }

func TestWriterThatCannotFlush(t *testing.T) {
	b := newBroker(t, core.Config{})
	var logged []error
	h := nethttp.Handler(b, nethttp.WithErrorLog(func(err error) { logged = append(logged, err) }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(plainWriter{rec}, httptest.NewRequest(http.MethodGet, "/events", nil))
	assert.Equal(t, http.StatusInternalServerError, rec.Code, "status %d, want 500", rec.Code)
	assert.False(t, len(logged) != 1 || !errors.Is(logged[0], core.ErrFlushUnsupported), "logged %v, want ErrFlushUnsupported", logged)
	n := b.Stats().Connections
	assert.Equal(t, 0, n, "%d connections registered", n)
}

// unwrapWriter is middleware's writer (a logger, a status recorder): it
// hides Flush and SetWriteDeadline but unwraps to the server's writer.
type unwrapWriter struct {
	http.ResponseWriter
	status int
}

func (w *unwrapWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

func (w *unwrapWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func TestMiddlewareWriterWithUnwrap(t *testing.T) {
	b := newBroker(t, core.Config{})
	stream := nethttp.Handler(b)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stream.ServeHTTP(&unwrapWriter{ResponseWriter: w}, r)
	}))
	srv.Config.WriteTimeout = time.Second
	srv.Start()
	t.Cleanup(srv.Close)

	c := adaptertest.Dial(t, srv.Client(), srv.URL, nil)
	c.Opened(t) // flushed through the wrapper
	// The write deadline is reached through the wrapper too: the stream
	// outlives the server's WriteTimeout.
	c.Quiet(t, 2500*time.Millisecond)
	require.NoError(t, b.Broadcast(context.Background(), "e", "through the middleware"))
	ev := c.Event(t)
	assert.Equal(t, "through the middleware", ev.Data, "got %+v", ev)
}

// flushErrorWriter flushes with FlushError only, which
// http.ResponseController supports as well as http.Flusher.
type flushErrorWriter struct {
	header  http.Header
	mu      sync.Mutex
	status  int
	body    bytes.Buffer
	flushed chan struct{} // signalled at each flush
}

func (w *flushErrorWriter) Header() http.Header { return w.header }
func (w *flushErrorWriter) WriteHeader(code int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.status = code
}

func (w *flushErrorWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.body.Write(p)
}

func (w *flushErrorWriter) FlushError() error {
	select {
	case w.flushed <- struct{}{}:
	default:
	}
	return nil
}

func TestWriterWithFlushError(t *testing.T) {
	b := newBroker(t, core.Config{})
	w := &flushErrorWriter{header: http.Header{}, flushed: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		nethttp.Handler(b).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/events", nil).WithContext(ctx))
	}()
	select {
	case <-w.flushed:
	case <-done:
	case <-time.After(adaptertest.WaitTimeout):
		require.FailNow(t, "no flush")
	}
	cancel()
	<-done
	w.mu.Lock()
	defer w.mu.Unlock()
	assert.False(t, w.status != http.StatusOK || !strings.HasPrefix(w.body.String(), ": ok\n"), "got %d %q, want a 200 stream", w.status, w.body.String())
}

func TestShutdown(t *testing.T) {
	hint := 2 * time.Second
	b, err := core.New(core.Config{RetryHint: hint})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: nethttp.Handler(b), ReadHeaderTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := adaptertest.Dial(t, &http.Client{Transport: tr}, "http://"+ln.Addr().String(), nil)
	c.Opened(t)

	// http.Server.Shutdown alone waits for the stream, which never ends.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	assert.ErrorIs(t, srv.Shutdown(ctx), context.DeadlineExceeded, "http.Server.Shutdown with a stream open: want it to wait until the deadline")
	cancel()
	assert.ErrorIs(t, <-served, http.ErrServerClosed, "Serve")

	ctx, cancel = context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
	defer cancel()
	start := time.Now()
	require.NoError(t, nethttp.Shutdown(ctx, srv, b), "Shutdown")
	took := time.Since(start)
	t.Logf("Shutdown with a stream open took %v", took)
	assert.LessOrEqual(t, took, 5*time.Second, "Shutdown took %v with a stream open", took)
	c.Comment(t, string(core.ReasonShutdown))
	_, retry, err := c.End(t)
	assert.False(t, !errors.Is(err, io.EOF) || retry < hint || retry > hint*3/2, "stream ended with %v and retry %v, want EOF and %v plus jitter", err, retry, hint)
}

func TestRequest(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/events?topic=a&topic=b&user="+url.QueryEscape(uuid.Nil.String()), nil)
	r.Header.Set("last-event-id", "x-1")
	r.AddCookie(&http.Cookie{Name: "session", Value: "s3cret"})
	r.RemoteAddr = "192.0.2.1:1234"
	v := nethttp.Request(r)
	assert.False(t, v.Header("Last-Event-ID") != "x-1" || v.Header("Missing") != "", "Header: %q %q", v.Header("Last-Event-ID"), v.Header("Missing"))
	got := v.Query("topic")
	assert.False(t, !slices.Equal(got, []string{"a", "b"}) || v.Query("none") != nil, "Query: %q %q", got, v.Query("none"))
	assert.False(t, v.Cookie("session") != "s3cret" || v.Cookie("none") != "", "Cookie: %q %q", v.Cookie("session"), v.Cookie("none"))
	assert.Equal(t, "192.0.2.1:1234", v.RemoteAddr(), "RemoteAddr: %q", v.RemoteAddr())
}

func TestWriteRejection(t *testing.T) {
	rec := httptest.NewRecorder()
	nethttp.WriteRejection(rec, core.Rejection{Status: 503, ContentType: "text/plain; charset=utf-8", RetryAfter: 15, Body: []byte("busy\n")})
	assert.False(t, rec.Code != 503 || rec.Header().Get("Retry-After") != "15" || rec.Header().Get("Cache-Control") != "no-store" ||
		rec.Header().Get("Content-Type") != "text/plain; charset=utf-8" || rec.Body.String() != "busy\n", "got %d %v %q", rec.Code, rec.Header(), rec.Body.String())
	rec = httptest.NewRecorder()
	nethttp.WriteRejection(rec, core.Rejection{Status: 401, ContentType: "text/plain", Body: []byte("no\n")})
	assert.Equal(t, "", rec.Header().Get("Retry-After"), "Retry-After %q without RetryAfter", rec.Header().Get("Retry-After"))
}
