package ssegin

import (
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

// WithErrorLog receives errors the client never sees, such as a writer
// that cannot flush. The default discards them.
func WithErrorLog(f func(error)) Option { return nethttp.WithErrorLog(f) }

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
