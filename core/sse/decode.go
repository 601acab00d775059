package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"
)

// Limits a Decoder applies when its fields leave them unset.
const (
	// DefaultMaxLineSize bounds one line a Decoder reads when its
	// MaxLineSize is not set (1 MiB): far above any sane event line, far
	// below what would hurt a client. ssekit's Go client decodes with it,
	// so ssekit's broker refuses a maximum event size above it (core's
	// Config.Validate): it would accept events its own client refuses.
	DefaultMaxLineSize = 1 << 20
	// DefaultMaxEventSize bounds the decoded data and comment text a
	// Decoder collects for one event when its MaxEventSize is not set
	// (16 MiB). It is a reader's safety net, unrelated to the far smaller
	// limit a broker puts on the events it publishes.
	DefaultMaxEventSize = 16 << 20
)

const (
	decoderInitialBuffer = 4 << 10
	// decoderMaxEmptyReads mirrors bufio: a Reader that keeps returning
	// (0, nil) is broken, and spinning on it forever would hide that.
	decoderMaxEmptyReads = 100
	// maxRetryMillis is the largest retry, in milliseconds, a time.Duration
	// holds; larger values saturate rather than wrap negative.
	maxRetryMillis = int64(1<<63-1) / int64(time.Millisecond)
)

const utf8BOM = "\xef\xbb\xbf"

// Decoder reads a text/event-stream and returns the events a browser's
// EventSource would dispatch, following the WHATWG HTML algorithm for
// interpreting an event stream to the letter: it strips one leading BOM,
// accepts CRLF, LF and CR line endings (even a CRLF split across reads),
// decodes UTF-8 replacing each maximal ill-formed subpart with one U+FFFD,
// and discards an event, or a final line, the stream cuts short.
//
// It exists so tests and Go clients see exactly what a browser sees, which
// is what makes it useful for checking the encoder and for proxies that
// must not change meaning. Create one with NewDecoder; a Decoder is not
// safe for concurrent use.
type Decoder struct {
	// OnComment, when set, is called with the text of every comment line as
	// it is parsed (one leading space removed). Comments never dispatch, so
	// this is the only way to observe keep-alives and stream preambles as
	// they arrive.
	OnComment func(text string)
	// MaxLineSize bounds the bytes of one line, terminator excluded, so a
	// hostile or broken server cannot make the decoder buffer without end;
	// a longer line makes Next fail with an error wrapping ErrEventTooLarge.
	// Zero or negative means DefaultMaxLineSize (1 MiB).
	MaxLineSize int
	// MaxEventSize bounds the decoded data and comment text collected for
	// one event; exceeding it makes Next fail with an error wrapping
	// ErrEventTooLarge. Zero or negative means DefaultMaxEventSize (16 MiB).
	MaxEventSize int

	r          io.Reader
	buf        []byte
	start, end int      // unread bytes are buf[start:end]
	cr, lf     byteScan // cached searches for line breaks in buf
	err        error    // read error, returned once the buffer is drained
	fatal      error    // sticky error that stops decoding at once

	bomDone bool // the leading BOM has been stripped or ruled out
	skipLF  bool // the previous line ended in CR: a following LF is part of its break

	// Buffers of the spec's algorithm.
	data       []byte
	comment    []byte
	hasComment bool
	typ        string
	typCache   string // the last type seen, reused to avoid an allocation per event
	idBuf      string // the spec's "last event ID buffer"
	lastID     string // the spec's "last event ID string"
	retry      time.Duration
	eventRetry time.Duration // retry set since the last blank line
	eventSize  int           // bytes of data and comment text collected for this event
}

// NewDecoder returns a Decoder reading from r. The Decoder buffers its
// input, so it may read past the last event it returns.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: r, cr: byteScan{pos: -1}, lf: byteScan{pos: -1}}
}

// LastEventID returns the spec's last event ID string: the value an
// EventSource would send as Last-Event-ID when reconnecting now. Like a
// browser, the decoder commits the id field at every blank line, even one
// that dispatches nothing, so "id: 5\n\n" sets it without an event.
func (d *Decoder) LastEventID() string { return d.lastID }

// SetLastEventID carries the last event ID over from a previous connection,
// as browsers do when an EventSource reconnects: the spec starts each
// stream's ID buffer empty, which would make the first blank line of the
// new stream forget the client's position.
func (d *Decoder) SetLastEventID(id string) { d.idBuf, d.lastID = id, id }

// Retry returns the reconnection time set by the last valid retry field,
// or 0 if the stream has not set one.
func (d *Decoder) Retry() time.Duration { return d.retry }

// Next returns the next event the stream dispatches. It returns io.EOF when
// the stream ends; an event or line left incomplete by the end of the
// stream is discarded, as a browser does. Any other read error is returned
// as is once the events already buffered have been returned. Errors are
// sticky.
//
// The returned Event holds: ID, the last event ID string at dispatch time
// (it persists across events until an id field changes it); Type, the event
// field, "" when there was none, which EventSource treats as "message";
// Data, with the final LF removed; Retry, the value of a valid retry field
// in this event's block, else 0; Comment, the comment lines of this event's
// block joined with LF. A blank line that dispatches nothing (no data
// field) discards the block's Comment and Retry along with its type, though
// Retry and LastEventID still record what the block set.
func (d *Decoder) Next() (Event, error) {
	if d.fatal != nil {
		return Event{}, d.fatal
	}
	maxLine := d.MaxLineSize
	if maxLine <= 0 {
		maxLine = DefaultMaxLineSize
	}
	empty := 0
	for {
		for d.start < d.end {
			if d.skipLF {
				d.skipLF = false
				if d.buf[d.start] == '\n' {
					d.start++
					continue
				}
			}
			if !d.bomDone {
				avail := d.buf[d.start:d.end]
				if len(avail) >= len(utf8BOM) {
					if string(avail[:len(utf8BOM)]) == utf8BOM {
						d.start += len(utf8BOM)
					}
					d.bomDone = true
				} else if string(avail) == utf8BOM[:len(avail)] && d.err == nil {
					// Could still become a BOM: read more. At the end of
					// the stream it cannot, and is an unterminated line.
					break
				} else {
					d.bomDone = true
				}
				continue
			}
			brk := d.nextBreak()
			if brk < 0 {
				break
			}
			line := d.buf[d.start:brk]
			d.start = brk + 1
			if d.buf[brk] == '\r' {
				if d.start < d.end {
					if d.buf[d.start] == '\n' {
						d.start++
					}
				} else {
					d.skipLF = true
				}
			}
			if len(line) > maxLine {
				return Event{}, d.fail(lineTooLong(maxLine))
			}
			var ev Event
			ok, err := d.processLine(line, &ev)
			if err != nil {
				return Event{}, d.fail(err)
			}
			if ok {
				return ev, nil
			}
		}
		if d.end-d.start > maxLine {
			return Event{}, d.fail(lineTooLong(maxLine))
		}
		if d.err != nil {
			return Event{}, d.fail(d.err)
		}
		n := d.fill(maxLine)
		if n == 0 && d.err == nil {
			if empty++; empty >= decoderMaxEmptyReads {
				d.err = io.ErrNoProgress
			}
		} else {
			empty = 0
		}
	}
}

func lineTooLong(limit int) error {
	return fmt.Errorf("%w: line longer than %d bytes", ErrEventTooLarge, limit)
}

// fail makes err sticky and releases the buffers, which are useless now.
func (d *Decoder) fail(err error) error {
	d.fatal = err
	d.buf, d.data, d.comment = nil, nil, nil
	d.start, d.end = 0, 0
	return err
}

// fill reads once into the free space of the buffer, compacting or growing
// it first so that a partial line of up to maxLine bytes always fits.
func (d *Decoder) fill(maxLine int) int {
	if d.start > 0 && (d.start == d.end || d.end == len(d.buf)) {
		n := copy(d.buf, d.buf[d.start:d.end])
		d.cr.shift(d.start)
		d.lf.shift(d.start)
		d.start, d.end = 0, n
	}
	if d.end == len(d.buf) {
		size := 2 * len(d.buf)
		if size < decoderInitialBuffer {
			size = decoderInitialBuffer
		}
		// A partial line never exceeds maxLine here, so a buffer of
		// maxLine+1 bytes always has room for at least one more byte.
		if limit := maxLine + 1; size > limit {
			size = max(limit, decoderInitialBuffer)
		}
		nb := make([]byte, size)
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	n, err := d.r.Read(d.buf[d.end:])
	if n < 0 || n > len(d.buf)-d.end {
		err, n = errors.New("ssekit: decoder: reader returned an invalid count"), 0
	}
	d.end += n
	if err != nil {
		d.err = err
	}
	return n
}

// byteScan caches the position of the next occurrence of one byte, so the
// decoder scans every input byte at most once per byte value searched for.
type byteScan struct {
	pos  int // position of the next occurrence at or after start, or -1
	upto int // when pos is -1: buf[:upto] holds no occurrence past start
}

func (s *byteScan) find(buf []byte, start, end int, c byte) int {
	if s.pos >= start {
		return s.pos
	}
	from := max(start, s.upto)
	if i := bytes.IndexByte(buf[from:end], c); i >= 0 {
		s.pos = from + i
		return s.pos
	}
	s.pos, s.upto = -1, end
	return -1
}

// shift adjusts the cache after the buffer moved left by off bytes.
func (s *byteScan) shift(off int) {
	if s.pos >= off {
		s.pos -= off
	} else {
		s.pos = -1
	}
	s.upto = max(s.upto-off, 0)
}

// nextBreak returns the buffer index of the first CR or LF in the unread
// bytes, or -1.
func (d *Decoder) nextBreak() int {
	lf := d.lf.find(d.buf, d.start, d.end, '\n')
	limit := d.end
	if lf >= 0 {
		limit = lf
	}
	cr := d.cr.find(d.buf, d.start, limit, '\r')
	if cr >= 0 {
		return cr
	}
	return lf
}

// processLine applies one line to the decoder state and reports whether it
// dispatched an event, which it then stores in ev (a pointer, because
// copying an Event out for every line shows up in profiles).
func (d *Decoder) processLine(line []byte, ev *Event) (bool, error) {
	if len(line) == 0 {
		return d.dispatch(ev), nil
	}
	// Colon, space, NUL and the field names are ASCII, and an ASCII byte is
	// never part of an ill-formed UTF-8 sequence, so the raw bytes can be
	// examined before decoding; only values need the replacement rules.
	var name, value []byte
	if colon := bytes.IndexByte(line, ':'); colon >= 0 {
		name, value = line[:colon], line[colon+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	} else {
		name = line
	}
	if len(name) == 0 {
		return false, d.addComment(value)
	}
	switch string(name) {
	case "event":
		if string(value) == d.typCache {
			d.typ = d.typCache
		} else {
			d.typ = decodeUTF8String(value)
			d.typCache = d.typ
		}
	case "data":
		if err := d.spend(len(value) + 1); err != nil {
			return false, err
		}
		before := len(d.data)
		d.data = appendUTF8Replacing(d.data, value)
		d.data = append(d.data, '\n')
		if err := d.spend(len(d.data) - before - len(value) - 1); err != nil {
			return false, err
		}
	case "id":
		if bytes.IndexByte(value, 0) < 0 && string(value) != d.idBuf {
			d.idBuf = decodeUTF8String(value)
		}
	case "retry":
		if ms, ok := parseRetryMillis(value); ok {
			d.retry = time.Duration(ms) * time.Millisecond
			d.eventRetry = d.retry
		}
	}
	return false, nil
}

func (d *Decoder) addComment(text []byte) error {
	if d.OnComment != nil {
		d.OnComment(decodeUTF8String(text))
	}
	before := len(d.comment)
	if d.hasComment {
		d.comment = append(d.comment, '\n')
	}
	d.hasComment = true
	d.comment = appendUTF8Replacing(d.comment, text)
	return d.spend(len(d.comment) - before)
}

// spend charges n bytes against the event size limit. Comments count too:
// otherwise a stream of comment lines with no blank line would grow the
// comment buffer without bound.
func (d *Decoder) spend(n int) error {
	d.eventSize += n
	limit := d.MaxEventSize
	if limit <= 0 {
		limit = DefaultMaxEventSize
	}
	if d.eventSize > limit {
		return fmt.Errorf("%w: event text longer than %d bytes", ErrEventTooLarge, limit)
	}
	return nil
}

// dispatch implements the blank-line step of the algorithm.
func (d *Decoder) dispatch(ev *Event) bool {
	d.lastID = d.idBuf
	ok := len(d.data) > 0
	if ok {
		*ev = Event{
			ID:      d.lastID,
			Type:    d.typ,
			Data:    string(d.data[:len(d.data)-1]),
			Retry:   d.eventRetry,
			Comment: string(d.comment),
		}
	}
	d.data = d.data[:0]
	d.comment = d.comment[:0]
	d.hasComment = false
	d.typ = ""
	d.eventRetry = 0
	d.eventSize = 0
	return ok
}

// parseRetryMillis accepts what the spec accepts, a non-empty run of ASCII
// digits read in base ten, saturating instead of overflowing.
func parseRetryMillis(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if ms > (maxRetryMillis-int64(c-'0'))/10 {
			ms = maxRetryMillis
		} else {
			ms = ms*10 + int64(c-'0')
		}
	}
	return ms, true
}

// decodeUTF8String converts p with the WHATWG replacement rules, without
// an extra copy in the common, valid case.
func decodeUTF8String(p []byte) string {
	if utf8.Valid(p) {
		return string(p)
	}
	return string(appendUTF8Replacing(nil, p))
}

// appendUTF8Replacing appends p to dst decoded as the WHATWG Encoding
// standard decodes UTF-8: each maximal subpart of an ill-formed sequence
// becomes one U+FFFD. Go's own conversions emit one U+FFFD per bad byte
// (a truncated "\xe2\x82" gives two), which would not match what a browser
// shows.
//
// Applying it per line is exact: line breaks are ASCII, and an ASCII byte
// both ends any incomplete sequence and is never consumed by one.
func appendUTF8Replacing(dst, p []byte) []byte {
	if utf8.Valid(p) { // vectorised fast path for the common case
		return append(dst, p...)
	}
	for len(p) > 0 {
		// Copy the longest valid prefix in one go.
		i := 0
		for i < len(p) {
			if c := p[i]; c < utf8.RuneSelf {
				i++
				continue
			}
			r, size := utf8.DecodeRune(p[i:])
			if r == utf8.RuneError && size == 1 {
				break
			}
			i += size
		}
		dst = append(dst, p[:i]...)
		if i == len(p) {
			break
		}
		p = p[i+utf8MaximalSubpart(p[i:]):]
		dst = append(dst, "\uFFFD"...)
	}
	return dst
}

// utf8MaximalSubpart returns the length of the maximal subpart of the
// ill-formed sequence at the start of p: the lead byte plus the
// continuation bytes that are still valid for it (the byte ranges of the
// WHATWG UTF-8 decoder, which are those of Unicode Table 3-7). It is at
// least 1.
func utf8MaximalSubpart(p []byte) int {
	var need int
	lower, upper := byte(0x80), byte(0xbf)
	switch b := p[0]; {
	case b >= 0xc2 && b <= 0xdf:
		need = 1
	case b == 0xe0:
		need, lower = 2, 0xa0
	case b == 0xed:
		need, upper = 2, 0x9f
	case b >= 0xe1 && b <= 0xef:
		need = 2
	case b == 0xf0:
		need, lower = 3, 0x90
	case b == 0xf4:
		need, upper = 3, 0x8f
	case b >= 0xf1 && b <= 0xf3:
		need = 3
	default:
		return 1
	}
	i := 1
	for ; i <= need && i < len(p); i++ {
		if c := p[i]; c < lower || c > upper {
			return i
		}
		lower, upper = 0x80, 0xbf
	}
	return i
}
