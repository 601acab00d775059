package chaos

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
)

// Events of the replay and flush attacks: about 1 MiB in all, the load
// that crashed the hub when a client hung up during replay (issue 14).
const (
	burstEvents = 1000
	eventSize   = 1 << 10
)

// abortAfter are the bytes a client reads before it resets: nothing (gone
// before the hub answers), inside the head, inside the first events, and
// deep into the replay or flush.
var abortAfter = []int{0, 40, 300, 2 << 10, 9 << 10, 33 << 10, 100 << 10, 400 << 10}

// TestAbortedReplays: clients ask for a replay of a 1 MiB backlog and
// reset their connection at every stage of it, 300 times, with and
// without connection take-over. The hub stays up, unregisters every one
// of them, and still replays in full to a client that reads.
func TestAbortedReplays(t *testing.T) {
	for _, mode := range []struct{ name, flag string }{{"takeover", "-takeover=true"}, {"standard", "-takeover=false"}} {
		t.Run(mode.name, func(t *testing.T) {
			h := startHub(t, mode.flag)
			base := h.baseline()
			ids := h.publish(burstEvents, eventSize)
			var out counter
			parallel(300, 30, func(i int) {
				c, err := dial(h.addr)
				if err != nil {
					out.add("dial error")
					return
				}
				defer reset(c)
				if _, err := io.WriteString(c, streamRequest("user="+uuid.NewString(), ids[0])); err != nil {
					out.add("write error")
					return
				}
				if n := abortAfter[i%len(abortAfter)]; n > 0 {
					if _, err := io.ReadFull(c, make([]byte, n)); err != nil {
						out.add("cut short")
						return
					}
				}
				out.add("reset")
			})
			t.Logf("aborted replays: %v", &out)
			h.requireAlive()
			readReplay(t, h, ids)
			h.settle(base)
		})
	}
}

// readReplay checks that a client reading a replay from the first ID
// gets every later event, in order.
func readReplay(t *testing.T, h *hubProc, ids []string) {
	t.Helper()
	c, res, err := openStream(h.addr, "", ids[0])
	if err != nil {
		h.requireAlive()
		require.NoError(t, err, "replay after the attack")
	}
	defer c.Close()
	dec := core.NewDecoder(res.Body)
	for _, want := range ids[1:] {
		var ev core.Event
		for ev.ID == "" {
			ev, err = dec.Next()
			require.NoError(t, err, "replay after the attack: waiting for %s", want)
			require.False(t, strings.HasPrefix(ev.Type, "ssekit."), "replay after the attack: %s event instead of %s", ev.Type, want)
		}
		require.Equal(t, want, ev.ID, "replay after the attack: got ID %s, want %s", ev.ID, want)
	}
}

// TestAbortedFlushes: 200 live streams are reset while the hub flushes a
// 1 MiB burst to them, each at a different point of it.
func TestAbortedFlushes(t *testing.T) {
	h := startHub(t)
	base := h.baseline()
	var out counter
	for round := range 2 {
		const streams = 100
		var (
			mu   sync.Mutex
			live []int
		)
		conns := make([]*streamConn, streams)
		parallel(streams, 25, func(i int) {
			c, res, err := openStream(h.addr, "user="+uuid.NewString(), "")
			if err != nil {
				out.add("open error")
				return
			}
			conns[i] = &streamConn{c: c, body: res.Body}
			mu.Lock()
			live = append(live, i)
			mu.Unlock()
		})
		if len(live) < streams {
			h.requireAlive()
			require.FailNow(t, fmt.Sprintf("round %d: only %d of %d streams opened (%v)", round, len(live), streams, &out))
		}
		published := make(chan error, 1)
		go func() { _, err := publishBatch(h.addr, burstEvents, eventSize); published <- err }()
		parallel(streams, streams, func(i int) {
			sc := conns[i]
			defer reset(sc.c)
			if n := abortAfter[(i+round)%len(abortAfter)]; n > 0 {
				if _, err := io.ReadFull(sc.body, make([]byte, n)); err != nil {
					out.add("cut short")
					return
				}
			}
			out.add("reset")
		})
		if err := <-published; err != nil {
			h.requireAlive()
			require.NoError(t, err, "round %d", round)
		}
	}
	t.Logf("aborted flushes: %v", &out)
	h.settle(base)
}

// TestTricklingBodies: 300 publishers send their bodies a byte at a time
// (never finishing), a third of them without credentials, while others
// keep trickling their headers. Each gets its answer without the hub
// waiting for the body: 401 at once without credentials, 503 at once
// over -max-publishing, 408 when -body-timeout fires. Streams and
// /healthz are served throughout.
func TestTricklingBodies(t *testing.T) {
	h := startHub(t)
	base := h.baseline()

	// Slow headers: held by the hub's header timeout, closed by us.
	var slowHeaders []*net.TCPConn
	for range 50 {
		c, err := dial(h.addr)
		require.NoError(t, err)
		_, _ = io.WriteString(c, "POST /publish HTTP/1.1\r\nHost: hub\r\nX-Slow: ")
		slowHeaders = append(slowHeaders, c)
	}
	defer func() {
		for _, c := range slowHeaders {
			c.Close()
		}
	}()

	var (
		out      counter
		started  sync.WaitGroup
		answered sync.WaitGroup
	)
	const tricklers = 300
	started.Add(tricklers)
	answered.Add(tricklers)
	for i := range tricklers {
		go func() {
			defer answered.Done()
			c, err := dial(h.addr)
			if err != nil {
				out.add("dial error")
				started.Done()
				return
			}
			defer c.Close()
			auth := ""
			if i%3 != 0 {
				auth = "Authorization: Bearer " + publishSecret + "\r\n"
			}
			_, err = fmt.Fprintf(c, "POST /publish HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n%sContent-Length: 10000\r\n\r\n[", auth)
			started.Done()
			if err != nil {
				out.add("write error")
				return
			}
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				// One byte every 200 ms: the body never completes.
				tick := time.NewTicker(200 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := c.Write([]byte(" ")); err != nil {
							return
						}
					}
				}
			}()
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				out.add("no answer: " + err.Error())
				return
			}
			res.Body.Close()
			out.add(fmt.Sprintf("%s %d", map[bool]string{true: "anonymous", false: "with secret"}[auth == ""], res.StatusCode))
		}()
	}
	started.Wait()

	// While the publishers misbehave, streams open and /healthz answers.
	for i := range 10 {
		c, _, err := openStream(h.addr, "user="+uuid.NewString(), "")
		if err != nil {
			h.requireAlive()
			require.NoError(t, err, "stream %d while bodies trickle", i)
		}
		c.Close()
		_, err = h.get("/healthz")
		require.NoError(t, err, "/healthz while bodies trickle")
	}
	answered.Wait()
	t.Logf("trickling bodies: %v", &out)
	anonymous := tricklers / 3
	got := out.get("anonymous 401")
	assert.Equal(t, anonymous, got, "%d of %d anonymous tricklers got 401 (%v)", got, anonymous, &out)
	got = out.get("with secret 408") + out.get("with secret 503")
	assert.Equal(t, tricklers-anonymous, got, "%d of %d authenticated tricklers got 408 or 503 (%v)", got, tricklers-anonymous, &out)
	assert.NotEqual(t, 0, out.get("with secret 503"), "no trickler was refused at -max-publishing (%v)", &out)
	for _, c := range slowHeaders {
		c.Close()
	}
	h.settle(base)
}

// TestChurn: 600 streams open and end, half politely, half with a reset,
// and 200 connections come and go without a request.
func TestChurn(t *testing.T) {
	h := startHub(t)
	base := h.baseline()
	var out counter
	parallel(800, 30, func(i int) {
		if i%4 == 3 {
			c, err := dial(h.addr)
			if err != nil {
				out.add("dial error")
				return
			}
			if i%8 == 3 {
				reset(c)
			} else {
				c.Close()
			}
			out.add("bare connection")
			return
		}
		c, res, err := openStream(h.addr, fmt.Sprintf("user=%s&topic=t%d", uuid.NewString(), i%7), "")
		if err != nil {
			out.add("open error")
			return
		}
		_, _ = res.Body.Read(make([]byte, 64)) // the preamble
		if i%2 == 0 {
			reset(c)
		} else {
			c.Close()
		}
		out.add("stream")
	})
	t.Logf("churn: %v", &out)
	if out.get("open error") > 0 || out.get("dial error") > 0 {
		h.requireAlive()
		assert.Fail(t, fmt.Sprintf("the hub refused churning clients: %v", &out))
	}
	h.settle(base)
}

// TestNeverReaders: 50 streams that never read while 2 MiB is broadcast
// to them do not stop the hub from serving a stream that reads, /healthz
// or publishers; then they vanish with a reset.
func TestNeverReaders(t *testing.T) {
	h := startHub(t)
	base := h.baseline()
	var stuck []*streamConn
	for range 50 {
		c, err := dial(h.addr)
		require.NoError(t, err)
		_ = c.SetReadBuffer(4 << 10)
		_, err = io.WriteString(c, streamRequest("user="+uuid.NewString(), ""))
		require.NoError(t, err)
		stuck = append(stuck, &streamConn{c: c})
	}
	defer func() {
		for _, s := range stuck {
			reset(s.c)
		}
	}()
	reader, res, err := openStream(h.addr, "user="+uuid.NewString(), "")
	require.NoError(t, err)
	defer reader.Close()
	dec := core.NewDecoder(res.Body)
	var ids []string
	for range 2 {
		ids = append(ids, h.publish(burstEvents, eventSize)...)
	}
	for _, want := range ids {
		var ev core.Event
		for ev.ID == "" {
			if ev, err = dec.Next(); err != nil {
				h.requireAlive()
				require.NoError(t, err, "the reading stream, waiting for %s", want)
			}
		}
		require.Equal(t, want, ev.ID, "the reading stream got %s (%s), want %s", ev.ID, ev.Type, want)
	}
	_, err = h.get("/healthz")
	require.NoError(t, err, "/healthz beside never-readers")
	for _, s := range stuck {
		reset(s.c)
	}
	stuck = nil
	reader.Close()
	h.settle(base)
}

// TestOversized: headers, URLs and bodies over the hub's limits, 350 of
// them, are refused with the right status, without the hub reading what
// it will not use.
func TestOversized(t *testing.T) {
	h := startHub(t)
	base := h.baseline()
	big := strings.Repeat("a", 100<<10)
	single := `{"broadcast":true,"event":"e","data":"` + strings.Repeat("x", 300<<10) + `"}`
	secret := "Authorization: Bearer " + publishSecret + "\r\n"
	attacks := []struct {
		name, request string
		status        int
	}{
		{"stream header", "GET /events HTTP/1.1\r\nHost: hub\r\nX-Big: " + big + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"publish header", "POST /publish HTTP/1.1\r\nHost: hub\r\nX-Big: " + big + "\r\nContent-Length: 2\r\n\r\n{}", http.StatusRequestHeaderFieldsTooLarge},
		{"URL", "GET /events?topic=" + big + " HTTP/1.1\r\nHost: hub\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"Last-Event-ID", "GET /online HTTP/1.1\r\nHost: hub\r\nLast-Event-ID: " + big + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
		{"body", "POST /publish HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n" + secret + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(single)) + single, http.StatusRequestEntityTooLarge},
		{"body declared 64 MiB, never finished", "POST /publish HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n" + secret + "Content-Length: 67108864\r\n\r\n" + single, http.StatusRequestEntityTooLarge},
		{"chunked body", "POST /publish HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n" + secret + "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n%s\r\n", len(single), single), http.StatusRequestEntityTooLarge},
	}
	var out counter
	parallel(350, 20, func(i int) {
		a := attacks[i%len(attacks)]
		c, err := dial(h.addr)
		if err != nil {
			out.add("dial error")
			return
		}
		defer c.Close()
		// The request is written while the answer is read: the hub may
		// answer (and close) before it has taken all of it.
		go func() { _, _ = io.WriteString(c, a.request) }()
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			out.add(a.name + ": no answer")
			return
		}
		res.Body.Close()
		if res.StatusCode != a.status {
			out.add(fmt.Sprintf("%s: %d", a.name, res.StatusCode))
			return
		}
		out.add("refused")
	})
	t.Logf("oversized: %v", &out)
	if got := out.get("refused"); got != 350 {
		h.requireAlive()
		assert.Fail(t, fmt.Sprintf("%d of 350 oversized requests got their status: %v", got, &out))
	}
	h.settle(base)
}

// streamConn is a stream's connection and its body once the head is read.
type streamConn struct {
	c    *net.TCPConn
	body io.Reader
}
