package sseredis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssekit/ssekit/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// node is one broker of a test cluster, served over real HTTP.
type node struct {
	t      testing.TB
	name   string
	client *redis.Client
	be     *Backend
	b      *core.Broker
	srv    *httptest.Server
	url    string
	down   atomic.Bool
	once   sync.Once
	errs   chan error
}

type nodeConfig struct {
	opt  Options
	core core.Config
	// ctxTimeouts makes the node's client honour context deadlines
	// (go-redis's ContextTimeoutEnabled).
	ctxTimeouts bool
}

func newNode(t testing.TB, rs *redisServer, name string, nc nodeConfig) *node {
	t.Helper()
	return newNodeWith(t, rs, name, nc, nil, true)
}

// newNodeWith is newNode with a hook on the Backend before the broker
// attaches, and the catch-up hook optional.
func newNodeWith(t testing.TB, rs *redisServer, name string, nc nodeConfig, tweak func(*Backend), catchUp bool) *node {
	t.Helper()
	n := &node{t: t, name: name, client: rs.clientWith(t, nc.ctxTimeouts), errs: make(chan error, 16)}
	var err error
	if nc.opt.ErrorLog == nil {
		nc.opt.ErrorLog = func(err error) {
			select {
			case n.errs <- err:
			default:
			}
		}
	}
	n.be, err = New(n.client, nc.opt)
	require.NoError(t, err)
	if tweak != nil {
		tweak(n.be)
	}
	cfg := nc.core
	cfg.Backend = n.be
	if !catchUp {
		cfg.Backend = withoutCatchUp{n.be}
	}
	if cfg.Authenticator == nil {
		cfg.Authenticator = core.InsecureQueryAuthenticator()
	}
	n.b, err = core.New(cfg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("GET /events", streamHandler(n.b))
	n.srv = httptest.NewServer(mux)
	n.url = n.srv.URL
	t.Cleanup(n.kill)
	return n
}

// withoutCatchUp hides the Backend's CatchUp from the broker.
type withoutCatchUp struct{ core.Backend }

// shutdown stops the node gracefully: streams end with a reconnect hint.
func (n *node) shutdown() {
	n.once.Do(func() {
		n.down.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := n.b.Close(ctx)
		assert.NoError(n.t, err, "%s: shutdown", n.name)
		n.srv.Close()
		_ = n.be.Close()
	})
}

// kill stops the node abruptly: its Redis client is cut first, so that
// nothing more reaches Redis and its presence entries are left behind,
// then its connections are cut mid-stream (as if the process died).
func (n *node) kill() {
	n.once.Do(func() {
		n.down.Store(true)
		_ = n.client.Close()
		n.srv.CloseClientConnections()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = n.b.Close(ctx)
		n.srv.Close()
		_ = n.be.Close()
	})
}

// streamHandler serves streams the way adapters/nethttp does, kept here
// so that these tests exercise the Redis backend and nothing else.
func streamHandler(b *core.Broker) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub, err := b.Connect(r.Context(), httpRequest{r})
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_ = b.Serve(r.Context(), sub, flushStream{w, http.NewResponseController(w)})
	})
}

// httpRequest is the core view of r.
type httpRequest struct{ r *http.Request }

func (h httpRequest) Header(name string) string  { return h.r.Header.Get(name) }
func (h httpRequest) Query(name string) []string { return h.r.URL.Query()[name] }
func (h httpRequest) RemoteAddr() string         { return h.r.RemoteAddr }
func (h httpRequest) Cookie(name string) string {
	if c, err := h.r.Cookie(name); err == nil {
		return c.Value
	}
	return ""
}

type flushStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s flushStream) Write(p []byte) (int, error)        { return s.w.Write(p) }
func (s flushStream) Flush() error                       { return s.rc.Flush() }
func (s flushStream) SetWriteDeadline(t time.Time) error { return s.rc.SetWriteDeadline(t) }

// received is one event a test subscriber got, with the node it came from.
type received struct {
	ev   core.Event
	node string
}

// subscriber is a minimal reconnecting SSE client: it reconnects at once
// (the worst case for the cluster) to the first live node from its
// preferred one, with the Last-Event-ID it holds.
type subscriber struct {
	nodes  []*node
	prefer int
	query  string
	hc     *http.Client

	mu         sync.Mutex
	got        []received
	lastID     string
	connects   int
	byNode     map[string]int
	notify     chan struct{}
	stopped    chan struct{}
	cancel     context.CancelFunc
	cutCurrent func()
}

func newSubscriber(nodes []*node, prefer int, query string, tr *http.Transport) *subscriber {
	return &subscriber{
		nodes: nodes, prefer: prefer, query: query,
		hc:      &http.Client{Transport: tr},
		byNode:  make(map[string]int),
		notify:  make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
}

func (s *subscriber) start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		defer close(s.stopped)
		for ctx.Err() == nil {
			n := s.pick()
			if n == nil {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			if err := s.connect(ctx, n); err != nil && ctx.Err() == nil {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
}

func (s *subscriber) stop() {
	s.cancel()
	<-s.stopped
}

func (s *subscriber) pick() *node {
	for i := range s.nodes {
		n := s.nodes[(s.prefer+i)%len(s.nodes)]
		if !n.down.Load() {
			return n
		}
	}
	return nil
}

func (s *subscriber) connect(ctx context.Context, n *node) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/events"+s.query, nil)
	if err != nil {
		return err
	}
	s.mu.Lock()
	last := s.lastID
	s.cutCurrent = cancel
	s.mu.Unlock()
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return errors.New(resp.Status)
	}
	s.mu.Lock()
	s.connects++
	s.mu.Unlock()
	dec := core.NewDecoder(resp.Body)
	dec.SetLastEventID(last)
	for {
		ev, err := dec.Next()
		s.mu.Lock()
		s.lastID = dec.LastEventID()
		if err == nil {
			s.got = append(s.got, received{ev, n.name})
			s.byNode[n.name]++
		}
		s.mu.Unlock()
		if err != nil {
			return err
		}
		select {
		case s.notify <- struct{}{}:
		default:
		}
	}
}

// cut drops the current connection, as a network failure would.
func (s *subscriber) cut() {
	s.mu.Lock()
	if s.cutCurrent != nil {
		s.cutCurrent()
	}
	s.mu.Unlock()
}

func (s *subscriber) events() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got...)
}

// waitFor waits until cond holds on the events received, or fails.
func (s *subscriber) waitFor(t testing.TB, d time.Duration, what string, cond func([]received) bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if cond(s.events()) {
			return
		}
		select {
		case <-s.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline.C:
			got := s.events()
			require.FailNow(t, fmt.Sprintf("subscriber %q: timed out waiting for %s; got %d events", s.query, what, len(got)))
		}
	}
}

func dataOf(rs []received, typ string) []string {
	var out []string
	for _, r := range rs {
		if r.ev.Type == typ {
			out = append(out, r.ev.Data)
		}
	}
	return out
}
