package sse

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Field prefixes, as the encoder writes them: the field name, a colon and
// a single space, so that a value that itself starts with a space survives
// the client stripping one. A caller that lays out a frame itself (see
// Measure) uses them to write exactly what AppendEvent would.
const (
	CommentPrefix = ": "
	RetryPrefix   = "retry: "
	IDPrefix      = "id: "
	EventPrefix   = "event: "
	DataPrefix    = "data: "
)

// keepAliveFrame is what an Event with no content at all encodes to.
const keepAliveFrame = ":\n\n"

// AppendEvent validates e and appends it to dst as exactly one event block
// of the text/event-stream format (WHATWG HTML, "Server-sent events"),
// blank line included. On error dst is returned unchanged, so a caller can
// append straight into a shared buffer.
//
// The block is written in the order comment lines, retry, id, event, data
// lines. Line breaks (CRLF, CR, LF) in Data and Comment start a new data or
// comment line, which is the only way to carry them without letting the
// payload end the event early or inject fields.
//
// An Event that is a message (ID, Type or Data non-empty) always gets at
// least one data line, even for empty Data: a client dispatches nothing for
// a block without one. An Event with only a Comment and/or a Retry gets no
// data line, so clients read it as a control frame and dispatch nothing.
// The zero Event encodes as ":\n\n", a bare comment: the smallest frame a
// client parses and ignores, which makes it a ready-made keep-alive.
//
// Retry is written in whole milliseconds, truncated, because that is the
// field's unit; a positive Retry under a millisecond is written as 0.
//
// It does not allocate when dst has EncodedLen(e) bytes of spare capacity,
// and a nil or full dst costs one allocation of exactly the needed size.
func AppendEvent(dst []byte, e Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return dst, err
	}
	// A cheap lower bound decides whether to compute the exact size: the
	// common reused-buffer case then never pays for the extra scan, and a
	// fresh buffer is allocated once and exactly (frames are shared and
	// retained, so slack would be wasted memory).
	lower := len(e.ID) + len(e.Type) + len(e.Data) + len(e.Comment) + 32
	if cap(dst)-len(dst) < lower {
		if n := EncodedLen(e); cap(dst)-len(dst) < n {
			grown := make([]byte, len(dst), len(dst)+n)
			copy(grown, dst)
			dst = grown
		}
	}
	return AppendValid(dst, e), nil
}

// AppendValid appends e to dst like AppendEvent, without validating it
// again: it is for a caller that has checked e with Validate already, such
// as a broker that validates an event once when it is published and
// encodes it later. It grows dst as append does; give it EncodedLen(e)
// bytes of spare capacity and it does not allocate.
//
// An Event that fails Validate gives a frame that need not mean what e
// says: a line break in ID or Type would inject fields.
func AppendValid(dst []byte, e Event) []byte {
	message := isMessage(e)
	if !message && e.Comment == "" && e.Retry <= 0 {
		return append(dst, keepAliveFrame...)
	}
	if e.Comment != "" {
		dst = appendSSELines(dst, CommentPrefix, e.Comment)
	}
	dst = appendFields(dst, e)
	if message {
		dst = appendSSELines(dst, DataPrefix, e.Data)
	}
	return append(dst, '\n')
}

// EncodedLen returns the number of bytes AppendEvent appends for e, so a
// caller can enforce a size limit or size a buffer before encoding.
//
// It does not validate e: for an Event that fails Validate it returns the
// size the event would have, while AppendEvent appends nothing.
func EncodedLen(e Event) int {
	n, _ := Measure(e)
	return n
}

// Measure returns EncodedLen(e) and whether e is simple: a message (ID,
// Type or Data non-empty) with no Comment whose Data is a single line.
// The frame of a simple event is its retry, id and event fields, in that
// order and each only when set, then DataPrefix, Data and two LFs, so a
// caller that has validated e can lay the frame out itself, for example
// around a slot for an ID it learns later, without another scan of Data
// for line breaks. One pass over the text serves both answers.
//
// Like EncodedLen, it does not validate e.
func Measure(e Event) (n int, simple bool) {
	message := isMessage(e)
	if !message && e.Comment == "" && e.Retry <= 0 {
		return len(keepAliveFrame), false
	}
	n = 1 // the blank line that ends the event
	if e.Comment != "" {
		lines, breaks := sseLineStats(e.Comment)
		n += lines*(len(CommentPrefix)+1) + len(e.Comment) - breaks
	}
	if e.Retry > 0 {
		n += len(RetryPrefix) + decimalLen(uint64(e.Retry/time.Millisecond)) + 1
	}
	if e.ID != "" {
		n += len(IDPrefix) + len(e.ID) + 1
	}
	if e.Type != "" {
		n += len(EventPrefix) + len(e.Type) + 1
	}
	if message {
		lines, breaks := sseLineStats(e.Data)
		n += lines*(len(DataPrefix)+1) + len(e.Data) - breaks
		simple = lines == 1 && e.Comment == ""
	}
	return n, simple
}

// appendFields appends the single-line fields of e: retry, id, event.
func appendFields(dst []byte, e Event) []byte {
	if e.Retry > 0 {
		dst = append(dst, RetryPrefix...)
		dst = strconv.AppendInt(dst, int64(e.Retry/time.Millisecond), 10)
		dst = append(dst, '\n')
	}
	if e.ID != "" {
		dst = append(dst, IDPrefix...)
		dst = append(dst, e.ID...)
		dst = append(dst, '\n')
	}
	if e.Type != "" {
		dst = append(dst, EventPrefix...)
		dst = append(dst, e.Type...)
		dst = append(dst, '\n')
	}
	return dst
}

// Validate reports whether e can be encoded without changing its meaning
// on the wire.
//
// ID and Type are single-line fields: a CR or LF would end the field and let
// the rest inject new fields or events, NUL makes browsers ignore the id,
// and other control characters (Unicode category Cc) have no legitimate use
// and confuse logs and proxies, so all of them are rejected (ErrInvalidID,
// ErrInvalidType). Every text field must be valid UTF-8 (ErrInvalidUTF8)
// because clients decode the stream as UTF-8 and would silently replace bad
// bytes. A negative Retry is rejected (ErrInvalidRetry). Line breaks and NUL
// in Data and Comment are fine: the encoder splits on the former and the
// latter is legal on the wire.
//
// An empty Type is valid here; requiring one is the broker's policy.
func (e Event) Validate() error {
	idCtrl, idASCII := firstControlChar(e.ID)
	if idCtrl >= 0 {
		return fmt.Errorf("%w: control character at byte %d", ErrInvalidID, idCtrl)
	}
	typeCtrl, typeASCII := firstControlChar(e.Type)
	if typeCtrl >= 0 {
		return fmt.Errorf("%w: control character at byte %d", ErrInvalidType, typeCtrl)
	}
	if !idASCII {
		if err := validUTF8Field("id", e.ID); err != nil {
			return err
		}
	}
	if !typeASCII {
		if err := validUTF8Field("event type", e.Type); err != nil {
			return err
		}
	}
	if err := validUTF8Field("data", e.Data); err != nil {
		return err
	}
	if err := validUTF8Field("comment", e.Comment); err != nil {
		return err
	}
	if e.Retry < 0 {
		return fmt.Errorf("%w: %d is negative", ErrInvalidRetry, e.Retry)
	}
	return nil
}

// isMessage reports whether a client would dispatch e, which decides
// whether the encoder must write a data line.
func isMessage(e Event) bool {
	return e.ID != "" || e.Type != "" || e.Data != ""
}

func validUTF8Field(field, s string) error {
	if utf8.ValidString(s) {
		return nil
	}
	// Slow path only on error: find the offset to make the report useful
	// without echoing a possibly huge or hostile value.
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("%w: %s has an invalid byte at offset %d", ErrInvalidUTF8, field, i)
		}
		i += size
	}
	return fmt.Errorf("%w: %s", ErrInvalidUTF8, field)
}

// firstControlChar returns the byte offset of the first Unicode Cc
// character in s (C0 controls, DEL, and the C1 controls U+0080–U+009F,
// which UTF-8 encodes as 0xC2 0x80–0x9F), or -1. It also reports whether s
// is all ASCII, which spares the caller a separate UTF-8 pass over the
// typical ID or type.
func firstControlChar(s string) (int, bool) {
	var seen byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		seen |= c
		if c < 0x20 || c == 0x7f {
			return i, false
		}
		if c == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f {
			return i, false
		}
	}
	return -1, seen < utf8.RuneSelf
}

// sseBreaks walks the line breaks of s. It keeps the next CR and the next
// LF position separately so that each is searched for with one vectorised
// IndexByte pass over s in total; searching for "the first of CR or LF" on
// every line would be quadratic on input that uses only one of them.
type sseBreaks struct {
	s      string
	start  int // offset of the current line
	cr, lf int // next CR / LF at or after start, or -1 when there is none
}

func newSSEBreaks(s string) sseBreaks {
	return sseBreaks{s: s, cr: strings.IndexByte(s, '\r'), lf: strings.IndexByte(s, '\n')}
}

// next returns the current line and whether it ended in a line break; when
// it did not, the line is the last one.
func (b *sseBreaks) next() (line string, more bool) {
	if b.cr >= 0 && b.cr < b.start {
		b.cr = indexByteFrom(b.s, b.start, '\r')
	}
	if b.lf >= 0 && b.lf < b.start {
		b.lf = indexByteFrom(b.s, b.start, '\n')
	}
	brk := b.lf
	if b.cr >= 0 && (brk < 0 || b.cr < brk) {
		brk = b.cr
	}
	if brk < 0 {
		return b.s[b.start:], false
	}
	line = b.s[b.start:brk]
	b.start = brk + 1
	if b.s[brk] == '\r' && b.start < len(b.s) && b.s[b.start] == '\n' {
		b.start++
	}
	return line, true
}

func indexByteFrom(s string, from int, c byte) int {
	if i := strings.IndexByte(s[from:], c); i >= 0 {
		return from + i
	}
	return -1
}

// appendSSELines appends prefix+line+LF for every line of s, splitting on
// CRLF, CR and LF exactly as a client will.
func appendSSELines(dst []byte, prefix, s string) []byte {
	b := newSSEBreaks(s)
	for {
		line, more := b.next()
		dst = append(dst, prefix...)
		dst = append(dst, line...)
		dst = append(dst, '\n')
		if !more {
			return dst
		}
	}
}

// sseLineStats returns how many lines appendSSELines writes for s and how
// many bytes of s are line breaks, which the encoder drops (each becomes
// the LF that ends a line it writes).
func sseLineStats(s string) (lines, breakBytes int) {
	if strings.IndexByte(s, '\r') < 0 {
		// The usual payload: LF is the only break, one vectorised count.
		lf := strings.Count(s, "\n")
		return lf + 1, lf
	}
	b := newSSEBreaks(s)
	lines = 1
	for {
		if _, more := b.next(); !more {
			break
		}
		lines++
	}
	return lines, strings.Count(s, "\r") + strings.Count(s, "\n")
}

func decimalLen(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}
