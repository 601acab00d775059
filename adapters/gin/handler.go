package ssegin

import (
	"context"
	"net/http"
	"reflect"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

// Option configures the stream handler: the options of the net/http
// adapter, which serves every stream.
type Option = nethttp.Option

// CORS lets EventSource connect from other origins; see nethttp.CORS.
type CORS = nethttp.CORS

// WithCORS answers cross-origin stream requests, refusing unknown origins
// with 403 before a stream is opened. Preflights (sent only by polyfills
// that add headers) reach the handler only if it is also mounted for
// OPTIONS: r.Match([]string{"GET", "OPTIONS"}, "/events", h).
func WithCORS(c CORS) Option { return nethttp.WithCORS(c) }

// WithErrorLog receives errors the client never sees: a writer that
// cannot flush, and why Serve cut a stream (core.ErrSlowConsumer,
// core.ErrWriteTimeout, core.ErrTokenExpired, ...). The default discards
// them; see nethttp.WithErrorLog.
func WithErrorLog(f func(error)) Option { return nethttp.WithErrorLog(f) }

// WithTakeover serves each accepted HTTP/1.x stream on a connection taken
// over from net/http, for many idle streams at a third of the memory. It
// is nethttp.WithTakeover, whose doc says what it gives up (keep-alive,
// http.Server.Shutdown's view of the connection, middleware that measures
// the request): stop the server with Shutdown. A stream behind
// middleware that set Content-Encoding is not taken over.
func WithTakeover() Option { return nethttp.WithTakeover() }

// New returns a gin handler serving b's streams, or an error for an
// invalid option.
func New(b *core.Broker, opts ...Option) (gin.HandlerFunc, error) {
	h, err := nethttp.New(b, opts...)
	if err != nil {
		return nil, err
	}
	return func(c *gin.Context) {
		// c.Request.Context() ends when the client leaves; c.Done() would
		// be nil unless the engine sets ContextWithFallback, and c.Stream
		// needs CloseNotify and flushes after each step only.
		h.ServeHTTP(writer{c.Writer, http.NewResponseController(connWriter(c.Writer))}, c.Request)
	}, nil
}

// Handler is New for options known to be valid: it panics on an invalid
// one, like regexp.MustCompile.
//
//	r.GET("/events", ssegin.Handler(broker))
func Handler(b *core.Broker, opts ...Option) gin.HandlerFunc {
	h, err := New(b, opts...)
	if err != nil {
		panic(err)
	}
	return h
}

// Shutdown stops srv, the http.Server serving the gin engine, and b
// together: http.Server.Shutdown alone would wait for streams that never
// end (gin's r.Run offers no way to stop at all). Closing the broker at
// the same time ends every stream after its queue is flushed, with a
// reconnect hint, so clients come back to a new instance. Both respect
// ctx. It is nethttp.Shutdown.
func Shutdown(ctx context.Context, srv *http.Server, b *core.Broker) error {
	return nethttp.Shutdown(ctx, srv, b)
}

// writer writes and flushes through c.Writer, so middleware that wraps it
// sees every byte (gin-contrib/gzip compresses and flushes each batch),
// and sets write deadlines on the connection beneath every wrapper: the
// server's WriteTimeout must not cut the stream, and core.Serve bounds
// each write with its own deadline.
type writer struct {
	gin.ResponseWriter
	conn *http.ResponseController
}

func (w writer) SetWriteDeadline(t time.Time) error { return w.conn.SetWriteDeadline(t) }

// connWriter returns the first writer under w from which
// http.ResponseController reaches the connection: one with
// SetWriteDeadline or Unwrap (gin's own writer has Unwrap). Gin middleware
// wrap c.Writer by embedding gin.ResponseWriter, an interface without
// Unwrap (gin-contrib/gzip does), so the embedded field is followed too.
func connWriter(w http.ResponseWriter) http.ResponseWriter {
	for {
		switch w.(type) {
		case interface{ SetWriteDeadline(time.Time) error }, interface{ Unwrap() http.ResponseWriter }:
			return w
		}
		v := reflect.Indirect(reflect.ValueOf(w))
		if v.Kind() != reflect.Struct {
			return w
		}
		f := v.FieldByName("ResponseWriter")
		if !f.IsValid() || !f.CanInterface() {
			return w
		}
		inner, ok := f.Interface().(http.ResponseWriter)
		if !ok || inner == nil {
			return w
		}
		w = inner
	}
}
