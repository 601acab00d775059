package core

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

// drainAll empties every queue of b without writing, so fan-out benchmarks
// measure routing and enqueueing, not a consumer. It runs inside the timed
// loop (StopTimer stops the world to read memory stats, which would cost
// more than what is measured); its cost is a lock and a few stores per
// connection every drainEvery publishes.
const drainEvery = 128

func drainAll(b *Broker) {
	var scratch []*Message
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, s := range b.conns {
		scratch, _, _, _ = s.drain(scratch[:0], 1<<30, 1<<30)
	}
}

func BenchmarkSendToUser(b *testing.B) {
	br, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close(context.Background())
	ctx := context.Background()
	u := uuid.New()
	if _, err := br.Subscribe(ctx, SubscribeRequest{Identity: Identity{User: u}}); err != nil {
		b.Fatal(err)
	}
	data := []byte(`{"kind":"notification","unread":3}`)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := br.SendToUser(ctx, u, "notification", data); err != nil {
			b.Fatal(err)
		}
		if i++; i%drainEvery == 0 {
			drainAll(br)
		}
	}
}

// BenchmarkBroadcast measures a broadcast: one append to the tenant's
// shared log, read by every connection's cursor when drained.
func BenchmarkBroadcast(b *testing.B) {
	benchFanOut(b, func(br *Broker, ctx context.Context, data []byte) error {
		return br.Broadcast(ctx, "announcement", data)
	})
}

// BenchmarkSendToTopic measures the other fan-out: an enqueue on every
// subscriber's own queue.
func BenchmarkSendToTopic(b *testing.B) {
	benchFanOut(b, func(br *Broker, ctx context.Context, data []byte) error {
		return br.SendToTopic(ctx, "news", "announcement", data)
	})
}

func benchFanOut(b *testing.B, send func(*Broker, context.Context, []byte) error) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			br, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close(context.Background())
			ctx := context.Background()
			for range n {
				if _, err := br.Subscribe(ctx, SubscribeRequest{Topics: []string{"news"}}); err != nil {
					b.Fatal(err)
				}
			}
			data := []byte(`{"kind":"announcement","text":"maintenance at 22:00"}`)
			// Grow every queue to its working size first: steady state is
			// what matters.
			for range drainEvery {
				if err := send(br, ctx, data); err != nil {
					b.Fatal(err)
				}
			}
			drainAll(br)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := send(br, ctx, data); err != nil {
					b.Fatal(err)
				}
				if i++; i%drainEvery == 0 {
					drainAll(br)
				}
			}
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(perOp/float64(n), "ns/recipient")
			b.ReportMetric(float64(n)*1e9/perOp, "recipients/s")
		})
	}
}

// countStream discards what it is given and counts the bytes.
type countStream struct{ n atomic.Int64 }

func (c *countStream) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }
func (c *countStream) Flush() error                { return nil }

// BenchmarkServeBurst measures a connection draining bursts of 100 events:
// publish, coalesce into one write, flush.
func BenchmarkServeBurst(b *testing.B) {
	br, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	u := uuid.New()
	sub, err := br.Subscribe(ctx, SubscribeRequest{Identity: Identity{User: u}})
	if err != nil {
		b.Fatal(err)
	}
	st := &countStream{}
	done := make(chan error)
	go func() { done <- br.Serve(ctx, sub, st) }()
	for st.n.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	data := []byte(`{"kind":"progress","percent":42}`)
	frame, _ := AppendEvent(nil, Event{ID: "00000000-100", Type: "progress", Data: string(data)})
	const burst = 100
	b.ReportAllocs()
	for b.Loop() {
		start := st.n.Load()
		for range burst {
			if err := br.SendToUser(ctx, u, "progress", data); err != nil {
				b.Fatal(err)
			}
		}
		for st.n.Load()-start < int64(burst*(len(frame)-5)) {
			time.Sleep(10 * time.Microsecond)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/event")
	cancel()
	<-done
	br.Close(context.Background())
}

// BenchmarkPublishParallel publishes from every P (run it with -cpu 1,2,
// and with -mutexprofile): with one tenant per publisher, nothing is
// shared but the budget's byte count and, once per eighth of the budget,
// the reclaim of other tenants' oldest events; with one tenant for all,
// publishes serialise on the tenant, which keeps its events in one order
// for replay. Compare with BenchmarkAllocParallel, what allocating the
// message alone costs on the machine's CPUs.
func BenchmarkPublishParallel(b *testing.B) {
	for _, shared := range []bool{false, true} {
		name := "tenant-per-publisher"
		if shared {
			name = "one-tenant"
		}
		b.Run(name, func(b *testing.B) {
			br, err := New(Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close(context.Background())
			ctx := context.Background()
			const tenants = 16
			users := make([]uuid.UUID, tenants)
			subs := make([]*Subscription, tenants)
			for i := range tenants {
				users[i] = uuid.New()
				name := fmt.Sprintf("t%d", i)
				if shared {
					name = "t"
				}
				if subs[i], err = br.Subscribe(ctx, SubscribeRequest{Identity: Identity{Tenant: name, User: users[i]}}); err != nil {
					b.Fatal(err)
				}
			}
			data := []byte(`{"kind":"notification","unread":3}`)
			var next atomic.Int32
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := int(next.Add(1)-1) % tenants
				tn, s := br.Tenant(subs[i].Identity().Tenant), subs[i]
				var scratch []*Message
				n := 0
				for pb.Next() {
					if err := tn.SendToUser(ctx, users[i], "notification", data); err != nil {
						b.Error(err)
						return
					}
					if n++; n%drainEvery == 0 {
						scratch, _, _, _ = s.drain(scratch[:0], 1<<30, 1<<30)
					}
				}
			})
		})
	}
}

// BenchmarkAllocParallel is the yardstick for BenchmarkPublishParallel:
// what allocating a Message costs when every P does it, with nothing else
// shared. Where it does not scale with -cpu, neither can publishing.
func BenchmarkAllocParallel(b *testing.B) {
	var sink atomic.Pointer[Message]
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		keep := make([]*Message, 0, 1024)
		for pb.Next() {
			keep = append(keep, &Message{size: 1})
			if len(keep) == cap(keep) {
				sink.Store(keep[0])
				keep = keep[:0]
			}
		}
	})
}
