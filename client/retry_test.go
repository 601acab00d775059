package client

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core/sse"
)

// watchZero reads s through a zeroRetryWatch, in chunks of at most chunk
// bytes, and reports whether it saw "retry: 0".
func watchZero(t testing.TB, s string, chunk int) bool {
	t.Helper()
	var r io.Reader = strings.NewReader(s)
	if chunk == 1 {
		r = iotest.OneByteReader(r)
	} else {
		r = io.LimitReader(r, int64(len(s))) // whole
	}
	w := &zeroRetryWatch{r: r}
	_, err := io.Copy(io.Discard, w)
	require.NoError(t, err)
	return w.zero
}

func TestZeroRetryWatch(t *testing.T) {
	for _, tc := range []struct {
		in   string
		zero bool
	}{
		{"retry: 0\n", true},
		{"retry:0\n", true},
		{"retry: 0\r\n", true},
		{"retry: 0\r", true},
		{"retry: 000\n\n", true},
		{"data: a\n\nretry: 0\n\n", true},
		{"retry: 5\nretry: 0\n", true},
		{bom + "retry: 0\n", true},
		{"retry: 1\n", false},
		{"retry: 01\n", false},
		{"retry:  0\n", false}, // only one space is stripped
		{"retry: 0 \n", false},
		{"retry: 0x\n", false},
		{"retry: -0\n", false},
		{"retry:\n", false},
		{"retry: \n", false},
		{"retry\n", false},
		{"Retry: 0\n", false},
		{" retry: 0\n", false},
		{"xretry: 0\n", false},
		{"data: retry: 0\n", false},
		{": retry: 0\n", false},
		{"retry: 0", false},               // cut short: the decoder discards it
		{"\xefretry: 0\n", false},         // a partial BOM is part of the field name
		{bom + bom + "retry: 0\n", false}, // only one BOM is stripped
		{"data: x\n" + bom + "retry: 0\n", false},
		{"retry: " + strings.Repeat("0", 100) + "\n", false}, // longer than the watch looks; see zeroRetryWatch
	} {
		for _, chunk := range []int{1, len(tc.in)} {
			assert.Equal(t, tc.zero, watchZero(t, tc.in, chunk), "%q in chunks of %d", tc.in, chunk)
		}
	}
}

// FuzzZeroRetryWatch checks the watch against sse.Decoder: together they
// must report what the stream's last valid retry field set, or that it set
// none. The decoder alone cannot say when that was 0, but it can when the
// stream is prefixed with a hint no input sets.
func FuzzZeroRetryWatch(f *testing.F) {
	for _, s := range []string{
		"retry: 0\n", "retry:0\r\n", "retry: 0\r", "retry: 7\nretry: 0\n\n", "retry: 0\nretry: 7\n",
		"retry:  0\n", "retry: 0", "data: a\r\rretry: 00\n", "retry: 1\n", "id: 1\ndata: x\n\n", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.HasPrefix(s, "\xef") || strings.Contains(s, "987654321") {
			return // behind the prefix a BOM is no longer leading; the marker must stay unique
		}
		truth, ok := lastRetry(s)
		if !ok {
			return
		}
		watch := &zeroRetryWatch{r: iotest.OneByteReader(strings.NewReader(s))}
		dec := sse.NewDecoder(watch)
		if !drain(dec) {
			return
		}
		got, set := streamRetry(dec, watch)
		switch {
		case truth == marker:
			if set {
				t.Errorf("%q sets no retry, got %v", s, got)
			}
		case !set || got != truth:
			t.Errorf("%q sets retry %v, got %v (set %v)", s, truth, got, set)
		}
	})
}

// marker is a retry hint no fuzz input sets.
const marker = 987654321 * time.Millisecond

// lastRetry decodes s after a retry field of marker, so the result is
// marker exactly when s sets no retry.
func lastRetry(s string) (time.Duration, bool) {
	dec := sse.NewDecoder(strings.NewReader("retry: 987654321\n" + s))
	if !drain(dec) {
		return 0, false
	}
	return dec.Retry(), true
}

// drain reads dec to the end of its stream, false if it failed otherwise.
func drain(dec *sse.Decoder) bool {
	for {
		_, err := dec.Next()
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return false
		}
	}
}
