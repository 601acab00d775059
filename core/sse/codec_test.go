package sse

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ---------------------------------------------------------------------------
// Encoder

func TestEncodeTable(t *testing.T) {
	tests := []struct {
		name string
		in   Event
		want string
	}{
		{"zero event is a bare comment", Event{}, ":\n\n"},
		{"data only", Event{Data: "hello"}, "data: hello\n\n"},
		{"id type data", Event{ID: "1", Type: "update", Data: "x"}, "id: 1\nevent: update\ndata: x\n\n"},
		{"field order", Event{Comment: "c", Retry: 1500 * time.Millisecond, ID: "7", Type: "t", Data: "a\nb"},
			": c\nretry: 1500\nid: 7\nevent: t\ndata: a\ndata: b\n\n"},
		{"every line break", Event{Data: "a\r\nb\rc\nd"}, "data: a\ndata: b\ndata: c\ndata: d\n\n"},
		{"empty data with id", Event{ID: "1"}, "id: 1\ndata: \n\n"},
		{"empty data with type", Event{Type: "ping"}, "event: ping\ndata: \n\n"},
		{"leading space kept", Event{Data: " leading", ID: " i", Type: " t"}, "id:  i\nevent:  t\ndata:  leading\n\n"},
		{"trailing LF", Event{Data: "trailing\n"}, "data: trailing\ndata: \n\n"},
		{"trailing CR", Event{Data: "a\r"}, "data: a\ndata: \n\n"},
		{"only LF", Event{Data: "\n"}, "data: \ndata: \n\n"},
		{"two CRLF", Event{Data: "\r\n\r\n"}, "data: \ndata: \ndata: \n\n"},
		{"CR CR LF", Event{Data: "\r\r\n"}, "data: \ndata: \ndata: \n\n"},
		{"LF CR", Event{Data: "\n\r"}, "data: \ndata: \ndata: \n\n"},
		{"comment only", Event{Comment: "keep-alive"}, ": keep-alive\n\n"},
		{"multi-line comment", Event{Comment: "a\r\nb\n"}, ": a\n: b\n: \n\n"},
		{"comment with message", Event{Comment: "hi", Data: "d"}, ": hi\ndata: d\n\n"},
		{"retry only", Event{Retry: 3 * time.Second}, "retry: 3000\n\n"},
		{"retry truncated", Event{Retry: 1999 * time.Microsecond, Data: "x"}, "retry: 1\ndata: x\n\n"},
		{"retry below 1ms", Event{Retry: 500 * time.Microsecond}, "retry: 0\n\n"},
		{"retry max", Event{Retry: time.Duration(1<<63 - 1)}, "retry: 9223372036854\n\n"},
		{"NUL in data", Event{Data: "a\x00b"}, "data: a\x00b\n\n"},
		{"NUL in comment", Event{Comment: "\x00"}, ": \x00\n\n"},
		{"colon in values", Event{ID: "a:b", Type: "c:d", Data: "e:f"}, "id: a:b\nevent: c:d\ndata: e:f\n\n"},
		{"unicode", Event{ID: "é…", Type: "ü", Data: "日本\n😀"}, "id: é…\nevent: ü\ndata: 日本\ndata: 😀\n\n"},
		{"json", Event{Type: "update", Data: `{"a":1,"b":[true,null]}`}, "event: update\ndata: {\"a\":1,\"b\":[true,null]}\n\n"},
		{"non-line-break controls", Event{Data: "\t\v\f\u0085\u2028"}, "data: \t\v\f\u0085\u2028\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendEvent(nil, tt.in)
			require.NoError(t, err, "AppendEvent")
			assert.Equal(t, tt.want, string(got), "AppendEvent = %q, want %q", got, tt.want)
			n := EncodedLen(tt.in)
			assert.Equal(t, len(tt.want), n, "EncodedLen = %d, want %d", n, len(tt.want))
			// Appending keeps what is already in dst.
			got, err = AppendEvent([]byte("prefix"), tt.in)
			assert.False(t, err != nil || string(got) != "prefix"+tt.want, "AppendEvent(prefix) = %q, %v", got, err)
		})
	}
}

func TestEncodeValidate(t *testing.T) {
	long := strings.Repeat("x", 1<<20)
	tests := []struct {
		name string
		in   Event
		want error
	}{
		{"id LF", Event{ID: "a\nb", Data: "x"}, ErrInvalidID},
		{"id CR", Event{ID: "a\rb"}, ErrInvalidID},
		{"id CRLF", Event{ID: "1\r\ndata: evil"}, ErrInvalidID},
		{"id NUL", Event{ID: "a\x00b"}, ErrInvalidID},
		{"id tab", Event{ID: "a\tb"}, ErrInvalidID},
		{"id DEL", Event{ID: "\x7f"}, ErrInvalidID},
		{"id C1 NEL", Event{ID: "a\u0085"}, ErrInvalidID},
		{"id C1 last", Event{ID: "\u009f"}, ErrInvalidID},
		{"type LF", Event{Type: "a\n"}, ErrInvalidType},
		{"type CR", Event{Type: "\ra"}, ErrInvalidType},
		{"type NUL", Event{Type: "\x00"}, ErrInvalidType},
		{"type escape", Event{Type: "\x1b[31m"}, ErrInvalidType},
		{"type C1", Event{Type: "\u0080"}, ErrInvalidType},
		{"id bad UTF-8", Event{ID: "\xff"}, ErrInvalidUTF8},
		{"type bad UTF-8", Event{Type: "a\xc3"}, ErrInvalidUTF8},
		{"data bad UTF-8", Event{Data: "ok\xe2\x82"}, ErrInvalidUTF8},
		{"data surrogate", Event{Data: "\xed\xa0\x80"}, ErrInvalidUTF8},
		{"comment bad UTF-8", Event{Comment: "\x80"}, ErrInvalidUTF8},
		{"negative retry", Event{Retry: -time.Millisecond}, ErrInvalidRetry},
		{"huge id with LF at the end", Event{ID: long + "\n"}, ErrInvalidID},
		{"huge data with bad byte at the end", Event{Data: long + "\xff"}, ErrInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			require.ErrorIs(t, err, tt.want, "Validate = %v, want %v", err, tt.want)
			assert.LessOrEqual(t, len(err.Error()), 200, "error message is %d bytes; it must not echo the input", len(err.Error()))
			dst := []byte("keep")
			got, err := AppendEvent(dst, tt.in)
			assert.ErrorIs(t, err, tt.want, "AppendEvent error = %v, want %v", err, tt.want)
			assert.Equal(t, "keep", string(got), "AppendEvent changed dst on error: %q", got)
		})
	}

	valid := []Event{
		{},
		{ID: "\u00a0", Type: "\u00c2\u00a0"}, // U+00C2 is 0xC3 0x82: not a C1 control
		{ID: "\u2028\u2029\ufeff", Type: "é"},
		{Data: "\x00\x01\x7f\u0085", Comment: "\x00\t"},
		{Retry: 0},
	}
	for _, e := range valid {
		err := e.Validate()
		assert.NoError(t, err, "Validate(%+q) = %v, want nil", e, err)
	}
}

// TestEncodeValidateControlChars checks the control-character rule against
// the Unicode tables for every code point.
func TestEncodeValidateControlChars(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xd800 && r <= 0xdfff {
			continue
		}
		s := "a" + string(r) + "b"
		wantErr := unicode.Is(unicode.Cc, r)
		gotErr := (Event{ID: s}).Validate() != nil
		require.Equal(t, wantErr, gotErr, "ID with U+%04X: error %v, want error %v", r, gotErr, wantErr)
		gotErr = (Event{Type: s}).Validate() != nil
		require.Equal(t, wantErr, gotErr, "Type with U+%04X: error %v, want error %v", r, gotErr, wantErr)
	}
}

func TestEncodedLenMatches(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"", "a", "\n", "\r", "\r\n", "é", " ", ":", "data: x", "😀", "\x00"}
	gen := func() string {
		var b strings.Builder
		for n := rng.IntN(8); n > 0; n-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return b.String()
	}
	for i := 0; i < 5000; i++ {
		e := Event{Data: gen(), Comment: gen(), Retry: time.Duration(rng.IntN(3)) * time.Duration(rng.Int64N(1<<40))}
		if rng.IntN(2) == 0 {
			e.ID = strings.Map(codecDropControls, gen())
		}
		if rng.IntN(2) == 0 {
			e.Type = strings.Map(codecDropControls, gen())
		}
		got, err := AppendEvent(nil, e)
		require.NoError(t, err, "AppendEvent(%+q)", e)
		n := EncodedLen(e)
		require.Equal(t, len(got), n, "EncodedLen(%+q) = %d, want %d (%q)", e, n, len(got), got)
	}
}

func codecDropControls(r rune) rune {
	if unicode.Is(unicode.Cc, r) {
		return -1
	}
	return r
}

func TestEncodeZeroAllocs(t *testing.T) {
	e := codecBenchEvent()
	buf := make([]byte, 0, 1024)
	allocs := testing.AllocsPerRun(1000, func() {
		var err error
		buf, err = AppendEvent(buf[:0], e)
		require.NoError(t, err)
	})
	assert.Equal(t, float64(0), allocs, "AppendEvent with a reused buffer: %v allocs/op, want 0", allocs)
	// A buffer sized with EncodedLen is enough, even for multi-line data.
	e.Data = "line one\r\nline two\nline three\rline four"
	e.Comment = "a\nb"
	exact := make([]byte, EncodedLen(e))
	allocs = testing.AllocsPerRun(100, func() {
		_, err := AppendEvent(exact[:0:len(exact)], e)
		require.NoError(t, err)
	})
	assert.Equal(t, float64(0), allocs, "AppendEvent into an EncodedLen-sized buffer: %v allocs/op, want 0", allocs)
	// Without a buffer, the frame is allocated once, at its final size.
	allocs = testing.AllocsPerRun(100, func() {
		got, _ := AppendEvent(nil, e)
		if len(got) != len(exact) { // no assertion call here: its arguments would allocate
			require.FailNow(t, fmt.Sprintf("encoded %d bytes, EncodedLen says %d", len(got), len(exact)))
		}
	})
	assert.Equal(t, float64(1), allocs, "AppendEvent(nil, e): %v allocs/op, want 1", allocs)
}

// ---------------------------------------------------------------------------
// Injection

func TestCodecInjection(t *testing.T) {
	const evil = "\n\ndata: x\n\nid: y\n\nevent: z\n\nretry: 1\n\n"
	for _, id := range []string{"1\ndata: x", "1\r\rdata: x", "1\r\n\r\nevent: z", "1\x00", "\n"} {
		_, err := AppendEvent(nil, Event{ID: id, Data: "d"})
		assert.ErrorIs(t, err, ErrInvalidID, "ID %q: err = %v, want ErrInvalidID", id, err)
		_, err = AppendEvent(nil, Event{Type: id, Data: "d"})
		assert.ErrorIs(t, err, ErrInvalidType, "Type %q: err = %v, want ErrInvalidType", id, err)
	}
	cases := []Event{
		{Data: evil},
		{Data: strings.ReplaceAll(evil, "\n", "\r")},
		{Data: strings.ReplaceAll(evil, "\n", "\r\n")},
		{Comment: evil, Data: "real"},
		{Comment: evil, Type: "t"},
		{Comment: strings.ReplaceAll(evil, "\n", "\r"), ID: "9", Data: evil},
	}
	for _, e := range cases {
		enc, err := AppendEvent(nil, e)
		require.NoError(t, err, "AppendEvent(%+q)", e)
		events, _, d, err := codecDecodeAll(bytes.NewReader(enc), nil)
		require.False(t, err != io.EOF, "decode %q: %v", enc, err)
		require.Len(t, events, 1, "%q decodes to %d events, want 1: %+q", enc, len(events), events)
		want := codecNormalize(e)
		assert.Equal(t, want, events[0], "%q decodes to %+q, want %+q", enc, events[0], want)
		assert.False(t, d.LastEventID() != e.ID || d.Retry() != 0, "%q: LastEventID %q Retry %v; the payload changed decoder state", enc, d.LastEventID(), d.Retry())
	}
	// A comment-only control frame never dispatches, whatever it holds.
	enc, err := AppendEvent(nil, Event{Comment: evil})
	require.NoError(t, err)
	events, _, _, err := codecDecodeAll(bytes.NewReader(enc), nil)
	assert.Empty(t, events, "comment frame %q dispatched events", enc)
	assert.Equal(t, io.EOF, err, "comment frame %q", enc)
}

// codecNormalize is what a decoder returns for an encoded message: line
// breaks become LF, and nothing else changes.
func codecNormalize(e Event) Event {
	nl := strings.NewReplacer("\r\n", "\n", "\r", "\n")
	e.Data = nl.Replace(e.Data)
	e.Comment = nl.Replace(e.Comment)
	e.Retry = e.Retry.Truncate(time.Millisecond)
	return e
}

// ---------------------------------------------------------------------------
// Decoder: vectors

type codecVector struct {
	Name        string             `json:"name"`
	Source      string             `json:"source"`
	Input       *string            `json:"input"`
	InputHex    string             `json:"input_hex"`
	Events      []codecVectorEvent `json:"events"`
	LastEventID string             `json:"last_event_id"`
	RetryMS     int64              `json:"retry_ms"`
	Comments    *[]string          `json:"comments"`
}

type codecVectorEvent struct {
	Data    string `json:"data"`
	Type    string `json:"type"`
	ID      string `json:"id"`
	RetryMS int64  `json:"retry_ms"`
	Comment string `json:"comment"`
}

func (v codecVector) input(t testing.TB) []byte {
	if v.Input != nil {
		return []byte(*v.Input)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(v.InputHex, " ", ""))
	require.NoError(t, err, "vector %s: input_hex", v.Name)
	return b
}

func (v codecVector) want() []Event {
	var out []Event
	for _, e := range v.Events {
		out = append(out, Event{ID: e.ID, Type: e.Type, Data: e.Data, Retry: time.Duration(e.RetryMS) * time.Millisecond, Comment: e.Comment})
	}
	return out
}

func codecLoadVectors(t testing.TB) []codecVector {
	raw, err := os.ReadFile("testdata/sse_vectors.json")
	require.NoError(t, err, "reading vectors")
	var file struct {
		Vectors []codecVector `json:"vectors"`
	}
	require.NoError(t, json.Unmarshal(raw, &file), "parsing vectors")
	require.NotEmpty(t, file.Vectors, "no vectors")
	for _, v := range file.Vectors {
		require.NotEqual(t, "", v.Name, "vector %+v lacks a name, source or input", v)
		require.NotEqual(t, "", v.Source, "vector %+v lacks a name, source or input", v)
		require.False(t, v.Input == nil && v.InputHex == "", "vector %+v lacks a name, source or input", v)
	}
	return file.Vectors
}

// codecDecodeAll runs a Decoder to the end and returns the dispatched
// events, the comment lines seen, the decoder and the final error.
func codecDecodeAll(r io.Reader, configure func(*Decoder)) ([]Event, []string, *Decoder, error) {
	d := NewDecoder(r)
	var comments []string
	d.OnComment = func(text string) { comments = append(comments, text) }
	if configure != nil {
		configure(d)
	}
	var events []Event
	for {
		e, err := d.Next()
		if err != nil {
			if _, again := d.Next(); again != err && again.Error() != err.Error() {
				panic(fmt.Sprintf("error not sticky: %v then %v", err, again))
			}
			return events, comments, d, err
		}
		events = append(events, e)
	}
}

// codecChunkReader returns data in random pieces, zero-length ones
// included, to exercise every buffer boundary.
type codecChunkReader struct {
	data []byte
	rng  *rand.Rand
}

func (r *codecChunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := r.rng.IntN(8)
	if r.rng.IntN(8) == 0 {
		n = r.rng.IntN(5000)
	}
	n = min(n, len(p), len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

type codecReaderKind struct {
	name string
	wrap func(data []byte, seed uint64) io.Reader
}

var codecReaders = []codecReaderKind{
	{"whole", func(b []byte, _ uint64) io.Reader { return bytes.NewReader(b) }},
	{"one-byte", func(b []byte, _ uint64) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
	{"half", func(b []byte, _ uint64) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
	{"data-err", func(b []byte, _ uint64) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
	{"random", func(b []byte, seed uint64) io.Reader {
		return &codecChunkReader{data: b, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
	}},
}

func TestDecodeVectors(t *testing.T) {
	for _, v := range codecLoadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			in := v.input(t)
			want := v.want()
			for _, kind := range codecReaders {
				seeds := 1
				if kind.name == "random" {
					seeds = 20
				}
				for seed := range seeds {
					events, comments, d, err := codecDecodeAll(kind.wrap(in, uint64(seed)), nil)
					where := fmt.Sprintf("%s reader (seed %d), source %s", kind.name, seed, v.Source)
					require.False(t, err != io.EOF, "%s: final error %v, want io.EOF", where, err)
					require.Equal(t, want, events, "%s:\n got  %+q\n want %+q", where, events, want)
					assert.Equal(t, v.LastEventID, d.LastEventID(), "%s: LastEventID = %q, want %q", where, d.LastEventID(), v.LastEventID)
					assert.Equal(t, time.Duration(v.RetryMS)*time.Millisecond, d.Retry(), "%s: Retry = %v, want %dms", where, d.Retry(), v.RetryMS)
					if v.Comments != nil {
						assert.False(t, !reflect.DeepEqual(comments, *v.Comments) && !(len(comments) == 0 && len(*v.Comments) == 0), "%s: comments %+q, want %+q", where, comments, *v.Comments)
					}
				}
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Decoder: details the vectors cannot express

// codecScriptReader returns its chunks one Read at a time and records how
// many were consumed, to check that the decoder dispatches without reading
// ahead (a live stream may pause after any byte).
type codecScriptReader struct {
	chunks []string
	reads  int
}

func (r *codecScriptReader) Read(p []byte) (int, error) {
	if r.reads == len(r.chunks) {
		return 0, io.EOF
	}
	n := copy(p, r.chunks[r.reads])
	r.reads++
	return n, nil
}

func TestDecodeNoReadAhead(t *testing.T) {
	tests := []struct {
		chunks []string
		want   []string // data of the event expected after each chunk ("-" for none)
	}{
		{[]string{"data: a\n\n", "data: b\n\n"}, []string{"a", "b"}},
		{[]string{"data: a\r\r", "data: b\r", "\r"}, []string{"a", "-", "b"}},
		// The LF of a CRLF split across reads is not a second blank line.
		{[]string{"data: a\r", "\ndata: b\r", "\n\r", "\n"}, []string{"-", "-", "a\nb", "-"}},
		{[]string{"data: a\r\n\r", "\n", "data: b\n\n"}, []string{"a", "-", "b"}},
		{[]string{"\ufeffdata: a\n\n"}, []string{"a"}},
		{[]string{"\xef", "\xbb", "\xbfdata: a\n", "\n"}, []string{"-", "-", "-", "a"}},
	}
	for _, tt := range tests {
		r := &codecScriptReader{chunks: tt.chunks}
		d := NewDecoder(r)
		var got []string
		for {
			e, err := d.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err, "%q", tt.chunks)
			for len(got) < r.reads-1 {
				got = append(got, "-")
			}
			got = append(got, e.Data)
		}
		for len(got) < len(tt.chunks) {
			got = append(got, "-")
		}
		assert.Equal(t, tt.want, got, "%q: events after each read %q, want %q", tt.chunks, got, tt.want)
	}
}

func TestDecodeLimits(t *testing.T) {
	t.Run("line", func(t *testing.T) {
		in := "data: ok\n\ndata: " + strings.Repeat("x", 100) + "\n\ndata: never\n\n"
		for _, kind := range codecReaders {
			events, _, _, err := codecDecodeAll(kind.wrap([]byte(in), 1), func(d *Decoder) { d.MaxLineSize = 64 })
			require.ErrorIs(t, err, ErrEventTooLarge, "%s: err = %v, want ErrEventTooLarge", kind.name, err)
			assert.False(t, len(events) != 1 || events[0].Data != "ok", "%s: events before the error %+q", kind.name, events)
		}
	})
	t.Run("line exactly at limit", func(t *testing.T) {
		in := "data: " + strings.Repeat("x", 58) + "\r\n\r\n"
		events, _, _, err := codecDecodeAll(iotest.OneByteReader(strings.NewReader(in)), func(d *Decoder) { d.MaxLineSize = 64 })
		assert.False(t, err != io.EOF || len(events) != 1, "64-byte line with limit 64: %d events, err %v", len(events), err)
	})
	t.Run("unterminated line", func(t *testing.T) {
		// A server that never ends its line must not grow the buffer forever.
		r := io.MultiReader(strings.NewReader("data: "), codecEndless('x'))
		_, _, _, err := codecDecodeAll(r, func(d *Decoder) { d.MaxLineSize = 1000 })
		assert.ErrorIs(t, err, ErrEventTooLarge, "err = %v, want ErrEventTooLarge", err)
	})
	t.Run("default line limit", func(t *testing.T) {
		r := io.MultiReader(strings.NewReader("data: "), codecEndless('x'))
		d := NewDecoder(r)
		_, err := d.Next()
		assert.False(t, !errors.Is(err, ErrEventTooLarge) || !strings.Contains(err.Error(), "1048576"), "err = %v, want ErrEventTooLarge at 1 MiB", err)
	})
	t.Run("event", func(t *testing.T) {
		in := "data: 0123456789\ndata: 0123456789\n\n" + strings.Repeat("data: 0123456789\n", 10) + "\n"
		events, _, _, err := codecDecodeAll(strings.NewReader(in), func(d *Decoder) { d.MaxEventSize = 30 })
		assert.False(t, !errors.Is(err, ErrEventTooLarge) || len(events) != 1, "%d events, err %v; want 1 event then ErrEventTooLarge", len(events), err)
	})
	t.Run("comment flood", func(t *testing.T) {
		r := codecEndlessString(": keep-alive\n")
		_, comments, _, err := codecDecodeAll(r, func(d *Decoder) { d.MaxEventSize = 1000 })
		assert.False(t, !errors.Is(err, ErrEventTooLarge) || len(comments) > 100, "after %d comments err = %v, want ErrEventTooLarge", len(comments), err)
	})
	t.Run("heartbeats reset the budget", func(t *testing.T) {
		in := strings.Repeat(": keep-alive\n\n", 1000) + "data: x\n\n"
		events, _, _, err := codecDecodeAll(strings.NewReader(in), func(d *Decoder) { d.MaxEventSize = 100 })
		assert.False(t, err != io.EOF || len(events) != 1, "%d events, err %v", len(events), err)
	})
	t.Run("replacement characters count", func(t *testing.T) {
		// Every invalid byte becomes three: the limit applies to the result.
		in := "data: " + strings.Repeat("\xff", 20) + "\n\n"
		_, _, _, err := codecDecodeAll(strings.NewReader(in), func(d *Decoder) { d.MaxEventSize = 40 })
		assert.ErrorIs(t, err, ErrEventTooLarge, "err = %v, want ErrEventTooLarge", err)
	})
}

type codecEndlessReader struct {
	pattern string
	off     int
}

func codecEndless(c byte) io.Reader { return &codecEndlessReader{pattern: string(c)} }

func codecEndlessString(s string) io.Reader { return &codecEndlessReader{pattern: s} }

func (r *codecEndlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.pattern[r.off]
		r.off = (r.off + 1) % len(r.pattern)
	}
	return len(p), nil
}

func TestDecodeReadErrors(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n\ndata: partial\n"), iotest.ErrReader(boom))
	events, _, _, err := codecDecodeAll(r, nil)
	assert.False(t, err != boom || len(events) != 2, "%d events, err %v; want the 2 complete events, then the read error", len(events), err)

	// Data returned together with the error is used.
	r = iotest.DataErrReader(strings.NewReader("data: a\n\n"))
	events, _, _, err = codecDecodeAll(r, nil)
	assert.Equal(t, io.EOF, err)
	assert.Len(t, events, 1)

	d := NewDecoder(codecStuckReader{})
	_, err = d.Next()
	assert.Equal(t, io.ErrNoProgress, err, "reader stuck at (0, nil)")
}

type codecStuckReader struct{}

func (codecStuckReader) Read([]byte) (int, error) { return 0, nil }

// TestDecodeUTF8Replacement compares the decoder's UTF-8 conversion with a
// direct transcription of the WHATWG UTF-8 decoder on random input.
func TestDecodeUTF8Replacement(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	interesting := []byte{0x00, 'a', 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff}
	for i := 0; i < 200000; i++ {
		p := make([]byte, rng.IntN(10))
		for j := range p {
			p[j] = interesting[rng.IntN(len(interesting))]
		}
		got, want := string(appendUTF8Replacing(nil, p)), codecWHATWGUTF8Decode(p)
		require.Equal(t, want, got, "% x: got %+q, want %+q", p, got, want)
	}
}

// codecWHATWGUTF8Decode is the UTF-8 decoder of the WHATWG Encoding
// standard, step by step, with replacement error mode.
func codecWHATWGUTF8Decode(p []byte) string {
	var out []rune
	var cp rune
	need, seen := 0, 0
	lower, upper := byte(0x80), byte(0xbf)
	for i := 0; i < len(p); {
		b := p[i]
		if need == 0 {
			switch {
			case b <= 0x7f:
				out = append(out, rune(b))
			case b >= 0xc2 && b <= 0xdf:
				need, cp = 1, rune(b&0x1f)
			case b >= 0xe0 && b <= 0xef:
				if b == 0xe0 {
					lower = 0xa0
				}
				if b == 0xed {
					upper = 0x9f
				}
				need, cp = 2, rune(b&0xf)
			case b >= 0xf0 && b <= 0xf4:
				if b == 0xf0 {
					lower = 0x90
				}
				if b == 0xf4 {
					upper = 0x8f
				}
				need, cp = 3, rune(b&0x7)
			default:
				out = append(out, utf8.RuneError)
			}
			i++
			continue
		}
		if b < lower || b > upper {
			cp, need, seen, lower, upper = 0, 0, 0, 0x80, 0xbf
			out = append(out, utf8.RuneError)
			continue // the byte is processed again
		}
		lower, upper = 0x80, 0xbf
		cp = cp<<6 | rune(b&0x3f)
		seen++
		i++
		if seen == need {
			out = append(out, cp)
			cp, need, seen = 0, 0, 0
		}
	}
	if need != 0 {
		out = append(out, utf8.RuneError)
	}
	return string(out)
}

// ---------------------------------------------------------------------------
// Fuzz

func codecFuzzSeeds(f *testing.F) {
	f.Add("", "", "", "", uint32(0))
	f.Add("1", "update", `{"a":1}`, "", uint32(0))
	f.Add("", "", "hello", "", uint32(1500))
	f.Add("42", "", "a\nb\r\nc\rd", "x\ny", uint32(3000))
	f.Add(" lead", " t", " data", " c", uint32(1))
	f.Add("", "t", "", "", uint32(0))
	f.Add("", "", "\n\ndata: x\n\nid: y", "\n\ndata: x\n\nid: y", uint32(0))
	f.Add("é", "ü", "\x00\u2028\ufeff", "\r\r\n", uint32(4294967295))
	f.Add("a\nb", "c\rd", "\xff", "\xc3", uint32(7))
	f.Add("\ufeff", "", "\ufeffdata", "\ufeff", uint32(0))
	f.Add("", "", "trailing\n", "", uint32(0))
	f.Add("", "", "", "comment only", uint32(10))
}

func FuzzRoundTrip(f *testing.F) {
	codecFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, id, typ, data, comment string, retryMs uint32) {
		e := Event{ID: id, Type: typ, Data: data, Comment: comment, Retry: time.Duration(retryMs) * time.Millisecond}
		if e.Validate() != nil || !isMessage(e) {
			return
		}
		enc, err := AppendEvent(nil, e)
		require.NoError(t, err, "AppendEvent of a valid event")
		n := EncodedLen(e)
		require.Equal(t, len(enc), n, "EncodedLen = %d, encoded %d bytes", n, len(enc))
		if _, simple := Measure(e); simple {
			got := codecSimpleFrame(e)
			require.True(t, bytes.Equal(got, enc), "simple layout %q, want %q", got, enc)
		}
		require.True(t, bytes.Equal(AppendValid(nil, e), enc), "AppendValid differs from AppendEvent")
		want := codecNormalize(e)
		for _, kind := range codecReaders[:2] {
			events, _, d, err := codecDecodeAll(kind.wrap(enc, 0), nil)
			require.False(t, err != io.EOF, "%s: decoding %q: %v", kind.name, enc, err)
			require.Len(t, events, 1, "%s: %q dispatched %d events: %+q", kind.name, enc, len(events), events)
			require.Equal(t, want, events[0], "%s: %q decoded to %+q, want %+q", kind.name, enc, events[0], want)
			require.Equal(t, e.ID, d.LastEventID(), "%s: LastEventID %q, want %q", kind.name, d.LastEventID(), e.ID)
		}
	})
}

// codecSimpleFrame lays out a simple event (see Measure) the way its doc
// says a caller may, from the exported prefixes.
func codecSimpleFrame(e Event) []byte {
	var b []byte
	if e.Retry > 0 {
		b = strconv.AppendInt(append(b, RetryPrefix...), e.Retry.Milliseconds(), 10)
		b = append(b, '\n')
	}
	if e.ID != "" {
		b = append(append(append(b, IDPrefix...), e.ID...), '\n')
	}
	if e.Type != "" {
		b = append(append(append(b, EventPrefix...), e.Type...), '\n')
	}
	return append(append(append(b, DataPrefix...), e.Data...), '\n', '\n')
}

func FuzzEncodeNoInjection(f *testing.F) {
	codecFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, id, typ, data, comment string, retryMs uint32) {
		e := Event{ID: id, Type: typ, Data: data, Comment: comment, Retry: time.Duration(retryMs) * time.Millisecond}
		// Go through a buffer with content to check nothing leaks into it.
		enc, err := AppendEvent([]byte("data: before\n\n"), e)
		if err != nil {
			return
		}
		events, _, d, err := codecDecodeAll(bytes.NewReader(enc), nil)
		require.False(t, err != io.EOF, "decoding %q: %v", enc, err)
		want := 1
		if isMessage(e) {
			want = 2
		}
		require.Len(t, events, want, "%q dispatched %d events, want %d: %+q", enc, len(events), want, events)
		require.Equal(t, (Event{Data: "before"}), events[0], "the preceding event changed: %+q", events[0])
		require.False(t, e.ID != "" && d.LastEventID() != e.ID, "LastEventID %q, want %q", d.LastEventID(), e.ID)
		wantRetry := e.Retry.Truncate(time.Millisecond)
		require.Equal(t, wantRetry, d.Retry(), "Retry %v, want %v", d.Retry(), wantRetry)
	})
}

func FuzzDecode(f *testing.F) {
	for _, v := range codecLoadVectors(f) {
		f.Add(v.input(f))
	}
	f.Add([]byte("data: a\r"))
	f.Add([]byte("\xef\xbb"))
	f.Add([]byte("retry: 123456789012345678901234567890\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		type result struct {
			events   []Event
			comments []string
			lastID   string
			retry    time.Duration
			err      string
		}
		run := func(r io.Reader, limits bool) result {
			events, comments, d, err := codecDecodeAll(r, func(d *Decoder) {
				if limits {
					d.MaxLineSize, d.MaxEventSize = 16, 40
				}
			})
			return result{events, comments, d.LastEventID(), d.Retry(), err.Error()}
		}
		for _, limits := range []bool{false, true} {
			whole := run(bytes.NewReader(in), limits)
			require.False(t, !limits && whole.err != io.EOF.Error(), "%q: final error %s", in, whole.err)
			for _, e := range whole.events {
				require.True(t, utf8.ValidString(e.ID+e.Type+e.Data+e.Comment), "%q: decoded event is not valid UTF-8: %+q", in, e)
			}
			one := run(iotest.OneByteReader(bytes.NewReader(in)), limits)
			require.Equal(t, whole, one, "%q (limits %v): one-byte reads give\n %+v\nwhole input gives\n %+v", in, limits, one, whole)
			rnd := run(&codecChunkReader{data: in, rng: rand.New(rand.NewPCG(uint64(len(in)), 1))}, limits)
			require.Equal(t, whole, rnd, "%q (limits %v): random reads give\n %+v\nwhole input gives\n %+v", in, limits, rnd, whole)
		}
		got, want := string(appendUTF8Replacing(nil, in)), codecWHATWGUTF8Decode(in)
		require.Equal(t, want, got, "% x: UTF-8 decoding %+q, want %+q", in, got, want)
	})
}

// ---------------------------------------------------------------------------
// Benchmarks

func codecBenchEvent() Event {
	return Event{
		ID:   "01J9ZK3M5Q8R2T4V6W8X0Y2Z4A",
		Type: "order.updated",
		Data: `{"id":"ord_8f3a","status":"shipped","total":129.95,"items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}]}`,
	}
}

func BenchmarkEncode(b *testing.B) {
	e := codecBenchEvent()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(EncodedLen(e)))
	for b.Loop() {
		var err error
		buf, err = AppendEvent(buf[:0], e)
		require.NoError(b, err)
	}
}

func BenchmarkEncodeNew(b *testing.B) {
	e := codecBenchEvent()
	b.ReportAllocs()
	b.SetBytes(int64(EncodedLen(e)))
	for b.Loop() {
		_, err := AppendEvent(nil, e)
		require.NoError(b, err)
	}
}

func BenchmarkEncodeMultiline(b *testing.B) {
	e := Event{Type: "log", Data: strings.Repeat("a log line of moderate length\n", 32), Comment: "batch"}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(EncodedLen(e)))
	for b.Loop() {
		buf, _ = AppendEvent(buf[:0], e)
	}
}

func BenchmarkDecode(b *testing.B) {
	var stream []byte
	for i := 0; i < 1000; i++ {
		e := codecBenchEvent()
		e.ID = fmt.Sprint(i)
		stream, _ = AppendEvent(stream, e)
		if i%10 == 0 {
			stream, _ = AppendEvent(stream, Event{Comment: "keep-alive"})
		}
	}
	r := bytes.NewReader(stream)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	for b.Loop() {
		r.Reset(stream)
		d := NewDecoder(r)
		n := 0
		for {
			_, err := d.Next()
			if err == io.EOF {
				break
			}
			require.NoError(b, err)
			n++
		}
		require.Equal(b, 1000, n, "decoded %d events", n)
	}
}
