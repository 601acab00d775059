package ssefiber_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ssekit/ssekit/internal/leaktest"
)

// TestMain fails the package if any test leaves a goroutine behind. Ignored
// are two process-wide pools of fasthttp that are started on first use and
// never stopped, whatever the servers do: the clock for the Date header
// (updateServerDate) and the workers of its stackless compressors (used
// by the compress middleware).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(leaktest.Options(),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp/stackless.funcWorker"))...)
}
