package adaptertest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core"
)

// checkAbortedReplay: clients that ask for a replay of 1,000 events of
// 1 KiB and hang up (a TCP reset over HTTP/1, a cancelled stream over
// HTTP/2) after reading 0 to a few hundred KiB. A hang-up can land in the
// replay, in a flush or between them; whichever, the server survives, every
// connection is unregistered, and a new client is served. It is the probe
// that once crashed the hub.
func checkAbortedReplay(t *testing.T, s *suite) {
	e := s.start(t, core.Config{}, startOptions{})
	payload := strings.Repeat("r", 1<<10)
	first := publish(t, e.b, bcast, "e", payload)
	for range 999 {
		publish(t, e.b, bcast, "e", payload)
	}
	h := http.Header{}
	h.Set("Last-Event-ID", first)
	for i := range 24 {
		abort(t, e, h, i*16<<10) // 0, 16 KiB, ... 368 KiB of about 1.1 MiB
	}
	waitFor(t, "every aborted stream is unregistered", func() bool { return e.b.Stats().Connections == 0 })
	c := e.dial(t, "", h)
	c.Opened(t)
	if ev := c.Event(t); ev.Type != "e" {
		t.Fatalf("after the aborts a client is replayed %q, want event e", ev.Type)
	}
	c.Close()
}

// abort opens a replaying stream, reads n bytes of it and hangs up as
// abruptly as the protocol allows.
func abort(t *testing.T, e *env, h http.Header, n int) {
	t.Helper()
	if e.proto == 1 {
		abortTCP(t, e, h, n)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h.Clone()
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	buf := make([]byte, 32<<10)
	for read := 0; read < n; {
		m, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatalf("stream ended after %d bytes: %v", read, err)
		}
		read += m
	}
	cancel() // RST_STREAM
	_ = resp.Body.Close()
}

func abortTCP(t *testing.T, e *env, h http.Header, n int) {
	t.Helper()
	addr := strings.TrimPrefix(e.base, "http://")
	conn, err := net.DialTimeout("tcp", addr, WaitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(WaitTimeout))
	req := fmt.Sprintf("GET /events HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nLast-Event-ID: %s\r\n\r\n", addr, h.Get("Last-Event-ID"))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32<<10)
	for read := 0; read < n; {
		m, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("stream ended after %d bytes: %v", read, err)
		}
		read += m
	}
	// Linger 0: close sends a reset and drops what the server sent that
	// was not read, so the server's next write fails at once.
	_ = conn.(*net.TCPConn).SetLinger(0)
	_ = conn.Close()
}

// checkPanickingHook: an Observer hook that panics after a stream's flush
// (standing in for any bug below Serve) ends that stream only: it ends
// for the client, it is unregistered, and the server goes on serving.
func checkPanickingHook(t *testing.T, s *suite) {
	var flushes atomic.Int64
	e := s.start(t, core.Config{Observer: &core.Observer{
		Flush: func(context.Context, *core.Subscription, core.FlushInfo) {
			flushes.Add(1)
			panic("observer bug")
		},
	}}, startOptions{})
	for i := range 6 {
		c := e.dial(t, "", nil)
		c.Opened(t)
		publish(t, e.b, bcast, "e", fmt.Sprint(i))
		events, _ := c.Drain(t) // the event was written before the hook ran
		if len(events) != 1 {
			t.Fatalf("stream %d: got %d events before it ended, want 1", i, len(events))
		}
		c.Close()
	}
	waitFor(t, "streams whose hook panicked are unregistered", func() bool { return e.b.Stats().Connections == 0 })
	if n := flushes.Load(); n != 6 {
		t.Errorf("the hook ran %d times, want 6", n)
	}
}
