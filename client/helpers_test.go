package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/client"
	"github.com/ssekit/ssekit/core"
	"github.com/stretchr/testify/require"
)

// wait bounds every wait of these tests. It is an upper limit only, far
// above what a loaded machine needs; no test asserts how fast anything is.
const wait = 15 * time.Second

// reqView is the core.Request view of an *http.Request, as an adapter
// builds it.
type reqView struct{ r *http.Request }

func (v reqView) Header(name string) string  { return v.r.Header.Get(name) }
func (v reqView) Query(name string) []string { return v.r.URL.Query()[name] }
func (v reqView) RemoteAddr() string         { return v.r.RemoteAddr }
func (v reqView) Cookie(name string) string {
	c, err := v.r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// flushStream is the core.Stream of an http.ResponseWriter.
type flushStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s flushStream) Write(p []byte) (int, error)        { return s.w.Write(p) }
func (s flushStream) Flush() error                       { return s.rc.Flush() }
func (s flushStream) SetWriteDeadline(t time.Time) error { return s.rc.SetWriteDeadline(t) }

// sseServer serves a real core.Broker the way an adapter does, and lets a
// test see the requests, hold new connections and drop open ones.
type sseServer struct {
	*httptest.Server
	b *core.Broker

	mu    sync.Mutex
	reqs  []http.Header
	drops []context.CancelFunc // one per open stream
	gate  chan struct{}        // non-nil: new requests wait until it is closed
}

func newSSEServer(t *testing.T, cfg core.Config) *sseServer {
	t.Helper()
	b, err := core.New(cfg)
	require.NoError(t, err)
	s := &sseServer{b: b}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.release()
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = b.Close(ctx) // ends every stream, so Close below does not wait
		s.Close()
	})
	return s
}

func (s *sseServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r.Header.Clone())
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	view := reqView{r}
	sub, err := s.b.Connect(r.Context(), view)
	if err != nil {
		rej := s.b.Reject(err, view)
		w.Header().Set("Content-Type", rej.ContentType)
		if rej.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(rej.RetryAfter))
		}
		w.WriteHeader(rej.Status)
		_, _ = w.Write(rej.Body)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	s.mu.Lock()
	s.drops = append(s.drops, cancel)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_ = s.b.Serve(ctx, sub, flushStream{w, http.NewResponseController(w)})
}

// requests returns the headers of every request received so far.
func (s *sseServer) requests() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.reqs...)
}

// waitRequests waits until n requests have arrived and returns them.
func (s *sseServer) waitRequests(t *testing.T, n int) []http.Header {
	t.Helper()
	require.Eventually(t, func() bool { return len(s.requests()) >= n }, wait, time.Millisecond,
		"waiting for request %d", n)
	return s.requests()
}

// hold makes new requests wait, before Connect, until release.
func (s *sseServer) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
}

func (s *sseServer) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

// dropAll ends every open stream, as a server restart or a proxy would,
// and waits until the broker has let go of them.
func (s *sseServer) dropAll(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	drops := s.drops
	s.drops = nil
	s.mu.Unlock()
	for _, cancel := range drops {
		cancel()
	}
	s.waitConnections(t, 0)
}

func (s *sseServer) waitConnections(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return s.b.Stats().Connections == n }, wait, time.Millisecond,
		"waiting for %d connections", n)
}

// publish broadcasts an event and returns its ID.
func (s *sseServer) publish(t *testing.T, typ, data string) string {
	t.Helper()
	id, err := s.b.Publish(context.Background(), core.Message{
		Target: core.Target{Broadcast: true},
		Event:  core.Event{Type: typ, Data: data},
	})
	require.NoError(t, err)
	return id
}

// retry is one call of WithOnRetry.
type retry struct {
	err   error
	delay time.Duration
}

// recorder runs one Events loop in the background and records what it
// sees: events, the terminal error, states, retries and comments.
type recorder struct {
	events  chan core.Event
	retries chan retry
	opened  chan struct{} // one value per Open
	done    chan struct{} // closed when the loop has ended
	cancel  context.CancelFunc

	mu       sync.Mutex
	states   []client.State
	comments []string
	err      error // the terminal error, if any
	errs     int   // how many errors were yielded
}

func newRecorder() *recorder {
	return &recorder{
		events:  make(chan core.Event, 1000),
		retries: make(chan retry, 1000),
		opened:  make(chan struct{}, 1000),
		done:    make(chan struct{}),
	}
}

// options returns the callbacks that feed the recorder.
func (r *recorder) options() []client.Option {
	return []client.Option{
		client.WithOnState(func(s client.State) {
			r.mu.Lock()
			r.states = append(r.states, s)
			r.mu.Unlock()
			if s == client.Open {
				r.opened <- struct{}{}
			}
		}),
		client.WithOnRetry(func(err error, delay time.Duration) { r.retries <- retry{err, delay} }),
		client.WithOnComment(func(text string) {
			r.mu.Lock()
			r.comments = append(r.comments, text)
			r.mu.Unlock()
		}),
	}
}

// start creates a client for url with the recorder's options and opts,
// and ranges over its Events until the test ends or stop is called.
func (r *recorder) start(t *testing.T, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(url, append(r.options(), opts...)...)
	require.NoError(t, err)
	r.run(t, c)
	return c
}

func (r *recorder) run(t *testing.T, c *client.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		for ev, err := range c.Events(ctx) {
			if err != nil {
				r.mu.Lock()
				r.err = err
				r.errs++
				r.mu.Unlock()
				continue // the loop must stop by itself
			}
			r.events <- ev
		}
	}()
	t.Cleanup(func() { r.stop(t) })
}

// stop cancels the loop's context and waits for the loop to end.
func (r *recorder) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	r.wait(t)
}

// wait waits for the loop to end by itself.
func (r *recorder) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(wait):
		t.Fatal("Events loop did not end")
	}
}

func (r *recorder) next(t *testing.T) core.Event {
	t.Helper()
	select {
	case ev := <-r.events:
		return ev
	case <-time.After(wait):
		t.Fatal("no event")
	}
	return core.Event{}
}

func (r *recorder) nextRetry(t *testing.T) retry {
	t.Helper()
	select {
	case rt := <-r.retries:
		return rt
	case <-time.After(wait):
		t.Fatal("no retry")
	}
	return retry{}
}

func (r *recorder) waitOpen(t *testing.T) {
	t.Helper()
	select {
	case <-r.opened:
	case <-time.After(wait):
		t.Fatal("stream did not open")
	}
}

func (r *recorder) stateLog() []client.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]client.State(nil), r.states...)
}

func (r *recorder) commentLog() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.comments...)
}

// result returns how many errors were yielded and the last one; call it
// once the loop has ended.
func (r *recorder) result() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs, r.err
}

// statusCode returns the code of the *client.StatusError in err's chain, or 0.
func statusCode(err error) int {
	var se *client.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}
