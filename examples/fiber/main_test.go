package main

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/examples/internal/exampletest"
	"github.com/ssekit/ssekit/internal/leaktest"
)

// TestMain ignores fasthttp's process-wide Date clock and compressor
// workers, which are never stopped (see adapters/fiber).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, append(leaktest.Options(),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
		goleak.IgnoreAnyFunction("github.com/valyala/fasthttp/stackless.funcWorker"))...)
}

func TestPublishAndStream(t *testing.T) {
	b, err := core.New(core.Config{Authenticator: core.InsecureQueryAuthenticator(), RetryHint: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	app := newApp(b)
	app.Server().MaxIdleWorkerDuration = 100 * time.Millisecond // stop fasthttp's worker pool promptly
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, app, b) }()
	exampletest.PublishAndStream(t, "http://"+ln.Addr().String(), stop, done)
}
