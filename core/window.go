package core

import (
	"sync"
	"sync/atomic"
	"time"
)

// window is the broker's account of the events it holds in memory: every
// delivered message, numbered in delivery order, until the total cost
// passes Config.HistoryBytes or the oldest passes Config.HistoryAge. It
// holds no message itself (the history and the connections' backlogs do);
// it decides how far back a backlog may reach. A connection whose next
// event has left the window has lapsed: it is cut, and replayed on
// reconnect whatever the History still holds. With the default in-memory
// History, which has the same limits, that is exactly when the event also
// left the history, so a reading client is never cut while the next event
// it needs could still be replayed.
type window struct {
	maxBytes int64
	maxAge   time.Duration

	mu    sync.Mutex
	spans fifo[span] // costs of the held messages, oldest first
	held  int64
	next  uint64 // the sequence number of the next message; the first is 1
	start atomic.Uint64
	// bytes and oldest mirror held and the oldest message's time for
	// Stats, which must not take mu.
	bytes  atomic.Int64
	oldest atomic.Int64 // monoNow of the oldest held message; 0 when none
}

type span struct {
	cost int64
	at   int64 // monoNow when delivered
}

func newWindow(maxBytes int64, maxAge time.Duration) *window {
	w := &window{maxBytes: maxBytes, maxAge: maxAge, next: 1}
	w.start.Store(1)
	return w
}

// add accounts for a message of the given cost delivered at now (monoNow)
// and returns its sequence number. The oldest messages leave the window
// until it is back within its limits; the newest always stays.
func (w *window) add(cost, now int64) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.spans.push(span{cost: cost, at: now})
	w.held += cost
	seq := w.next
	w.next++
	start := w.start.Load()
	minAt := now - int64(w.maxAge)
	for w.spans.len() > 1 && (w.held > w.maxBytes || w.spans.front().at < minAt) {
		w.held -= w.spans.front().cost
		w.spans.pop()
		start++
	}
	w.start.Store(start)
	w.bytes.Store(w.held)
	w.oldest.Store(w.spans.front().at)
	return seq
}

// mirror records the state of a history that does the window's
// accounting itself (the broker's own MemoryHistory, whose limits are the
// window's): the oldest number it holds, the cost of what it holds and the
// oldest's time.
func (w *window) mirror(start uint64, bytes, oldestAt int64) {
	w.start.Store(start)
	w.bytes.Store(bytes)
	w.oldest.Store(oldestAt)
}

// lapsed reports whether the message numbered seq has left the window.
func (w *window) lapsed(seq uint64) bool { return seq < w.start.Load() }

// age returns how long ago the oldest held message was delivered; now is
// a monoNow reading. (A reading of exactly 0, one nanosecond after the
// package started, would read as nothing held: harmless.)
func (w *window) age(now int64) time.Duration {
	at := w.oldest.Load()
	if at == 0 {
		return 0
	}
	return time.Duration(max(now-at, 0))
}
