package tracing_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// discardProcessor is an SDK span processor that drops ended spans: the
// benchmarks measure making spans, not exporting them.
type discardProcessor struct{}

func (discardProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discardProcessor) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discardProcessor) Shutdown(context.Context) error                  { return nil }
func (discardProcessor) ForceFlush(context.Context) error                { return nil }

// discardStream is a client that reads instantly and counts bytes.
type discardStream struct {
	n atomic.Int64
	_ [56]byte
}

func (d *discardStream) Write(p []byte) (int, error) { d.n.Add(int64(len(p))); return len(p), nil }
func (d *discardStream) Flush() error                { return nil }

// observer returns the Observer of a tracing mode: off (nil), sampled
// (every span recorded) or unsampled (the SDK samples nothing).
func observer(b *testing.B, mode string) *core.Observer {
	var sampler sdktrace.Sampler
	switch mode {
	case "off":
		return nil
	case "sampled":
		sampler = sdktrace.AlwaysSample()
	case "unsampled":
		sampler = sdktrace.NeverSample()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithSpanProcessor(discardProcessor{}))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tracing.New(tracing.WithTracerProvider(tp)).Observer()
}

var modes = []string{"off", "unsampled", "sampled"}

// BenchmarkBroadcast publishes to 1,000 served connections, each written to
// a Stream that discards, pausing every 64 events until all are written
// (see metrics.BenchmarkBroadcast). Sampled, each event gets a publish
// span and at most 10 deliver spans (the default budget).
func BenchmarkBroadcast(b *testing.B) {
	const subscribers, burst = 1000, 64
	for _, mode := range modes {
		b.Run(fmt.Sprintf("subscribers=%d/tracing=%s", subscribers, mode), func(b *testing.B) {
			br, err := core.New(core.Config{HeartbeatInterval: time.Hour, Observer: observer(b, mode)})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			streams := make([]discardStream, subscribers)
			done := make(chan struct{}, subscribers)
			for i := range streams {
				sub, err := br.Subscribe(ctx, core.SubscribeRequest{})
				if err != nil {
					b.Fatal(err)
				}
				go func() { _ = br.Serve(ctx, sub, &streams[i]); done <- struct{}{} }()
			}
			defer func() {
				cancel()
				for range subscribers {
					<-done
				}
				_ = br.Close(context.Background())
			}()
			base := make([]int64, subscribers)
			for i := range streams {
				for streams[i].n.Load() == 0 {
					runtime.Gosched()
				}
				base[i] = streams[i].n.Load()
			}
			ev := core.Event{Type: "announcement", Data: `{"kind":"announcement","text":"maintenance at 22:00"}`}
			frame := int64(core.EncodedLen(ev) + len("id: \n"))
			var want int64
			waitAll := func() {
				for i := range streams {
					for streams[i].n.Load()-base[i] < want {
						runtime.Gosched()
					}
				}
			}
			msg := core.Message{Target: core.Target{Broadcast: true}, Event: ev}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				id, err := br.Publish(ctx, msg)
				if err != nil {
					b.Fatal(err)
				}
				want += frame + int64(len(id))
				if i++; i%burst == 0 {
					waitAll()
				}
			}
			waitAll()
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(perOp/subscribers, "ns/recipient")
		})
	}
}

// BenchmarkSendToUser publishes to one served connection and waits for
// each event to be written: one publish span and one deliver span per op
// when sampled.
func BenchmarkSendToUser(b *testing.B) {
	for _, mode := range modes {
		b.Run("tracing="+mode, func(b *testing.B) {
			br, err := core.New(core.Config{HeartbeatInterval: time.Hour, Observer: observer(b, mode)})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			u := uuid.New()
			sub, err := br.Subscribe(ctx, core.SubscribeRequest{Identity: core.Identity{User: u}})
			if err != nil {
				b.Fatal(err)
			}
			st := &discardStream{}
			done := make(chan struct{})
			go func() { _ = br.Serve(ctx, sub, st); close(done) }()
			defer func() { cancel(); <-done; _ = br.Close(context.Background()) }()
			for st.n.Load() == 0 {
				runtime.Gosched()
			}
			data := `{"kind":"notification","unread":3}`
			b.ReportAllocs()
			for b.Loop() {
				before := st.n.Load()
				if err := br.SendToUser(ctx, u, "notification", data); err != nil {
					b.Fatal(err)
				}
				for st.n.Load() == before {
					runtime.Gosched()
				}
			}
		})
	}
}
