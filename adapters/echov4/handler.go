package sseecho

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

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
// OPTIONS: e.Match([]string{"GET", "OPTIONS"}, "/events", h).
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

// New returns an echo handler serving b's streams, or an error for an
// invalid option.
func New(b *core.Broker, opts ...Option) (echo.HandlerFunc, error) {
	h, err := nethttp.New(b, opts...)
	if err != nil {
		return nil, err
	}
	return func(c echo.Context) error {
		h.ServeHTTP(writer(c.Response()), c.Request())
		return nil
	}, nil
}

// Handler is New for options known to be valid: it panics on an invalid
// one, like regexp.MustCompile.
//
//	e.GET("/events", sseecho.Handler(broker))
func Handler(b *core.Broker, opts ...Option) echo.HandlerFunc {
	h, err := New(b, opts...)
	if err != nil {
		panic(err)
	}
	return h
}

// Shutdown stops e and b together: e.Shutdown alone would wait for
// streams that never end. Closing the broker while the server shuts down
// ends every stream after its queue is flushed, with a reconnect hint, so
// clients come back to a new instance. It shuts down e.Server, and
// e.TLSServer after e.StartTLS, as e.Shutdown does. Both respect ctx.
func Shutdown(ctx context.Context, e *echo.Echo, b *core.Broker) error {
	done := make(chan error, 1)
	go func() { done <- e.Shutdown(ctx) }()
	berr := b.Close(ctx)
	return errors.Join(berr, <-done)
}

// writer returns what the stream goes through: echo's Response, which
// keeps its status, size and hooks right for loggers, writing to the
// writer beneath it, which middleware may have replaced (Gzip compresses
// and flushes each batch). Flushes and write deadlines go through that
// writer's http.ResponseController: Response.Flush would panic if nothing
// beneath it could flush, where the handler answers 500 instead.
func writer(r *echo.Response) http.ResponseWriter { return response{r} }

// response is an echo.Response without its Flush.
type response struct{ r *echo.Response }

func (w response) Header() http.Header         { return w.r.Header() }
func (w response) WriteHeader(code int)        { w.r.WriteHeader(code) }
func (w response) Write(p []byte) (int, error) { return w.r.Write(p) }
func (w response) Unwrap() http.ResponseWriter { return w.r.Writer }
