package core

import (
	"sync/atomic"
)

// segSize is the number of broadcasts one segment of a tenant's log holds.
const segSize = 256

// bcastLog is a tenant's broadcasts, in delivery order, shared by every
// connection of the tenant: a broadcast costs the publisher one append and
// at most one wake-up call, whatever the number of connections, and each
// connection's writer reads the log from a cursor of its own. Targeted
// events (users, topics) still go through each connection's queue; the
// writer merges the two by their window numbers.
//
// One writer appends (deliver, under the tenant lock); readers need no
// lock: an entry is published by the atomic store of its segment's count.
// The log keeps its segments only while they are in the window; a
// connection whose cursor falls behind the window is cut (see sweep).
type bcastLog struct {
	// Producer only.
	segs []*segment // the kept segments, oldest first
	tail *segment

	count   atomic.Uint64 // entries ever appended
	bell    atomic.Pointer[bell]
	waiters atomic.Int32 // writers about to wait on the bell
}

type segment struct {
	base uint64 // log index of msgs[0]
	n    atomic.Int32
	next atomic.Pointer[segment]
	// msgs is allocated with the first entry, so that a tenant that never
	// broadcasts costs a few words, not a segment.
	msgs []*Message
}

// bell is closed to wake every writer waiting for the next broadcast.
type bell struct{ c chan struct{} }

func newBcastLog() *bcastLog {
	g := &bcastLog{tail: &segment{}}
	g.segs = []*segment{g.tail}
	g.bell.Store(&bell{c: make(chan struct{})})
	return g
}

// append adds m and wakes the writers waiting for it. It reports whether
// a segment was started, when the caller sweeps for lapsed cursors.
func (g *bcastLog) append(m *Message, win *window) (started bool) {
	t := g.tail
	n := t.n.Load()
	if n == segSize {
		next := &segment{base: t.base + segSize}
		t.next.Store(next)
		g.tail, t, n = next, next, 0
		g.segs = append(g.segs, next)
		g.trim(win)
		started = true
	}
	if t.msgs == nil {
		t.msgs = make([]*Message, segSize)
	}
	t.msgs[n] = m
	// count first: a reader that sees the entry must not count past it.
	g.count.Add(1)
	t.n.Store(n + 1) // publishes msgs and m to the readers
	// Seen together with a writer's own increment before it waits: either
	// it is counted here, or its last look at the log saw m.
	if g.waiters.Load() > 0 {
		old := g.bell.Swap(&bell{c: make(chan struct{})})
		close(old.c)
	}
	return started
}

// trim lets go of the full segments whose every entry has left the window:
// the log holds no more than the window does.
func (g *bcastLog) trim(win *window) {
	drop := 0
	for drop < len(g.segs)-1 && win.lapsed(g.segs[drop].msgs[segSize-1].seq) {
		drop++
	}
	if drop > 0 {
		clear(g.segs[:drop])
		g.segs = g.segs[drop:]
	}
}

// at returns the entry with log index i, and whether it is still kept;
// nil and true when i is past the end.
func (g *bcastLog) at(i uint64) (*Message, bool) {
	first := g.segs[0].base
	if i < first {
		return nil, false
	}
	if i >= g.count.Load() {
		return nil, true
	}
	k := i - first
	return g.segs[k/segSize].msgs[k%segSize], true
}

// end returns a cursor at the end of the log: where a new connection's
// live broadcasts start. The caller holds the tenant lock.
func (g *bcastLog) end() cursor {
	t := g.tail
	return cursor{seg: t, i: int(t.n.Load())}
}

// cursor is one writer's position in a log.
type cursor struct {
	seg *segment
	i   int
}

// peek returns the entry at c, or nil when the writer has read everything
// appended so far.
func (c *cursor) peek() *Message {
	if c.i == segSize {
		next := c.seg.next.Load()
		if next == nil {
			return nil
		}
		c.seg, c.i = next, 0
	}
	if int32(c.i) >= c.seg.n.Load() {
		return nil
	}
	return c.seg.msgs[c.i]
}

func (c *cursor) index() uint64 { return c.seg.base + uint64(c.i) }
