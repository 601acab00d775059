package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// Stream is the response body of one SSE connection, as an adapter
// provides it. Serve calls Write and Flush from one goroutine.
//
// A Stream that owns its connection (an adapter that took it over from its
// server) also implements io.Closer: Serve closes it before it returns, and
// before the stream is unregistered, so that Broker.Close returns only once
// such connections are closed.
type Stream interface {
	Write(p []byte) (int, error)
	// Flush sends everything written so far to the client.
	Flush() error
}

// WriteDeadliner is implemented by Streams that can bound a write in time.
// Serve uses it to close connections that stall for ClientTimeout and to cut
// a slow consumer at once; without it a stalled write blocks until the
// transport gives up on its own.
type WriteDeadliner interface {
	SetWriteDeadline(t time.Time) error
}

// ReservedTypePrefix starts the types of the events the kit sends itself
// (GapEventType, ConnectedEventType, "ssekit.rejected"); a publish with
// such a type fails with ErrInvalidType, so a client can trust them.
const ReservedTypePrefix = "ssekit."

// GapEventType is the type of the event sent to a reconnecting client whose
// Last-Event-ID cannot be replayed (older than the history, or from before
// a restart). Its data is JSON: {"lastEventId": "...", "reason":
// "expired"|"unknown"}. Its id is the newest event the client would have
// had, so the next reconnect resumes from there. On it, an application
// should refetch its state.
const GapEventType = "ssekit.gap"

// ConnectedEventType is the type of the event a stream opens with when
// Config.AnnounceConnection is set. Its data is JSON {"connectionId":
// "..."}; it has no id field, so it leaves the client's Last-Event-ID alone.
const ConnectedEventType = "ssekit.connected"

// heartbeat is an empty comment: the smallest frame that keeps proxies from
// timing out an idle stream.
var heartbeat = []byte(":\n\n")

// BuffersWriter is implemented by Streams that can send several buffers
// with one system call (writev). Serve then hands it a batch's shared
// frames as they are, instead of copying them into a buffer of its own,
// and calls Flush once the batch is written.
type BuffersWriter interface {
	WriteBuffers(bufs [][]byte) error
}

const (
	// maxBatchFrames and maxBatchBytes bound one batch: what a writer
	// takes from its queue and the log at a time, then flushes once.
	maxBatchFrames = 1024
	maxBatchBytes  = 1 << 20
	// maxVecFrames bounds one WriteBuffers call: the kernel copies a
	// writev buffer by buffer, and Go keeps each connection's iovec array
	// at the largest size it has written, so 256 (4 KiB of iovecs) rather
	// than Linux's 1,024.
	maxVecFrames = 256
	// copyBytes bounds the buffer that Streams without WriteBuffers are
	// written from: big enough that a burst costs one write per 64 KiB,
	// small enough that a connection blocked in a write holds little.
	copyBytes = 64 << 10
)

// scratch is the per-write working memory of Serve, pooled so that an idle
// connection holds none, and bounded so that a busy one holds little.
type scratch struct {
	buf    []byte     // staging for Streams without WriteBuffers
	frames [][]byte   // the frames of one write
	batch  []*Message // the messages of one flush
}

var scratchPool = sync.Pool{New: func() any { return &scratch{} }}

// Serve writes the subscription to st until the client goes (ctx is done),
// the connection is cut (slow consumer, write stall, expired credentials) or
// the broker closes. It is the whole write loop of every adapter: preamble
// (retry hint and an opening comment, so clients and proxies see the stream
// open at once), replay of what the client missed, then every queued event
// with one Write and one Flush per batch, and a heartbeat only when idle.
// It runs on the caller's goroutine and unregisters the subscription before
// it returns. It returns nil when the client left or the broker closed, and
// otherwise an error saying why the stream was cut.
func (b *Broker) Serve(ctx context.Context, s *Subscription, st Stream) (err error) {
	s.mu.Lock()
	if s.serving || s.gone {
		again := s.serving
		s.mu.Unlock()
		if c, ok := st.(io.Closer); ok && !again {
			_ = c.Close() // cut by Close before Serve started
		}
		return ErrClosed
	}
	s.serving = true
	if d, ok := st.(WriteDeadliner); ok {
		s.deadline = d.SetWriteDeadline
	}
	s.mu.Unlock()

	l := loop{b: b, s: s, st: st, ctx: ctx}
	end := &stop{reason: ReasonWriteError}
	// Every exit, a panic included, closes the stream and unregisters the
	// subscription: a connection that skipped either would hold its slot
	// under MaxConnections, keep its user online and make Close wait.
	defer func() {
		if p := recover(); p != nil {
			end = &stop{reason: ReasonWriteError, err: fmt.Errorf("%w: %v", ErrStreamPanic, p)}
		}
		l.release()
		if c, ok := st.(io.Closer); ok {
			// Before unregistering: Broker.Close returns only once every
			// connection a Stream owns is closed.
			if p := safely(func() { _ = c.Close() }); p != nil && end.err == nil {
				end = &stop{reason: ReasonWriteError, err: fmt.Errorf("%w: closing: %v", ErrStreamPanic, p)}
			}
		}
		s.mu.Lock()
		s.gone = true
		s.deadline = nil
		s.mu.Unlock()
		if p := safely(func() { b.unregister(s, end.reason) }); p != nil && end.err == nil {
			end = &stop{reason: end.reason, err: fmt.Errorf("%w: unregistering: %v", ErrStreamPanic, p)}
		}
		err = end.err
	}()
	end = l.run()
	return end.err
}

// stop is how the loop ends: every step of Serve returns one, nil to go on,
// so that no step can mistake a failed write for a successful one.
type stop struct {
	reason CloseReason
	err    error // nil when the client left or the broker closed
}

// safely runs f and returns what it panicked with, if anything.
func safely(f func()) (p any) {
	defer func() { p = recover() }()
	f()
	return nil
}

type loop struct {
	b   *Broker
	s   *Subscription
	st  Stream
	bw  BuffersWriter // st, when it writes buffers itself
	ctx context.Context
	sc  *scratch
	// lastWrite is when the last write started: a heartbeat is due once
	// the stream has been quiet for HeartbeatInterval since.
	lastWrite time.Time
}

func (l *loop) run() *stop {
	b, s := l.b, l.s
	l.bw, _ = l.st.(BuffersWriter)
	position := s.replayUpto
	if position == "" {
		position = b.backend.Origin()
	}
	// The opening frame restates the client's position (its own
	// Last-Event-ID, or where the broker stands for a new client): a
	// client that starts each stream with an empty ID buffer, as the spec
	// reads, would otherwise forget it at this frame's blank line.
	start := s.lastEventID
	if start == "" {
		start = position
	}
	head := appendRetry(append(append(append(make([]byte, 0, 128), ": ok\nid: "...), start...), '\n'), b.cfg.RetryHint, "")
	if b.cfg.AnnounceConnection {
		data, _ := json.Marshal(struct {
			ConnectionID string `json:"connectionId"`
		}{s.connID})
		head, _ = AppendEvent(head, Event{Type: ConnectedEventType, Data: string(data)})
	}
	if s.lastEventID == "" {
		if end := l.write(head); end != nil {
			return end
		}
	} else if end := l.replay(head, position); end != nil {
		return end
	}
	l.release()

	hb := time.NewTimer(b.cfg.HeartbeatInterval)
	defer hb.Stop()
	var expired <-chan time.Time
	if exp := s.id.ExpiresAt; !exp.IsZero() {
		t := time.NewTimer(time.Until(exp))
		defer t.Stop()
		expired = t.C
	}
	var hold *time.Timer
	if b.cfg.FlushInterval > 0 {
		hold = time.NewTimer(time.Hour)
		hold.Stop()
		defer hold.Stop()
	}
	for {
		if end, wrote := l.flushQueue(); end != nil {
			return end
		} else if wrote && hold != nil {
			// Coalesce: let events gather for FlushInterval before the
			// next write. The first event after a quiet spell went out
			// at once; a burst now costs one write per interval.
			hold.Reset(b.cfg.FlushInterval)
			select {
			case <-hold.C:
			case <-l.ctx.Done():
				return &stop{reason: ReasonClientGone}
			case <-b.closing: // flushed and ended by the select below
			}
		}
		// Broadcasts wake writers through the tenant's bell. Counting this
		// writer first, then looking at the log once more, means that a
		// broadcast appended meanwhile is either seen here or rings.
		var rang <-chan struct{}
		log := s.t.log
		if log != nil {
			log.waiters.Add(1)
			rang = log.bell.Load().c
			if s.logPending() {
				log.waiters.Add(-1)
				continue
			}
		}
		var ev int
		select {
		case <-s.notify:
		case <-rang:
		case <-hb.C:
			ev = evHeartbeat
		case <-l.ctx.Done():
			ev = evGone
		case <-b.closing:
			ev = evClosing
		case <-expired:
			ev = evExpired
		}
		if log != nil {
			log.waiters.Add(-1)
		}
		switch ev {
		case evHeartbeat:
			// The timer is not reset on every write, which would cost a
			// timer update per batch: when it fires, it is either time for
			// a heartbeat or time to wait out the rest of the interval.
			if quiet := time.Since(l.lastWrite); quiet < b.cfg.HeartbeatInterval {
				hb.Reset(b.cfg.HeartbeatInterval - quiet)
				continue
			}
			if end := l.write(heartbeat); end != nil {
				return end
			}
			hb.Reset(b.cfg.HeartbeatInterval)
		case evGone:
			return &stop{reason: ReasonClientGone}
		case evClosing:
			// Flush what was accepted before Close, then tell the client
			// when to come back.
			if end, _ := l.flushQueue(); end != nil {
				return end
			}
			return l.end(ReasonShutdown, nil)
		case evExpired:
			return l.end(ReasonTokenExpired, ErrTokenExpired)
		}
	}
}

// What woke the writer, besides events to write.
const (
	evHeartbeat = iota + 1
	evGone
	evClosing
	evExpired
)

// flushQueue writes everything queued, batch after batch, until the queue
// is empty. A batch is what was pending when the writer got to it, so a
// burst coalesces into few writes with no timer. It returns a stop when
// the stream must end, and whether it wrote anything.
func (l *loop) flushQueue() (end *stop, wrote bool) {
	for {
		l.sc = scratchPool.Get().(*scratch)
		// A batch may span several staging copies: send flushes once,
		// after the last, which spares a system call per copy.
		batch, cut, left, leftBytes := l.s.drain(l.sc.batch[:0], maxBatchFrames, maxBatchBytes)
		l.sc.batch = batch
		if len(batch) == 0 {
			l.release()
			if cut {
				return &stop{reason: ReasonSlowConsumer, err: ErrSlowConsumer}, wrote
			}
			return nil, wrote
		}
		frames, n, gaps := l.sc.frames[:0], 0, 0
		for _, m := range batch {
			frames = append(frames, m.frame)
			n += len(m.frame)
			if m.Event.Type == GapEventType {
				gaps++ // from a Bus that lost events: a gap, not an event sent
			}
		}
		l.sc.frames = frames
		if end := l.send(frames); end != nil {
			return end, wrote
		}
		l.b.sent.Add(uint64(len(batch) - gaps))
		if gaps > 0 {
			l.b.gap.Add(uint64(gaps))
		}
		if o := l.b.obs; o != nil && o.Flush != nil {
			o.Flush(l.s.obsCtx, l.s, FlushInfo{Messages: batch, Bytes: n, At: time.Now(), Backlog: left, BacklogBytes: leftBytes})
		}
		l.release()
		wrote = true
		if l.ctx.Err() != nil {
			return &stop{reason: ReasonClientGone}, wrote
		}
		if l.b.cfg.FlushInterval > 0 && !l.b.isClosed() {
			return nil, wrote // one write per interval; run holds
		}
	}
}

// release returns the scratch memory to the pool, dropping references to
// messages so the history alone decides how long they live.
func (l *loop) release() {
	if l.sc == nil {
		return
	}
	clear(l.sc.batch)
	clear(l.sc.frames)
	l.sc.batch, l.sc.frames, l.sc.buf = l.sc.batch[:0], l.sc.frames[:0], l.sc.buf[:0]
	if cap(l.sc.buf) <= copyBytes && cap(l.sc.frames) <= 2*maxBatchFrames && cap(l.sc.batch) <= 2*maxBatchFrames {
		scratchPool.Put(l.sc)
	}
	l.sc = nil
}

// send writes frames, in order, with as few writes as the Stream allows:
// one WriteBuffers per maxVecFrames, or else one Write of a copy per
// copyBytes (a frame that large alone is written as it is); then one
// Flush.
func (l *loop) send(frames [][]byte) *stop {
	if l.bw != nil {
		for len(frames) > 0 {
			n := min(len(frames), maxVecFrames)
			part := frames[:n]
			if end := l.put(func() error { return l.bw.WriteBuffers(part) }); end != nil {
				return end
			}
			frames = frames[n:]
		}
		return l.flush()
	}
	if l.sc == nil {
		l.sc = scratchPool.Get().(*scratch)
	}
	buf := l.sc.buf[:0]
	if cap(buf) < copyBytes {
		n := 0
		for _, f := range frames {
			n += len(f)
		}
		if n > cap(buf) { // grow once, not by doubling through the batch
			buf = make([]byte, 0, min(n, copyBytes))
		}
	}
	for _, f := range frames {
		if len(buf) > 0 && len(buf)+len(f) > copyBytes {
			if end := l.putBytes(buf); end != nil {
				return end
			}
			buf = buf[:0]
		}
		if len(f) >= copyBytes {
			if end := l.putBytes(f); end != nil {
				return end
			}
			continue
		}
		buf = append(buf, f...)
	}
	l.sc.buf = buf[:0]
	if len(buf) > 0 {
		if end := l.putBytes(buf); end != nil {
			return end
		}
	}
	return l.flush()
}

// putBytes writes p without flushing it.
func (l *loop) putBytes(p []byte) *stop {
	return l.put(func() error {
		_, err := l.st.Write(p)
		return err
	})
}

// put runs one write of the stream, without Flush, bounded by
// ClientTimeout. It returns nil only when it succeeded.
func (l *loop) put(write func() error) *stop {
	l.lastWrite = time.Now()
	if !l.s.armDeadline(l.lastWrite, l.b.cfg.ClientTimeout) {
		return l.failed(nil)
	}
	if err := write(); err != nil {
		return l.failed(err)
	}
	return nil
}

// write sends p with one Write and one Flush, bounded by ClientTimeout.
func (l *loop) write(p []byte) *stop {
	if end := l.putBytes(p); end != nil {
		return end
	}
	return l.flush()
}

// flush sends what the writes before it left buffered. It runs right after
// them, so the deadline they armed still bounds it.
func (l *loop) flush() *stop {
	if err := l.st.Flush(); err != nil {
		return l.failed(err)
	}
	return nil
}

// failed says why a write failed (err is nil when it was not attempted):
// the broker aborted it, the client left, it stalled, or the transport
// broke.
func (l *loop) failed(err error) *stop {
	s := l.s
	s.mu.Lock()
	aborted := s.aborted
	s.mu.Unlock()
	switch {
	case aborted && l.b.isClosed():
		return &stop{reason: ReasonShutdown}
	case aborted:
		return &stop{reason: ReasonSlowConsumer, err: ErrSlowConsumer}
	case l.ctx.Err() != nil:
		return &stop{reason: ReasonClientGone}
	case s.stalled(time.Now()):
		return &stop{reason: ReasonTimeout, err: ErrWriteTimeout}
	}
	return &stop{reason: ReasonWriteError, err: err}
}

// end writes the closing reconnect hint and ends the stream.
func (l *loop) end(reason CloseReason, err error) *stop {
	buf := appendRetry(make([]byte, 0, 64), l.b.cfg.RetryHint, ": "+string(reason)+"\n")
	if end := l.write(buf); end != nil {
		return end
	}
	return &stop{reason: reason, err: err}
}

// replay writes head, then what the client missed since its Last-Event-ID
// (or the gap event when that cannot be replayed in full), then the
// position where the live events start. Messages are collected first: the
// History may hold a lock while it calls back, and nothing is written
// under a lock. The backlog is the history's own frames, never copies.
func (l *loop) replay(head []byte, position string) *stop {
	b, s := l.b, l.s
	var missed []*Message
	err := b.backend.Replay(l.ctx, s.id.Tenant, s.lastEventID, s.replayUpto, func(m *Message) bool {
		if m.entitled(s) && m.Frame() != nil {
			missed = append(missed, m)
		}
		return true
	})
	info := ReplayInfo{LastEventID: s.lastEventID, Count: len(missed)}
	var tail []byte
	if err != nil {
		reason := "unknown"
		if errors.Is(err, ErrEventExpired) {
			reason = "expired"
		}
		tail = appendGap(tail, s.lastEventID, position, reason)
		info.Gap = true
	}
	// After the replay, move the client to where the live events start
	// (skipping events it is not entitled to), so a client cut before its
	// next event still resumes from the right place. Not before: a client
	// cut during the replay must resume from the last event it really got.
	tail = append(append(append(tail, "id: "...), position...), "\n\n"...)

	frames := make([][]byte, 0, min(len(missed)+2, maxBatchFrames))
	frames = append(frames, head)
	for _, m := range missed {
		if len(frames) == maxBatchFrames {
			if end := l.send(frames); end != nil {
				return end
			}
			clear(frames)
			frames = frames[:0]
		}
		frames = append(frames, m.frame)
	}
	// Counted before the last write, so that a client that has read its
	// gap event finds it in Stats.
	if info.Gap {
		b.gap.Add(1)
	}
	b.replayed.Add(uint64(info.Count))
	if b.obs != nil && b.obs.Replay != nil {
		b.obs.Replay(s.obsCtx, s, info)
	}
	return l.send(append(frames, tail))
}

func appendGap(buf []byte, lastID, resumeID, reason string) []byte {
	data, _ := json.Marshal(struct {
		LastEventID string `json:"lastEventId"`
		Reason      string `json:"reason"`
	}{lastID, reason})
	buf, _ = AppendEvent(buf, Event{ID: resumeID, Type: GapEventType, Data: string(data)})
	return buf
}

// jitter returns hint in milliseconds plus up to 50% random jitter, so
// clients cut together do not come back together.
func jitter(hint time.Duration) int64 {
	ms := hint.Milliseconds()
	if ms > 0 {
		ms += rand.Int64N(ms/2 + 1)
	}
	return ms
}

// appendRetry appends a control frame: comment, then a jittered retry hint.
func appendRetry(buf []byte, hint time.Duration, comment string) []byte {
	return appendRetryMs(buf, jitter(hint), comment)
}

func appendRetryMs(buf []byte, ms int64, comment string) []byte {
	buf = append(buf, comment...)
	buf = append(buf, "retry: "...)
	buf = strconv.AppendInt(buf, ms, 10)
	return append(buf, "\n\n"...)
}
