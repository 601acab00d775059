package core

import (
	"encoding/json"
	"errors"
	"time"
)

// RejectModeHeader is the request header with which a non-browser client
// asks for plain HTTP statuses when the server is at a connection limit. A
// browser's EventSource gives up for good on any status but 200, so by
// default a client over a limit gets a 200 stream that only tells it when
// to retry. With "SSEKit-Reject: status" it gets 503 (server limit or
// shutting down) or 429 (per-user limit) with Retry-After instead.
const RejectModeHeader = "SSEKit-Reject"

// RejectedEventType is the type of the event that tells a browser why its
// connection was refused at a limit; its data is JSON
// {"reason": "...", "retryMs": N}.
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
// The statuses on the wire:
//
//	400  bad parameters (topic, tenant, Last-Event-ID)      ErrBadRequest and the ErrInvalid... errors
//	401  missing, invalid or expired credentials            ErrUnauthenticated
//	403  topic or tenant not allowed for this identity      ErrForbidden
//	200  at a limit or shutting down: an event stream that  ErrTooManyConnections, ErrTooManyUserConnections, ErrClosed
//	     holds only a retry hint and a ssekit.rejected event,
//	     so the browser backs off and reconnects
//	503  the same, for clients sending SSEKit-Reject: status (429 for the per-user limit)
//	500  anything else
func (b *Broker) Reject(err error, r Request) Rejection {
	text := "text/plain; charset=utf-8"
	switch {
	case errors.Is(err, ErrUnauthenticated):
		return Rejection{Status: 401, ContentType: text, Body: []byte("unauthenticated\n")}
	case errors.Is(err, ErrForbidden):
		return Rejection{Status: 403, ContentType: text, Body: []byte(firstLine(err) + "\n")}
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrInvalidTopic), errors.Is(err, ErrInvalidTenant),
		errors.Is(err, ErrInvalidID), errors.Is(err, ErrInvalidUser):
		return Rejection{Status: 400, ContentType: text, Body: []byte(firstLine(err) + "\n")}
	}
	var reason string
	status := 503
	switch {
	case errors.Is(err, ErrTooManyUserConnections):
		reason, status = "too_many_user_connections", 429
	case errors.Is(err, ErrTooManyConnections):
		reason = "too_many_connections"
	case errors.Is(err, ErrClosed):
		reason = "shutting_down"
	default:
		return Rejection{Status: 500, ContentType: text, Body: []byte("internal error\n")}
	}
	// Back off for longer than a normal reconnect: the limit will not lift
	// in three seconds, and a crowd retrying together keeps it reached.
	backoff := 5 * b.cfg.RetryHint
	if r != nil && r.Header(RejectModeHeader) == "status" {
		return Rejection{Status: status, ContentType: text, RetryAfter: int((backoff + time.Second - 1) / time.Second), Body: []byte(reason + "\n")}
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

// firstLine keeps wire messages to the sentinel-level description.
func firstLine(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
