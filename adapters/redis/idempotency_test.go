package sseredis

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
)

func publishKeyed(t *testing.T, be *Backend, tenant, key, data string) string {
	t.Helper()
	m := &core.Message{
		Target:         core.Target{Tenant: tenant, Broadcast: true},
		Event:          core.Event{Type: "e", Data: data},
		IdempotencyKey: key,
	}
	require.NoError(t, be.Publish(context.Background(), m))
	return m.Event.ID
}

// The publish script appends a keyed event once per tenant while its entry
// is in the stream, and answers a repeat with that entry's ID.
func TestIdempotencyKeyOnRedis(t *testing.T) { forShards(t, testIdempotencyKeyOnRedis) }

func testIdempotencyKeyOnRedis(t *testing.T, shards int) {
	rs := startRedis(t)
	be := newBackend(t, rs, Options{Shards: shards})
	ctx := context.Background()
	xlen := func() int64 { return streamLen(t, be) }

	first := publishKeyed(t, be, "", "k", "first")
	again := publishKeyed(t, be, "", "k", "again")
	require.Equal(t, first, again, "a repeat got %s, want the first ID %s", again, first)
	other := publishKeyed(t, be, "b", "k", "tenant b")
	require.NotEqual(t, first, other, "the same key in another tenant must be another event")
	require.Equal(t, int64(2), xlen(), "entries in the stream")
	require.EqualValues(t, 1, be.deduped.Load(), "deduped")
	got, err := replay(t, be, "", originID, first)
	require.NoError(t, err, "replay = %v, %v; want [first]", got, err)
	require.Len(t, got, 1, "replay = %v, %v; want [first]", got, err)
	require.Equal(t, "first", got[0], "replay = %v, %v; want [first]", got, err)

	// Concurrent attempts, batched into one script call or not: one entry.
	const n = 16
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m := &core.Message{Target: core.Target{Broadcast: true}, Event: core.Event{Type: "e", Data: "c"}, IdempotencyKey: "concurrent"}
			assert.NoError(t, be.Publish(ctx, m))
			ids[i] = m.Event.ID
		})
	}
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id, "concurrent attempts got different IDs: %v", ids)
	}
	require.Equal(t, int64(3), xlen(), "entries in the stream")

	// Once the entry is trimmed the key is a new event, and the keys of
	// trimmed entries are forgotten on the next keyed publish.
	for _, k := range be.StreamKeys() {
		require.NoError(t, be.client.XTrimMaxLen(ctx, k, 0).Err())
	}
	fresh := publishKeyed(t, be, "", "k", "fresh")
	require.NotEqual(t, first, fresh, "a key whose entry was trimmed must publish anew")
	// Forgetting is per shard: publish a keyed event in b's shard too.
	publishKeyed(t, be, "b", "k2", "tenant b again")
	for _, sh := range be.shards {
		fields, err := be.client.HLen(ctx, sh.keys).Result()
		require.NoError(t, err, "keys hash")
		members, err := be.client.ZCard(ctx, sh.keyAge).Result()
		require.NoError(t, err, "keys sorted set")
		want := int64(0)
		if sh == be.shardOf("") {
			want++ // "fresh"
		}
		if sh == be.shardOf("b") {
			want++ // "tenant b again"
		}
		require.Equal(t, want, fields, "fields in shard %d's keys hash", sh.i)
		require.Equal(t, want, members, "members of shard %d's keys sorted set", sh.i)
	}

	bad := &core.Message{Target: core.Target{Broadcast: true}, Event: core.Event{Type: "e"}, IdempotencyKey: "a b"}
	require.ErrorIs(t, be.Publish(ctx, bad), core.ErrInvalidIdempotencyKey, "a key with a space")
}

// TestRetriesWhileRedisRestarts is issue 14's case: a publisher retries
// every failed publish, with the same idempotency key, while Redis (with
// appendonly yes, appendfsync always) is killed and restarted, then frozen
// past the publish timeout, so that a failed attempt was in fact appended
// (without keys the stream ends with duplicates: 203 entries). Every
// subscriber must get each event exactly once, with the ID the publisher
// was finally given, and the stream must hold no duplicate.
func TestRetriesWhileRedisRestarts(t *testing.T) { forShards(t, testRetriesWhileRedisRestarts) }

func testRetriesWhileRedisRestarts(t *testing.T, shards int) {
	rs := startRedisAOF(t)
	fast := Options{Shards: shards, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, PublishTimeout: 300 * time.Millisecond}
	var nodes []*node
	for i := range 2 {
		nodes = append(nodes, newNode(t, rs, fmt.Sprintf("n%d", i), nodeConfig{opt: fast, ctxTimeouts: true}))
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var subs []*subscriber
	for i := range 4 {
		s := newSubscriber(nodes, i%2, "?topic=x", tr)
		s.start(ctx)
		subs = append(subs, s)
	}
	defer func() {
		for _, s := range subs {
			s.stop()
		}
	}()
	waitConnected(t, nodes, len(subs))

	const events = 200
	const killAt, freezeAt = 50, 130
	ids := make([]string, events)
	var failures atomic.Int64
	// The publisher stops at each fault's event until the fault is in
	// place, then publishes on through it.
	reached, resume := make(chan struct{}), make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		deadline := time.Now().Add(60 * time.Second)
		for seq := range events {
			if seq == killAt || seq == freezeAt {
				reached <- struct{}{}
				<-resume
			}
			m := core.Message{
				Target:         core.Target{Topics: []string{"x"}},
				Event:          core.Event{Type: "seq", Data: strconv.Itoa(seq)},
				IdempotencyKey: "event-" + strconv.Itoa(seq),
			}
			for attempt := 0; ; attempt++ {
				n := nodes[(seq+attempt)%len(nodes)]
				id, err := n.b.Publish(ctx, m)
				if err == nil {
					ids[seq] = id
					break
				}
				failures.Add(1)
				if time.Now().After(deadline) || ctx.Err() != nil {
					assert.Fail(t, fmt.Sprintf("event %d: still failing after %d attempts: %v", seq, attempt+1, err))
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	fault := func(inject func()) {
		select {
		case <-reached:
			inject()
			resume <- struct{}{}
		case <-finished:
		}
	}

	// A crash: publishes fail while Redis is down; it comes back with its
	// AOF.
	fault(rs.kill)
	time.Sleep(300 * time.Millisecond)
	rs.start()
	failedAtKill := failures.Load()

	// A freeze past PublishTimeout: the attempt in flight times out but
	// stays in the socket, and Redis runs it when it thaws, while the
	// publisher retries.
	fault(func() {
		assert.NoError(t, rs.signal(syscall.SIGSTOP))
	})
	time.Sleep(time.Second)
	require.NoError(t, rs.signal(syscall.SIGCONT))
	<-finished
	if t.Failed() {
		return
	}

	var deduped uint64
	for _, n := range nodes {
		deduped += n.be.deduped.Load()
	}
	entries := streamLen(t, nodes[0].be)
	t.Logf("%d events, %d failed attempts retried (%d around the kill, %d around the freeze), %d answered with the entry of an earlier attempt, %d stream entries",
		events, failures.Load(), failedAtKill, failures.Load()-failedAtKill, deduped, entries)
	require.NotEqual(t, int64(0), failedAtKill, "a fault caused no failed publish (kill: %d, total: %d): the test did not test retries", failedAtKill, failures.Load())
	require.NotEqual(t, failedAtKill, failures.Load(), "a fault caused no failed publish (kill: %d, total: %d): the test did not test retries", failedAtKill, failures.Load())
	require.Equal(t, int64(events), entries, "the stream holds %d entries for %d events", entries, events)

	last := strconv.Itoa(events - 1)
	for i, s := range subs {
		s.waitFor(t, 30*time.Second, "the last event", func(rs []received) bool {
			return len(rs) > 0 && rs[len(rs)-1].ev.Data == last
		})
		got := s.events()
		seen := make(map[int]bool, events)
		for _, r := range got {
			require.Equal(t, "seq", r.ev.Type, "subscriber %d: unexpected %q event %+v", i, r.ev.Type, r.ev)
			seq, _ := strconv.Atoi(r.ev.Data)
			require.False(t, seen[seq], "subscriber %d: event %d delivered twice", i, seq)
			seen[seq] = true
			require.Equal(t, ids[seq], r.ev.ID, "subscriber %d: event %d has ID %s, Publish returned %s", i, seq, r.ev.ID, ids[seq])
		}
		require.Len(t, seen, events, "subscriber %d: %d of %d events", i, len(seen), events)
	}
}
