package sseecho

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v5"

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
	return func(c *echo.Context) error {
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

// Shutdown stops srv, an http.Server of your own serving e, and b
// together: http.Server.Shutdown alone would wait for streams that never
// end. Closing the broker at the same time ends every stream after its
// queue is flushed, with a reconnect hint, so clients come back to a new
// instance. Both respect ctx. It is nethttp.Shutdown; with
// echo.StartConfig, which owns its server, use CloseOnShutdown instead.
func Shutdown(ctx context.Context, srv *http.Server, b *core.Broker) error {
	return nethttp.Shutdown(ctx, srv, b)
}

// CloseOnShutdown is an echo.StartConfig.BeforeServeFunc that closes b
// (within timeout) as soon as the server starts its graceful shutdown:
// http.Server.Shutdown alone would wait for streams that never end, until
// StartConfig.GracefulTimeout gives up and leaves them open. Closing the
// broker ends every stream after its queue is flushed, with a reconnect
// hint, so clients come back to the next instance.
//
//	sc := echo.StartConfig{Address: ":8080", BeforeServeFunc: sseecho.CloseOnShutdown(broker, 10*time.Second)}
//	err := sc.Start(ctx, e) // ctx from signal.NotifyContext
func CloseOnShutdown(b *core.Broker, timeout time.Duration) func(*http.Server) error {
	return func(s *http.Server) error {
		s.RegisterOnShutdown(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			_ = b.Close(ctx)
		})
		return nil
	}
}

// writer returns where the stream goes: echo's own Response, beneath the
// writers that route middleware put in front of it (Gzip, BodyDump), which
// would compress or copy a stream that never ends. Writing to it keeps
// its status, size and hooks right for loggers. Flushes and write
// deadlines go to the server's writer under it through
// http.ResponseController: Response.Flush would panic if that writer
// could not flush, where the handler answers 500 instead. A middleware
// writer without Unwrap hides the Response, and is streamed to as it is.
func writer(w http.ResponseWriter) http.ResponseWriter {
	r, err := echo.UnwrapResponse(w)
	if err != nil {
		return w
	}
	return response{r}
}

// response is an echo.Response without its Flush.
type response struct{ r *echo.Response }

func (w response) Header() http.Header         { return w.r.Header() }
func (w response) WriteHeader(code int)        { w.r.WriteHeader(code) }
func (w response) Write(p []byte) (int, error) { return w.r.Write(p) }
func (w response) Unwrap() http.ResponseWriter { return w.r.Unwrap() }
