package core

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// RejectModeHeader is the request header with which a non-browser client
// asks for plain HTTP statuses when the server cannot take its stream now.
// A browser's EventSource gives up for good on any status but 200, so by
// default a client refused for a reason that will pass (a connection
// limit, shutdown, an unavailable auth dependency) gets a 200 stream that
// only tells it when to retry. With "SSEKit-Reject: status" it gets 503
// (or 429 for the per-user limit) with Retry-After instead.
const RejectModeHeader = "SSEKit-Reject"

// RejectedEventType is the type of the event that tells a browser why its
// connection was refused for now; its data is JSON
// {"reason": "...", "retryMs": N}, the reason being one of
// "too_many_connections", "too_many_user_connections", "shutting_down" or
// "unavailable".
const RejectedEventType = "ssekit.rejected"

// Rejection is what an adapter answers when Connect fails.
type Rejection struct {
	// Status is the HTTP status code.
	Status int
	// ContentType is the Content-Type header.
	ContentType string
	// RetryAfter, when positive, is sent as the Retry-After header (seconds).
	RetryAfter int
	// Body is the response body.
	Body []byte
}

// Reject turns an error from Connect into the response the adapter writes.
// The statuses on the wire, by the sentinel the error wraps:
//
//	400  bad parameters: topic, tenant, user,        ErrBadRequest, the ErrInvalid... errors,
//	     Last-Event-ID, too many topics              ErrTooManyTopics
//	401  missing, invalid or expired credentials     ErrUnauthenticated
//	403  topic or tenant not allowed                 ErrForbidden
//	200  refused for now: an event stream holding    ErrUnavailable (and timeouts), ErrTooManyConnections,
//	     only a retry hint and a ssekit.rejected      ErrTooManyUserConnections, ErrClosed
//	     event, so a browser backs off and reconnects
//	503  the same for clients sending SSEKit-Reject: status, with Retry-After
//	     (429 for the per-user limit)
//	500  anything else
//
// The body is a fixed text chosen by that sentinel: "unauthenticated",
// "forbidden", "bad request: invalid topic" (the sentinel's own words),
// "internal error", or the reason of the ssekit.rejected event
// ("unavailable", "too_many_connections", ...). It never carries the
// error's text: an Authenticator's or Authorizer's error may hold
// addresses, queries or key IDs, and the client has no use for them. Log
// the full error where the request's context (and the trace in it) is
// known: Connect and Subscribe pass every error they return to
// Config.Observer's Reject hook, with the context they were given, before
// the adapter calls Reject. JoinObservers adds a logging hook to metrics.
//
// An error that wraps ErrUnavailable, context.DeadlineExceeded or another
// timeout (an error whose Timeout method reports true, as a net.Error's
// does) is unavailable, whatever else it wraps: the client must be told to
// retry, because a 401 or 403 would end an EventSource for good during a
// transient outage of what the Authenticator or Authorizer depends on.
func (b *Broker) Reject(err error, r Request) Rejection {
	const text = "text/plain; charset=utf-8"
	switch {
	case IsUnavailable(err):
		return b.retryLater(r, "unavailable", 503)
	case errors.Is(err, ErrUnauthenticated):
		return Rejection{Status: 401, ContentType: text, Body: []byte("unauthenticated\n")}
	case errors.Is(err, ErrForbidden):
		return Rejection{Status: 403, ContentType: text, Body: []byte("forbidden\n")}
	case errors.Is(err, ErrBadRequest) || badRequestCause(err) != nil:
		body := "bad request\n"
		if cause := badRequestCause(err); cause != nil {
			body = "bad request: " + strings.TrimPrefix(cause.Error(), "ssekit: ") + "\n"
		}
		return Rejection{Status: 400, ContentType: text, Body: []byte(body)}
	case errors.Is(err, ErrTooManyUserConnections):
		return b.retryLater(r, "too_many_user_connections", 429)
	case errors.Is(err, ErrTooManyConnections):
		return b.retryLater(r, "too_many_connections", 503)
	case errors.Is(err, ErrClosed):
		return b.retryLater(r, "shutting_down", 503)
	}
	return Rejection{Status: 500, ContentType: text, Body: []byte("internal error\n")}
}

// retryLater answers a request refused for now: status with Retry-After
// for a client that asked for statuses, else the 200 stream a browser
// follows (see RejectModeHeader).
func (b *Broker) retryLater(r Request, reason string, status int) Rejection {
	// Back off for longer than a normal reconnect: a limit or an outage
	// will not lift in three seconds, and a crowd retrying together keeps
	// it reached.
	backoff := 5 * b.cfg.RetryHint
	if r != nil && r.Header(RejectModeHeader) == "status" {
		return Rejection{
			Status:      status,
			ContentType: "text/plain; charset=utf-8",
			RetryAfter:  int((backoff + time.Second - 1) / time.Second),
			Body:        []byte(reason + "\n"),
		}
	}
	ms := jitter(backoff)
	body := appendRetryMs(nil, ms, ": "+reason+"\n")
	data, _ := json.Marshal(struct {
		Reason  string `json:"reason"`
		RetryMs int64  `json:"retryMs"`
	}{reason, ms})
	body, _ = AppendEvent(body, Event{Type: RejectedEventType, Data: string(data)})
	return Rejection{Status: 200, ContentType: "text/event-stream", Body: body}
}

// badRequestCause returns the sentinel that names what is wrong with a bad
// request, most specific first, or nil. A 400 body names it in its own
// words ("bad request: invalid topic"): enough for a developer to see
// which parameter is wrong, and nothing that the wrapping code added.
func badRequestCause(err error) error {
	for _, cause := range [...]error{ErrInvalidTopic, ErrInvalidTenant, ErrInvalidUser, ErrInvalidID, ErrInvalidUTF8, ErrTooManyTopics} {
		if errors.Is(err, cause) {
			return cause
		}
	}
	return nil
}

// IsUnavailable reports whether err says a request could not be decided
// now, rather than decided against: it wraps ErrUnavailable,
// context.DeadlineExceeded, or another timeout (an error whose Timeout
// method reports true, as a net.Error's does). Reject answers such errors
// with a retry hint; code that checks credentials outside a stream request
// (a publish endpoint) can use it to answer 503 rather than 401 or 403.
func IsUnavailable(err error) bool {
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
