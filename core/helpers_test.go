package core

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

var errDeadline = errors.New("test stream: write deadline exceeded")

// testStream is a Stream whose writes are handed, one chunk at a time, to
// whoever reads it: a reader that stops reading is a client whose TCP
// window is full. It honours write deadlines, so stall detection and
// slow-consumer cuts can be tested under synctest.
type testStream struct {
	out chan []byte

	mu       sync.Mutex
	deadline time.Time
	changed  chan struct{}
	flushes  int
	writes   int
	// deadlineSets counts SetWriteDeadline calls.
	deadlineSets int
	pending      []byte
}

func newTestStream() *testStream {
	return &testStream{out: make(chan []byte), changed: make(chan struct{})}
}

func (s *testStream) Write(p []byte) (int, error) {
	chunk := append([]byte(nil), p...)
	s.mu.Lock()
	s.writes++
	s.mu.Unlock()
	for {
		s.mu.Lock()
		d, changed := s.deadline, s.changed
		s.mu.Unlock()
		var expired <-chan time.Time
		if !d.IsZero() {
			if time.Until(d) <= 0 {
				return 0, errDeadline
			}
			t := time.NewTimer(time.Until(d))
			defer t.Stop()
			expired = t.C
		}
		select {
		case s.out <- chunk:
			return len(p), nil
		case <-expired:
			return 0, errDeadline
		case <-changed:
		}
	}
}

func (s *testStream) Flush() error {
	s.mu.Lock()
	s.flushes++
	s.mu.Unlock()
	return nil
}

func (s *testStream) SetWriteDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.deadlineSets++
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// Read lets a Decoder consume the stream.
func (s *testStream) Read(p []byte) (int, error) {
	if len(s.pending) == 0 {
		chunk, ok := <-s.out
		if !ok {
			return 0, io.EOF
		}
		s.pending = chunk
	}
	n := copy(p, s.pending)
	s.pending = s.pending[n:]
	return n, nil
}

// client is one connection served by a broker, read through the spec
// decoder.
type client struct {
	t        testing.TB
	sub      *Subscription
	st       *testStream
	dec      *Decoder
	cancel   context.CancelFunc
	done     chan error
	mu       sync.Mutex
	comments []string
}

func connect(t testing.TB, b *Broker, req SubscribeRequest) *client {
	t.Helper()
	sub, err := b.Subscribe(context.Background(), req)
	require.NoError(t, err)
	return serve(t, b, sub)
}

func serve(t testing.TB, b *Broker, sub *Subscription) *client {
	ctx, cancel := context.WithCancel(context.Background())
	c := &client{t: t, sub: sub, st: newTestStream(), cancel: cancel, done: make(chan error, 1)}
	c.dec = NewDecoder(c.st)
	c.dec.OnComment = func(text string) {
		c.mu.Lock()
		c.comments = append(c.comments, text)
		c.mu.Unlock()
	}
	go func() {
		err := b.Serve(ctx, sub, c.st)
		close(c.st.out) // the client reads EOF once the stream has ended
		c.done <- err
	}()
	return c
}

// next returns the next dispatched event.
func (c *client) next() Event {
	c.t.Helper()
	ev, err := c.dec.Next()
	require.NoError(c.t, err)
	return ev
}

// close disconnects like a browser closing the tab, and waits for Serve.
func (c *client) close() error {
	c.cancel()
	for range c.st.out { // unblock a Serve stuck writing to a reader that is gone
	}
	return <-c.done
}

func (c *client) seenComments() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.comments...)
}

func newBroker(t testing.TB, cfg Config) *Broker {
	t.Helper()
	b, err := New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	return b
}

func user() uuid.UUID { return uuid.New() }

func errEOF() error { return io.EOF }
