package core

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clusterBackend is a MemoryBackend that also claims the optional
// capabilities a cluster backend has, with a fixed view of other brokers,
// so that the broker's use of them can be checked without a cluster.
type clusterBackend struct {
	*MemoryBackend
	remote map[uuid.UUID]int // the other brokers' connections per user

	mu       sync.Mutex
	caughtUp []string // tenant/Last-Event-ID, in CatchUp order
	tracked  map[uuid.UUID]int
	anon     int
}

func (c *clusterBackend) CatchUp(_ context.Context, tenant, lastEventID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.caughtUp = append(c.caughtUp, tenant+"/"+lastEventID)
}

func (c *clusterBackend) Track(id Identity, delta int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id.User == uuid.Nil {
		c.anon += delta
		return
	}
	c.tracked[id.User] += delta
}

func (c *clusterBackend) RemoteConnections(_ string, user uuid.UUID) int { return c.remote[user] }

func (c *clusterBackend) RemoteUsers(string) []uuid.UUID {
	var out []uuid.UUID
	for u := range c.remote {
		out = append(out, u)
	}
	return out
}

func (c *clusterBackend) RemoteTotals() (brokers, connections int) { return 2, 5 }

var (
	_ CatchUp        = (*clusterBackend)(nil)
	_ Presence       = (*clusterBackend)(nil)
	_ ClusterCounter = (*clusterBackend)(nil)
)

// TestBackendCapabilities: the broker itself calls a backend's CatchUp
// (only for a client that resumes) and Presence, and answers presence
// queries and Stats for the cluster: its own connections exactly, the
// others' from the backend.
func TestBackendCapabilities(t *testing.T) {
	alice, bob, carol := user(), user(), user()
	be := &clusterBackend{
		MemoryBackend: NewMemoryBackend(HistoryLimits{}),
		remote:        map[uuid.UUID]int{bob: 2, alice: 1},
		tracked:       map[uuid.UUID]int{},
	}
	b := newBroker(t, Config{Backend: be})

	first := connect(t, b, SubscribeRequest{Identity: Identity{User: alice}})
	anon := connect(t, b, SubscribeRequest{})
	id, err := b.Publish(context.Background(), Message{Target: Target{Broadcast: true}, Event: Event{Type: "e", Data: "x"}})
	require.NoError(t, err)
	resumed := connect(t, b, SubscribeRequest{Identity: Identity{User: alice}, LastEventID: id})

	be.mu.Lock()
	assert.Equal(t, []string{"/" + id}, be.caughtUp, "CatchUp only for the client that resumed")
	assert.Equal(t, 2, be.tracked[alice])
	assert.Equal(t, 1, be.anon, "anonymous connections are tracked for the cluster's count")
	be.mu.Unlock()

	assert.Equal(t, 3, b.UserConnections(alice), "two here, one elsewhere")
	assert.True(t, b.IsUserOnline(bob), "online on another broker")
	assert.False(t, b.IsUserOnline(carol))
	want := []uuid.UUID{alice, bob}
	if string(bob[:]) < string(alice[:]) {
		want = []uuid.UUID{bob, alice}
	}
	assert.Equal(t, want, b.OnlineUsers(), "merged, sorted, each user once")
	assert.Equal(t, &ClusterStats{Brokers: 3, Connections: 3 + 5}, b.Stats().Cluster)

	require.NoError(t, first.close())
	require.NoError(t, anon.close())
	require.NoError(t, resumed.close())
	assert.Zero(t, b.Stats().Connections, "close waits for Serve, which unregisters")
	be.mu.Lock()
	assert.Zero(t, be.tracked[alice], "every connection's end is tracked")
	assert.Zero(t, be.anon)
	be.mu.Unlock()
}

// TestMemoryBackendServesOneBroker: a second broker on the same
// MemoryBackend is refused, with ErrInvalidConfig.
func TestMemoryBackendServesOneBroker(t *testing.T) {
	be := NewMemoryBackend(HistoryLimits{})
	newBroker(t, Config{Backend: be})
	_, err := New(Config{Backend: be})
	assert.ErrorIs(t, err, ErrInvalidConfig)
}
