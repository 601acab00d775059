package sseecho_test

import (
	"testing"

	"github.com/ssekit/ssekit/internal/leaktest"
)

// TestMain fails the package if any test leaves a goroutine behind: the
// conformance suite relies on it (see adaptertest.Run).
func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}
