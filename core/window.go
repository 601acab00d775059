package core

import (
	"container/heap"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// A window is one tenant's account of the events held in memory: every
// message delivered to the tenant, numbered in delivery order, until the
// budget it draws on (Config.HistoryBytes, HistoryAge) lets it go. It
// decides how far back a connection's backlog may reach: a connection
// whose next event has left the window has lapsed, is cut, and is replayed
// on reconnect whatever the History still holds. The broker's own
// MemoryHistory keeps its messages in the same windows (keep), so a reading
// client is never cut while the next event it needs could still be
// replayed.
//
// Each tenant has its own window, so publishes to different tenants share
// only the budget's byte count: one atomic add per publish.
type window struct {
	bud   *budget
	keep  bool   // spans hold their messages: the window is a history
	epoch string // a history part's, in its IDs

	// order is held by a MemoryBackend across the append and the delivery
	// of each of the tenant's messages, so that its delivery order is its
	// ID order.
	order sync.Mutex

	mu    sync.Mutex
	spans fifo[span] // oldest first
	held  int64      // cost of spans
	last  uint64     // number of the newest message; the first is 1
	start atomic.Uint64
	// oldest mirrors the oldest span's time for Stats, which must not
	// take mu; 0 when nothing is held.
	oldest atomic.Int64
}

type span struct {
	m    *Message // nil unless the window keeps messages
	cost int64
	at   int64 // monoNow when delivered
}

// budget is what a broker's windows (or a MemoryHistory's) draw on
// together: a bound in bytes and in age, and optionally in events.
type budget struct {
	maxBytes  int64
	maxAge    time.Duration
	maxEvents int // > 0: a bound; NoHistory: keep nothing; 0: none

	held   atomic.Int64 // total cost held by every window
	events atomic.Int64 // total events held, counted only when maxEvents > 0

	mu      sync.Mutex                // serialises registration
	windows atomic.Pointer[[]*window] // every window, for reclaim and Stats
	// swept is when the aged events of quiet windows were last let go.
	swept      atomic.Int64
	reclaiming atomic.Bool
	// reclaimAt is the byte count past which a publish reclaims: the
	// bound, or, after a reclaim that could not get back under it (every
	// window down to its newest event: many tenants), an eighth of the
	// bound higher, so that a publish does not scan every window in vain.
	reclaimAt atomic.Int64
}

func newBudget(maxBytes int64, maxAge time.Duration, maxEvents int) *budget {
	b := &budget{maxBytes: maxBytes, maxAge: maxAge, maxEvents: maxEvents}
	b.windows.Store(new([]*window))
	b.reclaimAt.Store(maxBytes)
	b.swept.Store(monoNow())
	return b
}

// newWindow returns a window drawing on b, registered for reclaim.
func (b *budget) newWindow(keep bool) *window {
	w := &window{bud: b, keep: keep}
	w.start.Store(1)
	b.mu.Lock()
	list := append(slices.Clone(*b.windows.Load()), w)
	b.windows.Store(&list)
	b.mu.Unlock()
	return w
}

// add numbers m, delivered at now, and accounts for its cost; the window
// keeps m itself when it is a history. The window's events older than the
// age bound leave; when the budget is exceeded, the oldest events of all
// windows leave (reclaim). Against the byte bound each window keeps its
// newest event, however large, so that its connections can still be sent
// it; past the age bound it goes too (the numbering stays, so a client
// that had it resumes with nothing missed).
func (w *window) add(m *Message, cost, now int64) uint64 {
	b := w.bud
	w.mu.Lock()
	w.last++
	seq := w.last
	if b.maxEvents == NoHistory {
		w.start.Store(seq + 1) // nothing is held: every event has lapsed
		w.mu.Unlock()
		return seq
	}
	var keep *Message
	if w.keep {
		keep = m
	}
	w.spans.push(span{m: keep, cost: cost, at: now})
	w.held += cost
	freed := int64(0)
	for w.spans.len() > 1 && w.spans.front().at < now-int64(b.maxAge) {
		freed += w.pop()
	}
	// One add for the cost and what was freed: the byte count is the
	// only word every tenant's publishes write.
	held := b.held.Add(cost - freed)
	w.oldest.Store(w.spans.front().at)
	w.mu.Unlock()
	at := b.reclaimAt.Load()
	if b.maxEvents > 0 && b.events.Add(1) > int64(b.maxEvents) || held > at {
		b.reclaim(now)
	} else if at != b.maxBytes && held <= b.maxBytes {
		b.reclaimAt.Store(b.maxBytes) // back under the bound: guard it again
	} else if now-b.swept.Load() > int64(b.maxAge)/8 {
		b.sweep(now)
	}
	return seq
}

// pop lets the oldest span go and returns its cost; w.mu is held. The
// caller accounts for the cost in b.held.
func (w *window) pop() int64 {
	c := w.spans.front().cost
	w.spans.pop()
	w.held -= c
	w.start.Add(1)
	if w.bud.maxEvents > 0 {
		w.bud.events.Add(-1)
	}
	return c
}

// reclaim lets go of the oldest events of all windows, oldest first, until
// the budget holds seven eighths of its bytes (so that it runs once per
// eighth of the budget published, not on every publish) and no more events
// than its bound. One publisher reclaims at a time; a window whose lock is
// taken (a replay reading it) is passed over this time.
func (b *budget) reclaim(now int64) {
	if !b.reclaiming.CompareAndSwap(false, true) {
		return
	}
	// What is past the age bound goes first, in every window: a tenant
	// that stopped publishing would otherwise keep its newest event, and
	// the budget, until the next sweep.
	b.trimAged(now)
	defer b.reclaiming.Store(false)
	defer func() {
		at := b.maxBytes
		if held := b.held.Load(); held > at {
			at = held + b.maxBytes/8
		}
		b.reclaimAt.Store(at)
	}()
	target := b.maxBytes - b.maxBytes/8
	need := func() bool {
		return b.held.Load() > target || (b.maxEvents > 0 && b.events.Load() > int64(b.maxEvents))
	}
	var q byOldest
	for _, w := range *b.windows.Load() {
		if w.oldest.Load() != 0 {
			q = append(q, w)
		}
	}
	heap.Init(&q)
	for q.Len() > 0 && need() {
		w := heap.Pop(&q).(*window)
		// Down to the next window's oldest: a k-way merge by age.
		limit := int64(math.MaxInt64)
		if q.Len() > 0 {
			limit = q[0].oldest.Load()
		}
		if !w.mu.TryLock() {
			continue
		}
		freed := int64(0)
		for w.spans.len() > 1 && w.spans.front().at <= limit &&
			(b.held.Load()-freed > target || (b.maxEvents > 0 && b.events.Load() > int64(b.maxEvents))) {
			freed += w.pop()
		}
		// Back in the heap only if it gave something and has more: every
		// round lets go of an event or of a window, so reclaim ends even
		// while publishers move the windows' ages under it.
		more := freed > 0 && w.spans.len() > 1
		if freed > 0 {
			b.held.Add(-freed)
			w.oldest.Store(w.spans.front().at)
		}
		w.mu.Unlock()
		if more {
			heap.Push(&q, w)
		}
	}
}

// trim lets go of the spans older than minAt, the newest too: a tenant
// that stopped publishing keeps nothing past the age bound (its numbering
// stays, so a client at its newest event still resumes with nothing
// missed); w.mu is held.
func (w *window) trim(minAt int64) {
	freed := int64(0)
	for w.spans.len() > 0 && w.spans.front().at < minAt {
		freed += w.pop()
	}
	if freed > 0 {
		w.bud.held.Add(-freed)
		oldest := int64(0)
		if w.spans.len() > 0 {
			oldest = w.spans.front().at
		}
		w.oldest.Store(oldest)
	}
}

// byOldest is a heap of windows, the one holding the oldest event first.
type byOldest []*window

func (q byOldest) Len() int           { return len(q) }
func (q byOldest) Less(i, j int) bool { return q[i].oldest.Load() < q[j].oldest.Load() }
func (q byOldest) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *byOldest) Push(x any)        { *q = append(*q, x.(*window)) }
func (q *byOldest) Pop() any {
	old := *q
	w := old[len(old)-1]
	*q = old[:len(old)-1]
	return w
}

// sweep lets go of the events older than the age bound in every window,
// for tenants that have stopped publishing: their own publishes would
// otherwise be the only ones to trim them. It runs at most once per eighth
// of the age bound.
func (b *budget) sweep(now int64) {
	last := b.swept.Load()
	if now-last <= int64(b.maxAge)/8 || !b.swept.CompareAndSwap(last, now) {
		return
	}
	b.trimAged(now)
}

// trimAged lets go of the events older than the age bound in every window
// whose lock is free.
func (b *budget) trimAged(now int64) {
	minAt := now - int64(b.maxAge)
	for _, w := range *b.windows.Load() {
		if at := w.oldest.Load(); at == 0 || at >= minAt || !w.mu.TryLock() {
			continue
		}
		w.trim(minAt)
		w.mu.Unlock()
	}
}

// lapsed reports whether the message numbered seq has left the window.
func (w *window) lapsed(seq uint64) bool { return seq < w.start.Load() }

// age returns how long ago the oldest message held by any window was
// delivered; now is a monoNow reading. (A reading of exactly 0, one
// nanosecond after the package started, would read as nothing held:
// harmless.)
func (b *budget) age(now int64) time.Duration {
	var oldest time.Duration
	for _, w := range *b.windows.Load() {
		if at := w.oldest.Load(); at != 0 {
			oldest = max(oldest, time.Duration(now-at))
		}
	}
	return oldest
}
