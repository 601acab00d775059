package core

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMaxEventSizeWithinDecoderLine checks that MaxEventSize and the
// Decoder's line limit are one number: Validate refuses a MaxEventSize the
// Go client could not read, naming the field, and the largest event the
// largest valid MaxEventSize admits decodes.
func TestMaxEventSizeWithinDecoderLine(t *testing.T) {
	require.NoError(t, Config{MaxEventSize: DefaultMaxLineSize}.Validate())
	err := Config{MaxEventSize: DefaultMaxLineSize + 1}.Validate()
	require.ErrorIs(t, err, ErrInvalidConfig)
	assert.Contains(t, err.Error(), "MaxEventSize must be <= 1048576")
	assert.Contains(t, err.Error(), "DefaultMaxLineSize")

	b := newBroker(t, Config{MaxEventSize: DefaultMaxLineSize})
	ev := Event{Type: "x"}
	n, _ := encodedLen(ev)
	ev.Data = strings.Repeat("a", DefaultMaxLineSize-n)
	require.NoError(t, b.Check(Message{Target: Target{Broadcast: true}, Event: ev}), "exactly MaxEventSize")
	frame, err := AppendEvent(nil, ev)
	require.NoError(t, err)
	got, err := NewDecoder(strings.NewReader(string(frame))).Next()
	require.NoError(t, err, "the Decoder reads every event the broker accepts")
	assert.Equal(t, ev.Data, got.Data)
}
