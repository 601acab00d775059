package nethttp

import (
	"net/http"
	"strconv"
	"time"

	"github.com/ssekit/ssekit/core"
)

// StreamHandler serves ssekit streams; create it with New or Handler.
type StreamHandler struct {
	broker *core.Broker
	config
}

// Option configures New and Handler. Options are functions over the
// handler's configuration, as in every ssekit package (metrics,
// middleware/tracing, client): an invalid one is reported by New.
type Option func(*config)

// config is what the options set.
type config struct {
	cors     *CORS
	log      func(error)
	takeover bool // WithTakeover
}

// WithCORS lets browsers on other origins open streams, with credentials
// (cookies) when c.AllowCredentials is set. Mount the handler without a
// method in the pattern ("/events", not "GET /events"), or ServeMux answers
// preflight requests with 405 before the handler sees them. New refuses an
// empty AllowedOrigins, and "*" with AllowCredentials.
func WithCORS(c CORS) Option {
	return func(o *config) { o.cors = &c }
}

// WithErrorLog receives errors the client never sees: a ResponseWriter
// that cannot flush, and why Serve cut a stream (core.ErrSlowConsumer,
// core.ErrWriteTimeout, core.ErrStreamPanic, core.ErrTokenExpired, ...).
// The default (and a nil f) discards them. Refused stream requests are not
// reported here: their full errors go to core.Config.Observer's Reject
// hook, with the request's context.
func WithErrorLog(f func(error)) Option {
	return func(o *config) { o.log = f }
}

// New returns a handler serving b's streams, or an error for an invalid
// option.
func New(b *core.Broker, opts ...Option) (*StreamHandler, error) {
	h := &StreamHandler{broker: b}
	for _, opt := range opts {
		if opt != nil {
			opt(&h.config)
		}
	}
	if h.cors != nil {
		if err := h.cors.validate(); err != nil {
			return nil, err
		}
	}
	if h.log == nil {
		h.log = func(error) {}
	}
	return h, nil
}

// Handler is New for options known to be valid: it panics on an invalid
// one, like regexp.MustCompile.
func Handler(b *core.Broker, opts ...Option) http.Handler {
	h, err := New(b, opts...)
	if err != nil {
		panic(err)
	}
	return h
}

// ServeHTTP opens one stream and serves it until the client leaves, the
// broker cuts it, or the broker closes.
func (h *StreamHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cors != nil && !h.cors.apply(w, r) {
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !canFlush(w) {
		h.log(core.ErrFlushUnsupported)
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	req := Request(r)
	sub, err := h.broker.Connect(r.Context(), req)
	if err != nil {
		WriteRejection(w, h.broker.Reject(err, req))
		return
	}
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	if h.takeover && canTakeOver(r) && honoured(hdr) && h.takeOver(w, r, sub) {
		return
	}
	if r.ProtoMajor == 1 {
		// No chunked encoding on HTTP/1.x: the body ends when the
		// connection closes, as the SSE spec's authors recommend and
		// net/http supports through this header (which it does not
		// send). Chunking cost every write a header, and every reader a
		// decoder and a read per chunk; a stream's connection is never
		// reused anyway, and to EventSource a cut and an end are the same.
		hdr.Set("Transfer-Encoding", "identity")
	}
	w.WriteHeader(http.StatusOK)
	// The server's WriteTimeout would cut every stream; Serve bounds each
	// write with its own deadline instead.
	_ = rc.SetWriteDeadline(time.Time{})
	if err := h.broker.Serve(r.Context(), sub, Stream(w)); err != nil {
		h.log(err)
	}
}

// WriteRejection writes the response core.Broker.Reject chose for a
// refused stream request.
func WriteRejection(w http.ResponseWriter, rej core.Rejection) {
	hdr := w.Header()
	hdr.Set("Content-Type", rej.ContentType)
	hdr.Set("Cache-Control", "no-store")
	if rej.RetryAfter > 0 {
		hdr.Set("Retry-After", strconv.Itoa(rej.RetryAfter))
	}
	w.WriteHeader(rej.Status)
	_, _ = w.Write(rej.Body)
}

// Stream adapts a ResponseWriter to core.Stream. It flushes and sets write
// deadlines through http.ResponseController, so middleware that wraps the
// writer works as long as it implements Unwrap.
func Stream(w http.ResponseWriter) core.Stream {
	return stream{w: w, rc: http.NewResponseController(w)}
}

type stream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s stream) Write(p []byte) (int, error)        { return s.w.Write(p) }
func (s stream) Flush() error                       { return s.rc.Flush() }
func (s stream) SetWriteDeadline(t time.Time) error { return s.rc.SetWriteDeadline(t) }

// canFlush reports whether w, or a writer it wraps, can flush: without
// that, events would sit in a buffer until the handler returns. It accepts
// what http.ResponseController.Flush uses: Flusher or FlushError.
func canFlush(w http.ResponseWriter) bool {
	for {
		switch w.(type) {
		case http.Flusher, interface{ FlushError() error }:
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}
