package main

import (
	"context"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ssekit/ssekit/core"
)

// frameRing is the reference server the burst mode measures ssekit
// against: the simplest design that does what issue 13 asks of the core.
// Each event is encoded once into a shared ring of frames; every
// connection's writer, woken on publish, writes everything from its
// cursor to the ring's head with one writev of the shared frames. No
// per-connection queue, no copy, no timer. A connection whose cursor fell
// out of the ring gets a gap event and goes on from the oldest frame held.
// IDs are the events' positions, 1, 2, ...; Last-Event-ID resumes from the
// ring. It stays small on purpose (no auth, topics or users: every event is
// a broadcast), so that what it costs is the floor the kit can be held to.
type frameRing struct {
	frames [ringSize]atomic.Pointer[ringFrame]
	head   atomic.Uint64 // ID of the newest frame; 0 before the first
	// wake is closed by the next publish: every writer waiting on it
	// wakes, like a sync.Cond's Broadcast, but without a lock that the
	// publisher would have to take against a thousand readers.
	wake   atomic.Pointer[chan struct{}]
	pubMu  sync.Mutex // orders publishers (the burst and POST /late)
	closed chan struct{}

	connMu  sync.Mutex
	conns   map[net.Conn]struct{} // hijacked, closed on shutdown
	shut    bool                  // under connMu: refuse new streams
	writers sync.WaitGroup
}

// ringFrame is one encoded event and its ID: a writer that finds another
// ID in the slot it reads knows the frame it wanted was overwritten.
type ringFrame struct {
	id uint64
	b  []byte
}

// ringSize is the reference's window: 16,384 frames, as in issue 13.
const ringSize = 16384

// maxWritev is the most frames one writev takes. A quarter of Linux's
// IOV_MAX: 256 frames already amortise the system call, while 1,024 made
// each connection keep a 24 KiB batch and a 16 KiB iovec array, which on
// burst-fanout doubled the reference's peak RSS and CPU (GC) for no gain.
const maxWritev = 256

func newFrameRing() *frameRing {
	r := &frameRing{conns: map[net.Conn]struct{}{}, closed: make(chan struct{})}
	ch := make(chan struct{})
	r.wake.Store(&ch)
	return r
}

// publish encodes one event into the ring and wakes the writers. The
// frame is a new slice every time: a writer may still be sending the one
// it replaces.
func (r *frameRing) publish(typ string, data []byte) {
	r.pubMu.Lock()
	id := r.head.Load() + 1
	f := make([]byte, 0, len(data)+len(typ)+40)
	f = append(f, "id: "...)
	f = strconv.AppendUint(f, id, 10)
	f = append(f, "\nevent: "...)
	f = append(f, typ...)
	f = append(f, "\ndata: "...)
	f = append(f, data...)
	f = append(f, "\n\n"...)
	r.frames[id%ringSize].Store(&ringFrame{id: id, b: f})
	r.head.Store(id) // after the slot: a writer that sees id finds its frame
	next := make(chan struct{})
	woken := r.wake.Swap(&next)
	r.pubMu.Unlock()
	close(*woken)
}

func (r *frameRing) connections() int {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	return len(r.conns)
}

// ServeHTTP takes the connection over from net/http (as ssekit's
// WithTakeover does), so that writev reaches the socket without a chunked
// encoder copying the frames.
func (r *frameRing) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	r.connMu.Lock()
	if r.shut {
		r.connMu.Unlock()
		conn.Close()
		return
	}
	r.conns[conn] = struct{}{}
	r.writers.Add(1)
	r.connMu.Unlock()
	defer func() {
		r.connMu.Lock()
		delete(r.conns, conn)
		r.connMu.Unlock()
		conn.Close()
		r.writers.Done()
	}()

	// The cursor is set before the response starts, so an event
	// published after the client saw its headers is never missed.
	next := r.head.Load() + 1
	if last, err := strconv.ParseUint(req.Header.Get("Last-Event-ID"), 10, 64); err == nil && last < next {
		next = last + 1
	}
	const head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n:ok\n\n"
	if _, err := conn.Write([]byte(head)); err != nil {
		return
	}
	batch := make([][]byte, 0, 64)
	for {
		wake := r.wake.Load() // before head: a publish after this closes it
		h := r.head.Load()
		if next > h {
			select {
			case <-*wake:
				continue
			case <-r.closed:
				return
			}
		}
		batch = batch[:0]
		if h >= ringSize && next <= h-ringSize {
			// Fell out of the window: say so, go on from the oldest frame.
			next = h - ringSize + 1
			batch = append(batch, strconv.AppendUint([]byte("id: "), next-1, 10),
				[]byte("\nevent: "+core.GapEventType+"\ndata: {}\n\n"))
		}
		for ; next <= h && len(batch) < maxWritev; next++ {
			f := r.frames[next%ringSize].Load()
			if f.id != next {
				// Overwritten since head was read: the next round finds
				// the cursor out of the window, once head shows it.
				break
			}
			batch = append(batch, f.b)
		}
		if len(batch) == 0 {
			runtime.Gosched() // a publisher is between its slot and head
			continue
		}
		// WriteTo consumes its own slice header; batch keeps its array.
		bufs := net.Buffers(batch)
		if _, err := bufs.WriteTo(conn); err != nil {
			return
		}
	}
}

// close ends every stream and waits for the writers to return.
func (r *frameRing) close(ctx context.Context) error {
	r.connMu.Lock()
	if !r.shut {
		close(r.closed)
	}
	r.shut = true
	for c := range r.conns {
		c.Close() // unblocks a writer stuck on a client that never reads
	}
	r.connMu.Unlock()
	done := make(chan struct{})
	go func() { r.writers.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
