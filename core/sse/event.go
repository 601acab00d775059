package sse

import (
	"errors"
	"time"
)

// Event is one server-sent event as the WHATWG HTML standard defines it.
//
// An Event with an ID, a Type or Data is a message: the encoder writes at
// least one data line so the browser dispatches it. An Event with only a
// Comment and/or a Retry is a control frame the browser never dispatches.
type Event struct {
	// ID is written as the id field; a reconnecting client sends it back as
	// Last-Event-ID. Must not contain CR, LF, NUL or control characters.
	ID string
	// Type is the event field (EventSource listeners use it; "" means
	// "message"). Must not contain CR, LF, NUL or control characters.
	Type string
	// Data is the payload. Line breaks (CRLF, CR, LF) split it over several
	// data lines; the client joins them back with LF.
	Data string
	// Retry, when positive, tells the client how long to wait before
	// reconnecting; it is written in whole milliseconds.
	Retry time.Duration
	// Comment is written as comment lines, which clients ignore; line breaks
	// split it over several lines.
	Comment string
}

// Errors of the wire format. Validate and AppendEvent return errors that
// wrap the first four, the Decoder ErrEventTooLarge; compare with
// errors.Is. Package core re-exports the same values, so a check against
// either package's name matches.
var (
	// ErrInvalidID reports an event ID containing CR, LF, NUL or another
	// control character, which would let a value inject SSE fields.
	ErrInvalidID = errors.New("ssekit: invalid event ID")
	// ErrInvalidType reports an event type containing CR, LF, NUL or
	// another control character.
	ErrInvalidType = errors.New("ssekit: invalid event type")
	// ErrInvalidUTF8 reports event text that is not valid UTF-8: the SSE
	// stream is UTF-8, and a browser would silently rewrite such bytes.
	ErrInvalidUTF8 = errors.New("ssekit: event text is not valid UTF-8")
	// ErrInvalidRetry reports a negative retry hint.
	ErrInvalidRetry = errors.New("ssekit: invalid retry")
	// ErrEventTooLarge reports a line or an event longer than a limit: the
	// Decoder's MaxLineSize or MaxEventSize (package core also returns it
	// for an event over its Config.MaxEventSize).
	ErrEventTooLarge = errors.New("ssekit: event too large")
)
