package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/ssekit/ssekit/client"
	"github.com/ssekit/ssekit/core"
)

// Event types the tool publishes: the workload's events, and the one event
// the late joiner waits for.
const (
	eventType = "loadtest"
	lateType  = "loadtest.late"
	lateTopic = "loadtest-late"
)

// subscriber is one reading SSE connection, a client.Client that
// reconnects the way a browser does (the server's retry hint, then
// Last-Event-ID), and its account of what it received.
type subscriber struct {
	url    string
	events int // sequence numbers run from 1 to events

	opened   chan struct{} // closed when the first stream opened
	openOnce sync.Once
	done     chan struct{}

	unique     atomic.Int64 // distinct sequence numbers received
	lastRecv   atomic.Int64 // unix nanos of the last new event
	reconnects atomic.Int64

	// Written by the subscriber's goroutine only; read after done.
	seen       []uint64 // bitmap of received sequence numbers
	lastSeq    int
	dups       int64
	jumps      int64 // the stream skipped ahead (seq > previous + 1)
	outOfOrder int64 // a sequence number below one already received
	serverGaps int64 // core.GapEventType events
	unexpected int64 // events that are not this run's
	lat        []int64
	reasons    map[string]int // why streams ended, for the report
	err        error          // why Events gave up, if it did

	// The late joiner's event.
	lateAt chan time.Duration
	// pause, when set, stops reading after event pauseAt until it is
	// closed (once).
	pause   <-chan struct{}
	pauseAt int
	paused  bool
}

func newSubscriber(base, tenant string, topics []string, events int) (*subscriber, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	q := u.Query()
	q.Set("user", uuid.NewString())
	if tenant != "" {
		q.Set("tenant", tenant)
	}
	for _, t := range topics {
		q.Add("topic", t)
	}
	u.RawQuery = q.Encode()
	return &subscriber{
		url:     u.String(),
		events:  events,
		opened:  make(chan struct{}),
		done:    make(chan struct{}),
		seen:    make([]uint64, events/64+1),
		lat:     make([]int64, 0, events),
		reasons: map[string]int{},
		lateAt:  make(chan time.Duration, 1),
	}, nil
}

// run reads the stream until ctx is done. sem bounds connection attempts
// in flight: the slot is held until the first attempt opened or failed.
func (s *subscriber) run(ctx context.Context, hc *http.Client, sem chan struct{}) {
	defer close(s.done)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	held := true
	release := func() {
		if held {
			held = false
			<-sem
		}
	}
	defer release()
	c, err := client.New(s.url,
		client.WithHTTPClient(hc),
		// Callbacks run on this goroutine, so release needs no lock.
		client.WithOnState(func(st client.State) {
			switch st {
			case client.Open:
				s.openOnce.Do(func() { close(s.opened) })
				release()
			case client.Reconnecting:
				release()
			}
		}),
		client.WithOnRetry(func(err error, _ time.Duration) {
			s.reconnects.Add(1)
			s.reasons[reason(err)]++
		}),
	)
	if err != nil {
		s.err = err
		return
	}
	for ev, err := range c.Events(ctx) {
		if err != nil {
			s.err = err
			return
		}
		now := time.Now().UnixNano()
		switch ev.Type {
		case eventType:
			seq := s.record(ev.Data, now)
			if s.pause != nil && !s.paused && seq >= s.pauseAt {
				// Stop reading: the socket fills up, then the queue.
				s.paused = true
				select {
				case <-s.pause:
				case <-ctx.Done():
				}
			}
		case lateType:
			if _, ts, ok := parsePayload(ev.Data); ok {
				select {
				case s.lateAt <- time.Duration(now - ts):
				default:
				}
			}
		case core.GapEventType:
			s.serverGaps++
		default:
			s.unexpected++
		}
	}
}

// record accounts for one event and returns its sequence number.
func (s *subscriber) record(data string, now int64) int {
	seq, ts, ok := parsePayload(data)
	if !ok || seq < 1 || seq > s.events {
		s.unexpected++
		return 0
	}
	w, bit := (seq-1)/64, uint64(1)<<((seq-1)%64)
	if s.seen[w]&bit != 0 {
		s.dups++
		return seq
	}
	s.seen[w] |= bit
	switch {
	case seq < s.lastSeq:
		s.outOfOrder++
	case seq > s.lastSeq+1:
		s.jumps++
	}
	s.lastSeq = max(s.lastSeq, seq)
	s.lat = append(s.lat, now-ts)
	s.lastRecv.Store(now)
	s.unique.Add(1)
	return seq
}

// has reports whether sequence number seq was received.
func (s *subscriber) has(seq int) bool {
	return s.seen[(seq-1)/64]&(uint64(1)<<((seq-1)%64)) != 0
}

// payload is the event data: "<seq> <unix nanos at publish> <padding>".
func appendPayload(dst []byte, seq int, ts int64, size int) []byte {
	start := len(dst)
	dst = strconv.AppendInt(dst, int64(seq), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, ts, 10)
	if n := size - (len(dst) - start); n > 1 {
		dst = append(dst, ' ')
		for range n - 1 {
			dst = append(dst, 'x')
		}
	}
	return dst
}

func parsePayload(data string) (seq int, ts int64, ok bool) {
	a, rest, ok1 := strings.Cut(data, " ")
	b, _, _ := strings.Cut(rest, " ")
	n, err1 := strconv.Atoi(a)
	t, err2 := strconv.ParseInt(b, 10, 64)
	if !ok1 || err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return n, t, true
}

// reason names why a stream ended or an attempt failed, in a few words
// that add up across subscribers.
func reason(err error) string {
	var se *client.StatusError
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, io.EOF):
		return "server ended the stream"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "stream cut mid-event"
	case errors.As(err, &se):
		return fmt.Sprintf("status %d", se.Code)
	case errors.Is(err, client.ErrRejected):
		return "rejected at a limit"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}
