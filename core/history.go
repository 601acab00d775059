package core

import (
	"context"
	"fmt"
	"strconv"
	"strings"
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

// MemoryHistory keeps the most recent messages of every tenant in memory,
// within one budget of bytes and of age (and optionally of events), so
// that what it holds is bounded whatever the events' sizes. Each tenant
// has a part of its own, with its own lock and numbering, so appends and
// replays of different tenants do not wait for each other; they share only
// the count of bytes held. Its IDs carry a random epoch, so an ID from
// before a restart is recognised as unknown instead of being confused with
// a new event. An ID is a position in its tenant's part.
type MemoryHistory struct {
	epoch  string
	limits HistoryLimits
	bud    *budget

	parts cowMap[*window]
	// shared: the history is its broker's window, and Append numbers
	// messages for it (Message.seq).
	shared bool
}

// NewMemoryHistory returns an empty history bounded by l.
func NewMemoryHistory(l HistoryLimits) *MemoryHistory {
	l = l.withDefaults()
	h := &MemoryHistory{
		epoch:  newEpoch(),
		limits: l,
		bud:    newBudget(l.Bytes, l.Age, l.Events),
	}
	return h
}

// part returns tenant's part, made on first use.
func (h *MemoryHistory) part(tenant string) *window {
	return h.parts.getOrAdd(tenant, func() *window {
		w := h.bud.newWindow(true)
		// An epoch of its own: IDs stay unique across tenants, and an ID
		// of one tenant is unknown to another.
		w.epoch = newEpoch()
		return w
	})
}

// Append implements History.
func (h *MemoryHistory) Append(_ context.Context, m *Message) error {
	h.appendTo(h.part(m.Target.Tenant), m)
	return nil
}

// appendTo appends m to w, its tenant's part.
func (h *MemoryHistory) appendTo(w *window, m *Message) {
	seq := w.add(m, m.Cost(), m.stamp())
	if h.shared {
		m.seq = seq
	}
	m.setID(w.epoch, seq)
}

// Origin implements History.
func (h *MemoryHistory) Origin() string { return h.epoch + "-0" }

// Held returns the number of messages held and their total cost in bytes.
func (h *MemoryHistory) Held() (events int, bytes int64) {
	for _, w := range h.parts.all() {
		w.mu.Lock()
		events += w.spans.len()
		w.mu.Unlock()
	}
	return events, h.bud.held.Load()
}

// Replay implements History. It scans the tenant's part in steps of
// replayStep events, each under the part's lock, so that a long replay
// never holds up the tenant's publishes for long.
func (h *MemoryHistory) Replay(_ context.Context, tenant, afterID, uptoID string, fn func(*Message) bool) error {
	w := h.part(tenant)
	after, ok := h.parse(w, afterID)
	if !ok {
		return fmt.Errorf("%w: %q", ErrEventUnknown, truncate(afterID))
	}
	upto, ok := h.parse(w, uptoID)
	if uptoID == "" || !ok {
		upto = after // nothing to call back for, but check after
	}
	for seq := after + 1; ; {
		next, err := replayPart(w, afterID, after, seq, upto, fn)
		if err != nil || next == 0 {
			return err
		}
		seq = next
	}
}

// replayPart scans up to replayStep events of w from seq, and returns the
// next sequence number to scan, 0 when done.
func replayPart(w *window, afterID string, after, seq, upto uint64, fn func(*Message) bool) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if after > w.last {
		return 0, fmt.Errorf("%w: %q", ErrEventUnknown, truncate(afterID))
	}
	oldest := w.last - uint64(w.spans.len()) + 1
	if seq < oldest {
		// Evicted before (or, in a long replay, while) it was read: the
		// client would miss it.
		return 0, fmt.Errorf("%w: %q", ErrEventExpired, truncate(afterID))
	}
	end := min(upto, w.last, seq+replayStep-1)
	for ; seq <= end; seq++ {
		if !fn(w.spans.at(int(seq - oldest)).m) {
			return 0, nil
		}
	}
	if seq > min(upto, w.last) {
		return 0, nil
	}
	return seq, nil
}

// replayStep bounds how many events one step of Replay scans under the
// lock: a few microseconds.
const replayStep = 512

// parse returns the position of id in w: 0 for the history's Origin.
func (h *MemoryHistory) parse(w *window, id string) (uint64, bool) {
	if id == h.Origin() {
		return 0, true
	}
	epoch, seq, ok := strings.Cut(id, "-")
	if !ok || epoch != w.epoch {
		return 0, false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	return n, err == nil
}

// newEpoch returns 8 random hex digits: what tells one history's (or
// part's) IDs from another's.
func newEpoch() string { return strings.ReplaceAll(uuid.NewString(), "-", "")[:8] }
