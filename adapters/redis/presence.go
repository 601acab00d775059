package sseredis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/ssekit/ssekit/core"
)

// DefaultPresenceTTL is how long a node counts in the other nodes' views
// without news from it; see PresenceOptions.TTL.
const DefaultPresenceTTL = 30 * time.Second

// PresenceOptions tunes cluster-wide presence, which is on unless Off.
type PresenceOptions struct {
	// Off disables presence: the broker's IsUserOnline, UserConnections,
	// OnlineUsers and Stats.Cluster then count this node's connections
	// only (Stats.Cluster reports one broker), and nothing about
	// connections is written to Redis.
	Off bool
	// TTL bounds how long the connections of a node that died without
	// closing keep counting on the other nodes (default 30s, at least
	// 100ms). A live node refreshes its entries and tells the others it
	// lives every TTL/3; a node that has not been heard of for TTL drops
	// out of every view.
	TTL time.Duration
}

// presence is what Track, RemoteConnections, RemoteUsers and
// RemoteTotals answer from: this node's counts, which a writer goroutine
// keeps in Redis, and a view of every other node's, which a reader
// goroutine keeps from Redis Pub/Sub and periodic resyncs. No query
// touches the network.
//
// In Redis, per node (a hash tagged on the node, so that Cluster spreads
// the nodes over slots), and one registry:
//
//	<prefix>:{presence:<node>}:conns  hash  "<user>:<tenant>" -> connections,
//	                                        "*" -> all its connections (anonymous included),
//	                                        "#" -> its sequence number ("w" while rewritten)
//	<prefix>:{presence}:nodes         zset  node -> expiry (Redis server clock, ms)
//
// and the channel <prefix>:presence, on which each write script publishes
// what it changed with the node's new sequence number, and each refresh a
// heartbeat. A node that sees a sequence number it did not expect (a lost
// message, a node it did not know) re-reads that node's hash.
type presence struct {
	client  redis.UniversalClient
	prefix  string
	ttl     time.Duration
	node    string
	nodeKey string
	nodes   string // the registry
	channel string
	errLog  func(error)
	minBack time.Duration
	maxBack time.Duration
	timeout time.Duration

	mu       sync.Mutex
	counts   map[presenceKey]int // this node's identified connections
	total    int                 // this node's connections, anonymous included
	dirty    map[presenceKey]struct{}
	changed  bool   // something changed since the last write (total included)
	seq      uint64 // of the last write sent
	needFull bool   // Redis may not hold what seq says: rewrite everything
	running  bool

	wake     chan struct{} // the writer: something changed
	resyncCh chan struct{} // the reader: a node needs re-reading
	stop     chan struct{}
	done     sync.WaitGroup

	view view
}

type presenceKey struct {
	tenant string
	user   uuid.UUID
}

func newPresence(client redis.UniversalClient, opt Options) *presence {
	node := uuid.NewString()
	return &presence{
		client:   client,
		prefix:   opt.Prefix,
		ttl:      opt.Presence.TTL,
		node:     node,
		nodeKey:  presenceNodeKey(opt.Prefix, node),
		nodes:    opt.Prefix + ":{presence}:nodes",
		channel:  opt.Prefix + ":presence",
		errLog:   opt.ErrorLog,
		minBack:  opt.MinBackoff,
		maxBack:  opt.MaxBackoff,
		timeout:  opt.PublishTimeout,
		counts:   make(map[presenceKey]int),
		dirty:    make(map[presenceKey]struct{}),
		needFull: true,
		wake:     make(chan struct{}, 1),
		resyncCh: make(chan struct{}, 1),
		view:     view{nodes: make(map[string]*remote)},
	}
}

func presenceNodeKey(prefix, node string) string {
	return prefix + ":{presence:" + node + "}:conns"
}

// Track implements core.Presence. It never blocks on Redis: the writer
// goroutine sends the change within a round trip.
func (b *Backend) Track(id core.Identity, delta int) {
	if b.pres != nil {
		b.pres.track(id, delta)
	}
}

// RemoteConnections implements core.Presence, from this node's view.
func (b *Backend) RemoteConnections(tenant string, user uuid.UUID) int {
	if b.pres == nil {
		return 0
	}
	return b.pres.view.connections(tenant, user, time.Now())
}

// RemoteUsers implements core.Presence, from this node's view.
func (b *Backend) RemoteUsers(tenant string) []uuid.UUID {
	if b.pres == nil {
		return nil
	}
	return b.pres.view.users(tenant, time.Now())
}

// RemoteTotals implements core.ClusterCounter: the other live nodes and
// their connections, anonymous ones included, from this node's view.
func (b *Backend) RemoteTotals() (brokers, connections int) {
	if b.pres == nil {
		return 0, 0
	}
	return b.pres.view.totals(time.Now())
}

func (p *presence) track(id core.Identity, delta int) {
	p.mu.Lock()
	if !p.running {
		p.mu.Unlock()
		return
	}
	p.total += delta
	p.changed = true
	if id.User != uuid.Nil {
		k := presenceKey{id.Tenant, id.User}
		if p.counts[k] += delta; p.counts[k] <= 0 {
			delete(p.counts, k)
		}
		p.dirty[k] = struct{}{}
	}
	p.mu.Unlock()
	poke(p.wake)
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// start runs the writer and the reader until the returned function is
// called, which also removes this node's entries (best effort).
func (p *presence) start() (stop func()) {
	p.mu.Lock()
	p.stop = make(chan struct{})
	p.running = true
	p.needFull = true
	p.mu.Unlock()
	poke(p.wake) // register and write the (empty) counts at once
	p.done.Go(p.writer)
	p.done.Go(p.reader)
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			p.running = false
			p.mu.Unlock()
			close(p.stop)
			p.done.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
			defer cancel()
			_, err := p.client.Pipelined(ctx, func(pl redis.Pipeliner) error {
				pl.Del(ctx, p.nodeKey)
				pl.ZRem(ctx, p.nodes, p.node)
				pl.Publish(ctx, p.channel, "x "+p.node+" 0 0 0\n")
				return nil
			})
			if err != nil {
				p.errLog(fmt.Errorf("ssekit/redis: presence: removing this node (the others drop it within the TTL): %w", err))
			}
		})
	}
}

// presenceChunk caps the counts one script call writes.
const presenceChunk = 1024

// writer sends this node's changes as they come, and refreshes its
// entries and tells the others it lives every TTL/3.
func (p *presence) writer() {
	refresh := time.NewTicker(p.ttl / 3)
	defer refresh.Stop()
	var retry <-chan time.Time
	backoff := p.minBack
	failing, registered := false, false
	for {
		beat := !registered // a new node registers at once
		select {
		case <-p.wake:
		case <-retry:
		case <-refresh.C:
			beat = true
		case <-p.stop:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
		err := p.flush(ctx)
		if err == nil && beat {
			err = p.heartbeat(ctx)
			registered = registered || err == nil
			if err == nil && p.mustRewrite() {
				err = p.flush(ctx)
			}
		}
		cancel()
		if err != nil {
			if !failing {
				failing = true
				p.errLog(fmt.Errorf("ssekit/redis: presence (retrying with backoff): %w", err))
			}
			retry = time.After(backoff)
			backoff = min(2*backoff, p.maxBack)
			continue
		}
		failing, retry, backoff = false, nil, p.minBack
	}
}

func (p *presence) mustRewrite() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.needFull
}

// flush writes what changed since the last write: only the changed counts
// normally, everything after a failure or when Redis lost this node's
// hash. Each write publishes itself, with the node's next sequence number.
func (p *presence) flush(ctx context.Context) error {
	p.mu.Lock()
	full := p.needFull || len(p.dirty) > presenceChunk
	if !full && !p.changed {
		p.mu.Unlock()
		return nil
	}
	type count struct {
		field string
		n     int
	}
	var pairs []count
	if full {
		for k, n := range p.counts {
			pairs = append(pairs, count{fieldOf(k), n})
		}
	} else {
		for k := range p.dirty {
			pairs = append(pairs, count{fieldOf(k), p.counts[k]})
		}
	}
	clear(p.dirty)
	p.changed = false
	p.seq++
	seq, total := p.seq, p.total
	p.needFull = true // until Redis confirms
	p.mu.Unlock()

	seqStr := strconv.FormatUint(seq, 10)
	head := " " + p.node + " " + seqStr + " " + strconv.FormatInt(p.ttl.Milliseconds(), 10) + " " + strconv.Itoa(total) + "\n"
	run := func(mode string, chunk []count, msg string) error {
		args := make([]any, 0, 6+2*len(chunk))
		args = append(args, mode, seqStr, p.ttl.Milliseconds(), total, p.channel, msg)
		for _, c := range chunk {
			args = append(args, c.field, c.n)
		}
		ok, err := presenceWriteScript.Run(ctx, p.client, []string{p.nodeKey}, args...).Int()
		if err == nil && ok != 1 {
			err = errRewrite
		}
		return err
	}
	var err error
	if !full {
		var msg strings.Builder
		msg.WriteString("d" + head)
		for _, c := range pairs {
			msg.WriteString(strconv.Itoa(c.n) + " " + c.field + "\n")
		}
		err = run("delta", pairs, msg.String())
		if errors.Is(err, errRewrite) {
			// Redis does not hold the previous write (it lost its data):
			// rewrite everything now.
			p.poke()
			return nil
		}
	} else {
		// In chunks, so that a node with many users does not stall Redis;
		// readers ignore the hash until the last chunk sets its sequence.
		for i := 0; err == nil && (i == 0 || i < len(pairs)); i += presenceChunk {
			chunk := pairs[i:min(i+presenceChunk, len(pairs))]
			first, last := i == 0, i+presenceChunk >= len(pairs)
			mode := "more"
			switch {
			case first && last:
				mode = "only"
			case first:
				mode = "first"
			case last:
				mode = "last"
			}
			err = run(mode, chunk, "f"+head)
		}
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.seq == seq {
		p.needFull = false
	}
	p.mu.Unlock()
	return nil
}

var errRewrite = errors.New("presence hash out of step")

func (p *presence) poke() {
	p.mu.Lock()
	p.needFull = true
	p.mu.Unlock()
	poke(p.wake)
}

// heartbeat renews this node in the registry and its hash's expiry, and
// tells the other nodes it lives (with its sequence number, so that one
// that missed a change notices).
func (p *presence) heartbeat(ctx context.Context) error {
	p.mu.Lock()
	seq, total := p.seq, p.total
	p.mu.Unlock()
	ttl := p.ttl.Milliseconds()
	if err := presenceRegisterScript.Run(ctx, p.client, []string{p.nodes}, p.node, ttl).Err(); err != nil {
		return err
	}
	seqStr := strconv.FormatUint(seq, 10)
	msg := "h " + p.node + " " + seqStr + " " + strconv.FormatInt(ttl, 10) + " " + strconv.Itoa(total) + "\n"
	ok, err := presenceRefreshScript.Run(ctx, p.client, []string{p.nodeKey}, seqStr, ttl, p.channel, msg).Int()
	if err != nil {
		return err
	}
	if ok != 1 {
		p.mu.Lock()
		p.needFull = true
		p.mu.Unlock()
	}
	return nil
}

func fieldOf(k presenceKey) string { return k.user.String() + ":" + k.tenant }

// reader applies the other nodes' messages as they come, and resyncs with
// Redis every TTL/3, or at once when a message shows that it missed one.
func (p *presence) reader() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ps := p.client.Subscribe(ctx, p.channel)
	defer ps.Close()
	msgs := ps.Channel()
	tick := time.NewTicker(p.ttl / 3)
	defer tick.Stop()
	var retry <-chan time.Time
	backoff := p.minBack
	resync := true // start from what Redis holds
	for {
		if resync {
			resync = false
			rctx, rcancel := context.WithTimeout(ctx, p.timeout)
			err := p.resync(rctx)
			rcancel()
			if err != nil {
				p.errLog(fmt.Errorf("ssekit/redis: presence: reading the other nodes: %w", err))
				retry = time.After(backoff)
				backoff = min(2*backoff, p.maxBack)
			} else if p.view.anyStale() {
				// A node was being rewritten, or is not registered
				// (yet, or any more): look again shortly.
				retry = time.After(backoff)
				backoff = min(2*backoff, p.maxBack)
			} else {
				backoff = p.minBack
			}
		}
		select {
		case m, ok := <-msgs:
			if !ok {
				return
			}
			if p.apply(m.Payload, time.Now()) {
				resync = true
			}
		case <-p.resyncCh:
			resync = true
		case <-retry:
			retry, resync = nil, true
		case <-tick.C:
			resync = true
		case <-p.stop:
			return
		}
	}
}

// apply applies one message; it reports whether a resync is needed.
func (p *presence) apply(payload string, now time.Time) bool {
	head, body, _ := strings.Cut(payload, "\n")
	f := strings.Fields(head)
	if len(f) != 5 || len(f[0]) != 1 {
		return false
	}
	node := f[1]
	if node == p.node {
		return false
	}
	seq, err1 := strconv.ParseUint(f[2], 10, 64)
	ttl, err2 := strconv.ParseInt(f[3], 10, 64)
	total, err3 := strconv.Atoi(f[4])
	if err1 != nil || err2 != nil || err3 != nil {
		return false
	}
	v := &p.view
	v.mu.Lock()
	defer v.mu.Unlock()
	if f[0] == "x" {
		delete(v.nodes, node)
		return false
	}
	r := v.nodes[node]
	if r == nil {
		r = &remote{stale: true, users: make(map[string]map[uuid.UUID]int)}
		v.nodes[node] = r
	}
	r.deadline = now.Add(time.Duration(ttl) * time.Millisecond)
	switch f[0] {
	case "h":
		if seq != r.seq {
			r.stale = true
		}
	case "f":
		if seq > r.seq {
			r.stale = true
		}
	case "d":
		if seq <= r.seq {
			break // old news
		}
		if seq != r.seq+1 {
			r.stale = true // missed one: what it changed is unknown
		}
		r.seq, r.total = seq, total
		for line := range strings.Lines(body) {
			n, field, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
			c, err := strconv.Atoi(n)
			if !ok || err != nil {
				continue
			}
			if tenant, user, ok := parseField(field); ok {
				r.set(tenant, user, c)
			}
		}
	}
	return r.stale
}

func parseField(field string) (tenant string, user uuid.UUID, ok bool) {
	u, tenant, found := strings.Cut(field, ":")
	id, err := uuid.Parse(u)
	if !found || err != nil {
		return "", uuid.Nil, false
	}
	return tenant, id, true
}

// resync reads the registry, drops what expired, and re-reads the hash of
// every node whose sequence number differs from the view's.
func (p *presence) resync(ctx context.Context) error {
	raw, err := presenceNodesScript.Run(ctx, p.client, []string{p.nodes}).StringSlice()
	if err != nil {
		return err
	}
	now := time.Now()
	if len(raw) == 0 || len(raw)%2 != 1 {
		return fmt.Errorf("unexpected registry reply of %d items", len(raw))
	}
	serverNow, _ := strconv.ParseFloat(raw[0], 64)
	type live struct {
		node     string
		deadline time.Time
		seq      *redis.StringCmd
	}
	var nodes []*live
	for i := 1; i+1 < len(raw); i += 2 {
		if raw[i] == p.node {
			continue
		}
		exp, err := strconv.ParseFloat(raw[i+1], 64)
		if err != nil {
			continue
		}
		nodes = append(nodes, &live{node: raw[i], deadline: now.Add(time.Duration(exp-serverNow) * time.Millisecond)})
	}
	key := func(node string) string { return presenceNodeKey(p.prefix, node) }
	if len(nodes) > 0 {
		_, err = p.client.Pipelined(ctx, func(pl redis.Pipeliner) error {
			for _, l := range nodes {
				l.seq = pl.HGet(ctx, key(l.node), "#")
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	// Which nodes to re-read: unknown, stale, or out of step.
	var fetch []*live
	v := &p.view
	v.mu.Lock()
	listed := make(map[string]bool, len(nodes))
	for _, l := range nodes {
		listed[l.node] = true
		r := v.nodes[l.node]
		if r == nil {
			r = &remote{stale: true, users: make(map[string]map[uuid.UUID]int)}
			v.nodes[l.node] = r
		}
		if l.deadline.After(r.deadline) {
			r.deadline = l.deadline
		}
		if r.stale || l.seq.Val() != strconv.FormatUint(r.seq, 10) {
			fetch = append(fetch, l)
		}
	}
	for node, r := range v.nodes {
		switch {
		case !r.deadline.After(now):
			delete(v.nodes, node) // not heard of for its TTL: it died
		case r.stale && !listed[node]:
			fetch = append(fetch, &live{node: node})
		}
	}
	v.mu.Unlock()
	if len(fetch) == 0 {
		return nil
	}
	hashes := make([]*redis.MapStringStringCmd, len(fetch))
	_, err = p.client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for i, l := range fetch {
			hashes[i] = pl.HGetAll(ctx, key(l.node))
		}
		return nil
	})
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, l := range fetch {
		h := hashes[i].Val()
		seq, err := strconv.ParseUint(h["#"], 10, 64)
		r := v.nodes[l.node]
		if err != nil || r == nil || seq < r.seq {
			continue // being rewritten, gone, or older than what we have
		}
		r.seq, r.stale = seq, false
		r.total, _ = strconv.Atoi(h["*"])
		clear(r.users)
		for field, n := range h {
			c, err := strconv.Atoi(n)
			if tenant, user, ok := parseField(field); ok && err == nil {
				r.set(tenant, user, c)
			}
		}
	}
	return nil
}

// view is what this node knows of the other nodes' connections.
type view struct {
	mu    sync.RWMutex
	nodes map[string]*remote
}

// remote is one other node, as of its sequence number seq.
type remote struct {
	seq      uint64
	stale    bool      // a change was missed: re-read its hash
	deadline time.Time // it counts until then, unless heard of again
	total    int
	users    map[string]map[uuid.UUID]int // tenant -> user -> connections
}

func (r *remote) set(tenant string, user uuid.UUID, n int) {
	us := r.users[tenant]
	if n <= 0 {
		delete(us, user)
		if len(us) == 0 {
			delete(r.users, tenant)
		}
		return
	}
	if us == nil {
		us = make(map[uuid.UUID]int)
		r.users[tenant] = us
	}
	us[user] = n
}

func (v *view) connections(tenant string, user uuid.UUID, now time.Time) int {
	v.mu.RLock()
	defer v.mu.RUnlock()
	n := 0
	for _, r := range v.nodes {
		if r.deadline.After(now) {
			n += r.users[tenant][user]
		}
	}
	return n
}

func (v *view) users(tenant string, now time.Time) []uuid.UUID {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []uuid.UUID
	for _, r := range v.nodes {
		if r.deadline.After(now) {
			for u := range r.users[tenant] {
				out = append(out, u)
			}
		}
	}
	return out // core sorts and deduplicates
}

func (v *view) totals(now time.Time) (brokers, connections int) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, r := range v.nodes {
		if r.deadline.After(now) {
			brokers++
			connections += r.total
		}
	}
	return brokers, connections
}

func (v *view) anyStale() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	for _, r := range v.nodes {
		if r.stale {
			return true
		}
	}
	return false
}

// luaNow is the Redis server's clock in milliseconds, in Lua.
const luaNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nows = string.format('%.0f', now)
`

// presenceWriteScript writes counts of one node and publishes the change.
// Modes: "delta" (the hash must be at seq-1), "only" (a complete rewrite
// in one call), "first", "more", "last" (a complete rewrite in chunks; the
// sequence number is "w" in between, which readers skip).
//
// KEYS: the node's hash. ARGV: mode, seq, ttl ms, total, channel, message,
// then field, count pairs (0 removes). Returns 0 when the hash is not
// where the mode expects it (Redis lost it: rewrite everything).
var presenceWriteScript = redis.NewScript(`
local mode = ARGV[1]
local cur = redis.call('HGET', KEYS[1], '#')
if mode == 'only' or mode == 'first' then
  redis.call('DEL', KEYS[1])
elseif mode == 'more' or mode == 'last' then
  if cur ~= 'w' then return 0 end
elseif cur ~= tostring(tonumber(ARGV[2]) - 1) then
  return 0
end
for i = 7, #ARGV, 2 do
  if tonumber(ARGV[i+1]) > 0 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1])
  else
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
if mode == 'first' or mode == 'more' then
  redis.call('HSET', KEYS[1], '#', 'w')
else
  redis.call('HSET', KEYS[1], '#', ARGV[2], '*', ARGV[4])
  redis.call('PUBLISH', ARGV[5], ARGV[6])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`)

// presenceRefreshScript renews a node's hash and publishes its heartbeat,
// if the hash is at the node's sequence number (else returns 0).
// KEYS: the node's hash. ARGV: seq, ttl ms, channel, message.
var presenceRefreshScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], '#') ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`)

// presenceRegisterScript renews a node in the registry, expiring TTL from
// now on the server's clock, and forgets nodes that expired.
// KEYS: the registry. ARGV: node, ttl ms.
var presenceRegisterScript = redis.NewScript(luaNow + `
redis.call('ZADD', KEYS[1], string.format('%.0f', now + tonumber(ARGV[2])), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nows)
return 1
`)

// presenceNodesScript returns the server's clock, then each live node and
// its expiry.
// KEYS: the registry.
var presenceNodesScript = redis.NewScript(luaNow + `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nows)
local r = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
table.insert(r, 1, nows)
return r
`)
