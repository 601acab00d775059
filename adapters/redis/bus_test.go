package sseredis

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ssekit/ssekit/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestThreeNodesExactlyOnceSameOrder publishes from every node at once to
// users, topics, several targets at a time and broadcasts, and checks that
// every subscriber, whichever node it is on, gets exactly the events it is
// entitled to, once each, with the same ID everywhere and in ID order (so
// in the same order on every node).
func TestThreeNodesExactlyOnceSameOrder(t *testing.T) {
	forShards(t, testThreeNodesExactlyOnceSameOrder)
}

func testThreeNodesExactlyOnceSameOrder(t *testing.T, shards int) {
	rs := startRedis(t)
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, newNode(t, rs, fmt.Sprintf("n%d", i), nodeConfig{opt: Options{Shards: shards}}))
	}
	// The second tenant: "t2" is in another shard than "" with 3 shards,
	// so that two readers deliver concurrently.
	const t2 = "t2"
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()

	users := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	type spec struct {
		user   uuid.UUID
		topics []string
		tenant string
	}
	var specs []spec
	for i, u := range users {
		specs = append(specs, spec{user: u, topics: []string{"a"}}, spec{user: u, topics: []string{[]string{"b", "c", "a"}[i]}})
	}
	specs = append(specs, spec{topics: []string{"a", "b"}}, spec{}, spec{tenant: t2, topics: []string{"a"}}, spec{tenant: t2, user: users[0]})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var subs []*subscriber
	for i, sp := range specs {
		q := url.Values{}
		if sp.user != uuid.Nil {
			q.Set("user", sp.user.String())
		}
		if sp.tenant != "" {
			q.Set("tenant", sp.tenant)
		}
		for _, tp := range sp.topics {
			q.Add("topic", tp)
		}
		s := newSubscriber(nodes, i%3, "?"+q.Encode(), tr)
		s.start(ctx)
		subs = append(subs, s)
	}
	defer func() {
		for _, s := range subs {
			s.stop()
		}
	}()
	waitConnected(t, nodes, len(specs))

	// The messages, and who is entitled to each.
	entitled := func(sp spec, m core.Message) bool {
		if sp.tenant != m.Target.Tenant {
			return false
		}
		if m.Target.Broadcast {
			return true
		}
		if sp.user != uuid.Nil && slices.Contains(m.Target.Users, sp.user) {
			return true
		}
		for _, tp := range m.Target.Topics {
			if slices.Contains(sp.topics, tp) {
				return true
			}
		}
		return false
	}
	const perNode = 300
	targets := func(i int) core.Target {
		switch i % 7 {
		case 0:
			return core.Target{Broadcast: true}
		case 1:
			return core.Target{Users: []uuid.UUID{users[i%3]}}
		case 2:
			return core.Target{Topics: []string{"a"}}
		case 3:
			return core.Target{Topics: []string{"b", "c"}, Users: []uuid.UUID{users[0], users[1]}}
		case 4:
			return core.Target{Tenant: t2, Topics: []string{"a"}}
		case 5:
			return core.Target{Tenant: t2, Users: []uuid.UUID{users[0]}, Topics: []string{"a"}}
		}
		return core.Target{Topics: []string{"c"}}
	}
	var mu sync.Mutex
	ids := map[string]string{} // data -> ID
	var sent []core.Message
	var wg sync.WaitGroup
	for ni, n := range nodes {
		wg.Go(func() {
			for i := range perNode {
				m := core.Message{Target: targets(i), Event: core.Event{Type: "e", Data: fmt.Sprintf("%s-%d", n.name, i)}}
				id, err := n.b.Publish(ctx, m)
				if err != nil {
					assert.NoError(t, err, "publish on %d", ni)
					return
				}
				mu.Lock()
				ids[m.Event.Data] = id
				sent = append(sent, m)
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	for i, s := range subs {
		var want []string
		for _, m := range sent {
			if entitled(specs[i], m) {
				want = append(want, m.Event.Data)
			}
		}
		s.waitFor(t, 20*time.Second, fmt.Sprintf("%d events", len(want)), func(rs []received) bool {
			return len(dataOf(rs, "e")) >= len(want)
		})
		time.Sleep(50 * time.Millisecond) // anything extra would show now
		got := s.events()
		slices.Sort(want)
		have := dataOf(got, "e")
		sorted := slices.Clone(have)
		slices.Sort(sorted)
		require.True(t, slices.Equal(sorted, want), "subscriber %d (%s): got %d events, want %d (duplicates or strangers)", i, s.query, len(have), len(want))
		var prev streamID
		for _, r := range got {
			require.Equal(t, "e", r.ev.Type, "subscriber %d: unexpected event %+v", i, r.ev)
			require.Equal(t, r.ev.ID, ids[r.ev.Data], "subscriber %d: %s has ID %s, Publish returned %s", i, r.ev.Data, r.ev.ID, ids[r.ev.Data])
			id := entryID(t, r.ev.ID)
			require.True(t, prev.less(id), "subscriber %d: %s out of order", i, r.ev.ID)
			if shards > 1 {
				want := nodes[0].be.shardOf(specs[i].tenant).prefix
				require.True(t, strings.HasPrefix(r.ev.ID, want), "subscriber %d: %s is not of shard %q", i, r.ev.ID, want)
			}
			prev = id
		}
	}
}

// waitConnected waits until the nodes hold n connections in all.
func waitConnected(t testing.TB, nodes []*node, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		total := 0
		for _, nd := range nodes {
			if !nd.down.Load() {
				total += nd.b.Stats().Connections
			}
		}
		if total >= n {
			return
		}
		require.False(t, time.Now().After(deadline), "%d of %d connections after 10s", total, n)
		time.Sleep(5 * time.Millisecond)
	}
}

// TestGapOnOneShard loses one shard's stream (as a Cluster master that
// failed over without its newest writes would): the tenants of that shard
// get the gap event, with an ID of their shard; the others get nothing but
// their events.
func TestGapOnOneShard(t *testing.T) {
	rs := startRedis(t)
	be := newBackend(t, rs, Options{Shards: 3})
	lost, kept := be.shardOf(""), be.shardOf("other")
	require.NotEqual(t, lost, kept, "the test wants two shards")
	var mu sync.Mutex
	got := map[string][]core.Event{}
	detach, err := be.Attach(func(m *core.Message) {
		mu.Lock()
		got[m.Target.Tenant] = append(got[m.Target.Tenant], m.Event)
		mu.Unlock()
	})
	require.NoError(t, err)
	defer detach()
	types := func(tenant string) string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, ev := range got[tenant] {
			out = append(out, ev.Type)
		}
		return strings.Join(out, " ")
	}
	publish(t, be, "", "a0")
	publish(t, be, "other", "b0")
	require.Eventually(t, func() bool { return types("") == "e" && types("other") == "e" }, 5*time.Second, 5*time.Millisecond)

	ctx := context.Background()
	require.NoError(t, rs.client(t).Del(ctx, lost.stream, lost.heads).Err())
	publish(t, be, "", "a1")
	publish(t, be, "other", "b1")
	require.Eventually(t, func() bool { return types("") == "e "+core.GapEventType+" e" && types("other") == "e e" },
		5*time.Second, 5*time.Millisecond, "got %q and %q", types(""), types("other"))
	mu.Lock()
	defer mu.Unlock()
	for _, ev := range got[""] {
		require.True(t, strings.HasPrefix(ev.ID, lost.prefix), "%s event ID %q is not of shard %d", ev.Type, ev.ID, lost.i)
	}
	require.Contains(t, got[""][1].Data, `"reason":"unknown"`)
}
