package core

import (
	"io"

	"github.com/ssekit/ssekit/core/sse"
)

// The wire format lives in package sse (github.com/ssekit/ssekit/core/sse),
// which imports nothing but the standard library. The names below keep
// core's API as it was: they are aliases of sse's types and the same
// functions, constants and error values, so an Event, a Decoder or an
// errors.Is check works the same through either package.

// Event is one server-sent event as the WHATWG HTML standard defines it;
// it is sse.Event (see there for the fields and their rules). The broker
// adds one rule of its own: a published event needs a Type.
type Event = sse.Event

// Decoder reads a text/event-stream and returns the events a browser's
// EventSource would dispatch; it is sse.Decoder.
type Decoder = sse.Decoder

// DefaultMaxLineSize bounds one line a Decoder reads when its MaxLineSize
// is not set (1 MiB); it is sse.DefaultMaxLineSize. The Go client decodes
// with it, so Config.Validate refuses a MaxEventSize above it: the broker
// would accept events its own client refuses.
const DefaultMaxLineSize = sse.DefaultMaxLineSize

// AppendEvent validates e and appends it to dst as exactly one event block
// of the text/event-stream format, blank line included; on error dst is
// returned unchanged. It is sse.AppendEvent.
func AppendEvent(dst []byte, e Event) ([]byte, error) { return sse.AppendEvent(dst, e) }

// EncodedLen returns the number of bytes AppendEvent appends for e,
// without validating e. It is sse.EncodedLen.
func EncodedLen(e Event) int { return sse.EncodedLen(e) }

// NewDecoder returns a Decoder reading from r. It is sse.NewDecoder.
func NewDecoder(r io.Reader) *Decoder { return sse.NewDecoder(r) }

// What the broker's frame building (message.go) uses of the encoder.
const (
	idPrefix    = sse.IDPrefix
	eventPrefix = sse.EventPrefix
	dataPrefix  = sse.DataPrefix
)

// encodedLen is sse.Measure: the encoded size, and whether e is a simple
// (flat) message, one data line and no comment.
func encodedLen(e Event) (n int, flat bool) { return sse.Measure(e) }

// appendEventUnchecked encodes an event Validate accepted.
func appendEventUnchecked(dst []byte, e Event) []byte { return sse.AppendValid(dst, e) }

// appendFlatEvent encodes an event encodedLen reported flat, which
// AppendValid writes the same way.
func appendFlatEvent(dst []byte, e Event) []byte { return sse.AppendValid(dst, e) }
