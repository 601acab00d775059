package tracing_test

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// flushed is a core.Stream that signals its first flush: the stream is
// open.
type flushed struct {
	strings.Builder
	open chan struct{}
}

func (f *flushed) Flush() error {
	select {
	case <-f.open:
	default:
		close(f.open)
	}
	return nil
}

func Example() {
	ctx := context.Background()
	spans := tracetest.NewSpanRecorder() // in production: an exporter
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(ctx)

	tr := tracing.New(tracing.WithTracerProvider(tp))
	broker, err := core.New(core.Config{Observer: tr.Observer()})
	if err != nil {
		panic(err)
	}

	// A browser opens a stream...
	alice := uuid.MustParse("6f1c2f58-0d5e-4a3c-9a53-0a2a9a3f3b11")
	sub, _ := broker.Subscribe(ctx, core.SubscribeRequest{Identity: core.Identity{User: alice}})
	out := &flushed{open: make(chan struct{})}
	done := make(chan error)
	go func() { done <- broker.Serve(ctx, sub, out) }()
	<-out.open

	// ...and a request handler, traced by otelhttp, notifies it.
	reqCtx, req := tp.Tracer("otelhttp").Start(ctx, "POST /orders")
	_ = broker.SendToUser(reqCtx, alice, "order.shipped", map[string]any{
		"order":       42,
		"traceparent": tracing.Traceparent(reqCtx), // for the browser
	})
	req.End()
	_ = broker.Close(ctx) // flushes, ends the stream
	<-done

	var lines []string
	for _, s := range spans.Ended() {
		lines = append(lines, fmt.Sprintf("%-16s %-9s links=%d", s.Name(), s.SpanKind(), len(s.Links())))
	}
	slices.Sort(lines)
	fmt.Println(strings.Join(lines, "\n"))
	// Output:
	// POST /orders     internal  links=0
	// deliver user     consumer  links=1
	// publish user     producer  links=0
	// sse connection   internal  links=0
}

// Topics named after an entity ("order-123") would make a span name per
// entity. The kind of target names the span ("publish topic") unless a
// template says more.
func ExampleWithTopicTemplate() {
	ctx := context.Background()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(ctx)

	tr := tracing.New(tracing.WithTracerProvider(tp), tracing.WithTopicTemplate(func(topic string) string {
		if strings.HasPrefix(topic, "order-") {
			return "order-{id}"
		}
		return "" // no template: "publish topic"
	}))
	broker, err := core.New(core.Config{Observer: tr.Observer()})
	if err != nil {
		panic(err)
	}
	defer broker.Close(ctx)

	for _, topic := range []string{"order-123", "order-124", "lobby"} {
		_ = broker.SendToTopic(ctx, topic, "update", "{}")
	}
	for _, s := range spans.Ended() {
		a := map[string]string{}
		for _, kv := range s.Attributes() {
			a[string(kv.Key)] = kv.Value.Emit()
		}
		fmt.Printf("%-18s destination=%-9s template=%s\n", s.Name(),
			a["messaging.destination.name"], a["messaging.destination.template"])
	}
	// Output:
	// publish order-{id} destination=order-123 template=order-{id}
	// publish order-{id} destination=order-124 template=order-{id}
	// publish topic      destination=lobby     template=
}
