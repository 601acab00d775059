package core

import (
	"errors"
	"strings"
	"testing"

	"github.com/ssekit/ssekit/core/sse"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWireFormatIsSSE checks that core's codec names are package sse's,
// not copies: an Event passes between the packages as is, and errors.Is
// matches a sentinel whichever package names it.
func TestWireFormatIsSSE(t *testing.T) {
	var _ sse.Event = Event{}
	var _ *sse.Decoder = NewDecoder(strings.NewReader(""))
	assert.Equal(t, sse.DefaultMaxLineSize, DefaultMaxLineSize)
	for _, pair := range [][2]error{
		{ErrInvalidID, sse.ErrInvalidID},
		{ErrInvalidType, sse.ErrInvalidType},
		{ErrInvalidUTF8, sse.ErrInvalidUTF8},
		{ErrInvalidRetry, sse.ErrInvalidRetry},
		{ErrEventTooLarge, sse.ErrEventTooLarge},
	} {
		assert.Same(t, pair[0], pair[1], "%v", pair[0])
	}

	_, err := sse.AppendEvent(nil, Event{ID: "a\nb"})
	assert.ErrorIs(t, err, ErrInvalidID, "an sse error matches core's name")
	_, err = AppendEvent(nil, Event{Type: "\x00"})
	assert.ErrorIs(t, err, sse.ErrInvalidType, "a core error matches sse's name")
	dec := NewDecoder(strings.NewReader("data: 12345\n\n"))
	dec.MaxLineSize = 4
	_, err = dec.Next()
	require.Error(t, err)
	assert.True(t, errors.Is(err, ErrEventTooLarge), "the decoder's limit error is core's ErrEventTooLarge: %v", err)

	// The broker lays out frames itself around the ID slot; what it builds
	// must be what the encoder writes.
	ev := Event{ID: "1-2", Type: "t", Data: "d"}
	want, err := AppendEvent(nil, ev)
	require.NoError(t, err)
	n, flat := encodedLen(ev)
	assert.True(t, flat)
	assert.Equal(t, len(want), n)
	assert.Equal(t, string(want), string(appendFlatEvent(nil, ev)))
	assert.Equal(t, string(want), idPrefix+ev.ID+"\n"+eventPrefix+ev.Type+"\n"+dataPrefix+ev.Data+"\n\n")
}
