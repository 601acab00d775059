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
	"github.com/stretchr/testify/require"
)

// TestPresenceAcrossNodes connects users on three nodes, checks that every
// node's Presence sees all of them, then kills a node (no cleanup, as a
// crash) and checks that its connections stop counting within the TTL.
func TestPresenceAcrossNodes(t *testing.T) {
	const ttl = 600 * time.Millisecond
	rs := startRedis(t)
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, newNode(t, rs, fmt.Sprintf("n%d", i), nodeConfig{popt: PresenceOptions{TTL: ttl}}))
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alice, bob, carol := uuid.New(), uuid.New(), uuid.New()
	// alice: 2 connections on n0, 1 on n1; bob: n1 only; carol: n2, tenant acme.
	conns := []struct {
		user   uuid.UUID
		node   int
		tenant string
	}{{alice, 0, ""}, {alice, 0, ""}, {alice, 1, ""}, {bob, 1, ""}, {carol, 2, "acme"}}
	var subs []*subscriber
	for _, c := range conns {
		q := "?user=" + c.user.String()
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

	sorted := func(us ...uuid.UUID) []uuid.UUID {
		slices.SortFunc(us, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		return us
	}
	// eventually polls every node's view until it matches.
	eventually := func(within time.Duration, what string, alive []*node, cond func(p *Presence) (bool, error)) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			ok := true
			for _, n := range alive {
				got, err := cond(n.pres)
				require.NoError(t, err, "%s", what)
				ok = ok && got
			}
			if ok {
				return time.Since(start)
			}
			require.LessOrEqual(t, time.Since(start), within, "%s: not true after %v", what, within)
			time.Sleep(10 * time.Millisecond)
		}
	}
	eventually(2*time.Second, "all connected", nodes, func(p *Presence) (bool, error) {
		n, err := p.UserConnections(ctx, "", alice)
		if err != nil || n != 3 {
			return false, err
		}
		users, err := p.OnlineUsers(ctx, "")
		if err != nil || !slices.Equal(users, sorted(alice, bob)) {
			return false, err
		}
		on, err := p.IsUserOnline(ctx, "acme", carol)
		if err != nil || !on {
			return false, err
		}
		off, err := p.IsUserOnline(ctx, "", carol) // other tenant
		return !off, err
	})
	// Entries outlive several refresh periods while the nodes live.
	time.Sleep(2 * ttl)
	alive, err := nodes[2].pres.UserConnections(ctx, "", alice)
	require.NoError(t, err, "after 2 TTLs alive")
	require.Equal(t, 3, alive, "after 2 TTLs alive: alice's connections")

	// A graceful disconnect shows at once.
	subs[3].stop() // bob
	eventually(time.Second, "bob left", nodes, func(p *Presence) (bool, error) {
		on, err := p.IsUserOnline(ctx, "", bob)
		return !on, err
	})

	// n0 crashes: its presence entries are not removed, they expire.
	nodes[0].kill()
	// The bound is the TTL; the second is for slow polling under load.
	took := eventually(ttl+time.Second, "n0's connections expired", nodes[1:], func(p *Presence) (bool, error) {
		n, err := p.UserConnections(ctx, "", alice)
		return n == 1, err
	})
	t.Logf("a crashed node's connections stopped counting after %v (TTL %v)", took.Round(time.Millisecond), ttl)
	users, err := nodes[1].pres.OnlineUsers(ctx, "")
	require.NoError(t, err, "online users %v (%v), want alice only", users, err)
	require.True(t, slices.Equal(users, []uuid.UUID{alice}), "online users %v (%v), want alice only", users, err)

	// A graceful shutdown removes the node's entries at once.
	nodes[1].shutdown()
	eventually(time.Second, "n1 shut down", nodes[2:], func(p *Presence) (bool, error) {
		users, err := p.OnlineUsers(ctx, "")
		return len(users) == 0, err
	})
}

// TestPresenceRefreshAfterRedisRestart checks that presence comes back by
// itself when Redis lost it.
func TestPresenceRefreshAfterRedisRestart(t *testing.T) {
	const ttl = 300 * time.Millisecond
	rs := startRedis(t)
	c := rs.client(t)
	p, err := NewPresence(c, PresenceOptions{TTL: ttl})
	require.NoError(t, err)
	defer p.Close(context.Background())
	u := uuid.New()
	p.add(core.Identity{User: u}, 1)
	ctx := context.Background()
	wait := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			on, err := p.IsUserOnline(ctx, "", u)
			if err == nil && on == want {
				return
			}
			require.False(t, time.Now().After(deadline), "online=%v (%v), want %v", on, err, want)
			time.Sleep(10 * time.Millisecond)
		}
	}
	wait(true)
	rs.kill()
	rs.start()
	wait(true)
	require.NoError(t, p.Close(ctx))
	wait(false)
}
