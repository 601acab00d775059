package sseredis

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssekit/ssekit/core"
)

func benchMessage() *core.Message {
	return &core.Message{
		Target: core.Target{Topics: []string{"orders"}},
		Event:  core.Event{Type: "order.updated", Data: `{"id":12345,"status":"shipped","eta":"2026-12-01"}`},
	}
}

// BenchmarkPublish measures publish throughput through Redis from one
// node: one publisher at a time, many concurrent publishers (pipelined by
// the Backend), the same through a broker that also consumes the stream,
// and plain pipelined XADD as the ceiling.
func BenchmarkPublish(b *testing.B) {
	rs := startRedis(b)
	rate := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("sequential", func(b *testing.B) {
		be, err := New(rs.client(b), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer be.Close()
		ctx := context.Background()
		for b.Loop() {
			if err := be.Publish(ctx, benchMessage()); err != nil {
				b.Fatal(err)
			}
		}
		rate(b)
	})
	b.Run("parallel", func(b *testing.B) {
		be, err := New(rs.client(b), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer be.Close()
		b.SetParallelism(64)
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if err := be.Publish(ctx, benchMessage()); err != nil {
					b.Error(err)
					return
				}
			}
		})
		rate(b)
	})
	b.Run("broker-parallel", func(b *testing.B) {
		be, err := New(rs.client(b), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer be.Close()
		br, err := core.New(core.Config{Backend: be})
		if err != nil {
			b.Fatal(err)
		}
		defer br.Close(context.Background())
		b.SetParallelism(64)
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if err := br.SendToTopic(ctx, "orders", "order.updated", `{"id":12345,"status":"shipped","eta":"2026-12-01"}`); err != nil {
					b.Error(err)
					return
				}
			}
		})
		rate(b)
	})
	b.Run("raw-xadd-pipelined", func(b *testing.B) {
		c := rs.client(b)
		payload := encodePayload(nil, benchMessage())
		ctx := context.Background()
		const batch = 256
		for i := 0; i < b.N; i += batch {
			pipe := c.Pipeline()
			for j := i; j < min(i+batch, b.N); j++ {
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: "raw", MaxLen: DefaultMaxLen, Approx: true, Values: []any{"n", "", "m", payload}})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
		rate(b)
	})
}

// BenchmarkXReadStreams is the cost that decided the stream layout: with
// one stream per tenant, every node must XREAD every tenant's stream. One
// op appends an entry to one of K streams and reads all K from where the
// reader stands, as a node's consumer would.
func BenchmarkXReadStreams(b *testing.B) {
	rs := startRedis(b)
	c := rs.client(b)
	ctx := context.Background()
	for _, k := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("streams=%d", k), func(b *testing.B) {
			keys := make([]string, k)
			for i := range keys {
				keys[i] = fmt.Sprintf("xr%d:{t%d}", k, i)
				if err := c.XAdd(ctx, &redis.XAddArgs{Stream: keys[i], Values: []any{"m", "x"}}).Err(); err != nil {
					b.Fatal(err)
				}
			}
			args := make([]string, 2*k)
			copy(args, keys)
			for i := range keys {
				args[k+i] = "$"
			}
			// Positions: start at the current ends.
			for i, key := range keys {
				last, err := c.XRevRangeN(ctx, key, "+", "-", 1).Result()
				if err != nil {
					b.Fatal(err)
				}
				args[k+i] = last[0].ID
			}
			b.ResetTimer()
			for i := range b.N {
				key := keys[i%k]
				if err := c.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"m", "x"}}).Err(); err != nil {
					b.Fatal(err)
				}
				res, err := c.XRead(ctx, &redis.XReadArgs{Streams: args, Count: 100, Block: -1}).Result()
				if err != nil {
					b.Fatal(err)
				}
				for _, s := range res {
					idx := slices.Index(keys, s.Stream)
					args[k+idx] = s.Messages[len(s.Messages)-1].ID
				}
			}
		})
	}
}

// latencyStream records, for each event written to it, how long after
// its publication (the Unix nanoseconds in its data) the write happened.
type latencyStream struct {
	mu  *sync.Mutex
	out *[]sample
}

// sample is one delivery: the event (its publication time) and its latency.
type sample struct {
	sent int64
	lat  time.Duration
}

var dataPrefix = []byte("data: ")

func (s latencyStream) Write(p []byte) (int, error) {
	now := time.Now().UnixNano()
	var local []sample
	for rest := p; ; {
		i := bytes.Index(rest, dataPrefix)
		if i < 0 {
			break
		}
		rest = rest[i+len(dataPrefix):]
		end := bytes.IndexByte(rest, '\n')
		if end < 0 {
			break
		}
		if sent, err := strconv.ParseInt(string(rest[:end]), 10, 64); err == nil {
			local = append(local, sample{sent, time.Duration(now - sent)})
		}
	}
	s.mu.Lock()
	*s.out = append(*s.out, local...)
	s.mu.Unlock()
	return len(p), nil
}

func (latencyStream) Flush() error { return nil }

// BenchmarkLatency measures end-to-end latency, from the Publish call to
// the write on each subscriber's stream, at 1,000 subscribers and 100
// events/s, in memory and through Redis; b.N is the number of events
// (run with -benchtime=500x for 5 seconds of traffic). It reports p50 and
// p99 over every (event, subscriber) pair.
func BenchmarkLatency(b *testing.B) {
	const subscribers, perSecond = 1000, 100
	rs := startRedis(b)
	// The floor: one PING round trip at the same pace, on this machine.
	b.Run("ping", func(b *testing.B) {
		c := rs.client(b)
		tick := time.NewTicker(time.Second / perSecond)
		defer tick.Stop()
		var d []time.Duration
		for range b.N {
			<-tick.C
			start := time.Now()
			if err := c.Ping(context.Background()).Err(); err != nil {
				b.Fatal(err)
			}
			d = append(d, time.Since(start))
		}
		slices.Sort(d)
		b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(d[(len(d)-1)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(0, "ns/op")
	})
	for _, mode := range []string{"memory", "redis"} {
		b.Run(mode, func(b *testing.B) {
			cfg := core.Config{ClientBufferSize: 1024}
			if mode == "redis" {
				be, err := New(rs.client(b), Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer be.Close()
				cfg.Backend = be
			}
			br, err := core.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			var mu sync.Mutex
			lat := make([]sample, 0, subscribers*b.N)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range subscribers {
				sub, err := br.Subscribe(ctx, core.SubscribeRequest{Topics: []string{"t"}})
				if err != nil {
					b.Fatal(err)
				}
				wg.Go(func() { _ = br.Serve(ctx, sub, latencyStream{&mu, &lat}) })
			}
			tick := time.NewTicker(time.Second / perSecond)
			defer tick.Stop()
			calls := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				<-tick.C
				start := time.Now()
				data := strconv.FormatInt(start.UnixNano(), 10)
				if err := br.SendToTopic(ctx, "t", "tick", data); err != nil {
					b.Fatal(err)
				}
				calls = append(calls, time.Since(start))
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				n := len(lat)
				mu.Unlock()
				if n >= subscribers*b.N || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.StopTimer()
			cancel()
			wg.Wait()
			_ = br.Close(context.Background())
			mu.Lock()
			defer mu.Unlock()
			if len(lat) != subscribers*b.N {
				b.Fatalf("%d deliveries, want %d", len(lat), subscribers*b.N)
			}
			// All deliveries, and per event its first delivery: the
			// transport alone, without the fan-out to 1,000 goroutines.
			first := map[int64]time.Duration{}
			all := make([]time.Duration, len(lat))
			for i, s := range lat {
				all[i] = s.lat
				if f, ok := first[s.sent]; !ok || s.lat < f {
					first[s.sent] = s.lat
				}
			}
			firsts := make([]time.Duration, 0, len(first))
			for _, f := range first {
				firsts = append(firsts, f)
			}
			q := func(d []time.Duration, p float64) float64 {
				slices.Sort(d)
				return float64(d[int(p*float64(len(d)-1))].Microseconds())
			}
			b.ReportMetric(q(all, 0.50), "p50-µs")
			b.ReportMetric(q(all, 0.99), "p99-µs")
			b.ReportMetric(q(firsts, 0.50), "first-p50-µs")
			b.ReportMetric(q(firsts, 0.99), "first-p99-µs")
			b.ReportMetric(q(calls, 0.99), "publish-call-p99-µs")
			b.ReportMetric(0, "ns/op")
		})
	}
}
