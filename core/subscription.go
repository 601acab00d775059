package core

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// SubscribeRequest describes a connection to register.
type SubscribeRequest struct {
	Identity Identity
	// Topics the connection starts with; duplicates are ignored.
	Topics []string
	// LastEventID, when set, asks for replay of what the client missed.
	LastEventID string
}

// Subscription is one registered connection: its identity, its topics and
// its bounded queue of encoded events. Serve writes it to a Stream.
type Subscription struct {
	b           *Broker
	t           *tenant
	connID      string
	id          Identity
	lastEventID string
	connected   time.Time
	obsCtx      context.Context

	// Guarded by t.mu: routing state.
	topics     map[string]struct{}
	idx        int    // position in t.all
	stamp      uint64 // last delivery stamp, to deliver once per message
	replayUpto string // newest event of the tenant delivered before registration

	// Guarded by mu: the queue and the connection's fate.
	mu      sync.Mutex
	q       []*Message // ring of undelivered messages
	head, n int
	qbytes  int64  // what the queued frames cost, for the lag metric
	headSeq uint64 // window number of the oldest queued message

	// The writer's position in the tenant's broadcast log. bcur is the
	// writer's own; bnext mirrors its index for the tenant's sweep.
	bcur     cursor
	bnext    atomic.Uint64
	overflow bool                  // cut: the queue overflowed, or reached past the window
	aborted  bool                  // write deadline forced into the past
	deadline func(time.Time) error // the Stream's write deadline, if any
	armed    time.Time             // the write deadline in force
	serving  bool                  // Serve has started
	gone     bool                  // unregistered; Serve must not start
	notify   chan struct{}         // capacity 1: "queue became non-empty"
}

// ID returns the connection's unique ID, usable with Broker.AddTopics.
func (s *Subscription) ID() string { return s.connID }

// Identity returns who the connection belongs to.
func (s *Subscription) Identity() Identity { return s.id }

// LastEventID returns the Last-Event-ID the client connected with.
func (s *Subscription) LastEventID() string { return s.lastEventID }

// ConnectedAt returns when the connection was registered.
func (s *Subscription) ConnectedAt() time.Time { return s.connected }

// Topics returns the connection's current topics, sorted.
func (s *Subscription) Topics() []string {
	s.t.mu.RLock()
	defer s.t.mu.RUnlock()
	out := make([]string, 0, len(s.topics))
	for t := range s.topics {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Close unregisters a subscription that will not be served, for example
// when the adapter fails before calling Serve. It is a no-op once Serve has
// started: Serve unregisters on return.
func (s *Subscription) Close() {
	s.mu.Lock()
	if s.serving || s.gone {
		s.mu.Unlock()
		return
	}
	s.gone = true
	s.mu.Unlock()
	s.b.unregister(s, ReasonClientGone)
}

// enqueue queues m without blocking. It runs on the publisher's goroutine
// under the tenant lock.
func (s *Subscription) enqueue(m *Message) {
	s.mu.Lock()
	if s.gone || s.overflow {
		s.mu.Unlock()
		return
	}
	if limit := s.b.cfg.ClientBufferSize; limit > 0 {
		if s.n == len(s.q) && !s.grow(limit) {
			s.full(m) // unlocks
			return
		}
	} else if s.n > 0 && s.t.win.lapsed(s.headSeq) {
		// The next event this connection needs has left the window: it
		// cannot keep up, and holding its backlog would hold memory the
		// window already gave back. Cut it; on reconnect it is replayed
		// what the History still holds.
		s.cut(m) // unlocks
		return
	} else if s.n == len(s.q) {
		s.grow(1 << 62)
	}
	wasEmpty := s.n == 0
	s.push(m)
	s.mu.Unlock()
	// The writer only waits when it found the queue empty, so only the
	// first event after that needs to wake it.
	if wasEmpty {
		s.signal()
	}
}

// full applies the SlowConsumer policy to m arriving at a full queue; it
// is called with s.mu held and releases it.
func (s *Subscription) full(m *Message) {
	switch s.b.cfg.SlowConsumer {
	case DropNewest:
		s.mu.Unlock()
		s.b.drop(s, m, DropQueueFullNewest)
	case DropOldest:
		old := s.q[s.head]
		s.q[s.head] = nil
		s.head = (s.head + 1) % len(s.q)
		s.n--
		s.qbytes -= int64(len(old.frame))
		s.push(m)
		s.mu.Unlock()
		s.b.drop(s, old, DropQueueFullOldest)
	default:
		s.cut(m)
	}
}

// sweep cuts the connections whose next broadcast has left the window. A
// reading connection cuts itself when it gets there; this finds the ones
// stalled in a write, so that their cursors do not hold the log's old
// segments for ClientTimeout. It runs once per log segment, under t.mu.
func (t *tenant) sweep(win *window) {
	for _, s := range t.all {
		m, kept := t.log.at(s.bnext.Load())
		if kept && (m == nil || !win.lapsed(m.seq)) {
			continue
		}
		s.mu.Lock()
		if s.gone || s.overflow {
			s.mu.Unlock()
			continue
		}
		if m == nil {
			m = t.log.tail.msgs[0]
		}
		s.cut(m) // unlocks
	}
}

// cut ends the connection as a slow consumer when m arrives: its backlog
// is released at once, and a write in progress is aborted. It is called
// with s.mu held and releases it.
func (s *Subscription) cut(m *Message) {
	s.overflow = true
	dropped := s.n + 1
	first, second := s.queued()
	clear(first)
	clear(second)
	s.head, s.n, s.qbytes = 0, 0, 0
	s.q = nil
	s.abortLocked()
	s.mu.Unlock()
	s.b.dropDisconnected(s, m, dropped)
	s.signal()
}

func (s *Subscription) push(m *Message) {
	if s.n == 0 {
		s.headSeq = m.seq
	}
	i := s.head + s.n // a subtraction, not %: this runs once per recipient
	if i >= len(s.q) {
		i -= len(s.q)
	}
	s.q[i] = m
	s.n++
	s.qbytes += int64(len(m.frame))
}

// queued returns the queued messages in order, as at most two slices of
// the ring.
func (s *Subscription) queued() (first, second []*Message) {
	if end := s.head + s.n; end <= len(s.q) {
		return s.q[s.head:end], nil
	}
	return s.q[s.head:], s.q[:s.head+s.n-len(s.q)]
}

// grow enlarges a full ring up to limit, so idle connections hold a small
// ring and only busy ones pay for a large one.
func (s *Subscription) grow(limit int) bool {
	if len(s.q) >= limit {
		return false
	}
	// Fourfold: a burst reaches a large ring in half the copies.
	q := make([]*Message, min(max(4*len(s.q), 4), limit))
	first, second := s.queued()
	copy(q[copy(q, first):], second)
	s.q, s.head = q, 0
	return true
}

func (s *Subscription) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// drain appends to dst the messages waiting for the connection, oldest
// first: its queue and the tenant's broadcasts past its cursor, merged in
// window order. It takes up to maxN of them, or until their frames reach
// maxBytes (at least one), and reports whether the connection was cut and
// how many events and queued bytes are left.
func (s *Subscription) drain(dst []*Message, maxN, maxBytes int) (batch []*Message, cut bool, left int, leftBytes int64) {
	// Read first: every message of the tenant numbered up to last is
	// routed, or being routed now. A broadcast appended after this read may be newer than
	// a queued message not yet seen, so it waits for the next round.
	last := s.t.last.Load()
	log := s.t.log
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n > 0 && s.b.cfg.ClientBufferSize == 0 && s.t.win.lapsed(s.headSeq) {
		s.cut(s.q[s.head]) // unlocks
		s.mu.Lock()
	}
	bytes := 0
	for len(dst) < maxN && !s.overflow {
		var m *Message
		fromLog := false
		if log != nil {
			if lm := s.bcur.peek(); lm != nil && lm.seq <= last {
				m, fromLog = lm, true
			}
		}
		if s.n > 0 && s.headSeq <= last && (m == nil || s.headSeq < m.seq) {
			m, fromLog = s.q[s.head], false
		}
		if m == nil || (bytes > 0 && bytes+len(m.frame) > maxBytes) {
			break
		}
		if fromLog && s.t.win.lapsed(m.seq) {
			// The next broadcast this connection needs left the window.
			s.cut(m) // unlocks
			s.mu.Lock()
			break
		}
		dst = append(dst, m)
		bytes += len(m.frame)
		if fromLog {
			s.bcur.i++
			continue
		}
		s.qbytes -= int64(len(m.frame))
		s.q[s.head] = nil
		s.head++
		if s.head == len(s.q) {
			s.head = 0
		}
		s.n--
		if s.n > 0 {
			s.headSeq = s.q[s.head].seq
		}
	}
	if s.n == 0 {
		s.head = 0
		if len(s.q) > 256 {
			s.q = nil // the burst is over: keep no more than a busy stream's ring
		}
	}
	left = s.n
	if log != nil {
		s.bcur.peek() // step into the next segment, if the cursor ended one
		i := s.bcur.index()
		s.bnext.Store(i)
		left += int(log.count.Load() - i)
	}
	return dst, s.overflow, left, s.qbytes
}

// logPending reports whether the tenant's log holds broadcasts the writer
// has not taken yet.
func (s *Subscription) logPending() bool {
	if s.t.log == nil {
		return false
	}
	// Numbered before it is appended, so this holds; were it not to, the
	// writer would wait for the bell rather than spin on drain.
	m := s.bcur.peek()
	return m != nil && m.seq <= s.t.last.Load()
}

// abortLocked forces a blocked write to fail now, so a client that stopped
// reading is dropped at once instead of after ClientTimeout.
func (s *Subscription) abortLocked() {
	if s.aborted {
		return
	}
	s.aborted = true
	if s.deadline != nil {
		_ = s.deadline(time.Unix(1, 0))
	}
}

// armDeadline gives the next write, starting at now, at least ClientTimeout
// to make progress. Setting a write deadline costs a timer update (and,
// through net/http, a lock or two), so it is re-armed only when the one in
// force would leave less than timeout, and then to 1.5 x timeout: a
// stalled write is cut after between one and one and a half timeouts.
func (s *Subscription) armDeadline(now time.Time, timeout time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aborted {
		return false
	}
	if s.deadline != nil && s.armed.Sub(now) < timeout {
		s.armed = now.Add(timeout + timeout/2)
		_ = s.deadline(s.armed)
	}
	return true
}

// stalled reports whether a write that failed at now ran into the armed
// deadline rather than failing for another reason.
func (s *Subscription) stalled(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadline != nil && !s.armed.IsZero() && !now.Before(s.armed)
}
