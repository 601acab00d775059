package sseredis

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ssekit/ssekit/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sortedUsers(us ...uuid.UUID) []uuid.UUID {
	slices.SortFunc(us, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	return us
}

// TestPresenceAcrossNodes connects users on three nodes and checks that
// every node's broker answers for the whole cluster from its own view
// (IsUserOnline, UserConnections, OnlineUsers, Stats.Cluster) within a
// bounded time; then a node dies without closing (its Redis client cut,
// its entries left in Redis) and must drop out of the other views within
// the TTL; then a node shuts down gracefully and drops out at once.
func TestPresenceAcrossNodes(t *testing.T) {
	const ttl = 600 * time.Millisecond
	rs := startRedis(t)
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, newNode(t, rs, fmt.Sprintf("n%d", i), nodeConfig{opt: Options{Presence: PresenceOptions{TTL: ttl}}}))
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alice, bob, carol := uuid.New(), uuid.New(), uuid.New()
	// alice: 2 connections on n0, 1 on n1; bob: n1 only; carol: n2, tenant
	// acme; one anonymous connection on n2.
	conns := []struct {
		user   uuid.UUID
		node   int
		tenant string
	}{{alice, 0, ""}, {alice, 0, ""}, {alice, 1, ""}, {bob, 1, ""}, {carol, 2, "acme"}, {uuid.Nil, 2, ""}}
	var subs []*subscriber
	for _, c := range conns {
		q := "?topic=x"
		if c.user != uuid.Nil {
			q += "&user=" + c.user.String()
		}
		if c.tenant != "" {
			q += "&tenant=" + c.tenant
		}
		s := newSubscriber(nodes[c.node:c.node+1], 0, q, tr)
		s.start(ctx)
		subs = append(subs, s)
	}
	defer func() {
		for _, s := range subs {
			s.stop()
		}
	}()
	waitConnected(t, nodes, len(conns))

	// within waits until cond holds on every node of alive, and returns
	// how long it took; the queries are local, so polling costs nothing.
	within := func(d time.Duration, what string, alive []*node, cond func(b *core.Broker) bool) time.Duration {
		t.Helper()
		start := time.Now()
		assert.Eventually(t, func() bool {
			for _, n := range alive {
				if !cond(n.b) {
					return false
				}
			}
			return true
		}, d, 2*time.Millisecond, what)
		if t.Failed() {
			for _, n := range alive {
				t.Logf("%s: alice %d, online %v, carol in acme %v, cluster %+v", n.name, n.b.UserConnections(alice), n.b.OnlineUsers(), n.b.Tenant("acme").IsUserOnline(carol), n.b.Stats().Cluster)
			}
			t.FailNow()
		}
		return time.Since(start)
	}
	cluster := func(b *core.Broker) core.ClusterStats {
		if c := b.Stats().Cluster; c != nil {
			return *c
		}
		return core.ClusterStats{}
	}
	took := within(2*time.Second, "all connected", nodes, func(b *core.Broker) bool {
		return b.UserConnections(alice) == 3 &&
			slices.Equal(b.OnlineUsers(), sortedUsers(alice, bob)) &&
			b.Tenant("acme").IsUserOnline(carol) &&
			!b.IsUserOnline(carol) && // other tenant
			cluster(b) == core.ClusterStats{Brokers: 3, Connections: len(conns)}
	})
	t.Logf("connections on other nodes showed after %v", took.Round(time.Millisecond))

	// Entries outlive several refresh periods while the nodes live.
	time.Sleep(2 * ttl)
	for _, n := range nodes {
		require.Equal(t, 3, n.b.UserConnections(alice), "%s after 2 TTLs alive: alice's connections", n.name)
		require.Equal(t, core.ClusterStats{Brokers: 3, Connections: len(conns)}, cluster(n.b), "%s after 2 TTLs", n.name)
	}

	// A disconnect shows within a round trip and a Pub/Sub hop.
	subs[3].stop() // bob
	took = within(time.Second, "bob left", nodes, func(b *core.Broker) bool {
		return !b.IsUserOnline(bob) && cluster(b).Connections == len(conns)-1
	})
	t.Logf("a disconnect on another node showed after %v", took.Round(time.Millisecond))

	// n0 dies: its Redis client is cut, so its entries stay in Redis and
	// expire; the other nodes stop counting it within the TTL.
	nodes[0].kill()
	left, err := rs.client(t).ZScore(ctx, nodes[0].be.pres.nodes, nodes[0].be.pres.node).Result()
	require.NoError(t, err, "the killed node's registry entry should be left behind")
	require.NotZero(t, left)
	// The bound is the TTL; the rest is for slow polling under load.
	took = within(ttl+500*time.Millisecond, "n0's connections expired", nodes[1:], func(b *core.Broker) bool {
		return b.UserConnections(alice) == 1 && cluster(b) == core.ClusterStats{Brokers: 2, Connections: 3}
	})
	t.Logf("a killed node's connections stopped counting after %v (TTL %v)", took.Round(time.Millisecond), ttl)
	require.Equal(t, []uuid.UUID{alice}, nodes[2].b.OnlineUsers())

	// A graceful shutdown removes the node at once.
	nodes[1].shutdown()
	within(time.Second, "n1 shut down", nodes[2:], func(b *core.Broker) bool {
		return len(b.OnlineUsers()) == 0 && cluster(b) == core.ClusterStats{Brokers: 1, Connections: 2}
	})
}

// attached returns a Backend attached to a deliver func that drops
// everything, for presence tests that need no broker.
func attached(t *testing.T, rs *redisServer, opt Options) *Backend {
	t.Helper()
	be := newBackend(t, rs, opt)
	detach, err := be.Attach(func(*core.Message) {})
	require.NoError(t, err)
	t.Cleanup(detach)
	return be
}

// TestPresenceRefreshAfterRedisRestart: Redis restarts empty; each node
// rewrites its entries by itself, and the views, which answer from memory
// meanwhile, agree again.
func TestPresenceRefreshAfterRedisRestart(t *testing.T) {
	const ttl = 300 * time.Millisecond
	rs := startRedis(t)
	opt := Options{Presence: PresenceOptions{TTL: ttl}, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, ErrorLog: func(err error) { t.Log(err) }}
	a, b := attached(t, rs, opt), attached(t, rs, opt)
	u := uuid.New()
	a.Track(core.Identity{User: u}, 1)
	a.Track(core.Identity{}, 1) // anonymous
	wait := func(want int) {
		t.Helper()
		require.Eventually(t, func() bool {
			brokers, conns := b.RemoteTotals()
			return b.RemoteConnections("", u) == want && brokers == 1 && conns == want+1 // and the anonymous one
		}, 5*time.Second, 5*time.Millisecond, "want %d", want)
	}
	wait(1)
	rs.kill()
	// No Redis: the view still answers, without a round trip, until the
	// TTL passes without news of a.
	start := time.Now()
	require.Equal(t, 1, b.RemoteConnections("", u))
	require.Equal(t, []uuid.UUID{u}, b.RemoteUsers(""))
	require.Less(t, time.Since(start), 10*time.Millisecond)
	time.Sleep(ttl / 2)
	rs.start()
	a.Track(core.Identity{User: u}, 1) // a change while Redis holds nothing of a
	wait(2)
	left, err := rs.client(t).Exists(context.Background(), a.pres.nodeKey).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, left, "a rewrote its hash")
	a.Track(core.Identity{User: u}, -1)
	a.Track(core.Identity{User: u}, -1)
	a.Track(core.Identity{}, -1)
	require.Eventually(t, func() bool { return b.RemoteConnections("", u) == 0 && len(b.RemoteUsers("")) == 0 },
		5*time.Second, 5*time.Millisecond)
}

// TestPresenceViewApply checks the message rules: changes apply in
// sequence, a missed sequence number or a heartbeat ahead of the view asks
// for a resync, old news is ignored, and a node expires at its deadline.
func TestPresenceViewApply(t *testing.T) {
	p := newPresence(nil, Options{Presence: PresenceOptions{TTL: time.Second}})
	u1, u2 := uuid.New(), uuid.New()
	now := time.Now()
	msg := func(kind string, seq, total int, lines ...string) string {
		s := fmt.Sprintf("%s other %d 1000 %d\n", kind, seq, total)
		for _, l := range lines {
			s += l + "\n"
		}
		return s
	}
	// An unknown node: its changes apply, but the rest of it must be read.
	assert.True(t, p.apply(msg("d", 1, 2, "2 "+u1.String()+":"), now), "unknown node")
	p.view.nodes["other"].stale = false // as a resync would leave it
	assert.False(t, p.apply(msg("d", 2, 3, "1 "+u2.String()+":acme"), now), "next in sequence")
	assert.Equal(t, 2, p.view.connections("", u1, now))
	assert.Equal(t, []uuid.UUID{u2}, p.view.users("acme", now))
	brokers, conns := p.view.totals(now)
	assert.Equal(t, 1, brokers)
	assert.Equal(t, 3, conns)
	assert.False(t, p.apply(msg("d", 2, 9, "0 "+u1.String()+":"), now), "old news")
	assert.Equal(t, 2, p.view.connections("", u1, now))
	assert.False(t, p.apply(msg("h", 2, 3), now), "heartbeat in step")
	assert.True(t, p.apply(msg("d", 4, 3, "0 "+u1.String()+":"), now), "sequence 3 missed")
	assert.Equal(t, 0, p.view.connections("", u1, now))
	p.view.nodes["other"].stale = false
	assert.True(t, p.apply(msg("h", 5, 3), now), "heartbeat ahead")
	p.apply(msg("x", 0, 0), now)
	assert.Empty(t, p.view.nodes, "a node that said goodbye")
	// Own messages are ignored.
	assert.False(t, p.apply(fmt.Sprintf("d %s 1 1000 1\n1 %s:\n", p.node, u1), now))
	assert.Empty(t, p.view.nodes)
	// Deadline: counted until then, not after.
	p.apply(msg("d", 1, 1, "1 "+u1.String()+":"), now)
	assert.Equal(t, 1, p.view.connections("", u1, now.Add(999*time.Millisecond)))
	assert.Equal(t, 0, p.view.connections("", u1, now.Add(time.Second)))
	brokers, _ = p.view.totals(now.Add(time.Second))
	assert.Zero(t, brokers)
}

// TestPresenceOff: without presence the broker counts its own connections
// only (Stats.Cluster: this broker alone), and nothing goes to Redis.
func TestPresenceOff(t *testing.T) {
	rs := startRedis(t)
	be := newBackend(t, rs, Options{Presence: PresenceOptions{Off: true}})
	b, err := core.New(core.Config{Backend: be})
	require.NoError(t, err)
	defer b.Close(context.Background())
	require.Equal(t, &core.ClusterStats{Brokers: 1}, b.Stats().Cluster)
	be.Track(core.Identity{User: uuid.New()}, 1) // ignored
	require.Empty(t, be.RemoteUsers(""))
	n, _ := rs.client(t).Exists(context.Background(), DefaultPrefix+":{presence}:nodes").Result()
	require.Zero(t, n, "nothing written to Redis")
}
