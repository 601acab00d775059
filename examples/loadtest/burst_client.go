package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssekit/ssekit/core"
)

// streamClient is the burst mode's subscriber: a plain HTTP/1.1 stream
// read with a small hand-written SSE parser, so that the same client, at
// the same cost, reads ssekit and the reference server. (The client
// package allocates per event; with millions of deliveries on a
// two-core machine its cost would be part of what is measured.) It
// reconnects with Last-Event-ID whenever its stream ends, after the
// server's retry hint, as a browser does. Throttled (rate > 0), it reads
// at most rate bytes/s: a slow reader on a slow link.
type streamClient struct {
	class  string
	target *url.URL
	events int     // burst sequence numbers run from 1 to events
	rate   float64 // bytes/s; 0: as fast as it can

	opened   chan struct{} // closed when the first stream opened
	openOnce sync.Once
	done     chan struct{}
	lateAt   chan time.Duration // the late event's latency

	unique     atomic.Int64 // distinct sequence numbers received
	lastRecv   atomic.Int64 // unix nanos of the last new event
	reconnects atomic.Int64
	// between is true while the client waits to reconnect: the burst
	// mode does not call a run quiet while a client may still come back
	// and be replayed.
	between atomic.Bool

	// Written by the client's goroutine only; read after done.
	seen       []uint64 // bitmap: which sequence numbers arrived
	lastSeq    int
	dups       int64
	skips      int64 // the stream jumped ahead (seq > previous + 1)
	outOfOrder int64
	gapEvents  int64 // core.GapEventType: the server says events were lost
	unexpected int64
	lastID     []byte // Last-Event-ID for the next connection
	retry      time.Duration
	reasons    map[string]int

	// Parser scratch, reused for every event.
	idBuf, typBuf, dataBuf []byte
}

func newStreamClient(class, stream string, query url.Values, events int, rate float64) (*streamClient, error) {
	u, err := url.Parse(stream)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("the burst mode's client speaks plain HTTP/1.1, got %s", u.Scheme)
	}
	u.RawQuery = query.Encode()
	return &streamClient{
		class:   class,
		target:  u,
		events:  events,
		rate:    rate,
		opened:  make(chan struct{}),
		done:    make(chan struct{}),
		lateAt:  make(chan time.Duration, 1),
		seen:    make([]uint64, events/64+1),
		retry:   time.Second, // until the server sends its own hint
		reasons: map[string]int{},
	}, nil
}

// maxRetry bounds the wait between streams, whatever the server asks.
const maxRetry = 10 * time.Second

// run reads streams until ctx ends. sem bounds connection attempts in
// flight: the slot is held until the first stream opened or failed.
func (c *streamClient) run(ctx context.Context, sem chan struct{}) {
	defer close(c.done)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	release := sync.OnceFunc(func() { <-sem })
	defer release()
	for {
		err := c.stream(ctx, release)
		release()
		if ctx.Err() != nil {
			return
		}
		c.reasons[reason(err)]++
		c.reconnects.Add(1)
		c.between.Store(true)
		ok := sleepFor(ctx, min(c.retry, maxRetry))
		c.between.Store(false)
		if !ok {
			return
		}
	}
}

// stream runs one connection until it ends.
func (c *streamClient) stream(ctx context.Context, opened func()) error {
	d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
	conn, err := d.DialContext(ctx, "tcp", c.target.Host)
	if err != nil {
		return err
	}
	defer conn.Close()
	// Reads block until the server writes; ending the run must end them.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	req := make([]byte, 0, 256)
	req = fmt.Appendf(req, "GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n",
		c.target.RequestURI(), c.target.Host)
	if len(c.lastID) > 0 {
		req = fmt.Appendf(req, "Last-Event-ID: %s\r\n", c.lastID)
	}
	req = append(req, "\r\n"...)
	if _, err := conn.Write(req); err != nil {
		return err
	}
	var r io.Reader = conn
	if c.rate > 0 {
		// Throttle the socket itself: what the client does not read stays
		// in the kernel's buffers and backs up into the server.
		r = &throttledReader{r: conn, rate: c.rate, start: time.Now()}
	}
	resp, err := http.ReadResponse(bufio.NewReaderSize(r, 16<<10), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	c.openOnce.Do(func() { close(c.opened) })
	opened()
	return c.parse(bufio.NewReaderSize(resp.Body, 64<<10))
}

// parse reads SSE events until the stream ends. It keeps to what the two
// servers send (single-line fields, LF or CRLF line ends) and allocates
// nothing per event.
func (c *streamClient) parse(br *bufio.Reader) error {
	hasData := false
	c.typBuf, c.dataBuf = c.typBuf[:0], c.dataBuf[:0]
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return errors.New("line longer than 64 KiB")
			}
			return err // io.EOF: the server ended the stream
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte{'\n'}), []byte{'\r'})
		if len(line) == 0 {
			// Dispatch. The spec makes the ID stick even to an event with
			// no data; it is what the next connection asks to resume from.
			c.lastID = append(c.lastID[:0], c.idBuf...)
			if hasData {
				c.dispatch(time.Now().UnixNano())
			}
			hasData = false
			c.typBuf, c.dataBuf = c.typBuf[:0], c.dataBuf[:0]
			continue
		}
		if line[0] == ':' {
			continue // comment: preamble or heartbeat
		}
		field, value, _ := bytes.Cut(line, []byte{':'})
		value = bytes.TrimPrefix(value, []byte{' '})
		switch string(field) { // no allocation: the compiler compares in place
		case "id":
			c.idBuf = append(c.idBuf[:0], value...)
		case "event":
			c.typBuf = append(c.typBuf[:0], value...)
		case "data":
			if hasData {
				c.dataBuf = append(c.dataBuf, '\n')
			}
			c.dataBuf = append(c.dataBuf, value...)
			hasData = true
		case "retry":
			if ms, err := strconv.Atoi(string(value)); err == nil && ms >= 0 {
				c.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}

func (c *streamClient) dispatch(now int64) {
	switch string(c.typBuf) {
	case eventType:
		seq, _, ok := parseSeq(c.dataBuf)
		if !ok {
			c.unexpected++
			return
		}
		c.record(seq, now)
	case lateType:
		if _, ts, ok := parseSeq(c.dataBuf); ok {
			select {
			case c.lateAt <- time.Duration(now - ts):
			default:
			}
		}
	case core.GapEventType:
		c.gapEvents++
	default:
		c.unexpected++
	}
}

// record accounts for burst event seq.
func (c *streamClient) record(seq int, now int64) {
	if seq < 1 || seq > c.events {
		c.unexpected++
		return
	}
	w, bit := (seq-1)/64, uint64(1)<<((seq-1)%64)
	if c.seen[w]&bit != 0 {
		c.dups++
		return
	}
	c.seen[w] |= bit
	switch {
	case seq < c.lastSeq:
		c.outOfOrder++
	case seq > c.lastSeq+1:
		c.skips++
	}
	c.lastSeq = max(c.lastSeq, seq)
	c.lastRecv.Store(now)
	c.unique.Add(1)
}

// parseSeq reads "<seq> <unix nanos> ..." (appendPayload) without
// allocating.
func parseSeq(data []byte) (seq int, ts int64, ok bool) {
	num := func(b []byte) (int64, []byte, bool) {
		var n int64
		i := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			n = n*10 + int64(b[i]-'0')
		}
		return n, b[i:], i > 0 && i < 20
	}
	s, rest, ok1 := num(data)
	if !ok1 || len(rest) == 0 || rest[0] != ' ' {
		return 0, 0, false
	}
	t, rest, ok2 := num(rest[1:])
	if !ok2 || len(rest) > 0 && rest[0] != ' ' {
		return 0, 0, false
	}
	return int(s), t, true
}

// throttledReader reads at most rate bytes per second on average.
type throttledReader struct {
	r     io.Reader
	rate  float64
	start time.Time
	n     int64
}

// throttleChunk bounds one read, so the pace stays even (at 1 MiB/s, a
// read every 16 ms) instead of a large read followed by a long sleep.
const throttleChunk = 16 << 10

func (t *throttledReader) Read(p []byte) (int, error) {
	if len(p) > throttleChunk {
		p = p[:throttleChunk]
	}
	due := t.start.Add(time.Duration(float64(t.n) / t.rate * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		time.Sleep(d) // at most one chunk's worth: bounded
	}
	n, err := t.r.Read(p)
	t.n += int64(n)
	return n, err
}
