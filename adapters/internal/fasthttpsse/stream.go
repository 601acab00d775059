// Package fasthttpsse serves ssekit streams on a fasthttp.RequestCtx. It is
// the streaming code the Fiber v3 and Fiber v2 adapters share: both
// frameworks run on fasthttp, and only the way to reach the RequestCtx
// differs between them.
//
// fasthttp runs a streamed body (SetBodyStreamWriter) on a goroutine of its
// own, after the handler has returned and its context has gone back to the
// pool, and it gives no sign that the client left until a write fails. So
// Serve copies the request before the handler returns, and probes the
// connection's read side while the stream is idle: a client that closes its
// connection is noticed at once, like net/http's background read does.
//
// It is a module of its own under adapters/internal/ so that both Fiber
// modules can import it and nobody else can (see README.md).
package fasthttpsse

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/ssekit/ssekit/adapters/internal/cors"
	"github.com/ssekit/ssekit/core"
)

// past is a deadline that fails a blocked read or write at once.
var past = time.Unix(1, 0)

// Config is what the Fiber adapters' options set.
type Config struct {
	// CORS, when set, answers cross-origin requests as the net/http
	// adapter does: an unknown origin gets 403, a preflight (OPTIONS) 204,
	// and every other answer, rejections included, the CORS headers.
	CORS *cors.Policy
	// ErrorLog receives the errors the client never sees: why Serve ended
	// a stream. Nil discards them.
	ErrorLog func(error)
}

// Serve answers rc with one stream of b, or with the rejection b chooses.
// parent is the request's context for Connect (its values, not its
// cancellation, reach the stream). It returns before the stream starts:
// fasthttp writes the body after the handler returns.
func Serve(rc *fasthttp.RequestCtx, parent context.Context, b *core.Broker, cfg Config) {
	var fields []cors.Field
	if cfg.CORS != nil {
		var status int
		fields, status = cfg.CORS.Answer(string(rc.Request.Header.Peek("Origin")), string(rc.Method()))
		if status != 0 {
			if status == fasthttp.StatusForbidden {
				rc.Error("origin not allowed", status)
			} else {
				rc.SetStatusCode(status)
			}
			setFields(rc, fields)
			return
		}
	}
	if !rc.IsGet() {
		rc.Error("method not allowed", fasthttp.StatusMethodNotAllowed)
		rc.Response.Header.Set("Allow", "GET")
		setFields(rc, fields) // after Error, which resets the headers
		return
	}
	setFields(rc, fields)
	req := NewRequest(rc)
	sub, err := b.Connect(parent, req)
	if err != nil {
		WriteRejection(rc, b.Reject(err, req))
		return
	}
	h := &rc.Response.Header
	h.SetContentType("text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	rc.SetStatusCode(fasthttp.StatusOK)
	rc.Response.ImmediateHeaderFlush = true
	// Nobody may read this connection after the stream: the probe does.
	rc.SetConnectionClose()
	log := cfg.ErrorLog
	if log == nil {
		log = func(error) {}
	}
	s := &stream{b: b, sub: sub, conn: rc.Conn(), log: log,
		parent: shutdownCtx{context.WithoutCancel(parent), rc.Done()}}
	rc.SetBodyStreamWriter(s.run)
}

// setFields writes the CORS headers.
func setFields(rc *fasthttp.RequestCtx, fields []cors.Field) {
	for _, f := range fields {
		if f.Add {
			rc.Response.Header.Add(f.Name, f.Value)
		} else {
			rc.Response.Header.Set(f.Name, f.Value)
		}
	}
}

// WriteRejection writes the response core.Broker.Reject chose.
func WriteRejection(rc *fasthttp.RequestCtx, rej core.Rejection) {
	rc.SetStatusCode(rej.Status)
	rc.SetContentType(rej.ContentType)
	rc.Response.Header.Set("Cache-Control", "no-store")
	if rej.RetryAfter > 0 {
		rc.Response.Header.Set("Retry-After", strconv.Itoa(rej.RetryAfter))
	}
	rc.SetBody(rej.Body)
}

// stream is one connection's core.Stream. It holds nothing of the
// RequestCtx but its net.Conn, which outlives the handler.
type stream struct {
	b      *core.Broker
	sub    *core.Subscription
	conn   net.Conn // nil when fasthttp serves no real connection
	parent context.Context
	log    func(error) // Config.ErrorLog
	w      *bufio.Writer
	// deadline is the write deadline Serve asked for (UnixNano; 0 none).
	// Flush applies it again, because fasthttp sets its own WriteTimeout
	// deadline on the connection after the handler returns, while Serve
	// may already be running, and Serve renews its deadline only lazily.
	deadline atomic.Int64
}

// run is the StreamWriter. fasthttp copies what it writes to the
// connection on the connection's goroutine; run serves the subscription
// until Serve returns, then stops the probe.
func (s *stream) run(w *bufio.Writer) {
	s.w = w
	ctx, cancel := context.WithCancel(s.parent)
	defer cancel()
	if s.conn == nil {
		if err := s.b.Serve(ctx, s.sub, s); err != nil {
			s.log(err)
		}
		return
	}
	// Clear any read deadline the server left from reading the request
	// (ReadTimeout): from here on a read error means the client is gone.
	_ = s.conn.SetReadDeadline(time.Time{})
	probed := make(chan struct{})
	go probe(s.conn, cancel, probed)
	if err := s.b.Serve(ctx, s.sub, s); err != nil {
		// The client never sees why its stream ended; the operator does.
		s.log(err)
		if !errors.Is(err, core.ErrTokenExpired) && !errors.Is(err, core.ErrStreamPanic) {
			// Cut (slow consumer, stalled or failed write): do not let the
			// connection's goroutine wait on this client to end the body.
			// Not after an expiry or a panic below Serve, which are no
			// fault of the client: what was flushed is still on its way
			// through fasthttp's pipe, and the body ends normally, within
			// the write deadline Serve set last.
			_ = s.conn.SetWriteDeadline(past)
		}
	}
	if s.conn.SetReadDeadline(past) == nil {
		<-probed
	}
}

// probe blocks in a read of the connection, on which a client sends
// nothing after an SSE request, and cancels the stream when the read
// fails: the client closed or reset the connection, the server closed it
// after a failed write, or run ended the probe.
func probe(conn net.Conn, cancel context.CancelFunc, probed chan<- struct{}) {
	defer close(probed)
	defer cancel()
	var buf [64]byte
	for {
		if _, err := conn.Read(buf[:]); err != nil {
			return
		}
	}
}

func (s *stream) Write(p []byte) (int, error) { return s.w.Write(p) }

// WriteBuffers writes a batch's shared frames straight into fasthttp's
// buffered writer, which is copied to the connection on Flush: Serve
// stages nothing of its own. It makes the stream a core.BuffersWriter.
func (s *stream) WriteBuffers(frames [][]byte) error {
	for _, f := range frames {
		if _, err := s.w.Write(f); err != nil {
			return err
		}
	}
	return nil
}

// Flush hands the batch to fasthttp's connection goroutine, which writes
// it to the client; the deadline is applied first, so that it, not
// fasthttp's WriteTimeout, bounds that write.
func (s *stream) Flush() error {
	if d := s.deadline.Load(); d != 0 && s.conn != nil {
		_ = s.conn.SetWriteDeadline(time.Unix(0, d))
	}
	return s.w.Flush()
}

// SetWriteDeadline bounds the connection goroutine's writes to the client,
// so Serve cuts a stalled or slow client at once.
func (s *stream) SetWriteDeadline(t time.Time) error {
	if s.conn == nil {
		return errors.ErrUnsupported
	}
	s.deadline.Store(t.UnixNano())
	return s.conn.SetWriteDeadline(t)
}

// shutdownCtx carries the request context's values and is done when the
// fasthttp server shuts down (RequestCtx.Done).
type shutdownCtx struct {
	context.Context
	done <-chan struct{}
}

func (c shutdownCtx) Done() <-chan struct{} { return c.done }

func (c shutdownCtx) Err() error {
	select {
	case <-c.done:
		return context.Canceled
	default:
		return nil
	}
}
