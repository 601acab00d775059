// Package leaktest is goleak set up for this repository: every package's
// TestMain calls VerifyTestMain, natively and under WebAssembly.
package leaktest

import (
	"testing"

	"go.uber.org/goleak"
)

// Options are the goleak options every package uses. Under GOOS=js the
// runtime parks its own goroutine in runtime.handleEvent to receive
// JavaScript callbacks; it is not ours.
func Options() []goleak.Option {
	return []goleak.Option{goleak.IgnoreAnyFunction("runtime.handleEvent")}
}

// VerifyTestMain runs the tests, then fails if any goroutine is left.
func VerifyTestMain(m *testing.M) {
	goleak.VerifyTestMain(m, Options()...)
}
