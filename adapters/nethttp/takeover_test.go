package nethttp_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/internal/leaktest"
)

// quietConfig has no heartbeat within a test's life: a heartbeat's write
// would notice a client gone that the read goroutine failed to notice.
func quietConfig() core.Config {
	return core.Config{Authenticator: core.InsecureQueryAuthenticator(), HeartbeatInterval: time.Hour, RetryHint: 2 * time.Second}
}

// takeoverServer starts an HTTP/1.1 test server for h and counts the
// connections handed over to a handler (http.StateHijacked): the sign that
// a stream was taken over rather than served the ordinary way. configure,
// if set, adjusts the server before it starts.
func takeoverServer(t *testing.T, h http.Handler, configure func(*httptest.Server)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	var hijacked atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateHijacked {
			hijacked.Add(1)
		}
	}
	if configure != nil {
		configure(srv)
	}
	if configure != nil && srv.TLS != nil {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, &hijacked
}

// rawGet sends a GET of target over a TCP connection of its own, with the
// protocol version proto and extra header lines, so the test sees the
// response bytes as they are on the wire. Reads fail after WaitTimeout.
func rawGet(t *testing.T, srv *httptest.Server, proto, target string, extra ...string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(adaptertest.WaitTimeout)))
	req := "GET " + target + " " + proto + "\r\nHost: example.com\r\nAccept: text/event-stream\r\n"
	for _, line := range extra {
		req += line + "\r\n"
	}
	_, err = io.WriteString(conn, req+"\r\n")
	require.NoError(t, err)
	return conn, bufio.NewReader(conn)
}

// readHead reads a response head: the status line, and the header lines
// as they came.
func readHead(t *testing.T, br *bufio.Reader) (status string, lines []string) {
	t.Helper()
	for {
		line, err := br.ReadString('\n')
		require.NoError(t, err, "reading the head")
		line = strings.TrimSuffix(line, "\r\n")
		if status == "" {
			status = line
			continue
		}
		if line == "" {
			return status, lines
		}
		lines = append(lines, line)
	}
}

// header parses head lines into a Header, keeping names as sent.
func header(lines []string) http.Header {
	h := http.Header{}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, ": ")
		h[k] = append(h[k], v)
	}
	return h
}

// readBlock reads one block of the stream: lines up to and including the
// blank line that ends an event or a comment block.
func readBlock(t *testing.T, br *bufio.Reader) []byte {
	t.Helper()
	var block []byte
	for {
		line, err := br.ReadBytes('\n')
		require.NoError(t, err, "reading the stream after %q", block)
		block = append(block, line...)
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return block
		}
	}
}

// decodeAll parses a piece of a stream and returns its events and comments.
func decodeAll(t *testing.T, p []byte) (events []core.Event, comments []string) {
	t.Helper()
	d := core.NewDecoder(bytes.NewReader(p))
	d.OnComment = func(text string) { comments = append(comments, text) }
	for {
		ev, err := d.Next()
		if errors.Is(err, io.EOF) {
			return events, comments
		}
		require.NoError(t, err)
		events = append(events, ev)
	}
}

// requireEnded reads what is left of a response and checks that the
// server ended it (EOF, or a reset after the client talked) well before
// the read deadline.
func requireEnded(t *testing.T, br *bufio.Reader) {
	t.Helper()
	_, err := io.Copy(io.Discard, br)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the stream did not end: %v", err)
}

func closeBroker(t *testing.T, b *core.Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
	defer cancel()
	require.NoError(t, b.Close(ctx))
}

// TestTakeoverHead checks the hand-written response on the wire: every
// header set before the take-over (CORS, middleware) with values that
// cannot inject headers, the stream's own headers, a body that is not
// chunked, and the close after the closing reconnect hint.
func TestTakeoverHead(t *testing.T) {
	t.Parallel()
	const app = "https://app.example.com"
	b := newBroker(t, quietConfig())
	stream := nethttp.Handler(b, nethttp.WithTakeover(),
		nethttp.WithCORS(nethttp.CORS{AllowedOrigins: []string{app}, AllowCredentials: true}))
	srv, hijacked := takeoverServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "42")
		w.Header()["X-Evil"] = []string{"a\r\nInjected: yes"}
		w.Header().Set("Content-Length", "5") // framing is the handler's
		stream.ServeHTTP(w, r)
	}), nil)

	_, br := rawGet(t, srv, "HTTP/1.1", "/events?topic=a", "Origin: "+app)
	status, lines := readHead(t, br)
	assert.Equal(t, "HTTP/1.1 200 OK", status)
	h := header(lines)
	for name, want := range map[string]string{
		"Content-Type":                     "text/event-stream",
		"Cache-Control":                    "no-cache",
		"X-Accel-Buffering":                "no",
		"Access-Control-Allow-Origin":      app,
		"Access-Control-Allow-Credentials": "true",
		"Vary":                             "Origin",
		"X-Request-Id":                     "42",
		"Connection":                       "close",
	} {
		assert.Equal(t, []string{want}, h[name], "header %s in %q", name, lines)
	}
	assert.NotContains(t, h, "Content-Length")
	assert.NotContains(t, h, "Transfer-Encoding", "the body ends with the connection")
	assert.Equal(t, []string{"a  Injected: yes"}, h["X-Evil"], "line breaks in a value become spaces")
	assert.NotContains(t, h, "Injected")
	_, err := http.ParseTime(h.Get("Date"))
	assert.NoError(t, err, "Date %q", h.Get("Date"))
	assert.EqualValues(t, 1, hijacked.Load(), "the stream was not taken over")

	preamble := readBlock(t, br)
	events, comments := decodeAll(t, preamble)
	assert.Empty(t, events)
	assert.Equal(t, []string{"ok"}, comments, "first block %q", preamble)

	id := publish(t, b, core.Target{Topics: []string{"a"}}, "note", "hello\nworld")
	events, comments = decodeAll(t, readBlock(t, br))
	require.Len(t, events, 1)
	assert.Equal(t, core.Event{ID: id, Type: "note", Data: "hello\nworld"}, events[0])
	assert.Empty(t, comments)

	closeBroker(t, b)
	last, err := io.ReadAll(br)
	require.NoError(t, err, "the connection closes after the reconnect hint")
	events, comments = decodeAll(t, last)
	assert.Empty(t, events)
	assert.Equal(t, []string{string(core.ReasonShutdown)}, comments)
	assert.Contains(t, string(last), "retry: ")
}

func publish(t *testing.T, b *core.Broker, tg core.Target, typ, data string) string {
	t.Helper()
	id, err := b.Publish(context.Background(), core.Message{Target: tg, Event: core.Event{Type: typ, Data: data}})
	require.NoError(t, err)
	return id
}

// TestTakeoverHTTP10 checks that an HTTP/1.0 client gets an HTTP/1.0
// answer whose body is not chunked (1.0 has no chunking) and ends when the
// connection closes.
func TestTakeoverHTTP10(t *testing.T) {
	t.Parallel()
	b := newBroker(t, quietConfig())
	srv, hijacked := takeoverServer(t, nethttp.Handler(b, nethttp.WithTakeover()), nil)
	_, br := rawGet(t, srv, "HTTP/1.0", "/?topic=a")
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "HTTP/1.0", resp.Proto)
	assert.Empty(t, resp.TransferEncoding, "HTTP/1.0 has no chunking")
	assert.True(t, resp.Close, "the body is delimited by the close")
	assert.EqualValues(t, -1, resp.ContentLength)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	assert.EqualValues(t, 1, hijacked.Load())

	d := core.NewDecoder(resp.Body)
	var comments []string
	d.OnComment = func(text string) { comments = append(comments, text) }
	id := publish(t, b, core.Target{Topics: []string{"a"}}, "e", "over 1.0")
	ev, err := d.Next()
	require.NoError(t, err)
	assert.Equal(t, id, ev.ID)
	assert.Equal(t, "over 1.0", ev.Data)
	closeBroker(t, b)
	_, err = d.Next()
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, []string{"ok", string(core.ReasonShutdown)}, comments)
	assert.GreaterOrEqual(t, d.Retry(), 2*time.Second)
}

// TestTakeoverClientCloses checks that the read goroutine notices a client
// closing its connection: the user goes offline at once, with no write
// (and no heartbeat) to find out.
func TestTakeoverClientCloses(t *testing.T) {
	t.Parallel()
	b := newBroker(t, quietConfig())
	srv, hijacked := takeoverServer(t, nethttp.Handler(b, nethttp.WithTakeover()), nil)
	u := uuid.New()
	c := adaptertest.Dial(t, srv.Client(), srv.URL+"/?user="+u.String(), nil)
	c.Opened(t)
	require.True(t, b.IsUserOnline(u))
	require.EqualValues(t, 1, hijacked.Load())
	c.Close()
	require.Eventually(t, func() bool { return !b.IsUserOnline(u) && b.Stats().Connections == 0 },
		adaptertest.WaitTimeout, 5*time.Millisecond, "the user is still online after the client closed")
}

// TestTakeoverClientSendsBytes: a client has nothing to send on a stream,
// so bytes from it, sent later or already buffered with the request, end
// the stream.
func TestTakeoverClientSendsBytes(t *testing.T) {
	t.Parallel()
	b := newBroker(t, quietConfig())
	srv, hijacked := takeoverServer(t, nethttp.Handler(b, nethttp.WithTakeover()), nil)

	t.Run("AfterOpening", func(t *testing.T) {
		conn, br := rawGet(t, srv, "HTTP/1.1", "/")
		readHead(t, br)
		readBlock(t, br) // the preamble
		require.Equal(t, 1, b.Stats().Connections)
		_, err := conn.Write([]byte("x"))
		require.NoError(t, err)
		requireEnded(t, br)
		require.Eventually(t, func() bool { return b.Stats().Connections == 0 }, adaptertest.WaitTimeout, 5*time.Millisecond)
	})
	t.Run("Pipelined", func(t *testing.T) {
		// A second request right behind the first, in the same packet:
		// net/http has buffered it when the connection is taken over.
		before := hijacked.Load()
		_, br := rawGet(t, srv, "HTTP/1.1", "/", "", "GET /again HTTP/1.1", "Host: example.com")
		status, _ := readHead(t, br)
		assert.Equal(t, "HTTP/1.1 200 OK", status)
		requireEnded(t, br)
		require.Eventually(t, func() bool { return b.Stats().Connections == 0 }, adaptertest.WaitTimeout, 5*time.Millisecond)
		assert.Equal(t, before+1, hijacked.Load(), "taken over, then ended")
	})
}

// TestTakeoverServerTimeouts: the server's ReadTimeout and WriteTimeout
// (1s) do not cut a taken-over stream held longer than both.
func TestTakeoverServerTimeouts(t *testing.T) {
	t.Parallel()
	b := newBroker(t, quietConfig())
	srv, hijacked := takeoverServer(t, nethttp.Handler(b, nethttp.WithTakeover()), func(s *httptest.Server) {
		s.Config.ReadTimeout = time.Second
		s.Config.WriteTimeout = time.Second
	})
	c := adaptertest.Dial(t, srv.Client(), srv.URL, nil)
	c.Opened(t)
	require.EqualValues(t, 1, hijacked.Load())
	c.Quiet(t, 2*time.Second)
	id := publish(t, b, core.Target{Broadcast: true}, "e", "late")
	assert.Equal(t, id, c.Event(t).ID)
}

// hidingWriter is middleware's writer that flushes but neither hijacks
// nor unwraps: the stream cannot be taken over and falls back.
type hidingWriter struct{ http.ResponseWriter }

func (w hidingWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// TestTakeoverFallback: what cannot be taken over is served the ordinary
// way, silently; a writer that unwraps is taken over.
func TestTakeoverFallback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		wrap     func(http.ResponseWriter) http.ResponseWriter
		body     string
		takeover bool
	}{
		{"MiddlewareWithUnwrap", func(w http.ResponseWriter) http.ResponseWriter { return &unwrapWriter{ResponseWriter: w} }, "", true},
		{"MiddlewareHidingHijack", func(w http.ResponseWriter) http.ResponseWriter { return hidingWriter{w} }, "", false},
		// Its bytes would read as the client talking on the stream.
		{"RequestWithBody", func(w http.ResponseWriter) http.ResponseWriter { return w }, "x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBroker(t, quietConfig())
			stream := nethttp.Handler(b, nethttp.WithTakeover())
			srv, hijacked := takeoverServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				stream.ServeHTTP(tc.wrap(w), r)
			}), nil)
			ctx, cancel := context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/?topic=a", strings.NewReader(tc.body))
			require.NoError(t, err)
			if tc.body == "" {
				req.Body = nil
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, tc.takeover, hijacked.Load() == 1, "taken over")
			d := core.NewDecoder(resp.Body)
			id := publish(t, b, core.Target{Topics: []string{"a"}}, "e", tc.name)
			ev, err := d.Next()
			require.NoError(t, err)
			assert.Equal(t, id, ev.ID)
		})
	}
}

// TestTakeoverTLS: HTTP/1.1 over TLS is taken over too; the connection is
// a *tls.Conn, which gets each chunk in one Write (one TLS record).
func TestTakeoverTLS(t *testing.T) {
	t.Parallel()
	b := newBroker(t, quietConfig())
	srv, hijacked := takeoverServer(t, nethttp.Handler(b, nethttp.WithTakeover()), func(s *httptest.Server) {
		s.TLS = &tls.Config{}
	})
	c := adaptertest.Dial(t, srv.Client(), srv.URL+"/?topic=a", nil)
	require.Equal(t, 1, c.Resp.ProtoMajor)
	require.NotNil(t, c.Resp.TLS)
	c.Opened(t)
	require.EqualValues(t, 1, hijacked.Load())
	id := publish(t, b, core.Target{Topics: []string{"a"}}, "e", strings.Repeat("x", 10_000))
	assert.Equal(t, id, c.Event(t).ID)
	closeBroker(t, b)
	c.Comment(t, string(core.ReasonShutdown))
	_, retry, err := c.End(t)
	assert.ErrorIs(t, err, io.EOF, "the last chunk ends the body cleanly")
	assert.GreaterOrEqual(t, retry, 2*time.Second)
}

// closeCountingListener counts the server's connections being closed.
type closeCountingListener struct {
	net.Listener
	closed *atomic.Int32
}

func (l closeCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &closeCountingConn{Conn: c, closed: l.closed}, nil
}

type closeCountingConn struct {
	net.Conn
	closed *atomic.Int32
	once   sync.Once
}

func (c *closeCountingConn) Close() error {
	c.once.Do(func() { c.closed.Add(1) })
	return c.Conn.Close()
}

// TestTakeoverShutdown: http.Server.Shutdown does not see taken-over
// streams; nethttp.Shutdown ends them with the reconnect hint, and returns
// only once their connections are closed, leaving no goroutine behind. It
// is not parallel, so that the goroutine check sees this test's alone.
func TestTakeoverShutdown(t *testing.T) {
	defer goleak.VerifyNone(t, append(leaktest.Options(), goleak.IgnoreCurrent())...)
	hint := 2 * time.Second
	b, err := core.New(core.Config{RetryHint: hint})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var closed atomic.Int32
	srv := &http.Server{Handler: nethttp.Handler(b, nethttp.WithTakeover()), ReadHeaderTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(closeCountingListener{ln, &closed}) }()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := adaptertest.Dial(t, &http.Client{Transport: tr}, "http://"+ln.Addr().String(), nil)
	defer c.Close()
	c.Opened(t)
	require.Zero(t, closed.Load())

	ctx, cancel := context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
	defer cancel()
	require.NoError(t, nethttp.Shutdown(ctx, srv, b))
	assert.EqualValues(t, 1, closed.Load(), "Shutdown returned before the taken-over connection was closed")
	assert.ErrorIs(t, <-served, http.ErrServerClosed)
	c.Comment(t, string(core.ReasonShutdown))
	_, retry, err := c.End(t)
	assert.ErrorIs(t, err, io.EOF)
	assert.True(t, retry >= hint && retry <= hint*3/2, "retry %v, want %v plus jitter", retry, hint)
	c.Close()
	tr.CloseIdleConnections()
}

// TestNotChunked: on the ordinary path too, an HTTP/1.1 stream is sent
// without chunked encoding, its body delimited by the close, so each write
// is the frames alone; HTTP/2 has its own framing and is left as it is.
func TestNotChunked(t *testing.T) {
	t.Parallel()
	b := newBroker(t, quietConfig())
	srv, hijacked := takeoverServer(t, nethttp.Handler(b), nil)
	_, br := rawGet(t, srv, "HTTP/1.1", "/events?topic=a")
	status, lines := readHead(t, br)
	assert.Equal(t, "HTTP/1.1 200 OK", status)
	h := header(lines)
	assert.NotContains(t, h, "Transfer-Encoding", "head %q", lines)
	assert.Equal(t, []string{"close"}, h["Connection"], "head %q", lines)
	assert.Zero(t, hijacked.Load(), "served the ordinary way")
	readBlock(t, br) // the preamble
	id := publish(t, b, core.Target{Topics: []string{"a"}}, "note", "plain")
	events, _ := decodeAll(t, readBlock(t, br))
	require.Len(t, events, 1)
	assert.Equal(t, core.Event{ID: id, Type: "note", Data: "plain"}, events[0])
	closeBroker(t, b)
	rest, err := io.ReadAll(br)
	require.NoError(t, err, "the stream ends with the connection")
	assert.Contains(t, string(rest), "retry: ")

	h2 := httptest.NewUnstartedServer(nethttp.Handler(newBroker(t, quietConfig())))
	h2.EnableHTTP2 = true
	h2.StartTLS()
	t.Cleanup(h2.Close)
	resp, err := h2.Client().Get(h2.URL + "/events")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, 2, resp.ProtoMajor)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Empty(t, resp.Header.Get("Transfer-Encoding"))
}
