package adaptertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

// WaitTimeout bounds every wait of the suite: for response headers, for an
// event, a comment or the end of a stream, for a condition to become true.
// It is generous because test machines are slow and shared; a conforming
// adapter never comes near it.
const WaitTimeout = 30 * time.Second

// Conn is one open stream as a client sees it: the response, and what the
// spec decoder (sse.NewDecoder) parses from its body, read on a goroutine
// of its own. Its methods are for the test goroutine; they fail the test
// when what they wait for does not come within WaitTimeout.
type Conn struct {
	// Resp is the response; its Body belongs to the Conn.
	Resp *http.Response

	items  chan item
	start  chan struct{} // closed when reading may begin
	done   chan struct{} // closed by Close
	exited chan struct{} // closed when the reading goroutine returns
	cancel context.CancelFunc
	once   sync.Once
	ended  bool
}

type kind int

const (
	kindEvent   kind = iota // a dispatched event
	kindComment             // a comment line
	kindState               // the decoder's position changed between reads
	kindEnd                 // the body ended (io.EOF) or failed
)

func (k kind) String() string {
	return [...]string{"an event", "a comment", "a position change", "the end of the stream"}[k]
}

type item struct {
	kind    kind
	event   sse.Event
	comment string
	lastID  string        // kindState, kindEnd: the decoder's LastEventID
	retry   time.Duration // kindState, kindEnd: the decoder's Retry
	err     error         // kindEnd
}

func (it item) String() string {
	switch it.kind {
	case kindEvent:
		return fmt.Sprintf("event id=%q type=%q data=%.80q", it.event.ID, it.event.Type, it.event.Data)
	case kindComment:
		return fmt.Sprintf("comment %q", it.comment)
	case kindState:
		return fmt.Sprintf("position id=%q retry=%v", it.lastID, it.retry)
	}
	return fmt.Sprintf("end of stream (%v)", it.err)
}

// Dial opens a stream with a GET of url and fails t unless the answer is
// 200 with Content-Type text/event-stream. It sends the headers a browser's
// EventSource sends (Accept: text/event-stream, Cache-Control: no-cache)
// plus h. The stream is closed when t ends.
func Dial(t testing.TB, c *http.Client, url string, h http.Header) *Conn {
	t.Helper()
	return dial(t, c, url, h, false)
}

// dial is Dial; paused leaves the body unread until resume is called, as
// a client that stopped reading.
func dial(t testing.TB, c *http.Client, url string, h http.Header, paused bool) *Conn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", url, err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	for k, v := range h {
		req.Header[k] = v
	}
	// The response headers must come at once: the adapter flushes them
	// with the preamble, before any event exists.
	timer := time.AfterFunc(WaitTimeout, cancel)
	resp, err := c.Do(req)
	headersInTime := timer.Stop()
	if err != nil {
		cancel()
		if !headersInTime {
			t.Fatalf("GET %s: no response headers within %v: the adapter must flush them with the preamble", url, WaitTimeout)
		}
		t.Fatalf("GET %s: %v", url, err)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || mt != "text/event-stream" {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		cancel()
		t.Fatalf("GET %s: want a 200 text/event-stream, got %d %q: %q", url, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	conn := &Conn{
		Resp:   resp,
		items:  make(chan item, 256),
		start:  make(chan struct{}),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
		cancel: cancel,
	}
	if !paused {
		close(conn.start)
	}
	go conn.read()
	t.Cleanup(conn.Close)
	return conn
}

// resume starts reading a stream dialled paused.
func (c *Conn) resume() { close(c.start) }

// Close ends the stream from the client's side, as a browser tab closing:
// it cancels the request and closes the body, and returns once the reading
// goroutine has exited. It is idempotent.
func (c *Conn) Close() {
	c.once.Do(func() {
		close(c.done)
		c.cancel()
		_ = c.Resp.Body.Close()
	})
	<-c.exited
}

// read runs the decoder and hands what it parses to the test goroutine.
func (c *Conn) read() {
	defer close(c.exited)
	select {
	case <-c.start:
	case <-c.done:
		return
	}
	hook := &hookReader{r: c.Resp.Body}
	d := sse.NewDecoder(hook)
	var lastID string
	var retry time.Duration
	// The decoder reads only when it has parsed every complete line it
	// holds, so a read is the moment its position (the last event ID and
	// the retry committed so far) can be observed, on its own goroutine.
	hook.before = func() {
		if id, r := d.LastEventID(), d.Retry(); id != lastID || r != retry {
			lastID, retry = id, r
			c.send(item{kind: kindState, lastID: id, retry: r})
		}
	}
	d.OnComment = func(text string) { c.send(item{kind: kindComment, comment: text}) }
	for {
		ev, err := d.Next()
		if err != nil {
			c.send(item{kind: kindEnd, err: err, lastID: d.LastEventID(), retry: d.Retry()})
			return
		}
		if !c.send(item{kind: kindEvent, event: ev}) {
			return
		}
	}
}

func (c *Conn) send(it item) bool {
	select {
	case c.items <- it:
		return true
	case <-c.done:
		return false
	}
}

type hookReader struct {
	r      io.Reader
	before func()
}

func (h *hookReader) Read(p []byte) (int, error) {
	h.before()
	return h.r.Read(p)
}

// next returns what the stream parses next, within timeout.
func (c *Conn) next(t testing.TB, timeout time.Duration, waitingFor string) item {
	t.Helper()
	if c.ended {
		t.Fatalf("waiting for %s: the stream has already ended", waitingFor)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case it := <-c.items:
		if it.kind == kindEnd {
			c.ended = true
		}
		return it
	case <-timer.C:
		t.Fatalf("waiting for %s: nothing within %v", waitingFor, timeout)
		panic("unreachable")
	}
}

// Opened waits for the opening comment of the preamble (": ok"), which
// Serve writes and the adapter must flush as soon as the stream is
// registered. Comments before it are skipped.
func (c *Conn) Opened(t testing.TB) {
	t.Helper()
	c.Comment(t, "ok")
}

// Position waits until the stream has committed a last event ID without
// dispatching anything, as the preamble does, and returns it with the
// retry set so far. It fails on an event.
func (c *Conn) Position(t testing.TB) (lastID string, retry time.Duration) {
	t.Helper()
	for {
		it := c.next(t, WaitTimeout, "the stream's position")
		switch it.kind {
		case kindState:
			if it.lastID != "" {
				return it.lastID, it.retry
			}
		case kindComment:
		default:
			t.Fatalf("waiting for the stream's position: got %v", it)
		}
	}
}

// Event returns the next dispatched event, skipping comments.
func (c *Conn) Event(t testing.TB) sse.Event {
	t.Helper()
	for {
		it := c.next(t, WaitTimeout, "an event")
		switch it.kind {
		case kindEvent:
			return it.event
		case kindEnd:
			t.Fatalf("waiting for an event: got %v", it)
		}
	}
}

// Comment waits for a comment line with this text (the heartbeat ":" has
// text ""), skipping other comments. It fails on an event or the end of
// the stream.
func (c *Conn) Comment(t testing.TB, text string) {
	t.Helper()
	for {
		it := c.next(t, WaitTimeout, fmt.Sprintf("comment %q", text))
		switch it.kind {
		case kindComment:
			if it.comment == text {
				return
			}
		case kindState:
		default:
			t.Fatalf("waiting for comment %q: got %v", text, it)
		}
	}
}

// End waits for the end of the stream, skipping comments, and returns the
// client's position then: the Last-Event-ID and retry a browser would
// reconnect with, and the error that ended the body (io.EOF for a clean
// end). It fails on an event.
func (c *Conn) End(t testing.TB) (lastID string, retry time.Duration, err error) {
	t.Helper()
	for {
		it := c.next(t, WaitTimeout, "the end of the stream")
		switch it.kind {
		case kindEnd:
			return it.lastID, it.retry, it.err
		case kindEvent:
			t.Fatalf("waiting for the end of the stream: got %v", it)
		}
	}
}

// Drain returns the events left in the stream and the error that ended it.
func (c *Conn) Drain(t testing.TB) ([]sse.Event, error) {
	t.Helper()
	var events []sse.Event
	for {
		it := c.next(t, WaitTimeout, "the end of the stream")
		switch it.kind {
		case kindEvent:
			events = append(events, it.event)
		case kindEnd:
			return events, it.err
		}
	}
}

// Quiet checks that the stream stays open for d without dispatching an
// event; comments (heartbeats) are allowed.
func (c *Conn) Quiet(t testing.TB, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		timer := time.NewTimer(left)
		select {
		case it := <-c.items:
			timer.Stop()
			switch it.kind {
			case kindEvent:
				t.Fatalf("stream should be quiet: got %v", it)
			case kindEnd:
				c.ended = true
				t.Fatalf("stream ended after %v, before %v: got %v", d-left, d, it)
			}
		case <-timer.C:
			return
		}
	}
}

// isEOF reports a clean end of a stream.
func isEOF(err error) bool { return errors.Is(err, io.EOF) }
