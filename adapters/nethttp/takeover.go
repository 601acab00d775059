package nethttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ssekit/ssekit/core"
)

// WithTakeover serves each accepted HTTP/1.x stream on a connection taken
// over from net/http, to hold many idle streams cheaply.
//
// What: once Connect has accepted the stream (CORS, the method check and
// every refusal happen exactly as without the option), the handler hijacks
// the connection, writes the response head itself and returns. A goroutine
// then runs core.Broker.Serve straight on the socket: every write of the
// loop is one writev of the broker's shared frames, in a body that ends
// when the connection closes (no chunked encoding, as on the ordinary
// path; see Handler). A second, small goroutine waits on a read of the connection and
// ends the stream when the client closes it, or sends anything (a client
// has nothing to send on an SSE stream). The connection is closed when the
// stream ends; the head says "Connection: close".
//
// Why: an ordinary handler keeps net/http's per-request machinery alive for
// as long as the stream lasts: the request, its buffered reader and
// writers, the chunking buffer and the handler's grown stack. Taking the
// connection over roughly halves the memory of an idle stream, and each
// batch is one writev of the broker's shared frames instead of a staged
// copy and up to three writes (figures: docs/BENCHMARKS.md).
//
// What take-over gives up, besides net/http's per-request machinery:
//   - Keep-alive: the connection carries this one stream and is closed when
//     it ends (the head says "Connection: close"); the client's next
//     request, its reconnect included, opens a new connection.
//   - http.Server.Shutdown's view of the connection: Shutdown does not wait
//     for, nor close, hijacked connections, and http.Server.Close does not
//     close them either. End them with this package's Shutdown or with
//     core.Broker.Close: the broker ends every stream with its reconnect
//     hint and returns once the taken-over connections are closed (the
//     stream is an io.Closer, which Serve closes before it unregisters).
//     http.Server.ConnState reports the connection as StateHijacked, its
//     last state: tools that count connections by state stop seeing it.
//   - Work that ends when the handler returns: the handler returns as soon
//     as the stream is accepted, so middleware that measures the request
//     (an OpenTelemetry otelhttp span, an access log's duration, a
//     status recorder or byte counter on the ResponseWriter) sees a request
//     that ended at once, with no WriteHeader and no bytes: the stream is
//     written to the connection, beneath every wrapper. The stream's
//     context keeps the request context's values (for Observers) but not
//     its cancellation, which net/http fires when the handler returns.
//   - The server's ReadTimeout and WriteTimeout no longer apply to the
//     stream (they would cut it; the ordinary path lifts WriteTimeout
//     too); Serve bounds each write by core.Config.ClientTimeout.
//   - A client that sends anything after its request (which net/http would
//     ignore) loses its stream.
//
// Take-over declines, and the stream is served the ordinary way, silently,
// whenever it could not be written as net/http would write it: on HTTP/2
// connections, for requests with a body, when the ResponseWriter hides
// Hijack and does not Unwrap, and when the response already carries a
// header the hand-written writer does not honour: Content-Encoding (a
// compression middleware in front, such as gin-contrib/gzip, has set it
// and expects to compress the body through its writer, which take-over
// would bypass), or declared trailers (which the middleware would set after
// a body it never sees). Headers set on w.Header() before the handler runs
// that it honours (CORS, Vary, cookies, ...) are sent in the head; framing
// headers (Content-Length, Transfer-Encoding, Connection) are replaced by
// the stream's own, as the ordinary path could not honour them either.
func WithTakeover() Option {
	return func(o *config) { o.takeover = true }
}

// honoured reports whether the hand-written writer can send a response
// with hdr as net/http would: nothing in it asks for a transformation of
// the body (Content-Encoding) that only the middleware's writer performs,
// nor announces trailers, which only net/http's writer sends.
func honoured(hdr http.Header) bool {
	for k, v := range hdr {
		ck := http.CanonicalHeaderKey(k)
		switch {
		case ck == "Content-Encoding":
			for _, e := range v {
				if e != "" && !strings.EqualFold(e, "identity") {
					return false
				}
			}
		case ck == "Trailer", strings.HasPrefix(ck, http.TrailerPrefix):
			return false
		}
	}
	return true
}

// canTakeOver reports whether r is a candidate: HTTP/1.x, where Hijack
// exists, and no body, whose bytes would otherwise read as the client
// talking on the stream.
func canTakeOver(r *http.Request) bool {
	return r.ProtoMajor == 1 && r.ContentLength == 0
}

// takeOver hijacks the connection of the accepted stream sub and serves it
// on goroutines of its own. It reports false, with nothing done, when w
// cannot be hijacked: the caller then serves the stream the ordinary way.
func (h *StreamHandler) takeOver(w http.ResponseWriter, r *http.Request, sub *core.Subscription) bool {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if errors.Is(err, http.ErrNotSupported) {
		return false
	}
	if err != nil {
		h.log(fmt.Errorf("ssekit/nethttp: take over the connection: %w", err))
		sub.Close()
		return true
	}
	// Hijack clears the deadlines today; clearing them here keeps the
	// server's ReadTimeout and WriteTimeout off the stream whatever it
	// does. Serve bounds every write with a deadline of its own.
	_ = conn.SetDeadline(time.Time{})
	// Not the request's context: net/http cancels that when this handler
	// returns. Only the client (the read goroutine) or the end of Serve
	// cancels this one.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	s := &takenStream{
		conn:     conn,
		ctx:      ctx,
		head:     appendHead(r.ProtoAtLeast(1, 1), w.Header()),
		vectored: isVectored(conn),
	}
	readDone := make(chan struct{})
	if brw.Reader.Buffered() > 0 {
		// The client sent more than its request (a pipelined request,
		// say): it is not an EventSource; end the stream at once.
		cancel()
		close(readDone)
	} else {
		go watch(conn, cancel, readDone)
	}
	go h.serveTakenOver(ctx, cancel, sub, s, readDone)
	// Returning now is the point: net/http frees the request, its
	// buffers and this goroutine (brw is dropped with them).
	return true
}

// serveTakenOver is the writer goroutine: the stream's write loop, which
// ends the body and closes the connection (takenStream.Close) before
// Broker.Close may return.
func (h *StreamHandler) serveTakenOver(ctx context.Context, cancel context.CancelFunc, sub *core.Subscription,
	s *takenStream, readDone <-chan struct{}) {
	if err := h.broker.Serve(ctx, sub, s); err != nil { // which closes s
		h.log(err)
	}
	cancel()
	<-readDone
}

// watch blocks in a read of the connection until the client closes it (or
// the writer does), and ends the stream. A byte that arrives is the client
// talking on a stream it should only read: that ends it too. net/http's
// own background read does this job for an ordinary handler.
func watch(conn net.Conn, cancel context.CancelFunc, done chan<- struct{}) {
	defer close(done)
	var one [1]byte
	_, _ = conn.Read(one[:])
	cancel()
}

// takenStream is the body of a taken-over response, written straight to
// the connection: the core.Stream (and core.WriteDeadliner) Serve writes.
type takenStream struct {
	conn     net.Conn
	ctx      context.Context // done when the client has gone
	head     []byte          // the response head, sent with the first write
	vectored bool            // conn writes net.Buffers with one writev
	broken   bool            // a write failed: the body may end mid-event
	bufs     [4][]byte
	v        net.Buffers // a field, so that WriteTo does not allocate it
}

// Write sends p (preceded by the head on the first call) in one system
// call. Serve writes a whole batch at a time, so there is
// nothing to buffer and Flush has nothing to do.
func (s *takenStream) Write(p []byte) (int, error) {
	if len(p) == 0 && s.head == nil {
		return 0, nil
	}
	s.v = s.bufs[:0]
	if s.head != nil {
		s.v = append(s.v, s.head)
	}
	if len(p) > 0 {
		s.v = append(s.v, p)
	}
	if err := s.send(); err != nil {
		return 0, err
	}
	return len(p), nil
}

// WriteBuffers sends frames in one system call (writev on TCP): Serve's batch goes out as the broker's shared frames, with no copy.
// It makes the stream a core.BuffersWriter.
func (s *takenStream) WriteBuffers(frames [][]byte) error {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	if n == 0 && s.head == nil {
		return nil
	}
	vp := vecPool.Get().(*net.Buffers)
	s.v = (*vp)[:0]
	if s.head != nil {
		s.v = append(s.v, s.head)
	}
	s.v = append(s.v, frames...)
	full := s.v[:cap(s.v)]
	err := s.send()
	clear(full) // drop the frames: the history decides how long they live
	*vp = full[:0]
	vecPool.Put(vp)
	s.v = nil
	return err
}

var vecPool = sync.Pool{New: func() any { v := make(net.Buffers, 0, 64); return &v }}

// Flush does nothing: Write has sent everything.
func (s *takenStream) Flush() error { return nil }

// SetWriteDeadline bounds Serve's writes, which makes the stream a
// core.WriteDeadliner: a stalled client is cut after ClientTimeout, a slow
// consumer at once.
func (s *takenStream) SetWriteDeadline(t time.Time) error { return s.conn.SetWriteDeadline(t) }

// Close sends the head of a body that never started, when the client is
// still there to read it, and closes the connection, which ends the body (which also ends the read goroutine's Read).
// Serve calls it before the stream is unregistered, so Broker.Close (and
// Shutdown) return only once every taken-over connection is closed.
func (s *takenStream) Close() error {
	if s.ctx.Err() == nil {
		s.finish()
	}
	return s.conn.Close()
}

// finishTimeout bounds the write of the end of the body: a few bytes on a
// connection whose last write succeeded.
const finishTimeout = 2 * time.Second

// finish sends the head of a body that never started, so that the client
// gets its response before the close ends it: the close is the end of the
// body. Nothing is written after a failed write.
func (s *takenStream) finish() {
	if s.broken || s.head == nil {
		return
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(finishTimeout))
	s.v = append(s.bufs[:0], s.head)
	_ = s.send()
}

// send writes s.v in one system call: writev where the connection has it
// (TCP), else one Write of a pooled copy, since writing the buffers one by
// one would cost a TLS record each.
func (s *takenStream) send() error {
	s.head = nil
	var err error
	if s.vectored {
		_, err = s.v.WriteTo(s.conn)
	} else {
		bp := copyPool.Get().(*[]byte)
		buf := (*bp)[:0]
		for _, b := range s.v {
			buf = append(buf, b...)
		}
		_, err = s.conn.Write(buf)
		if cap(buf) <= 64<<10 {
			*bp = buf[:0]
			copyPool.Put(bp)
		}
	}
	clear(s.bufs[:]) // drop the batch: the pool owns it after Write
	if err != nil {
		s.broken = true
	}
	return err
}

var copyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// isVectored reports whether net.Buffers.WriteTo writes to c with one
// writev; to other connections it writes buffer after buffer.
func isVectored(c net.Conn) bool {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// appendHead returns the response head of a taken-over stream: the status
// line, every header set on the ResponseWriter (the stream's own, CORS,
// middleware's), written by http.Header.WriteSubset, which drops invalid
// names and turns line breaks in values into spaces, so that no value can
// inject a header; then the framing, which is the handler's alone.
func appendHead(http11 bool, hdr http.Header) []byte {
	var b bytes.Buffer
	if http11 {
		b.WriteString("HTTP/1.1 200 OK\r\n")
	} else {
		b.WriteString("HTTP/1.0 200 OK\r\n")
	}
	var exclude map[string]bool
	for k := range hdr {
		ck := http.CanonicalHeaderKey(k)
		if framing[ck] || strings.HasPrefix(ck, http.TrailerPrefix) {
			if exclude == nil {
				exclude = map[string]bool{}
			}
			exclude[k] = true
		}
	}
	_ = hdr.WriteSubset(&b, exclude)
	if _, ok := hdr["Date"]; !ok { // as net/http: a nil Date suppresses it
		b.WriteString("Date: " + time.Now().UTC().Format(http.TimeFormat) + "\r\n")
	}
	// No chunked encoding: the body ends when the connection closes. Say
	// so, and no client or proxy tries to reuse the connection.
	b.WriteString("Connection: close\r\n\r\n")
	return b.Bytes()
}

// framing lists the headers that describe how the body is delimited and
// the connection used: appendHead writes its own.
var framing = map[string]bool{
	"Content-Length":    true,
	"Transfer-Encoding": true,
	"Connection":        true,
	"Keep-Alive":        true,
	"Trailer":           true,
	"Upgrade":           true,
}
