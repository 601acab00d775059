package metrics_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/metrics"
)

// discardStream is a client that reads instantly: it counts bytes and
// writes and keeps nothing.
type discardStream struct {
	n, writes atomic.Int64
	_         [48]byte // one cache line each: 1,000 streams count concurrently
}

func (d *discardStream) Write(p []byte) (int, error) {
	d.writes.Add(1)
	d.n.Add(int64(len(p)))
	return len(p), nil
}

func (d *discardStream) Flush() error { return nil }

// devNullStream counts like discardStream and also makes the one write
// system call per flush that a real connection makes, to /dev/null: the
// cheapest a socket write can be.
type devNullStream struct {
	discardStream
	f *os.File
}

func (d *devNullStream) Write(p []byte) (int, error) {
	n, err := d.f.Write(p)
	d.writes.Add(1)
	d.n.Add(int64(n))
	return n, err
}

// counter is what BenchmarkBroadcast reads of a stream.
type counter interface {
	core.Stream
	counts() (bytes, writes int64)
}

func (d *discardStream) counts() (int64, int64) { return d.n.Load(), d.writes.Load() }

// BenchmarkBroadcast measures a broadcast to 1,000 connections all the way
// to their writes, without an Observer, with an empty Flush hook (core's
// own cost of observing) and with metrics. Every connection is served by
// the real write loop, so the Flush hook runs after every write as in
// production. (core's own BenchmarkBroadcast drains the queues without
// writing, which another package cannot do and which would never run the
// Flush hook.) Publishing pauses every 64 events until every connection
// has written them, so no queue overflows and each op includes its share
// of the writes. stream=discard writes nowhere, the worst case for the
// relative cost of a per-write hook; stream=devnull makes one write system
// call per flush, as a real connection does at least.
func BenchmarkBroadcast(b *testing.B) {
	const subscribers, burst = 1000, 64
	for _, stream := range []string{"discard", "devnull"} {
		for _, obs := range []string{"none", "empty", "metrics"} {
			name := fmt.Sprintf("subscribers=%d/stream=%s/observer=%s", subscribers, stream, obs)
			b.Run(name, func(b *testing.B) {
				benchBroadcast(b, subscribers, burst, stream, obs)
			})
		}
	}
}

func benchBroadcast(b *testing.B, subscribers, burst int, stream, obs string) {
	cfg := core.Config{HeartbeatInterval: time.Hour}
	switch obs {
	case "empty":
		// What core spends for any Flush hook (a clock read per write and
		// per publish), apart from what the hook itself does.
		cfg.Observer = &core.Observer{Flush: func(context.Context, *core.Subscription, core.FlushInfo) {}}
	case "metrics":
		m, err := metrics.New(prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		cfg.Observer = m.Observer()
	}
	br, err := core.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	streams := make([]counter, subscribers)
	for i := range streams {
		if stream == "devnull" {
			f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err != nil {
				b.Skip(err)
			}
			defer f.Close()
			streams[i] = &devNullStream{f: f}
		} else {
			streams[i] = &discardStream{}
		}
	}
	done := make(chan struct{}, subscribers)
	for i := range streams {
		sub, err := br.Subscribe(ctx, core.SubscribeRequest{})
		if err != nil {
			b.Fatal(err)
		}
		go func() { _ = br.Serve(ctx, sub, streams[i]); done <- struct{}{} }()
	}
	defer func() {
		cancel()
		for range subscribers {
			<-done
		}
		_ = br.Close(context.Background())
	}()
	base := make([]int64, subscribers)
	var writes0 int64
	for i, st := range streams {
		for {
			n, w := st.counts()
			if n > 0 { // the opening frame
				base[i], writes0 = n, writes0+w
				break
			}
			runtime.Gosched()
		}
	}
	ev := core.Event{Type: "announcement", Data: `{"kind":"announcement","text":"maintenance at 22:00"}`}
	frame := int64(core.EncodedLen(ev) + len("id: \n"))
	var want int64 // bytes every stream must have written
	waitAll := func() {
		for i, st := range streams {
			for {
				if n, _ := st.counts(); n-base[i] >= want {
					break
				}
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
	var writes int64
	for _, st := range streams {
		_, w := st.counts()
		writes += w
	}
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp/float64(subscribers), "ns/recipient")
	b.ReportMetric(float64(subscribers)*1e9/perOp, "recipients/s")
	b.ReportMetric(float64(b.N)*float64(subscribers)/float64(writes-writes0), "events/write")
}

// BenchmarkFlushHook measures the hook that runs after every write of every
// connection, for a write of one event and of a batch of 16.
func BenchmarkFlushHook(b *testing.B) {
	for _, tenant := range []bool{false, true} {
		for _, n := range []int{1, 16} {
			b.Run(fmt.Sprintf("tenant=%v/batch=%d", tenant, n), func(b *testing.B) {
				var opts []metrics.Option
				if tenant {
					opts = append(opts, metrics.WithTenantLabel(10))
				}
				m, err := metrics.New(nil, opts...)
				if err != nil {
					b.Fatal(err)
				}
				br, err := core.New(core.Config{})
				if err != nil {
					b.Fatal(err)
				}
				defer br.Close(context.Background())
				sub, err := br.Subscribe(context.Background(), core.SubscribeRequest{Identity: core.Identity{Tenant: "acme"}})
				if err != nil {
					b.Fatal(err)
				}
				defer sub.Close()
				o := m.Observer()
				ctx := o.Connect(context.Background(), sub)
				now := time.Now()
				batch := make([]*core.Message, n)
				for i := range batch {
					batch[i] = &core.Message{PublishedAt: now.Add(-time.Duration(i+1) * 300 * time.Microsecond)}
				}
				b.ReportAllocs()
				for b.Loop() {
					o.Flush(ctx, sub, core.FlushInfo{Messages: batch, Bytes: 100 * n, At: now})
				}
			})
		}
	}
}
