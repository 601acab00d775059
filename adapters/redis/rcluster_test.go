package sseredis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
)

// Tests on a real Redis Cluster (startRedisCluster), and the helpers they
// share with the Sentinel tests: a broker on any go-redis client served
// over real HTTP, an SSE client that hops from node to node, a publisher
// that retries with idempotency keys, and the check that what a client
// received is every accepted event once, or an announced gap.

// brokerNode is one broker on its own Backend and its own Redis client
// (a ClusterClient, a failover client...), served over real HTTP.
type brokerNode struct {
	name string
	be   *Backend
	b    *core.Broker
	srv  *httptest.Server
	url  string
	down atomic.Bool

	errMu sync.Mutex
	errs  []string // Options.ErrorLog, the first few
	nerr  int
}

// startBrokerNode starts a broker on New(client, opt); it is closed at the
// end of the test (after the test's own deferred calls).
func startBrokerNode(t testing.TB, name string, client redis.UniversalClient, opt Options) *brokerNode {
	t.Helper()
	n := &brokerNode{name: name}
	opt.ErrorLog = func(err error) {
		n.errMu.Lock()
		defer n.errMu.Unlock()
		n.nerr++
		if len(n.errs) < 5 {
			n.errs = append(n.errs, err.Error())
		}
	}
	var err error
	n.be, err = New(client, opt)
	require.NoError(t, err)
	n.b, err = core.New(core.Config{Backend: n.be, Authenticator: core.InsecureQueryAuthenticator()})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("GET /events", streamHandler(n.b))
	n.srv = httptest.NewServer(mux)
	n.url = n.srv.URL
	t.Cleanup(func() {
		n.down.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.b.Close(ctx) // ends the streams, so that srv.Close does not wait on them
		n.srv.CloseClientConnections()
		n.srv.Close()
		_ = n.be.Close()
	})
	return n
}

// errorLog summarises what the node's Backend logged.
func (n *brokerNode) errorLog() string {
	n.errMu.Lock()
	defer n.errMu.Unlock()
	if n.nerr == 0 {
		return "no errors"
	}
	return fmt.Sprintf("%d errors, first: %s", n.nerr, strings.Join(n.errs, " | "))
}

// hopClient is a reconnecting SSE client that moves to the next live node
// (with its Last-Event-ID) every hopEvery events, and whenever its
// connection ends: every reconnect lands on a different node.
type hopClient struct {
	nodes    []*brokerNode
	query    string
	hopEvery int
	hc       *http.Client

	mu     sync.Mutex
	got    []core.Event
	lastID string
	hops   int
	cur    int
	notify chan struct{}

	cancel  context.CancelFunc
	stopped chan struct{}
}

func newHopClient(nodes []*brokerNode, start int, query string, hopEvery int, tr *http.Transport) *hopClient {
	return &hopClient{nodes: nodes, cur: start, query: query, hopEvery: hopEvery,
		hc: &http.Client{Transport: tr}, notify: make(chan struct{}, 1), stopped: make(chan struct{})}
}

func (c *hopClient) start(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(ctx)
	go func() {
		defer close(c.stopped)
		for ctx.Err() == nil {
			n := c.nodes[c.cur%len(c.nodes)]
			if !n.down.Load() {
				if err := c.connect(ctx, n); err != nil && ctx.Err() == nil {
					time.Sleep(5 * time.Millisecond)
				}
			}
			c.mu.Lock()
			c.cur++
			c.hops++
			c.mu.Unlock()
		}
	}()
}

func (c *hopClient) stop() {
	c.cancel()
	<-c.stopped
}

// startHopClients starts n hop clients, the i-th reading the stream query(i)
// names and moving to the next node every hopEvery events, and waits until
// the nodes count them all. stop ends them.
func startHopClients(ctx context.Context, t *testing.T, nodes []*brokerNode, tr *http.Transport, n int,
	client func(i int) (query string, hopEvery int)) (clients []*hopClient, stop func()) {
	t.Helper()
	for i := range n {
		query, hopEvery := client(i)
		c := newHopClient(nodes, i, query, hopEvery, tr)
		c.start(ctx)
		clients = append(clients, c)
	}
	stop = func() {
		for _, c := range clients {
			c.stop()
		}
	}
	connected := false
	defer func() {
		if !connected { // the wait failed: the caller gets no stop to defer
			stop()
		}
	}()
	waitUntil(t, 10*time.Second, "every client connected", func(context.Context) error {
		total := 0
		for _, n := range nodes {
			total += n.b.Stats().Connections
		}
		if total < len(clients) {
			return fmt.Errorf("%d of %d connected", total, len(clients))
		}
		return nil
	})
	connected = true
	return clients, stop
}

// connect reads one stream from n until hopEvery events arrived (nil) or
// the stream ended (its error).
func (c *hopClient) connect(ctx context.Context, n *brokerNode) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url+"/events"+c.query, nil)
	if err != nil {
		return err
	}
	c.mu.Lock()
	last := c.lastID
	c.mu.Unlock()
	if last != "" {
		req.Header.Set("Last-Event-ID", last)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return errors.New(resp.Status)
	}
	dec := core.NewDecoder(resp.Body)
	dec.SetLastEventID(last)
	for here := 0; c.hopEvery == 0 || here < c.hopEvery; here++ {
		ev, err := dec.Next()
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.lastID = dec.LastEventID()
		c.got = append(c.got, ev)
		c.mu.Unlock()
		select {
		case c.notify <- struct{}{}:
		default:
		}
	}
	return nil
}

func (c *hopClient) events() []core.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

func (c *hopClient) hopCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hops
}

// waitFor waits until cond holds on the events received, or fails.
func (c *hopClient) waitFor(t testing.TB, d time.Duration, what string, cond func([]core.Event) bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		if cond(c.events()) {
			return
		}
		select {
		case <-c.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline.C:
			got := c.events()
			tail := got[max(0, len(got)-3):]
			require.FailNow(t, fmt.Sprintf("client %q: timed out after %v waiting for %s; got %d events, the last %v", c.query, d, what, len(got), tail))
		}
	}
}

// eventPos orders event IDs of one tenant (so of one shard): the entry ID
// after the optional "<shard>:" prefix.
type eventPos struct {
	shard   int
	ms, seq uint64
}

func parseEventPos(t testing.TB, id string) eventPos {
	t.Helper()
	var p eventPos
	entry := id
	if s, rest, ok := strings.Cut(id, ":"); ok {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "event ID %q", id)
		p.shard, entry = n, rest
	}
	ms, seq, ok := strings.Cut(entry, "-")
	require.True(t, ok, "event ID %q", id)
	var err1, err2 error
	p.ms, err1 = strconv.ParseUint(ms, 10, 64)
	p.seq, err2 = strconv.ParseUint(seq, 10, 64)
	require.NoError(t, errors.Join(err1, err2), "event ID %q", id)
	return p
}

func (a eventPos) compare(b eventPos) int {
	if a.ms != b.ms {
		if a.ms < b.ms {
			return -1
		}
		return 1
	}
	if a.seq != b.seq {
		if a.seq < b.seq {
			return -1
		}
		return 1
	}
	return 0
}

// published is one event Publish accepted: its ID and data.
type published struct {
	id, data string
}

// keyedPublisher publishes numbered broadcasts ("<tenant>/<n>") with an
// idempotency key each, on rotating live nodes, retrying a failed attempt
// with the same key until Publish accepts it or retryFor passes: a retry
// of an attempt Redis did append returns that entry, so an event is in the
// stream at most once, and every number this returns is accepted.
type keyedPublisher struct {
	nodes    []*brokerNode
	retryFor time.Duration
	attempts int // failed attempts, retried
	turn     int
}

func (p *keyedPublisher) publish(ctx context.Context, tenant string, seq int) (published, error) {
	data := tenant + "/" + strconv.Itoa(seq)
	m := core.Message{Target: core.Target{Tenant: tenant, Broadcast: true},
		Event: core.Event{Type: "seq", Data: data}, IdempotencyKey: "k" + data}
	deadline := time.Now().Add(p.retryFor)
	for {
		p.turn++
		n := p.nodes[p.turn%len(p.nodes)]
		err := core.ErrClosed
		if !n.down.Load() {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			var id string
			id, err = n.b.Publish(pctx, m)
			cancel()
			if err == nil {
				return published{id, data}, nil
			}
			if !errors.Is(err, ErrPublish) && !errors.Is(err, core.ErrClosed) && !errors.Is(err, context.DeadlineExceeded) {
				return published{}, err // refused: a bug, not an outage
			}
			p.attempts++
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return published{}, fmt.Errorf("publish %s: still failing after %v: %w", data, p.retryFor, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deliveryReport is what checkDelivery found in one client's events.
type deliveryReport struct {
	events, gaps, missing, resent int
}

// checkDelivery checks one client's events against the accepted events of
// its tenant, in publication order. Without gap events it must be exactly
// want, IDs included. With gap events: between two gaps the events are in
// publication order, each at most once; an accepted event that never
// arrived must sit where a gap event is (the last event before that gap
// precedes it and the first after follows it); an event received twice
// must have a gap between its two copies (a retry re-appended it after
// the failover lost its first copy, which the gap announced).
func checkDelivery(t testing.TB, who string, got []core.Event, want []published) deliveryReport {
	t.Helper()
	rank := make(map[string]int, len(want))
	for i, w := range want {
		rank[w.data] = i
	}
	var r deliveryReport
	// seq per received event; -1 for a gap event.
	seqs := make([]int, 0, len(got))
	for _, ev := range got {
		switch ev.Type {
		case core.GapEventType:
			r.gaps++
			seqs = append(seqs, -1)
		case "seq":
			i, ok := rank[ev.Data]
			require.True(t, ok, "%s: got %q, which was never accepted (or is another tenant's)", who, ev.Data)
			if r.gaps == 0 {
				require.Equal(t, want[i].id, ev.ID, "%s: %q arrived with another ID than Publish returned", who, ev.Data)
			}
			r.events++
			seqs = append(seqs, i)
		default:
			require.FailNow(t, fmt.Sprintf("%s: unexpected %s event %q", who, ev.Type, ev.Data))
		}
	}
	if r.gaps == 0 {
		require.Len(t, seqs, len(want), "%s: %d events without a gap event, want %d", who, len(seqs), len(want))
		for j, i := range seqs {
			require.Equal(t, j, i, "%s: event %d is %q, want %q (loss, duplicate or reorder)", who, j, want[i].data, want[j].data)
		}
		return r
	}
	// Between gaps: strictly increasing.
	prev := -1
	for j, i := range seqs {
		if i < 0 {
			prev = -1
			continue
		}
		require.Greater(t, i, prev, "%s: event %d (%q) after %q with no gap event between (duplicate or reorder)", who, j, want[i].data, want[max(prev, 0)].data)
		prev = i
	}
	// Seen twice: a gap between the copies (so the segments tell).
	seen := map[int]int{}
	for _, i := range seqs {
		if i >= 0 {
			seen[i]++
		}
	}
	for _, c := range seen {
		if c > 1 {
			r.resent++
		}
	}
	// Missing: a gap where it would be.
	for k := range want {
		if seen[k] > 0 {
			continue
		}
		r.missing++
		covered := false
		for g, i := range seqs {
			if i >= 0 {
				continue
			}
			before, after := -1, len(want)
			for j := g - 1; j >= 0; j-- {
				if seqs[j] >= 0 {
					before = seqs[j]
					break
				}
			}
			for j := g + 1; j < len(seqs); j++ {
				if seqs[j] >= 0 {
					after = seqs[j]
					break
				}
			}
			if before < k && k < after {
				covered = true
				break
			}
		}
		require.True(t, covered, "%s: %q (accepted) never arrived and no gap event stands in its place: a silent loss", who, want[k].data)
	}
	return r
}

// sortByID sorts one tenant's accepted events into stream (so delivery) order.
func sortByID(t testing.TB, ps []published) {
	t.Helper()
	slices.SortFunc(ps, func(a, b published) int {
		return parseEventPos(t, a.id).compare(parseEventPos(t, b.id))
	})
}

// shardTenants returns n tenant names.
func shardTenants(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "tenant-" + strconv.Itoa(i)
	}
	return out
}

// mastersOfShards returns, per shard of be, the address of the master
// holding its stream.
func mastersOfShards(t testing.TB, rc *redisCluster, be *Backend) []string {
	t.Helper()
	var out []string
	for _, k := range be.StreamKeys() {
		out = append(out, rc.masterOf(t, k))
	}
	return out
}

func distinct(xs []string) int {
	s := slices.Clone(xs)
	slices.Sort(s)
	return len(slices.Compact(s))
}

// TestRedisClusterShardsExactlyOnce runs three brokers on a real 3-master
// Redis Cluster with 6 shards: 12 tenants, a publisher on every node
// publishing to every tenant at once, and 24 clients (2 per tenant) that
// reconnect to a different node, with their Last-Event-ID, every few
// events. Every client must get every event of its tenant exactly once,
// with the ID Publish returned, in the tenant's stream order, and no gap
// event; the shards must really be spread over the masters, and every
// node must see every user online (presence on the Cluster).
func TestRedisClusterShardsExactlyOnce(t *testing.T) {
	const shards, perPublisher = 6, 600
	tenants := shardTenants(12)
	rc := startRedisCluster(t, 3, 0)
	var nodes []*brokerNode
	for i := range 3 {
		nodes = append(nodes, startBrokerNode(t, fmt.Sprintf("n%d", i), rc.clusterClient(t), Options{Shards: shards, MaxLen: 100000}))
	}
	be := nodes[0].be
	require.Equal(t, shards, be.Shards())
	shardMasters := mastersOfShards(t, rc, be)
	require.GreaterOrEqual(t, distinct(shardMasters), 2, "the shards' streams all live on one master: %v", shardMasters)

	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	users := make([]uuid.UUID, 2*len(tenants))
	for i := range users {
		users[i] = uuid.New()
	}
	clients, stop := startHopClients(ctx, t, nodes, tr, len(users), func(i int) (string, int) {
		return "?tenant=" + tenants[i%len(tenants)] + "&user=" + users[i].String(), 17 + i%11
	})
	defer stop()
	// Presence on the Cluster: every node sees every user, wherever
	// connected, and counts the whole cluster.
	start := time.Now()
	waitUntil(t, 10*time.Second, "every node to see every user online", func(context.Context) error {
		for _, n := range nodes {
			for i, u := range users {
				if got := n.b.Tenant(tenants[i%len(tenants)]).UserConnections(u); got != 1 {
					return fmt.Errorf("%s: user %d has %d connections", n.name, i, got)
				}
			}
			if st := n.b.Stats(); st.Cluster == nil || st.Cluster.Brokers != len(nodes) || st.Cluster.Connections != len(clients) {
				return fmt.Errorf("%s: Stats().Cluster = %+v", n.name, st.Cluster)
			}
		}
		return nil
	})
	presence := time.Since(start)

	start = time.Now()
	var mu sync.Mutex
	accepted := map[string][]published{}
	var wg sync.WaitGroup
	errs := make(chan error, len(nodes))
	for pi, n := range nodes {
		wg.Go(func() {
			for i := range perPublisher {
				tenant := tenants[(i+pi)%len(tenants)]
				data := fmt.Sprintf("%s/%s/%d", tenant, n.name, i)
				id, err := n.b.Publish(ctx, core.Message{Target: core.Target{Tenant: tenant, Broadcast: true},
					Event: core.Event{Type: "seq", Data: data}})
				if err != nil {
					errs <- fmt.Errorf("%s: publish %s: %w", n.name, data, err)
					return
				}
				mu.Lock()
				accepted[tenant] = append(accepted[tenant], published{id, data})
				mu.Unlock()
				if i%20 == 0 {
					time.Sleep(2 * time.Millisecond) // let the clients hop mid-stream
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	published := time.Since(start)

	tenantShards := map[int]bool{}
	var tenantMasters []string
	for _, tenant := range tenants {
		ps := accepted[tenant]
		sortByID(t, ps)
		sh := parseEventPos(t, ps[0].id).shard
		for _, p := range ps {
			require.Equal(t, sh, parseEventPos(t, p.id).shard, "tenant %s's events are on several shards", tenant)
		}
		tenantShards[sh] = true
		tenantMasters = append(tenantMasters, shardMasters[sh])
	}
	require.GreaterOrEqual(t, len(tenantShards), 2, "every tenant on one shard")
	require.GreaterOrEqual(t, distinct(tenantMasters), 2, "every tenant's shard on one master")

	hops := 0
	for i, c := range clients {
		tenant := tenants[i%len(tenants)]
		want := accepted[tenant]
		last := want[len(want)-1].data
		c.waitFor(t, 30*time.Second, "the last event "+last, func(evs []core.Event) bool {
			return len(evs) > 0 && evs[len(evs)-1].Data == last
		})
		r := checkDelivery(t, fmt.Sprintf("client %d (%s)", i, tenant), c.events(), want)
		require.Zero(t, r.gaps, "client %d: gap events", i)
		hops += c.hopCount()
	}
	var replayed, gaps uint64
	for _, n := range nodes {
		st := n.b.Stats()
		replayed += st.Replayed
		gaps += st.Gaps
	}
	t.Logf("%d events to %d tenants on %d shards (masters %v) in %v; %d clients, %d reconnects to another node, %d events replayed, %d gaps; presence complete on every node %v after the last connect",
		len(nodes)*perPublisher, len(tenants), len(tenantShards), shardMasters, published.Round(time.Millisecond), len(clients), hops, replayed, gaps, presence.Round(time.Millisecond))
	require.Zero(t, gaps)
}

// TestRedisClusterFailover kills the master holding a tenant's shard in a
// real Redis Cluster (3 masters, 1 replica each) while three brokers
// publish, with idempotency keys and retries, numbered events to 9 tenants
// over 6 shards, and clients hop between nodes. The replica takes over;
// every client must get every accepted event of its tenant once, or a gap
// event in its place: never a silent loss. Then publishes and deliveries
// resume on the same brokers, to every tenant.
//
// "replicated": the replica is in sync when its master dies (the usual
// case): nothing is lost. "lossy": the replica is frozen (SIGSTOP) and
// cut off from its master 150ms before the kill, so the events its master
// accepted meanwhile are lost with it, as asynchronous replication allows:
// clients must get gap events for them.
func TestRedisClusterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	t.Run("replicated", func(t *testing.T) { clusterFailover(t, false) })
	t.Run("lossy", func(t *testing.T) { clusterFailover(t, true) })
}

func clusterFailover(t *testing.T, lossy bool) {
	const shards, before, after = 6, 150, 100
	tenants := shardTenants(9)
	rc := startRedisCluster(t, 3, 1)
	var nodes []*brokerNode
	for i := range 3 {
		nodes = append(nodes, startBrokerNode(t, fmt.Sprintf("n%d", i), rc.clusterClient(t),
			Options{Shards: shards, MaxLen: 100000, MaxBackoff: 200 * time.Millisecond, PublishTimeout: time.Second}))
	}
	shardMasters := mastersOfShards(t, rc, nodes[0].be)
	require.GreaterOrEqual(t, distinct(shardMasters), 2, "the shards' streams all live on one master: %v", shardMasters)

	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clients, stop := startHopClients(ctx, t, nodes, tr, 2*len(tenants), func(i int) (string, int) {
		return "?tenant=" + tenants[i%len(tenants)], 40 + i%13
	})
	defer stop()

	// One publisher per group of tenants, each tenant's events in order:
	// tenant order is publication order.
	accepted := make([][]published, len(tenants))
	pubs := make([]*keyedPublisher, 3)
	for p := range pubs {
		pubs[p] = &keyedPublisher{nodes: nodes, retryFor: 20 * time.Second, turn: p}
	}
	victim := rc.masterOf(t, nodes[0].be.StreamKeys()[parseEventPos(t, mustPublishProbe(t, nodes[0], tenants[0])).shard])
	// run publishes seq from..to-1 to every tenant; killAt, when not nil,
	// is closed once publisher 0 reaches the middle.
	run := func(from, to int, killAt chan struct{}) chan error {
		done := make(chan error, len(pubs))
		for p := range pubs {
			go func() {
				for seq := from; seq < to; seq++ {
					if p == 0 && killAt != nil && seq == (from+to)/2 {
						close(killAt)
					}
					for ti := p; ti < len(tenants); ti += len(pubs) {
						got, err := pubs[p].publish(ctx, tenants[ti], seq)
						if err != nil {
							done <- err
							return
						}
						accepted[ti] = append(accepted[ti], got)
					}
					time.Sleep(2 * time.Millisecond) // a steady stream, not a burst
				}
				done <- nil
			}()
		}
		return done
	}
	wait := func(done chan error) {
		for range pubs {
			require.NoError(t, <-done)
		}
	}
	killAt := make(chan struct{})
	done := run(0, before, killAt)
	<-killAt
	if lossy {
		replica := rc.replicaOf(t, victim)
		require.NoError(t, replica.signal(syscall.SIGSTOP))
		// Cut the replication link from the master's side: what the
		// master sent so far is in the frozen replica's socket buffer
		// and will be applied; what it accepts from now on is not sent.
		a := rc.node(victim).adminClient()
		err := a.ClientKillByFilter(ctx, "TYPE", "replica").Err()
		a.Close()
		require.NoError(t, err)
		time.Sleep(150 * time.Millisecond) // the victim accepts events its replica never gets
		rc.killNode(t, victim)
		require.NoError(t, replica.signal(syscall.SIGCONT))
	}
	killedAt := time.Now()
	killed := rc.killNode(t, victim)
	wait(done)
	firstDone := time.Since(killedAt)
	rc.waitHealthy(t)
	recovered := time.Since(killedAt)
	wait(run(before, before+after, nil))

	attempts := 0
	for _, p := range pubs {
		attempts += p.attempts
	}
	var total deliveryReport
	for i, c := range clients {
		ti := i % len(tenants)
		want := accepted[ti]
		last := want[len(want)-1].data
		c.waitFor(t, 30*time.Second, "the last event "+last, func(evs []core.Event) bool {
			return len(evs) > 0 && evs[len(evs)-1].Data == last
		})
		got := c.events()
		r := checkDelivery(t, fmt.Sprintf("client %d (%s)", i, tenants[ti]), got, want)
		// After the failover, delivery is whole again: the events
		// published once the cluster was healthy all arrived, once.
		tail := eventData(got[len(got)-after:])
		for k := range after {
			require.Equal(t, want[before+k].data, tail[k], "client %d: after the failover", i)
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
	t.Logf("killed master %s (shard masters were %v): publishers done with the first part %v after the kill, cluster healthy after %v; %d failed attempts retried",
		killed, shardMasters, firstDone.Round(time.Millisecond), recovered.Round(time.Millisecond), attempts)
	t.Logf("%d clients: %d events, %d gap events (brokers wrote %d), %d accepted events announced lost, %d re-sent after a gap",
		len(clients), total.events, total.gaps, gaps, total.missing, total.resent)
	for _, n := range nodes {
		t.Logf("%s: %s", n.name, n.errorLog())
	}
	// What Redis lost: accepted entries the cluster no longer holds.
	lost := 0
	cc := rc.clusterClient(t)
	keys := nodes[0].be.StreamKeys()
	for _, ps := range accepted {
		for _, p := range ps {
			pos := parseEventPos(t, p.id)
			entry := p.id[strings.IndexByte(p.id, ':')+1:]
			n, err := cc.XRange(ctx, keys[pos.shard], entry, entry).Result()
			require.NoError(t, err)
			if len(n) == 0 {
				lost++
			}
		}
	}
	t.Logf("%d accepted events lost by Redis in the failover", lost)
	if lossy {
		require.Positive(t, lost, "the frozen replica lost nothing: the test did not test a loss")
		require.Positive(t, gaps, "Redis lost accepted events and no broker wrote a gap event")
	}
}

// mustPublishProbe publishes one event to tenant's own "probe" topic (no
// client gets it) to learn its shard from the ID.
func mustPublishProbe(t testing.TB, n *brokerNode, tenant string) string {
	t.Helper()
	id, err := n.b.Publish(context.Background(), core.Message{Target: core.Target{Tenant: tenant, Topics: []string{"probe"}},
		Event: core.Event{Type: "probe", Data: "x"}})
	require.NoError(t, err)
	return id
}

func eventData(evs []core.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Data
	}
	return out
}
