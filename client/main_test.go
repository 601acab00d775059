package client_test

import (
	"testing"

	"github.com/ssekit/ssekit/internal/leaktest"
)

// TestMain checks for leaked goroutines, with the one js/wasm's runtime
// parks for its own events allowed (leaktest knows it).
func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}
