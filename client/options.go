package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Backoff defaults, used for the zero fields of a Backoff.
const (
	// DefaultInitialDelay is the reconnection delay when the server sent no
	// retry hint, as in browsers.
	DefaultInitialDelay = 3 * time.Second
	// DefaultMaxDelay caps the delay after consecutive failures.
	DefaultMaxDelay = 30 * time.Second
	// DefaultMultiplier is the growth of the delay per consecutive failure.
	DefaultMultiplier = 2.0
	// DefaultJitter is the fraction of random delay added after a failure.
	DefaultJitter = 0.5
	// NoJitter, as Backoff.Jitter, makes delays exact (useful in tests).
	NoJitter = -1.0
)

// Backoff says how long the client waits before it reconnects. Every zero
// field takes its default.
//
// After a stream that was open ends, the client waits the base delay: the
// server's last retry hint, or Initial when the server never sent one, as a
// browser does. A hint below MinRetryDelay, "retry: 0" included, counts as
// MinRetryDelay. After the n-th consecutive failed attempt (network error,
// retryable status, limit rejection; an attempt that opens a stream resets
// the count) it waits
//
//	d = min(base × Multiplier^(n-1), max(Max, base))
//	d = max(d, what the server asked for: Retry-After, or a rejection's retry)
//	d += random in [0, Jitter × d)
//
// so the server's hint is never undercut, and clients that failed together
// do not come back together.
type Backoff struct {
	// Initial is the base delay when the server sent no retry hint
	// (default 3s).
	Initial time.Duration
	// Max caps the growth of the delay, before jitter (default 30s). It
	// never cuts the base delay (Initial, or a larger server retry hint)
	// nor a Retry-After.
	Max time.Duration
	// Multiplier is the growth per consecutive failure (default 2; must be
	// >= 1).
	Multiplier float64
	// Jitter is the fraction of the delay added at random after a failure
	// (default 0.5; at most 1; NoJitter for none).
	Jitter float64
}

func (b Backoff) withDefaults() Backoff {
	if b.Initial == 0 {
		b.Initial = DefaultInitialDelay
	}
	if b.Max == 0 {
		b.Max = DefaultMaxDelay
	}
	if b.Multiplier == 0 {
		b.Multiplier = DefaultMultiplier
	}
	if b.Jitter == 0 {
		b.Jitter = DefaultJitter
	}
	return b
}

func (b Backoff) validate() error {
	var errs []error
	if b.Initial < 0 {
		errs = append(errs, fmt.Errorf("Backoff.Initial must be >= 0, got %v", b.Initial))
	}
	if b.Max < 0 {
		errs = append(errs, fmt.Errorf("Backoff.Max must be >= 0, got %v", b.Max))
	}
	if b.Multiplier != 0 && !(b.Multiplier >= 1) { // also catches NaN
		errs = append(errs, fmt.Errorf("Backoff.Multiplier must be >= 1, got %v", b.Multiplier))
	}
	if !(b.Jitter <= 1) {
		errs = append(errs, fmt.Errorf("Backoff.Jitter must be <= 1 (or NoJitter), got %v", b.Jitter))
	}
	return errors.Join(errs...)
}

// delay returns the wait before the next attempt after failures
// consecutive failed attempts (0 after a stream that was open ended), given
// the base delay and the least the server asked for. rnd returns a number
// in [0, 1).
func (b Backoff) delay(base time.Duration, failures int, floor time.Duration, rnd func() float64) time.Duration {
	if failures <= 0 {
		return max(base, floor)
	}
	limit := max(b.Max, base)
	d := base
	if b.Multiplier > 1 {
		for i := 1; i < failures && d < limit; i++ {
			next := float64(d) * b.Multiplier
			if next >= float64(limit) {
				d = limit
				break
			}
			d = time.Duration(next)
		}
	}
	d = max(min(d, limit), floor)
	if b.Jitter > 0 {
		extra := rnd() * b.Jitter * float64(d)
		if extra >= float64(maxDuration-d) {
			return maxDuration
		}
		d += time.Duration(extra)
	}
	return d
}

const maxDuration = time.Duration(1<<63 - 1)

// Option configures a Client; pass options to New, which reports an
// invalid one. Options are functions over an unexported configuration, the
// shape every ssekit package uses (metrics, middleware/tracing,
// adapters/nethttp).
type Option func(*options)

type options struct {
	httpClient   *http.Client
	header       http.Header
	headerFunc   func(context.Context) (http.Header, error)
	lastEventID  string
	backoff      Backoff
	maxRetries   int
	rejectStatus bool
	idleTimeout  time.Duration
	onState      func(State)
	onComment    func(string)
	onRetry      func(error, time.Duration)
	errs         []error
}

func (o *options) fail(format string, args ...any) {
	o.errs = append(o.errs, fmt.Errorf(format, args...))
}

// WithHTTPClient makes the client send its requests with hc (default
// http.DefaultClient). Do not give hc a Timeout: it would cut every stream
// after that long (the client would then reconnect each time). Bound
// connection setup with the Transport's timeouts instead, or use
// WithIdleTimeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(o *options) {
		if hc == nil {
			o.fail("WithHTTPClient: nil *http.Client")
			return
		}
		o.httpClient = hc
	}
}

// WithHeader sets header key to value on every request, replacing the value
// of an earlier WithHeader for the same key. It can replace the default
// Accept and Cache-Control headers, but not Last-Event-ID, which the client
// manages. A Go service can send what browsers cannot, such as
// Authorization.
func WithHeader(key, value string) Option {
	return func(o *options) {
		if !validHeaderName(key) || !validHeaderValue(value) {
			o.fail("WithHeader: invalid header %q: %q", key, value)
			return
		}
		if o.header == nil {
			o.header = make(http.Header)
		}
		o.header.Set(key, value)
	}
}

// WithHeaderFunc calls f before every connection attempt, with that
// attempt's context, and sets the headers it returns (over those of
// WithHeader): the place to refresh an access token. An error from f, or
// an invalid header, ends Events with that error.
func WithHeaderFunc(f func(ctx context.Context) (http.Header, error)) Option {
	return func(o *options) { o.headerFunc = f }
}

// WithLastEventID makes the first connection resume after event id, sent as
// the Last-Event-ID header (typically a Client.LastEventID saved by an
// earlier run). Later connections send the ID of the last event received.
func WithLastEventID(id string) Option {
	return func(o *options) {
		if !validHeaderValue(id) {
			o.fail("WithLastEventID: invalid ID %q", id)
			return
		}
		o.lastEventID = id
	}
}

// WithBackoff sets the reconnection delays; see Backoff. Zero fields keep
// their defaults.
func WithBackoff(b Backoff) Option {
	return func(o *options) { o.backoff = b }
}

// WithMaxRetries makes Events give up with ErrGaveUp after n consecutive
// failed retries (n+1 failed attempts in a row). 0, the default, retries
// for as long as the context lives. A stream that opens resets the count.
func WithMaxRetries(n int) Option {
	return func(o *options) {
		if n < 0 {
			o.fail("WithMaxRetries: n must be >= 0, got %d", n)
			return
		}
		o.maxRetries = n
	}
}

// WithRejectStatus says whether to send "SSEKit-Reject: status" (default
// true). With it, an ssekit server at its connection limit answers 503 (or
// 429 for the per-user limit) with Retry-After. Without it, the server
// answers as it answers browsers, with a 200 stream holding a retry hint
// and a core.RejectedEventType event; the client recognises that stream,
// does not yield the event, and backs off the same way.
func WithRejectStatus(enabled bool) Option {
	return func(o *options) { o.rejectStatus = enabled }
}

// WithIdleTimeout drops a connection on which the server sent nothing for
// d: no response headers since the request, or no byte of a stream since
// the last one (time spent in the loop body does not count). The client
// then reconnects, reporting ErrIdleTimeout to WithOnRetry. It detects
// half-open connections that would otherwise hang for good; set d well
// above the server's heartbeat interval (30s for ssekit by default), for
// example twice it. 0, the default, disables it.
func WithIdleTimeout(d time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			o.fail("WithIdleTimeout: must be >= 0, got %v", d)
			return
		}
		o.idleTimeout = d
	}
}

// WithOnState calls f on every change of the client's State, synchronously
// from the goroutine ranging over Events: Connecting, then Open or
// Reconnecting as attempts succeed or fail, and Closed last (before a
// terminal error is yielded). f must not block for long.
func WithOnState(f func(State)) Option {
	return func(o *options) { o.onState = f }
}

// WithOnComment calls f with the text of every comment line the server
// sends (one leading space removed): the preamble, heartbeats (an empty
// comment for ssekit servers), the reason of a closing hint. It runs in the
// goroutine of the Events loop and must not block for long.
func WithOnComment(f func(text string)) Option {
	return func(o *options) { o.onComment = f }
}

// WithOnRetry calls f before each wait for a reconnection, with why the
// last attempt ended and how long the client will wait. err is io.EOF when
// the server ended an open stream cleanly; a *StatusError, ErrRejected,
// ErrIdleTimeout or a network error otherwise. It is the place to log
// reconnections. It runs in the goroutine of the Events loop and must not
// block for long.
func WithOnRetry(f func(err error, delay time.Duration)) Option {
	return func(o *options) { o.onRetry = f }
}

// validHeaderName reports whether s is an HTTP token (RFC 9110).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c < 0x80 && c > 0x20 && c != 0x7f && !isSeparator(c):
		default:
			return false
		}
	}
	return true
}

func isSeparator(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '=', '{', '}':
		return true
	}
	return false
}

// validHeaderValue reports whether net/http will send s as a header value:
// no control characters but tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
