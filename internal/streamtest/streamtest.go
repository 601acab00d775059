// Package streamtest holds the in-memory core.Stream the observer packages'
// tests serve subscriptions to.
package streamtest

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core"
)

// MemStream is a client that reads everything at once: it keeps what it is
// written and wakes whoever waits for more.
type MemStream struct {
	mu      sync.Mutex
	buf     []byte
	changed chan struct{}
}

// New returns an empty MemStream.
func New() *MemStream { return &MemStream{changed: make(chan struct{})} }

// Write keeps p and wakes WaitEvents.
func (s *MemStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.buf = append(s.buf, p...)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return len(p), nil
}

// Flush does nothing: everything written is already readable.
func (s *MemStream) Flush() error { return nil }

// Events decodes what the stream received so far.
func (s *MemStream) Events() []core.Event {
	s.mu.Lock()
	data := append([]byte(nil), s.buf...)
	s.mu.Unlock()
	var out []core.Event
	dec := core.NewDecoder(bytes.NewReader(data))
	for {
		ev, err := dec.Next()
		if err != nil {
			return out
		}
		out = append(out, ev)
	}
}

// WaitEvents waits until the stream received n events and returns them.
func (s *MemStream) WaitEvents(t testing.TB, n int) []core.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if evs := s.Events(); len(evs) >= n {
			return evs
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("stream got %d events, want %d", len(s.Events()), n)
		}
	}
}
