package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors, compared with errors.Is. The error that ends Events is
// a *StatusError (which wraps ErrUnexpectedStatus) or wraps ErrGaveUp,
// ErrNotEventStream, sse.ErrEventTooLarge, a TLS certificate verification
// error, or the error of the WithHeaderFunc function.
var (
	// ErrGaveUp ends Events when WithMaxRetries consecutive retries have
	// failed. The error also wraps the last failure, so errors.As finds a
	// *StatusError when the server kept answering, say, 503.
	ErrGaveUp = errors.New("ssekit: client: gave up reconnecting")
	// ErrUnexpectedStatus is wrapped by every *StatusError: the server
	// answered with a status other than 200.
	ErrUnexpectedStatus = errors.New("ssekit: client: unexpected status")
	// ErrNotEventStream ends Events when the server answers 200 with a
	// Content-Type other than text/event-stream, which a browser also
	// treats as fatal.
	ErrNotEventStream = errors.New("ssekit: client: response is not text/event-stream")
	// ErrRejected reports an ssekit server that could not take the stream
	// for now (at a connection limit, shutting down, or its auth back end
	// unavailable) and answered the way it answers browsers: a 200 stream
	// holding only a retry hint and a core.RejectedEventType event, whose
	// reason the error names. The client backs off and retries; the error
	// reaches WithOnRetry, and ErrGaveUp wraps it when retries run out.
	ErrRejected = errors.New("ssekit: client: rejected by server for now")
	// ErrIdleTimeout reports a connection dropped because the server sent
	// nothing for the WithIdleTimeout duration. The client reconnects.
	ErrIdleTimeout = errors.New("ssekit: client: idle timeout")
	// ErrInUse is yielded by Events when another Events loop of the same
	// Client is still running: they would fight over LastEventID.
	ErrInUse = errors.New("ssekit: client: Events already running on this Client")
)

// StatusError reports a response status other than 200. It wraps
// ErrUnexpectedStatus; use errors.As to read the code:
//
//	var se *client.StatusError
//	if errors.As(err, &se) && se.Code == http.StatusUnauthorized { ... }
type StatusError struct {
	// Code is the HTTP status code.
	Code int
	// RetryAfter is the delay the Retry-After header asked for, or 0.
	RetryAfter time.Duration
	// Body is the first line of a text/plain response body (at most 200
	// bytes), which for ssekit servers says why; "" otherwise.
	Body string
}

// Error implements error.
func (e *StatusError) Error() string {
	s := fmt.Sprintf("ssekit: client: unexpected status %d %s", e.Code, http.StatusText(e.Code))
	if e.Body != "" {
		s += ": " + e.Body
	}
	return s
}

// Unwrap returns ErrUnexpectedStatus.
func (e *StatusError) Unwrap() error { return ErrUnexpectedStatus }

// retryable reports whether a status may succeed when retried: the server
// is overloaded, limited or failing, not refusing this request for good.
func retryable(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests ||
		code >= 500 && code <= 599
}
