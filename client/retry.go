package client

import (
	"bytes"
	"io"
	"time"
)

// MinRetryDelay is the shortest reconnection delay a server's retry hint
// can set. The spec lets a server send "retry: 0", and the client honours
// it, but waits at least this long: a buggy or hostile server cannot make
// clients reconnect in a tight loop. A Backoff.Initial you configure
// yourself is not raised to it.
const MinRetryDelay = 100 * time.Millisecond

// zeroRetryWatch passes a response body through to the decoder and notes
// whether the stream held a valid "retry: 0" field. sse.Decoder.Retry
// reports 0 both for that and for a stream that set no retry at all; the
// spec makes only the first one a reconnection time (of zero).
//
// Every SSE line is a field on its own, so looking at whole lines as they
// pass is exact: a line is a retry field here exactly when the decoder
// reads it as one, because both split lines at CR, LF and CRLF and strip
// one leading BOM.
type zeroRetryWatch struct {
	r    io.Reader
	zero bool // a "retry: 0" line went by

	line     [len("retry: ") + 16]byte // the start of the current line
	n        int                       // bytes of the current line seen, capped at len(line)+1
	started  bool                      // past the first line, whose BOM the decoder strips
	bomBytes int                       // bytes of a leading BOM matched; len(bom) once decided
}

func (w *zeroRetryWatch) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	for _, c := range p[:n] {
		if !w.started && w.n == 0 && w.bomBytes < len(bom) {
			if c == bom[w.bomBytes] {
				w.bomBytes++
				continue
			}
			if w.bomBytes > 0 {
				// A partial BOM is part of the line for the decoder, so the
				// line names no field it knows.
				w.n = len(w.line) + 1
			}
			w.bomBytes = len(bom)
		}
		if c == '\r' || c == '\n' {
			// A CRLF ends one line and then an empty one, which never
			// matches: no need to pair them up.
			if w.n <= len(w.line) && isZeroRetry(w.line[:w.n]) {
				w.zero = true
			}
			w.n, w.started = 0, true
			continue
		}
		if w.n < len(w.line) {
			w.line[w.n] = c
		}
		if w.n <= len(w.line) {
			w.n++ // past the buffer: too long to be of interest
		}
	}
	return n, err
}

const bom = "\xef\xbb\xbf"

// isZeroRetry reports whether line is a retry field whose value is valid
// (ASCII digits only, at least one) and zero.
func isZeroRetry(line []byte) bool {
	v, ok := bytes.CutPrefix(line, []byte("retry:"))
	if !ok {
		return false
	}
	v = bytes.TrimPrefix(v, []byte(" ")) // one space only, as the spec says
	return len(v) > 0 && len(bytes.Trim(v, "0")) == 0
}
