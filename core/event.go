package core

import "time"

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
