package sseredis

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ssekit/ssekit/core"
)

// BenchmarkShards compares the event log on one redis-server with the
// same on a real 3-master Redis Cluster, for several shard counts. Three
// brokers are attached in every case (each reads every shard, as in
// production), each on its own client.
//
//   - publish: throughput of 32 goroutines publishing broadcasts to 1,000
//     tenants through the brokers in turn.
//   - latency: one event every 2ms (500/s) published on broker 0, to one
//     of 30 tenants; the time until broker 1 writes it to that tenant's
//     subscriber (publish call to delivery on another node).
//
// Both report the Redis CPU per event (used_cpu_sys + used_cpu_user from
// INFO cpu of every server, after minus before, divided by the events),
// the same on the busiest server alone, and on how many masters the
// shards' streams live. Run with, for example:
//
//	go test -run '^$' -bench Shards -benchtime 3s ./adapters/redis/
//
// (the latency cases take b.N events at 500/s: -benchtime 2000x is 4s).
func BenchmarkShards(b *testing.B) {
	rc := startRedisCluster(b, 3, 0)
	rs := startRedis(b)
	single := []*redisProc{{name: "redis-server", addr: rs.addr}}
	prefix := 0
	for _, topo := range []string{"single", "cluster"} {
		for _, shards := range []int{1, 3, 16} {
			setup := func(b *testing.B) *benchCluster {
				prefix++
				opt := Options{Shards: shards, Prefix: "bench" + strconv.Itoa(prefix)}
				if topo == "single" {
					return newBenchCluster(b, 3, single, func() redis.UniversalClient { return rs.client(b) }, opt, nil)
				}
				return newBenchCluster(b, 3, rc.live(), func() redis.UniversalClient { return rc.clusterClient(b) }, opt, rc)
			}
			b.Run(fmt.Sprintf("%s/shards=%d/publish", topo, shards), func(b *testing.B) {
				benchShardPublish(b, setup(b))
			})
			b.Run(fmt.Sprintf("%s/shards=%d/latency", topo, shards), func(b *testing.B) {
				benchShardLatency(b, setup(b))
			})
		}
	}
}

// BenchmarkShardsReaders is BenchmarkShards's publish case with 1, 3 and 9
// brokers attached: every broker reads every shard, so the Redis CPU per
// event grows with the number of nodes, on one server and on the busiest
// master of a cluster with 16 shards.
//
//	go test -run '^$' -bench ShardsReaders -benchtime 3s ./adapters/redis/
func BenchmarkShardsReaders(b *testing.B) {
	rc := startRedisCluster(b, 3, 0)
	rs := startRedis(b)
	single := []*redisProc{{name: "redis-server", addr: rs.addr}}
	prefix := 0
	for _, topo := range []string{"single/shards=1", "cluster/shards=16"} {
		for _, nodes := range []int{1, 3, 9} {
			b.Run(fmt.Sprintf("%s/nodes=%d", topo, nodes), func(b *testing.B) {
				prefix++
				opt := Options{Prefix: "readers" + strconv.Itoa(prefix)}
				var bc *benchCluster
				if topo == "single/shards=1" {
					opt.Shards = 1
					bc = newBenchCluster(b, nodes, single, func() redis.UniversalClient { return rs.client(b) }, opt, nil)
				} else {
					opt.Shards = 16
					bc = newBenchCluster(b, nodes, rc.live(), func() redis.UniversalClient { return rc.clusterClient(b) }, opt, rc)
				}
				benchShardPublish(b, bc)
			})
		}
	}
}

// benchCluster is brokers on one Redis topology.
type benchCluster struct {
	procs   []*redisProc // the servers whose CPU counts
	brokers []*core.Broker
	masters int // distinct masters holding the shards' streams
}

func newBenchCluster(b *testing.B, nodes int, procs []*redisProc, client func() redis.UniversalClient, opt Options, rc *redisCluster) *benchCluster {
	bc := &benchCluster{procs: procs, masters: 1}
	for range nodes {
		be, err := New(client(), opt)
		if err != nil {
			b.Fatal(err)
		}
		br, err := core.New(core.Config{Backend: be, ClientBufferSize: 4096})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			_ = br.Close(context.Background())
			_ = be.Close()
		})
		bc.brokers = append(bc.brokers, br)
		if rc != nil && len(bc.brokers) == 1 {
			bc.masters = distinct(mastersOfShards(b, rc, be))
		}
	}
	return bc
}

// cpu returns the CPU seconds used so far by each server, and last by
// this process (every broker and publisher of the benchmark).
func (bc *benchCluster) cpu(b *testing.B) []float64 {
	out := make([]float64, len(bc.procs), len(bc.procs)+1)
	for i, p := range bc.procs {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := p.cpuSeconds(ctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		out[i] = s
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return append(out, tv(ru.Utime)+tv(ru.Stime))
}

// reportCPU reports the Redis CPU per event since before, all servers
// together and on the busiest one (whose core saturates first: 1e6 over
// it is the ceiling in events/s), and this process's (the brokers', the
// publishers' and the benchmark's own).
func (bc *benchCluster) reportCPU(b *testing.B, before []float64, events int) {
	after := bc.cpu(b)
	self := len(after) - 1
	b.ReportMetric((after[self]-before[self])/float64(events)*1e6, "go-cpu-µs/event")
	var total, top float64
	for i := range self {
		d := after[i] - before[i]
		total += d
		top = max(top, d)
	}
	b.ReportMetric(total/float64(events)*1e6, "redis-cpu-µs/event")
	b.ReportMetric(top/float64(events)*1e6, "busiest-µs/event")
	b.ReportMetric(float64(bc.masters), "masters")
}

// delivered returns how many messages each broker has routed so far.
func (bc *benchCluster) delivered() []uint64 {
	out := make([]uint64, len(bc.brokers))
	for i, br := range bc.brokers {
		out[i] = br.Stats().Delivered
	}
	return out
}

// waitDelivered waits (at most 30s) until every broker routed n more
// messages than in from: every node read every event.
func (bc *benchCluster) waitDelivered(b *testing.B, from []uint64, n int) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		now := bc.delivered()
		done := true
		for i := range now {
			if now[i]-from[i] < uint64(n) {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("the brokers routed %v more messages, want %d each", func() []uint64 {
				for i := range now {
					now[i] -= from[i]
				}
				return now
			}(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const benchData = `{"id":12345,"status":"shipped","eta":"2026-12-01"}`

func benchShardPublish(b *testing.B, bc *benchCluster) {
	const tenants = 1000
	names := make([]string, tenants)
	for i := range names {
		names[i] = "t" + strconv.Itoa(i)
	}
	from := bc.delivered()
	cpu := bc.cpu(b)
	var next atomic.Uint64
	b.SetParallelism(16) // 32 publishers on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			i := next.Add(1)
			m := core.Message{Target: core.Target{Tenant: names[i%tenants], Broadcast: true},
				Event: core.Event{Type: "order.updated", Data: benchData}}
			if _, err := bc.brokers[i%uint64(len(bc.brokers))].Publish(ctx, m); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	bc.waitDelivered(b, from, b.N) // the reads count in the CPU too
	bc.reportCPU(b, cpu, b.N)
}

// arrivals records, per event written to it, the time since its
// publication (the Unix nanoseconds in its data).
type arrivals struct {
	mu  *sync.Mutex
	lat *[]time.Duration
}

func (a arrivals) Write(p []byte) (int, error) {
	now := time.Now().UnixNano()
	var local []time.Duration
	for rest := p; ; {
		i := slices.Index(rest, 'd')
		if i < 0 || len(rest) < i+6 {
			break
		}
		rest = rest[i:]
		if string(rest[:6]) != "data: " {
			rest = rest[1:]
			continue
		}
		rest = rest[6:]
		end := slices.Index(rest, '\n')
		if end < 0 {
			break
		}
		if sent, err := strconv.ParseInt(string(rest[:end]), 10, 64); err == nil {
			local = append(local, time.Duration(now-sent))
		}
		rest = rest[end:]
	}
	a.mu.Lock()
	*a.lat = append(*a.lat, local...)
	a.mu.Unlock()
	return len(p), nil
}

func (arrivals) Flush() error { return nil }

func benchShardLatency(b *testing.B, bc *benchCluster) {
	const tenants, every = 30, 2 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	names := make([]string, tenants)
	for i := range names {
		names[i] = "lat" + strconv.Itoa(i)
		sub, err := bc.brokers[1].Subscribe(ctx, core.SubscribeRequest{Identity: core.Identity{Tenant: names[i]}})
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() { _ = bc.brokers[1].Serve(ctx, sub, arrivals{&mu, &lat}) })
	}
	from := bc.delivered()
	cpu := bc.cpu(b)
	tick := time.NewTicker(every)
	defer tick.Stop()
	b.ResetTimer()
	for i := range b.N {
		<-tick.C
		data := strconv.FormatInt(time.Now().UnixNano(), 10)
		m := core.Message{Target: core.Target{Tenant: names[i%tenants], Broadcast: true}, Event: core.Event{Type: "tick", Data: data}}
		if _, err := bc.brokers[0].Publish(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	bc.waitDelivered(b, from, b.N)
	b.StopTimer()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(lat)
		mu.Unlock()
		if n >= b.N || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	bc.reportCPU(b, cpu, b.N)
	mu.Lock()
	d := slices.Clone(lat)
	mu.Unlock()
	if len(d) != b.N {
		b.Fatalf("%d deliveries, want %d", len(d), b.N)
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[(len(d)-1)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op")
}
