package metrics_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/internal/streamtest"
	"github.com/stretchr/testify/require"
)

var newMemStream = streamtest.New

var errDeadline = errors.New("stuck stream: write deadline exceeded")

// stuckStream is a client that stops reading after the opening frame: its
// later writes block until their deadline, like a full TCP window.
type stuckStream struct {
	mu       sync.Mutex
	writes   int
	deadline time.Time
	changed  chan struct{}
	blocked  chan struct{} // closed when the first write blocks
}

func newStuckStream() *stuckStream {
	return &stuckStream{changed: make(chan struct{}), blocked: make(chan struct{})}
}

func (s *stuckStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.writes++
	if s.writes == 1 {
		s.mu.Unlock()
		return len(p), nil
	}
	if s.writes == 2 {
		close(s.blocked)
	}
	for {
		d, changed := s.deadline, s.changed
		s.mu.Unlock()
		if !d.IsZero() && !time.Now().Before(d) {
			return 0, errDeadline
		}
		var expired <-chan time.Time
		if !d.IsZero() {
			t := time.NewTimer(time.Until(d))
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-changed:
		case <-expired:
		}
		s.mu.Lock()
	}
}

func (s *stuckStream) Flush() error { return nil }

func (s *stuckStream) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// served is a subscription being served on its own goroutine.
type served struct {
	cancel context.CancelFunc
	done   chan error
}

func serve(t testing.TB, b *core.Broker, req core.SubscribeRequest, st core.Stream) *served {
	t.Helper()
	sub, err := b.Subscribe(context.Background(), req)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- b.Serve(ctx, sub, st) }()
	return s
}

// wait waits for Serve to return and gives its error.
func (s *served) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-s.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

// close disconnects like a browser closing the tab.
func (s *served) close(t testing.TB) error {
	s.cancel()
	return s.wait(t)
}

// request is a stream request without credentials.
type request struct{}

func (request) Header(string) string  { return "" }
func (request) Query(string) []string { return nil }
func (request) Cookie(string) string  { return "" }
func (request) RemoteAddr() string    { return "192.0.2.1:1234" }
