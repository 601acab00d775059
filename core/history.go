package core

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// History assigns event IDs and keeps published messages for Last-Event-ID
// replay. The default is MemoryHistory; the Redis backend keeps it in Redis
// Streams so any broker of a cluster can replay.
type History interface {
	// Append stores m and sets m.Event.ID. IDs are opaque strings, and the
	// order of Append calls is the order of replay.
	Append(ctx context.Context, m *Message) error
	// Replay calls fn, in order, for each stored message of tenant
	// published after afterID up to and including uptoID (nothing when
	// uptoID is ""), until fn returns false. It returns an error wrapping
	// ErrEventExpired or ErrEventUnknown when the events after afterID can
	// no longer be replayed in full.
	Replay(ctx context.Context, tenant, afterID, uptoID string, fn func(*Message) bool) error
	// Origin returns an ID that precedes every event the history will ever
	// hold. A client that connected before anything was published is given
	// it as its position, so that if it is cut before its first event, it
	// still reconnects with a Last-Event-ID and is replayed everything.
	Origin() string
}

// MemoryHistory is an in-memory ring of the most recent messages of all
// tenants. Its IDs carry a random epoch, so an ID from before a restart is
// recognised as unknown instead of being confused with a new event.
type MemoryHistory struct {
	epoch string
	mu    sync.RWMutex
	ring  []*Message
	last  uint64 // sequence number of the newest message; the first is 1
}

// NewMemoryHistory returns a ring holding up to size messages. Size 0 keeps
// nothing but still issues IDs, so every gap is detected.
func NewMemoryHistory(size int) *MemoryHistory {
	return &MemoryHistory{
		epoch: strings.ReplaceAll(uuid.NewString(), "-", "")[:8],
		ring:  make([]*Message, max(size, 0)),
	}
}

// Append implements History.
func (h *MemoryHistory) Append(_ context.Context, m *Message) error {
	h.mu.Lock()
	h.last++
	seq := h.last
	if len(h.ring) > 0 {
		h.ring[seq%uint64(len(h.ring))] = m
	}
	h.mu.Unlock()
	// Formatting outside the lock keeps the critical section to a store.
	m.setID(h.epoch, seq)
	return nil
}

// Origin implements History.
func (h *MemoryHistory) Origin() string { return h.epoch + "-0" }

// Replay implements History.
func (h *MemoryHistory) Replay(_ context.Context, tenant, afterID, uptoID string, fn func(*Message) bool) error {
	after, ok := h.parse(afterID)
	if !ok {
		return fmt.Errorf("%w: %q", ErrEventUnknown, truncate(afterID))
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if after > h.last {
		return fmt.Errorf("%w: %q", ErrEventUnknown, truncate(afterID))
	}
	oldest := uint64(1)
	if h.last > uint64(len(h.ring)) {
		oldest = h.last - uint64(len(h.ring)) + 1
	}
	if after+1 < oldest {
		return fmt.Errorf("%w: %q", ErrEventExpired, truncate(afterID))
	}
	upto, ok := h.parse(uptoID)
	if uptoID == "" || !ok {
		return nil
	}
	for seq := after + 1; seq <= upto && seq <= h.last; seq++ {
		m := h.ring[seq%uint64(len(h.ring))]
		if m.Target.Tenant == tenant && !fn(m) {
			return nil
		}
	}
	return nil
}

func (h *MemoryHistory) parse(id string) (uint64, bool) {
	epoch, seq, ok := strings.Cut(id, "-")
	if !ok || epoch != h.epoch {
		return 0, false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	return n, err == nil
}
