package core

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Broker routes published events to the connections entitled to them. It
// is safe for concurrent use; create one with New and end it with Close.
type Broker struct {
	cfg     Config
	backend Backend
	local   bool     // backend is a MemoryBackend: delivery is in-process
	catchUp CatchUp  // nil unless the backend implements it
	pres    Presence // nil unless the backend implements it
	detach  func()
	obs     *Observer
	// bud bounds the memory of the events held, across the tenants'
	// windows. With winShared the windows are the parts of the broker's
	// own MemoryHistory, which numbers messages and keeps them, so
	// deliver need not.
	bud       *budget
	hist      *MemoryHistory // set with winShared
	winShared bool

	mu sync.RWMutex // guards conns, closed
	// tenants are found without a lock that every publish would share.
	tenants cowMap[*tenant]
	def     *tenant // the default tenant, looked up without the map
	conns   map[string]*Subscription
	// closed is written under mu, and read without it on every publish.
	closed  atomic.Bool
	closing chan struct{} // closed by Close: streams flush and end
	drained chan struct{} // closed when the last connection is gone after Close

	nconns                       atomic.Int64
	sent, replayed, gap          atomic.Uint64
	droppedOldest, droppedNewest atomic.Uint64
	droppedDisconnect            atomic.Uint64
}

// tenant holds the routing indexes of one tenant. Tenants are never
// forgotten, because lastID must survive the last connection leaving:
// a client reconnecting later is replayed up to it.
type tenant struct {
	name   string
	mu     sync.RWMutex
	all    []*Subscription
	users  map[uuid.UUID][]*Subscription
	topics map[string][]*Subscription
	lastID string // newest event delivered to this tenant on this broker
	// last is the window number of the newest message of the tenant, set
	// before it is routed: a writer that reads it first knows that every
	// message of its tenant up to it is routed, or being routed now.
	last  atomic.Uint64
	stamp uint64
	// delivered counts the messages routed, and published the publishes
	// made on this broker, for Stats: per tenant, so that publishes to
	// different tenants share no counter.
	delivered uint64
	published atomic.Uint64
	// userConns counts connections per user, reservations included, for
	// MaxConnectionsPerUser.
	userConns map[uuid.UUID]int
	// log carries broadcasts to every connection at the cost of one
	// append; nil when ClientBufferSize caps queues, whose policies then
	// apply to broadcasts too.
	log *bcastLog
	// win is the tenant's account of the events held: how far back a
	// backlog may reach.
	win *window
	// idem remembers the idempotency keys published on a MemoryBackend.
	idem dedupe
}

// New returns a broker configured by cfg, whose zero fields take their
// defaults. It returns an error wrapping ErrInvalidConfig for each rule cfg
// breaks.
func New(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	b := &Broker{
		cfg:     cfg,
		backend: cfg.Backend,
		obs:     cfg.Observer,
		conns:   make(map[string]*Subscription),
		closing: make(chan struct{}),
		drained: make(chan struct{}),
	}
	if b.backend == nil {
		mb := NewMemoryBackend(HistoryLimits{Bytes: cfg.HistoryBytes, Age: cfg.HistoryAge, Events: cfg.HistorySize})
		if cfg.HistorySize == 0 {
			// Same limits, same order per tenant (the backend appends
			// and delivers under the tenant's lock): the history is the
			// window, and a publish does its accounting once.
			mb.shared, b.winShared, b.hist, b.bud = true, true, mb.MemoryHistory, mb.bud
		}
		b.backend = mb
	}
	if b.bud == nil {
		b.bud = newBudget(cfg.HistoryBytes, cfg.HistoryAge, 0)
	}
	_, b.local = b.backend.(interface{ inProcess() })
	b.catchUp, _ = b.backend.(CatchUp)
	b.pres, _ = b.backend.(Presence)
	b.def = b.newTenant("")
	b.tenants.getOrAdd("", func() *tenant { return b.def })
	detach, err := b.backend.Attach(b.deliver)
	if err != nil {
		return nil, fmt.Errorf("ssekit: attaching to bus: %w", err)
	}
	b.detach = detach
	return b, nil
}

// Config returns the configuration in effect, defaults filled in.
func (b *Broker) Config() Config { return b.cfg }

// Publish validates m, has the History assign its event ID, and delivers it
// through the Bus to every connection its Target names. It returns the
// event ID. Publish never blocks on a subscriber. On error nothing was
// sent. The broker keeps m's slices: do not modify them afterwards.
func (b *Broker) Publish(ctx context.Context, m Message) (string, error) {
	m.forget()
	return b.publish(ctx, &m)
}

// Check reports the error Publish would return for m, without publishing
// anything, so that a caller with several messages (an HTTP batch, say)
// can refuse them all before the first goes out.
func (b *Broker) Check(m Message) error {
	m.forget()
	return b.check(&m)
}

// publish is Publish for a message the broker may keep as it is.
func (b *Broker) publish(ctx context.Context, m *Message) (string, error) {
	if err := b.check(m); err != nil {
		return "", err
	}
	if b.local && m.IdempotencyKey != "" {
		// A Backend that spans brokers deduplicates keys itself (Redis
		// does, across nodes); the in-process one has the broker
		// remember them.
		return b.publishIdempotent(ctx, m)
	}
	return b.send(ctx, m)
}

// send hands a checked message to the Bus and returns its event ID.
func (b *Broker) send(ctx context.Context, m *Message) (string, error) {
	if b.obs != nil || !b.local {
		// Only observers and remote brokers read it, and the clock costs
		// more than routing a message to one user.
		m.PublishedAt = time.Now()
	}
	var done func(PublishDone)
	if b.obs != nil && b.obs.Publish != nil {
		done = b.obs.Publish(ctx, m)
	}
	m.recipients = -1
	err := b.backend.Publish(ctx, m)
	if done != nil {
		done(PublishDone{ID: m.Event.ID, Recipients: m.recipients, Err: err})
	}
	if err != nil {
		return "", err
	}
	// Per tenant, like delivered: no counter shared by all publishes.
	b.tenant(m.Target.Tenant).published.Add(1)
	return m.Event.ID, nil
}

func (b *Broker) check(m *Message) error {
	if b.isClosed() {
		return ErrClosed
	}
	if m.Event.ID != "" {
		return fmt.Errorf("%w: the history assigns event IDs; leave Event.ID empty", ErrInvalidID)
	}
	if m.Event.Type == "" {
		return fmt.Errorf("%w: event type is required", ErrInvalidType)
	}
	if strings.HasPrefix(m.Event.Type, ReservedTypePrefix) {
		return fmt.Errorf("%w: the %q prefix is reserved for the kit's own events", ErrInvalidType, ReservedTypePrefix)
	}
	if err := m.Target.validate(); err != nil {
		return err
	}
	if err := m.Event.Validate(); err != nil {
		return err
	}
	if err := ValidateIdempotencyKey(m.IdempotencyKey); err != nil {
		return err
	}
	n, flat := encodedLen(m.Event)
	if n > b.cfg.MaxEventSize {
		return fmt.Errorf("%w: %d bytes encoded, limit %d", ErrEventTooLarge, n, b.cfg.MaxEventSize)
	}
	m.size, m.flat = n, flat
	switch {
	case flat && m.Event.Retry <= 0:
		m.prebuild()
	case m.borrowed:
		m.own()
	}
	return nil
}

// deliver fans m out to this broker's matching connections. The Bus calls
// it one message at a time in ID order.
func (b *Broker) deliver(m *Message) {
	if m.Frame() == nil {
		return
	}
	t := b.tenant(m.Target.Tenant)
	t.mu.Lock()
	t.delivered++
	if !b.winShared {
		// Numbered under the tenant's lock, so that a tenant's numbers
		// follow its delivery order. With a shared window the
		// MemoryBackend has numbered m in Append, under its own lock
		// for the tenant, just before this call.
		m.seq = t.win.add(m, m.Cost(), m.stamp())
	}
	t.last.Store(m.seq)
	t.lastID = m.Event.ID
	m.recipients = t.route(m)
	t.mu.Unlock()
	// A gap event from a Bus (events lost between nodes) is counted in
	// Stats.Gaps when it is written, like a gap found on replay, so that
	// Stats and the Observer's Flush hook count the same connections.
}

// route enqueues m on every matching connection once; t.mu is held.
func (t *tenant) route(m *Message) int {
	tg := &m.Target
	if tg.Broadcast && t.log != nil {
		if t.log.append(m, t.win) {
			t.sweep(t.win)
		}
		return len(t.all)
	}
	if tg.Broadcast {
		for _, s := range t.all {
			s.enqueue(m)
		}
		return len(t.all)
	}
	if len(tg.Users)+len(tg.Topics) == 1 {
		var list []*Subscription
		if len(tg.Users) == 1 {
			list = t.users[tg.Users[0]]
		} else {
			list = t.topics[tg.Topics[0]]
		}
		for _, s := range list {
			s.enqueue(m)
		}
		return len(list)
	}
	// Several targets may name the same connection: stamp to send once.
	t.stamp++
	n := 0
	visit := func(list []*Subscription) {
		for _, s := range list {
			if s.stamp != t.stamp {
				s.stamp = t.stamp
				s.enqueue(m)
				n++
			}
		}
	}
	for _, u := range tg.Users {
		visit(t.users[u])
	}
	for _, topic := range tg.Topics {
		visit(t.topics[topic])
	}
	return n
}

func (b *Broker) tenant(name string) *tenant {
	if name == "" {
		return b.def
	}
	return b.tenants.getOrAdd(name, func() *tenant { return b.newTenant(name) })
}

func (b *Broker) newTenant(name string) *tenant {
	t := &tenant{
		name:      name,
		users:     make(map[uuid.UUID][]*Subscription),
		topics:    make(map[string][]*Subscription),
		userConns: make(map[uuid.UUID]int),
	}
	if b.cfg.ClientBufferSize == 0 {
		t.log = newBcastLog()
	}
	if b.winShared {
		t.win = b.hist.part(name)
	} else {
		t.win = b.bud.newWindow(false)
	}
	return t
}

func (b *Broker) lookupTenant(name string) *tenant {
	t, _ := b.tenants.get(name)
	return t
}

// Subscribe registers a connection. From this moment events for it are
// queued; Serve writes them, after replaying what the client missed since
// r.LastEventID. Subscribe checks the tenant and topic names, asks
// Config.Authorizer about the topics, and enforces the connection limits.
// The caller must hand the Subscription to Serve, or Close it.
func (b *Broker) Subscribe(ctx context.Context, r SubscribeRequest) (*Subscription, error) {
	s, err := b.subscribe(ctx, r)
	if err != nil {
		b.observeReject(ctx, r.Identity.Tenant, err)
		return nil, err
	}
	return s, nil
}

func (b *Broker) subscribe(ctx context.Context, r SubscribeRequest) (*Subscription, error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	id := r.Identity
	if err := ValidateTenant(id.Tenant); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	topics := make(map[string]struct{}, len(r.Topics))
	for _, topic := range r.Topics {
		if err := ValidateTopic(topic); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		topics[topic] = struct{}{}
	}
	if len(topics) > b.cfg.MaxTopicsPerConnection {
		return nil, fmt.Errorf("%w: %w: %d topics, limit %d", ErrBadRequest, ErrTooManyTopics, len(topics), b.cfg.MaxTopicsPerConnection)
	}
	if len(r.LastEventID) > MaxLastEventIDLen {
		return nil, fmt.Errorf("%w: Last-Event-ID is %d bytes, limit %d", ErrBadRequest, len(r.LastEventID), MaxLastEventIDLen)
	}
	if err := (Event{ID: r.LastEventID}).Validate(); err != nil {
		return nil, fmt.Errorf("%w: Last-Event-ID: %w", ErrBadRequest, err)
	}
	if err := b.authorize(ctx, id, r.Topics); err != nil {
		return nil, err
	}
	if b.catchUp != nil && r.LastEventID != "" {
		// Before the replay boundary is taken below: were this broker
		// behind the one the client left, the events in between would
		// be sent twice, once replayed and once live.
		b.catchUp.CatchUp(ctx, id.Tenant, r.LastEventID)
	}
	// Reserve both limits first, so the Connect hook runs before the
	// connection becomes visible to publishers and is never undone.
	if n := b.nconns.Add(1); b.cfg.MaxConnections > 0 && n > int64(b.cfg.MaxConnections) {
		b.dropConn()
		return nil, fmt.Errorf("%w: limit %d", ErrTooManyConnections, b.cfg.MaxConnections)
	}
	t := b.tenant(id.Tenant)
	if id.User != uuid.Nil {
		t.mu.Lock()
		if limit := b.cfg.MaxConnectionsPerUser; limit > 0 && t.userConns[id.User] >= limit {
			t.mu.Unlock()
			b.dropConn()
			return nil, fmt.Errorf("%w: limit %d", ErrTooManyUserConnections, limit)
		}
		t.userConns[id.User]++
		t.mu.Unlock()
	}
	s := &Subscription{
		b:           b,
		t:           t,
		connID:      uuid.NewString(),
		id:          id,
		lastEventID: r.LastEventID,
		connected:   time.Now(),
		obsCtx:      context.WithoutCancel(ctx),
		topics:      topics,
		notify:      make(chan struct{}, 1),
	}
	if b.pres != nil {
		b.pres.Track(id, 1)
	}
	if b.obs != nil && b.obs.Connect != nil {
		s.obsCtx = b.obs.Connect(s.obsCtx, s)
	}
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		s.gone = true
		b.release(s, ReasonShutdown)
		return nil, ErrClosed
	}
	b.conns[s.connID] = s
	b.mu.Unlock()

	t.mu.Lock()
	s.idx = len(t.all)
	t.all = append(t.all, s)
	if id.User != uuid.Nil {
		t.users[id.User] = append(t.users[id.User], s)
	}
	for topic := range topics {
		t.topics[topic] = append(t.topics[topic], s)
	}
	// Everything delivered before this point is replay, everything after
	// is queued live: the same lock orders both, so none is sent twice or
	// missed.
	s.replayUpto = t.lastID
	if t.log != nil {
		s.bcur = t.log.end()
		s.bnext.Store(s.bcur.index())
	}
	t.mu.Unlock()
	return s, nil
}

// unregister removes s from every index; it runs once per subscription.
func (b *Broker) unregister(s *Subscription, reason CloseReason) {
	t := s.t
	t.mu.Lock()
	last := t.all[len(t.all)-1]
	t.all[s.idx] = last
	last.idx = s.idx
	t.all[len(t.all)-1] = nil
	t.all = t.all[:len(t.all)-1]
	if s.id.User != uuid.Nil {
		if t.users[s.id.User] = remove(t.users[s.id.User], s); len(t.users[s.id.User]) == 0 {
			delete(t.users, s.id.User)
		}
	}
	for topic := range s.topics {
		if t.topics[topic] = remove(t.topics[topic], s); len(t.topics[topic]) == 0 {
			delete(t.topics, topic)
		}
	}
	t.mu.Unlock()
	b.mu.Lock()
	delete(b.conns, s.connID)
	b.mu.Unlock()
	b.release(s, reason)
}

// release gives back the limit reservations of s and reports its end.
func (b *Broker) release(s *Subscription, reason CloseReason) {
	// Deferred: the slot comes back even if the Disconnect hook panics.
	defer b.dropConn()
	if b.pres != nil {
		b.pres.Track(s.id, -1)
	}
	if s.id.User != uuid.Nil {
		t := s.t
		t.mu.Lock()
		if t.userConns[s.id.User]--; t.userConns[s.id.User] <= 0 {
			delete(t.userConns, s.id.User)
		}
		t.mu.Unlock()
	}
	if b.obs != nil && b.obs.Disconnect != nil {
		b.obs.Disconnect(s.obsCtx, s, reason)
	}
}

// dropConn gives back a connection slot. The last one after Close lets
// Close return: only then, so that every Disconnect hook has run and Stats
// counts no connection once Close returns.
func (b *Broker) dropConn() {
	if b.nconns.Add(-1) != 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		b.closeDrained()
	}
}

// closeDrained signals that no connection is left; b.mu is held.
func (b *Broker) closeDrained() {
	select {
	case <-b.drained:
	default:
		close(b.drained)
	}
}

func remove(list []*Subscription, s *Subscription) []*Subscription {
	if i := slices.Index(list, s); i >= 0 {
		last := len(list) - 1
		list[i] = list[last]
		list[last] = nil
		list = list[:last]
	}
	return list
}

// AddTopics subscribes the live connection connID to more topics, after
// Config.Authorizer allows them. Events published to them from now on are
// delivered; earlier ones are not replayed. It fails with ErrTooManyTopics,
// adding none, when the connection would pass MaxTopicsPerConnection.
func (b *Broker) AddTopics(ctx context.Context, connID string, topics ...string) error {
	s, err := b.conn(connID)
	if err != nil {
		return err
	}
	for _, topic := range topics {
		if err := ValidateTopic(topic); err != nil {
			return err
		}
	}
	if err := b.authorize(ctx, s.id, topics); err != nil {
		return err
	}
	t := s.t
	t.mu.Lock()
	defer t.mu.Unlock()
	added := 0
	for i, topic := range topics {
		if _, ok := s.topics[topic]; !ok && !slices.Contains(topics[:i], topic) {
			added++
		}
	}
	if len(s.topics)+added > b.cfg.MaxTopicsPerConnection {
		return fmt.Errorf("%w: %d topics, limit %d", ErrTooManyTopics, len(s.topics)+added, b.cfg.MaxTopicsPerConnection)
	}
	for _, topic := range topics {
		if _, ok := s.topics[topic]; !ok {
			s.topics[topic] = struct{}{}
			t.topics[topic] = append(t.topics[topic], s)
		}
	}
	return nil
}

// RemoveTopics unsubscribes the live connection connID from topics.
func (b *Broker) RemoveTopics(_ context.Context, connID string, topics ...string) error {
	s, err := b.conn(connID)
	if err != nil {
		return err
	}
	t := s.t
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, topic := range topics {
		if _, ok := s.topics[topic]; ok {
			delete(s.topics, topic)
			if t.topics[topic] = remove(t.topics[topic], s); len(t.topics[topic]) == 0 {
				delete(t.topics, topic)
			}
		}
	}
	return nil
}

func (b *Broker) conn(connID string) (*Subscription, error) {
	b.mu.RLock()
	s := b.conns[connID]
	b.mu.RUnlock()
	if s == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownConnection, truncate(connID))
	}
	return s, nil
}

// connections returns the connections of user in tenant: this broker's,
// plus the other brokers' when the backend knows them.
func (b *Broker) connections(tenant string, user uuid.UUID) int {
	n := 0
	if b.pres != nil {
		n = b.pres.RemoteConnections(tenant, user)
	}
	t := b.lookupTenant(tenant)
	if t == nil {
		return n
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return n + len(t.users[user])
}

func (b *Broker) onlineUsers(tenant string) []uuid.UUID {
	var out []uuid.UUID
	if b.pres != nil {
		out = b.pres.RemoteUsers(tenant)
	}
	if t := b.lookupTenant(tenant); t != nil {
		t.mu.RLock()
		for u := range t.users {
			out = append(out, u)
		}
		t.mu.RUnlock()
	}
	if out == nil {
		return []uuid.UUID{}
	}
	slices.SortFunc(out, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	return slices.Compact(out)
}

// Stats is a snapshot of a broker's state and counters since New.
type Stats struct {
	Connections int `json:"connections"`
	// Users counts distinct (tenant, user) pairs with a connection.
	Users int `json:"users"`
	// Topics counts distinct (tenant, topic) pairs with a subscriber.
	Topics  int `json:"topics"`
	Tenants int `json:"tenants"`
	// Published counts the publishes made on this broker that succeeded
	// (Publish and the Send... and Broadcast helpers), whichever node
	// delivers them. The metrics package counts the same in
	// ssekit_events_published_total.
	Published uint64 `json:"published"`
	// Delivered counts the messages this broker routed to its own
	// connections, published here or received from the Bus (other nodes'
	// publishes and a Bus's gap events), whether or not a connection
	// matched. With a cluster it differs from Published on every node.
	Delivered uint64 `json:"delivered"`
	// Sent counts events written to connections, replays and gap events
	// excluded.
	Sent     uint64 `json:"sent"`
	Replayed uint64 `json:"replayed"`
	// Gaps counts gap events written to clients: to a reconnecting client
	// whose Last-Event-ID could not be replayed, and to each connection of
	// a tenant when the Bus reports events it lost.
	Gaps    uint64                `json:"gaps"`
	Dropped map[DropReason]uint64 `json:"dropped"`
	// HeldBytes is what the events this broker holds in memory cost
	// (Message.Cost), against Config.HistoryBytes.
	HeldBytes int64 `json:"heldBytes"`
	// OldestAge is the age of the oldest event held, against
	// Config.HistoryAge (nanoseconds in JSON).
	OldestAge time.Duration `json:"oldestAge"`
	// Cluster counts the whole cluster, this broker included, when the
	// Backend knows the other brokers (it implements ClusterCounter); nil
	// otherwise. Every other figure is this broker's own.
	Cluster *ClusterStats `json:"cluster,omitempty"`
}

// ClusterStats counts the brokers of a cluster and their connections, as
// of the backend's view of the other brokers.
type ClusterStats struct {
	Brokers     int `json:"brokers"`
	Connections int `json:"connections"`
}

// Stats returns a snapshot of the broker's state and counters.
func (b *Broker) Stats() Stats {
	st := Stats{
		Connections: int(b.nconns.Load()),
		Sent:        b.sent.Load(),
		Replayed:    b.replayed.Load(),
		Gaps:        b.gap.Load(),
		Dropped: map[DropReason]uint64{
			DropQueueFullOldest: b.droppedOldest.Load(),
			DropQueueFullNewest: b.droppedNewest.Load(),
			DropDisconnected:    b.droppedDisconnect.Load(),
		},
		HeldBytes: b.bud.held.Load(),
		OldestAge: b.bud.age(monoNow()),
	}
	if cc, ok := b.pres.(ClusterCounter); ok {
		brokers, conns := cc.RemoteTotals()
		st.Cluster = &ClusterStats{Brokers: brokers + 1, Connections: conns + st.Connections}
	}
	for _, t := range b.tenants.all() {
		t.mu.RLock()
		st.Published += t.published.Load()
		st.Delivered += t.delivered
		st.Users += len(t.users)
		st.Topics += len(t.topics)
		if len(t.all) > 0 {
			st.Tenants++
		}
		t.mu.RUnlock()
	}
	return st
}

func (b *Broker) drop(s *Subscription, m *Message, reason DropReason) {
	switch reason {
	case DropQueueFullOldest:
		b.droppedOldest.Add(1)
	case DropQueueFullNewest:
		b.droppedNewest.Add(1)
	}
	if b.obs != nil && b.obs.Drop != nil {
		b.obs.Drop(s.obsCtx, s, m, reason, 1)
	}
}

// dropDisconnected counts the n events a slow consumer loses when it is
// disconnected; it gets them back by replay when it reconnects.
func (b *Broker) dropDisconnected(s *Subscription, m *Message, n int) {
	b.droppedDisconnect.Add(uint64(n))
	if b.obs != nil && b.obs.Drop != nil {
		b.obs.Drop(s.obsCtx, s, m, DropDisconnected, n)
	}
}

func (b *Broker) observeReject(ctx context.Context, tenant string, err error) {
	if b.obs != nil && b.obs.Reject != nil {
		b.obs.Reject(ctx, tenant, err)
	}
}

func (b *Broker) isClosed() bool {
	return b.closed.Load()
}

// Close stops accepting connections and publishes, lets every stream flush
// what is queued and end with a reconnect hint, and waits for them until
// ctx is done. Streams still open then are cut, and Close returns ctx's
// error. Close is idempotent.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return b.wait(ctx)
	}
	b.closed.Store(true)
	close(b.closing)
	var idle []*Subscription
	for _, s := range b.conns {
		s.mu.Lock()
		if !s.serving && !s.gone {
			s.gone = true
			idle = append(idle, s)
		}
		s.mu.Unlock()
	}
	if b.nconns.Load() == 0 {
		b.closeDrained()
	}
	b.mu.Unlock()
	b.detach()
	for _, s := range idle {
		b.unregister(s, ReasonShutdown)
	}
	return b.wait(ctx)
}

func (b *Broker) wait(ctx context.Context) error {
	select {
	case <-b.drained:
		return nil
	case <-ctx.Done():
	}
	b.mu.RLock()
	for _, s := range b.conns {
		s.mu.Lock()
		s.abortLocked()
		s.mu.Unlock()
	}
	b.mu.RUnlock()
	return fmt.Errorf("ssekit: close: %w", ctx.Err())
}
