package client

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ssekit/ssekit/core"
)

// TestProtocolNames checks the client's copies of core's protocol names.
func TestProtocolNames(t *testing.T) {
	assert.Equal(t, core.RejectedEventType, rejectedEventType)
	assert.Equal(t, core.RejectModeHeader, rejectModeHeader)
}
