package core

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/google/uuid"
)

// Backend is where a broker's events go between publish and delivery: it
// numbers them, keeps them for Last-Event-ID replay, and carries them to
// every broker of a cluster. Config.Backend is the whole wiring of a
// cluster; nil means a MemoryBackend, which serves one broker.
//
// A Backend may also implement CatchUp and Presence; the broker discovers
// them with a type assertion and calls them itself, so an application never
// wires them by hand.
type Backend interface {
	Bus
	History
}

// Bus carries published messages to every broker of a cluster.
type Bus interface {
	// Publish hands m to every attached broker, this one included, and sets
	// m.Event.ID before it returns. An error means nobody will receive m.
	Publish(ctx context.Context, m *Message) error
	// Attach delivers every message published on the bus to deliver until
	// detach is called. Messages of one tenant are delivered one call at a
	// time, in ID order; calls for different tenants may run concurrently.
	Attach(deliver func(*Message)) (detach func(), err error)
}

// CatchUp is implemented by a Backend whose brokers receive events some
// time after they are published (a Redis stream read by every node). A
// client that reconnects to a broker lagging behind the one it left must
// not be sent the events in between twice, once replayed and once live, so
// Subscribe calls CatchUp before it registers a client that sent a
// Last-Event-ID.
type CatchUp interface {
	// CatchUp returns once this broker has been delivered lastEventID of
	// tenant (or anything after it), when ctx is done, or after a bound the
	// backend documents, whichever comes first. It must return at once for
	// an ID it does not recognise.
	CatchUp(ctx context.Context, tenant, lastEventID string)
}

// Presence is implemented by a Backend that knows who is connected to the
// other brokers of its cluster. With it, the broker's IsUserOnline,
// UserConnections, OnlineUsers and Stats answer for the whole cluster: its
// own connections exactly, the other brokers' from the view the backend
// keeps. None of its methods may block or touch the network: the broker
// calls Track while it registers a connection, and the queries from
// application code that expects a local answer.
type Presence interface {
	// Track records that this broker's connections of id changed by delta
	// (+1 or -1). Anonymous connections (a nil User) are tracked too, for
	// the cluster's connection count.
	Track(id Identity, delta int)
	// RemoteConnections returns how many connections user of tenant has on
	// the other brokers.
	RemoteConnections(tenant string, user uuid.UUID) int
	// RemoteUsers returns the users of tenant with a connection on another
	// broker, in any order, in a slice the caller may keep and modify.
	RemoteUsers(tenant string) []uuid.UUID
}

// ClusterCounter is implemented by a Presence that also counts the other
// brokers and their connections, for Stats.Cluster.
type ClusterCounter interface {
	// RemoteTotals returns the number of other live brokers and their open
	// connections.
	RemoteTotals() (brokers, connections int)
}

// MemoryBackend is the in-process Backend: a MemoryHistory numbers and
// keeps the events, and delivery happens before Publish returns. Publishes
// to one tenant are serialised, so that delivery order is ID order and
// replay is gapless; publishes to different tenants run in parallel. It
// serves one broker.
type MemoryBackend struct {
	*MemoryHistory

	deliver  atomic.Pointer[func(*Message)]
	attached atomic.Bool
}

var _ Backend = (*MemoryBackend)(nil)

// inProcess marks a MemoryBackend, or a type embedding one: its brokers
// deduplicate idempotency keys themselves, and need no clock read per
// publish for remote brokers.
func (*MemoryBackend) inProcess() {}

// NewMemoryBackend returns a MemoryBackend whose history is bounded by l.
func NewMemoryBackend(l HistoryLimits) *MemoryBackend {
	return &MemoryBackend{MemoryHistory: NewMemoryHistory(l)}
}

// Publish implements Bus.
func (mb *MemoryBackend) Publish(_ context.Context, m *Message) error {
	w := mb.part(m.Target.Tenant)
	w.order.Lock()
	defer w.order.Unlock()
	mb.appendTo(w, m)
	if d := mb.deliver.Load(); d != nil {
		(*d)(m)
	}
	return nil
}

// Attach implements Bus. A MemoryBackend delivers to one broker: a second
// Attach before the first detach fails.
func (mb *MemoryBackend) Attach(deliver func(*Message)) (func(), error) {
	if !mb.attached.CompareAndSwap(false, true) {
		return nil, fmt.Errorf("%w: a MemoryBackend serves one broker", ErrInvalidConfig)
	}
	mb.deliver.Store(&deliver)
	return func() {
		mb.deliver.Store(nil)
		mb.attached.Store(false)
	}, nil
}
