package adaptertest

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core"
)

// Factory builds the adapter under test around b and returns an
// http.Handler that serves b's streams at "/events". Run calls it once per
// check, each time with a new broker, and serves the handler itself.
type Factory func(t *testing.T, b *core.Broker) http.Handler

// ServerFactory starts the adapter under test around b on a server of its
// own, serving b's streams at "/events", and returns the server's base URL
// ("http://127.0.0.1:port"). It must stop the server in t.Cleanup; the
// suite closes its streams and the broker before that cleanup runs.
type ServerFactory func(t *testing.T, b *core.Broker) (baseURL string)

// ServerWriteTimeout is the http.Server.WriteTimeout of the servers Run
// starts: far shorter than the streams, which the adapter must exempt from
// it (core.Serve bounds each write by Config.ClientTimeout instead).
const ServerWriteTimeout = time.Second

// Run runs every conformance check against the adapter f builds, over
// HTTP/1.1 (httptest server) and over HTTP/2 (TLS httptest server with
// EnableHTTP2), each check in a parallel subtest with a broker of its own.
// Every server has WriteTimeout set to ServerWriteTimeout.
//
// Run does not check for leaked goroutines itself, since other tests of
// the package may run in parallel with it: the caller's TestMain must, with
// goleak.VerifyTestMain (or internal/leaktest.VerifyTestMain). Every check
// closes its streams, its broker, its servers and its clients' idle
// connections when it ends, so a goroutine left behind is the adapter's.
func Run(t *testing.T, f Factory) {
	t.Helper()
	ForEachProto(t, func(t *testing.T, proto int) {
		runChecks(t, &suite{proto: proto, startServer: handlerServer(f, proto)})
	})
}

// RunServer runs every conformance check against an adapter that must run
// its own server (fasthttp and Fiber), over HTTP/1.1 only. The server's
// write timeout is the factory's business; the write-timeout check still
// shows that a stream outlives a few seconds.
func RunServer(t *testing.T, f ServerFactory) {
	t.Helper()
	t.Run("HTTP1", func(t *testing.T) {
		t.Parallel()
		runChecks(t, &suite{proto: 1, startServer: ownServer(f)})
	})
}

func runChecks(t *testing.T, s *suite) {
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, s)
		})
	}
}

// suite starts the adapter, the same way, for each check.
type suite struct {
	proto       int // 1 or 2
	startServer func(t *testing.T, b *core.Broker, o startOptions) served
}

type startOptions struct {
	// smallBuffers shrinks the server's socket send buffers, where the
	// suite runs the server, so a client that stops reading fills its
	// connection after a few hundred KiB instead of megabytes.
	smallBuffers bool
}

type served struct {
	base         string
	client       *http.Client
	slowClient   func() *http.Client
	writeTimeout time.Duration
}

// env is one check's adapter: its broker, its server and clients.
type env struct {
	served
	b     *core.Broker
	proto int
}

// start creates a broker with cfg and serves it through the adapter. At
// the end of the check the streams are closed first (their cleanups were
// registered later), then the broker, then the servers and clients.
func (s *suite) start(t *testing.T, cfg core.Config, o startOptions) *env {
	t.Helper()
	// No heartbeat unless the check asks for one: a heartbeat's write
	// would notice a client gone that the adapter failed to notice, and
	// hide the bug.
	b := newBroker(t, cfg)
	srv := s.startServer(t, b, o)
	t.Cleanup(func() {
		closeBroker(t, b, " at the end of the check (a stream did not end)")
		// Close returns once the last stream is unregistered; its limit
		// reservation is given back just after.
		waitFor(t, "the broker counts no connection after Close", func() bool { return b.Stats().Connections == 0 })
	})
	return &env{served: srv, b: b, proto: s.proto}
}

func handlerServer(f Factory, proto int) func(t *testing.T, b *core.Broker, o startOptions) served {
	return func(t *testing.T, b *core.Broker, o startOptions) served {
		h := f(t, b)
		if h == nil {
			t.Fatal("Factory returned a nil handler")
		}
		srv := httptest.NewUnstartedServer(h)
		srv.Config.WriteTimeout = ServerWriteTimeout
		if o.smallBuffers {
			srv.Listener = smallBufferListener{srv.Listener}
		}
		if proto == 2 {
			srv.EnableHTTP2 = true
			srv.StartTLS()
		} else {
			srv.Start()
		}
		var slow []*http.Transport
		t.Cleanup(func() {
			srv.Close() // also closes the idle connections of srv.Client()
			for _, tr := range slow {
				tr.CloseIdleConnections()
			}
		})
		return served{
			base:         srv.URL,
			client:       srv.Client(),
			writeTimeout: ServerWriteTimeout,
			slowClient: func() *http.Client {
				tr := srv.Client().Transport.(*http.Transport).Clone()
				tr.DialContext = smallReadBufferDial
				if proto == 2 {
					tr.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerStream: 16 << 10, MaxReceiveBufferPerConnection: 64 << 10}
				}
				slow = append(slow, tr)
				return &http.Client{Transport: tr}
			},
		}
	}
}

func ownServer(f ServerFactory) func(t *testing.T, b *core.Broker, _ startOptions) served {
	return func(t *testing.T, b *core.Broker, _ startOptions) served {
		base := strings.TrimSuffix(f(t, b), "/")
		if _, err := url.Parse(base); err != nil || base == "" {
			t.Fatalf("ServerFactory returned base URL %q: %v", base, err)
		}
		tr := &http.Transport{}
		slow := &http.Transport{DialContext: smallReadBufferDial}
		t.Cleanup(func() {
			tr.CloseIdleConnections()
			slow.CloseIdleConnections()
		})
		return served{
			base:       base,
			client:     &http.Client{Transport: tr},
			slowClient: func() *http.Client { return &http.Client{Transport: slow} },
		}
	}
}

// smallBufferListener shrinks the send buffer of every accepted connection.
type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(32 << 10)
	}
	return c, err
}

func smallReadBufferDial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(16 << 10)
	}
	return c, err
}

// url returns the stream URL with query q ("" or "?...").
func (e *env) url(q string) string { return e.base + "/events" + q }

// dial opens a stream and checks it uses the protocol under test.
func (e *env) dial(t *testing.T, q string, h http.Header) *Conn {
	t.Helper()
	return e.dialWith(t, e.client, q, h, false)
}

func (e *env) dialWith(t *testing.T, c *http.Client, q string, h http.Header, paused bool) *Conn {
	t.Helper()
	conn := dial(t, c, e.url(q), h, paused)
	if conn.Resp.ProtoMajor != e.proto {
		t.Fatalf("response over %s, want HTTP/%d", conn.Resp.Proto, e.proto)
	}
	return conn
}

// response is a refused (or otherwise finished) answer, read in full.
type response struct {
	status int
	header http.Header
	body   []byte
}

// get sends a request whose answer must end by itself (a rejection) and
// reads it in full.
func (e *env) get(t *testing.T, q string, h http.Header) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url(q), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %d answer did not end within %v (%v); read %q", req.URL, resp.StatusCode, WaitTimeout, err, body)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

// query builds "?k=v&..." from pairs.
func query(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return "?" + v.Encode()
}

// waitFor polls cond until it holds, failing t after WaitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, WaitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// publish publishes an event and returns its ID.
func publish(t *testing.T, b *core.Broker, tg core.Target, typ, data string) string {
	t.Helper()
	id, err := b.Publish(context.Background(), core.Message{Target: tg, Event: core.Event{Type: typ, Data: data}})
	if err != nil {
		t.Fatalf("Publish %s %q: %v", typ, data, err)
	}
	return id
}
