package sseredis

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
)

// TestSentinelFailover runs three brokers, each on its own go-redis
// failover client, on a Sentinel-managed primary (one master, one replica,
// three sentinels), and SIGKILLs the master while a publisher publishes
// numbered broadcasts (with idempotency keys, retrying failed attempts) and
// six clients hop between the nodes with their Last-Event-ID. The
// sentinels promote the replica; go-redis follows it. Every client must
// get every accepted event exactly once, or a gap event in its place, and
// after the failover publishes and deliveries resume on the same brokers.
//
// "replicated": the replica is in sync when the master dies. "lossy": it
// is frozen (SIGSTOP) and cut off from the master 150ms before the kill,
// so the events accepted meanwhile are lost with the master (asynchronous
// replication): the brokers must announce them with gap events.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	t.Run("replicated", func(t *testing.T) { sentinelFailover(t, false) })
	t.Run("lossy", func(t *testing.T) { sentinelFailover(t, true) })
}

func sentinelFailover(t *testing.T, lossy bool) {
	const before, after = 400, 200
	start := time.Now()
	ss := startSentinel(t)
	setup := time.Since(start)
	var nodes []*brokerNode
	for i := range 3 {
		nodes = append(nodes, startBrokerNode(t, fmt.Sprintf("n%d", i), ss.failoverClient(t),
			Options{MaxLen: 100000, MaxBackoff: 200 * time.Millisecond, PublishTimeout: time.Second}))
	}
	require.Equal(t, 1, nodes[0].be.Shards(), "one shard is the default on a failover client")

	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clients, stop := startHopClients(ctx, t, nodes, tr, 6, func(i int) (string, int) { return "", 50 + 7*i })
	defer stop()

	p := &keyedPublisher{nodes: nodes, retryFor: 20 * time.Second}
	var accepted []published
	publish := func(from, to int) {
		for seq := from; seq < to; seq++ {
			got, err := p.publish(ctx, "", seq)
			require.NoError(t, err)
			accepted = append(accepted, got)
			time.Sleep(time.Millisecond) // a steady stream, not a burst
		}
	}
	publish(0, before/2)
	oldMaster := ss.master.addr
	if lossy {
		require.NoError(t, ss.replica.signal(syscall.SIGSTOP))
		// Cut the link from the master's side: the frozen replica will
		// apply what is in its socket buffer and nothing published after.
		a := ss.master.adminClient()
		err := a.ClientKillByFilter(ctx, "TYPE", "replica").Err()
		a.Close()
		require.NoError(t, err)
		publish(before/2, before/2+50) // accepted by the master alone
	}
	killedAt := time.Now()
	require.Equal(t, oldMaster, ss.killMaster(t))
	if lossy {
		require.NoError(t, ss.replica.signal(syscall.SIGCONT))
	}
	publish(len(accepted), before) // retries through the failover
	firstDone := time.Since(killedAt)
	newMaster := ss.waitFailover(t, oldMaster)
	promoted := time.Since(killedAt)
	publish(before, before+after)

	var total deliveryReport
	for i, c := range clients {
		last := accepted[len(accepted)-1].data
		c.waitFor(t, 30*time.Second, "the last event "+last, func(evs []core.Event) bool {
			return len(evs) > 0 && evs[len(evs)-1].Data == last
		})
		got := c.events()
		r := checkDelivery(t, fmt.Sprintf("client %d", i), got, accepted)
		tail := eventData(got[len(got)-after:])
		for k := range after {
			require.Equal(t, accepted[before+k].data, tail[k], "client %d: after the failover", i)
		}
		total.events += r.events
		total.gaps += r.gaps
		total.missing += r.missing
		total.resent += r.resent
	}
	var gaps uint64
	for _, n := range nodes {
		gaps += n.b.Stats().Gaps
	}
	lost := 0
	fc := ss.failoverClient(t)
	key := nodes[0].be.StreamKeys()[0]
	for _, a := range accepted {
		entry := a.id[strings.IndexByte(a.id, ':')+1:]
		n, err := fc.XRange(ctx, key, entry, entry).Result()
		require.NoError(t, err)
		if len(n) == 0 {
			lost++
		}
	}
	t.Logf("setup %v; master %s killed, %s promoted: the publisher was through %v after the kill, the sentinels named the new master after %v; %d failed attempts retried",
		setup.Round(time.Millisecond), oldMaster, newMaster, firstDone.Round(time.Millisecond), promoted.Round(time.Millisecond), p.attempts)
	t.Logf("%d clients: %d events, %d gap events (brokers wrote %d), %d accepted events never delivered (announced), %d re-sent after a gap; Redis lost %d accepted events",
		len(clients), total.events, total.gaps, gaps, total.missing, total.resent, lost)
	for _, n := range nodes {
		t.Logf("%s: %s", n.name, n.errorLog())
	}
	if lossy {
		require.Positive(t, lost, "the frozen replica lost nothing: the test did not test a loss")
		require.Positive(t, gaps, "Redis lost accepted events and no broker wrote a gap event")
	}
}
