package core

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

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

// HistoryLimits bounds a MemoryHistory. A zero field takes the default of
// the Config field of the same meaning.
type HistoryLimits struct {
	// Bytes bounds the memory the held events cost, as Message.Cost
	// estimates it (default DefaultHistoryBytes).
	Bytes int64
	// Age bounds how long an event is held (default DefaultHistoryAge).
	Age time.Duration
	// Events, when positive, also bounds how many events are held;
	// NoHistory keeps none (IDs are still issued, so every gap is
	// detected). Zero: no bound beyond Bytes and Age.
	Events int
}

func (l HistoryLimits) withDefaults() HistoryLimits {
	if l.Bytes <= 0 {
		l.Bytes = DefaultHistoryBytes
	}
	if l.Age <= 0 {
		l.Age = DefaultHistoryAge
	}
	return l
}

// MemoryHistory keeps the most recent messages of all tenants in memory,
// within a budget of bytes and of age (and optionally of events), so that
// what it holds is bounded whatever the events' sizes. Its IDs carry a
// random epoch, so an ID from before a restart is recognised as unknown
// instead of being confused with a new event.
type MemoryHistory struct {
	epoch  string
	limits HistoryLimits

	mu   sync.RWMutex
	kept fifo[held] // oldest first
	size int64      // total cost of the held messages
	last uint64     // sequence number of the newest message; the first is 1
	// acct, when set, is the broker window this history keeps for it:
	// messages are numbered with the history's own sequence.
	acct *window
}

type held struct {
	m    *Message
	cost int64
	at   int64 // monoNow when held
}

// NewMemoryHistory returns an empty history bounded by l.
func NewMemoryHistory(l HistoryLimits) *MemoryHistory {
	return &MemoryHistory{
		epoch:  strings.ReplaceAll(uuid.NewString(), "-", "")[:8],
		limits: l.withDefaults(),
	}
}

// Append implements History.
func (h *MemoryHistory) Append(_ context.Context, m *Message) error {
	cost, at := m.Cost(), m.stamp()
	h.mu.Lock()
	h.last++
	seq := h.last
	if h.limits.Events != NoHistory {
		h.kept.push(held{m: m, cost: cost, at: at})
		h.size += cost
		h.evict(at)
	}
	if h.acct != nil {
		m.seq = seq
		h.acct.mirror(h.last-uint64(h.kept.len())+1, h.size, h.kept.front().at)
	}
	h.mu.Unlock()
	// Formatting outside the lock keeps the critical section short.
	m.setID(h.epoch, seq)
	return nil
}

// evict drops the oldest messages until the history is within its limits.
// The newest stays whatever its cost, so that a reconnecting client can
// always resume from it.
func (h *MemoryHistory) evict(now int64) {
	minAt := now - int64(h.limits.Age)
	for n := h.kept.len(); n > 1 && (h.size > h.limits.Bytes || h.kept.front().at < minAt ||
		(h.limits.Events > 0 && n > h.limits.Events)); n-- {
		h.size -= h.kept.front().cost
		h.kept.pop()
	}
}

// Origin implements History.
func (h *MemoryHistory) Origin() string { return h.epoch + "-0" }

// Held returns the number of messages held and their total cost in bytes.
func (h *MemoryHistory) Held() (events int, bytes int64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.kept.len(), h.size
}

// Replay implements History. It scans the history in steps of
// replayStep events, each under the read lock, so that a long replay of
// one tenant never holds up the publishes of every tenant for long.
func (h *MemoryHistory) Replay(_ context.Context, tenant, afterID, uptoID string, fn func(*Message) bool) error {
	after, ok := h.parse(afterID)
	if !ok {
		return fmt.Errorf("%w: %q", ErrEventUnknown, truncate(afterID))
	}
	upto, ok := h.parse(uptoID)
	if uptoID == "" || !ok {
		upto = after // nothing to call back for, but check after
	}
	for seq := after + 1; ; {
		next, err := h.replayStep(tenant, afterID, after, seq, upto, fn)
		if err != nil || next == 0 {
			return err
		}
		seq = next
	}
}

// replayStep scans up to replayStep events of Replay from seq, and returns
// the next sequence number to scan, 0 when done.
func (h *MemoryHistory) replayStep(tenant, afterID string, after, seq, upto uint64, fn func(*Message) bool) (uint64, error) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if after > h.last {
		return 0, fmt.Errorf("%w: %q", ErrEventUnknown, truncate(afterID))
	}
	oldest := h.last - uint64(h.kept.len()) + 1
	if seq < oldest {
		// Evicted before (or, in a long replay, while) it was read: the
		// client would miss it.
		return 0, fmt.Errorf("%w: %q", ErrEventExpired, truncate(afterID))
	}
	end := min(upto, h.last, seq+replayStep-1)
	for ; seq <= end; seq++ {
		m := h.kept.at(int(seq - oldest)).m
		if m.Target.Tenant == tenant && !fn(m) {
			return 0, nil
		}
	}
	if seq > min(upto, h.last) {
		return 0, nil
	}
	return seq, nil
}

// replayStep bounds how many events one step of Replay scans under the
// lock: a few microseconds.
const replayStep = 512

func (h *MemoryHistory) parse(id string) (uint64, bool) {
	epoch, seq, ok := strings.Cut(id, "-")
	if !ok || epoch != h.epoch {
		return 0, false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	return n, err == nil
}
