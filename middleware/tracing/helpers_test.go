package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/internal/streamtest"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

type memStream = streamtest.MemStream

var newMemStream = streamtest.New

// client is a subscription served on its own goroutine.
type client struct {
	st     *memStream
	cancel context.CancelFunc
	done   chan error
}

// connect subscribes with ctx (which carries the stream request's span)
// and serves the subscription.
func connect(t testing.TB, ctx context.Context, b *core.Broker, req core.SubscribeRequest) *client {
	t.Helper()
	sub, err := b.Subscribe(ctx, req)
	require.NoError(t, err)
	sctx, cancel := context.WithCancel(context.Background())
	c := &client{st: newMemStream(), cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- b.Serve(sctx, sub, c.st) }()
	return c
}

// close disconnects like a browser closing the tab and waits for Serve.
func (c *client) close(t testing.TB) {
	t.Helper()
	c.cancel()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// newProvider returns an SDK provider that samples everything and records
// ended spans in memory, shut down with the test.
func newProvider(t testing.TB, opts ...sdktrace.TracerProviderOption) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithSpanProcessor(sr)}, opts...)...)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, sr
}

func newBroker(t testing.TB, cfg core.Config) *core.Broker {
	t.Helper()
	b, err := core.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

// named returns the ended spans called name.
func named(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// attrs returns a span's attributes as a map.
func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value)
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// operation returns the ended spans of a messaging operation
// (messaging.operation.name), whatever their destination: tracing.SpanDeliver
// finds "deliver user", "deliver topic" and so on.
func operation(spans []sdktrace.ReadOnlySpan, op string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if attrs(s)["messaging.operation.name"].AsString() == op {
			out = append(out, s)
		}
	}
	return out
}

// waitOperation waits until the recorder holds at least n ended spans of
// the operation op: deliver spans end on the connection's goroutine, just
// after its write reached the client.
func waitOperation(t testing.TB, sr *tracetest.SpanRecorder, op string, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := operation(sr.Ended(), op); len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d %q spans, want %d", len(operation(sr.Ended(), op)), op, n)
		}
		time.Sleep(time.Millisecond)
	}
}
