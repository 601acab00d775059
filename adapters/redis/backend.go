package sseredis

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/ssekit/ssekit/core"
)

// Errors of this package. Each wraps a core sentinel where one applies.
var (
	// ErrPublish wraps every failed publish: Redis did not confirm the
	// append (unreachable, timed out, refused). See Backend.Publish for
	// what a failure guarantees.
	ErrPublish = errors.New("ssekit/redis: publish failed")
	// ErrClosed reports a publish or attach on a closed Backend.
	ErrClosed = fmt.Errorf("ssekit/redis: %w", core.ErrClosed)
)

// Backend is the core.Backend of every broker of a cluster, on Redis
// streams: every broker appends to them and reads them, and the entry ID
// (with its shard) is the event ID. It also implements core.CatchUp,
// core.Presence and core.ClusterCounter, which the broker finds and calls
// itself: core.Config{Backend: b} is the whole wiring. Create it with New,
// one per broker, and Close it after the broker.
type Backend struct {
	client redis.UniversalClient
	opt    Options
	shards []*shard
	// combined: one XREAD reads every shard (a *redis.Client, where all
	// keys live on one server); otherwise a reader per shard, since in
	// Redis Cluster one XREAD cannot span slots.
	combined bool

	mu     sync.RWMutex // guards closed, cons; held shared while enqueuing
	closed bool
	cons   *consumer

	stop      chan struct{}
	flushers  sync.WaitGroup
	closeOnce sync.Once

	pres *presence // nil with Options.Presence.Off

	lag     time.Duration // tests: delay every delivery by this much
	deduped atomic.Uint64 // tests: publishes answered with an earlier entry's ID
}

// shard is one stream of the event log and the keys beside it, all under
// one hash tag ("{bus}" with one shard, "{bus:<i>}" with several).
type shard struct {
	i      int
	prefix string // of its event IDs: "" with one shard, "<i>:" otherwise
	stream string // its events
	heads  string // hash: "*" -> newest entry ID, tenant -> its newest entry ID, "#" -> root
	keys   string // hash: "tenant:idempotency key" -> the entry ID it was published as
	keyAge string // sorted set: the same fields, scored by their entry's time, for forgetting
	reqs   chan *pubReq
}

var (
	_ core.Backend        = (*Backend)(nil)
	_ core.CatchUp        = (*Backend)(nil)
	_ core.Presence       = (*Backend)(nil)
	_ core.ClusterCounter = (*Backend)(nil)
)

// New returns a Backend that keeps its streams in the Redis client reaches:
// a *redis.Client (single Redis, or a Sentinel failover client) or a
// *redis.ClusterClient. The client stays the caller's: close it after the
// Backend. It returns an error wrapping core.ErrInvalidConfig for invalid
// options; it does not contact Redis (Attach does).
func New(client redis.UniversalClient, opt Options) (*Backend, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: ssekit/redis: nil client", core.ErrInvalidConfig)
	}
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	_, combined := client.(*redis.Client)
	if opt.Shards == 0 {
		opt.Shards = DefaultClusterShards
		if combined {
			opt.Shards = DefaultShards
		}
	}
	b := &Backend{
		client:   client,
		opt:      opt,
		combined: combined,
		stop:     make(chan struct{}),
	}
	for i := range opt.Shards {
		tag, prefix := "{bus}", ""
		if opt.Shards > 1 {
			tag, prefix = "{"+shardTag(i, opt.Shards)+"}", strconv.Itoa(i)+":"
		}
		base := opt.Prefix + ":" + tag + ":"
		b.shards = append(b.shards, &shard{
			i:      i,
			prefix: prefix,
			stream: base + "events",
			heads:  base + "heads",
			keys:   base + "keys",
			keyAge: base + "keys:age",
			reqs:   make(chan *pubReq, opt.MaxBatch),
		})
	}
	if !opt.Presence.Off {
		b.pres = newPresence(client, opt)
	}
	for _, sh := range b.shards {
		b.flushers.Go(func() { b.flushLoop(sh) })
	}
	return b, nil
}

// clusterSlots is the number of Redis Cluster hash slots.
const clusterSlots = 16384

// shardTag returns the hash tag of shard i of n: "bus:<i>" if its Cluster
// slot lies in the i-th n-th of the slot range, else "bus:<i>-<k>" with
// the smallest k that puts it there. CRC16 of "bus:0" to "bus:15" alone
// puts 4, 4 and 8 shards on three masters of equal contiguous ranges (as
// redis-cli --cluster create assigns them); aligned tags put 5 or 6 on
// each, and spread any n over any number of such masters as evenly as n
// allows.
func shardTag(i, n int) string {
	base := "bus:" + strconv.Itoa(i)
	lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n
	tag := base
	for k := 1; ; k++ {
		if slot := int(crc16(tag)) % clusterSlots; lo <= slot && slot < hi {
			return tag
		}
		tag = base + "-" + strconv.Itoa(k)
	}
}

// crc16 is Redis Cluster's key hash (CRC-16/XMODEM).
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// StreamKeys returns the key of each shard's stream, in shard order, for
// operators (XINFO, XLEN) and benchmarks.
func (b *Backend) StreamKeys() []string {
	keys := make([]string, len(b.shards))
	for i, sh := range b.shards {
		keys[i] = sh.stream
	}
	return keys
}

// Shards returns the number of shards in effect (Options.Shards, or its
// default for the client).
func (b *Backend) Shards() int { return len(b.shards) }

// shardOf returns the shard of tenant: FNV-1a of its name, modulo the
// number of shards. It depends on nothing else, so every node, whatever
// its version, agrees.
func (b *Backend) shardOf(tenant string) *shard {
	if len(b.shards) == 1 {
		return b.shards[0]
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(tenant))
	return b.shards[h.Sum32()%uint32(len(b.shards))]
}

// entryOf returns the stream entry an event ID of tenant names: ok is false
// when the ID is malformed, names another shard than the tenant's (the
// number of shards changed since it was issued) or one out of range.
func (b *Backend) entryOf(tenant, id string) (sh *shard, entry string, sid streamID, ok bool) {
	sh = b.shardOf(tenant)
	i, entry, sid, ok := parseEventID(id, len(b.shards))
	if !ok || i >= 0 && i != sh.i {
		return sh, "", streamID{}, false
	}
	return sh, entry, sid, true
}

// publishScript appends a batch of events, in order, and links each to
// its predecessors: "g" is the stream's previous entry, "t" the tenant's.
// Both come from the heads hash, updated in the same script, so the chain
// holds across every publisher of the cluster. (Should Redis fail the
// script half way, for example out of memory, the entries it appended are
// delivered and the next entry's link skips them: readers see a gap
// event, never a silent loss.) The hash also records
// the stream's root, its first entry ever ("#"), which tells a trimmed ID
// from one that Redis never held. "*" and "#" cannot be tenant names.
//
// An event with an idempotency key is appended only if its tenant has not
// published the key while the entry it was published as is still in the
// stream; otherwise its ID is that entry's, prefixed with "=" (nothing is
// appended). The keys hash maps "tenant:key" to the entry (tenant names
// hold no ":"); its sorted set scores each field by its entry's time, so
// that fields whose entries were trimmed are forgotten, a bounded number
// per call. Being in the script makes the check and the append one atomic
// step for every node, and Redis persists and replicates both together.
//
// Each shard has its own stream, heads and keys: the chains are per shard.
//
// KEYS: stream, heads, keys hash, keys sorted set. ARGV: max length (0:
// none), max age in ms (0: none), then a tenant, a payload and an
// idempotency key ("": none) per event. Returns the entry IDs.
var publishScript = redis.NewScript(`
local maxlen = tonumber(ARGV[1])
local g = redis.call('HGET', KEYS[2], '*')
local root = not g
g = g or '0-0'
local last = {}
local ids = {}
local appended = false
local forgotten = false
for i = 3, #ARGV, 3 do
  local tenant = ARGV[i]
  local key = ARGV[i+2]
  local dup = nil
  if key ~= '' then
    if not forgotten then
      forgotten = true
      local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
      local min = '+inf'
      if #first > 0 then min = '(' .. string.match(first[1][1], '^%d+') end
      local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', min, 'LIMIT', 0, 1024)
      if #old > 0 then
        redis.call('HDEL', KEYS[3], unpack(old))
        redis.call('ZREM', KEYS[4], unpack(old))
      end
    end
    key = tenant .. ':' .. key
    local prev = redis.call('HGET', KEYS[3], key)
    if prev and #redis.call('XRANGE', KEYS[1], prev, prev) > 0 then
      dup = prev
    end
  end
  if dup then
    ids[#ids + 1] = '=' .. dup
  else
    local t = last[tenant]
    if not t then t = redis.call('HGET', KEYS[2], tenant) or '0-0' end
    local id
    if maxlen > 0 then
      id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'g', g, 't', t, 'n', tenant, 'm', ARGV[i+1])
    else
      id = redis.call('XADD', KEYS[1], '*', 'g', g, 't', t, 'n', tenant, 'm', ARGV[i+1])
    end
    if root then
      redis.call('HSET', KEYS[2], '#', id)
      root = false
    end
    if key ~= '' then
      redis.call('HSET', KEYS[3], key, id)
      redis.call('ZADD', KEYS[4], string.match(id, '^%d+'), key)
    end
    last[tenant] = id
    g = id
    appended = true
    ids[#ids + 1] = id
  end
end
if appended then
  local heads = {'*', g}
  for tenant, id in pairs(last) do
    heads[#heads + 1] = tenant
    heads[#heads + 1] = id
  end
  redis.call('HSET', KEYS[2], unpack(heads))
end
local age = tonumber(ARGV[2])
if age > 0 then
  local now = redis.call('TIME')
  local min = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - age
  if min > 0 then
    redis.call('XTRIM', KEYS[1], 'MINID', '~', string.format('%.0f', min))
  end
end
return ids
`)

// pubReq is one publish waiting for the flusher.
type pubReq struct {
	tenant  string
	payload []byte
	key     string       // idempotency key, "" for none
	state   atomic.Int32 // reqQueued, reqTaken, reqAbandoned
	id      string
	err     error
	done    chan struct{}
}

const (
	reqQueued int32 = iota
	reqTaken
	reqAbandoned
)

// Publish appends m to its tenant's shard and sets m.Event.ID to the entry
// ID (prefixed with the shard when there are several); every attached
// broker, this one included, then delivers it from the stream in the
// stream's order. Concurrent calls to a shard are pipelined together, up
// to Options.MaxBatch per round trip.
//
// A message that breaks Publish's rules (core.Broker checks them first) is
// refused with the core sentinel error. A nil error means Redis holds the
// event. An error wraps ErrPublish (or
// ctx's error when ctx ended while the publish was still queued here, in
// which case nothing was sent). When the connection breaks after the
// request was written, Redis may have appended the event although the
// call fails: the failure is reported, never hidden, but it is not proof
// of absence. Set MaxRetries: -1 on the client so that go-redis does not
// resend such a request, which could append the event twice.
//
// A message with an IdempotencyKey makes such a failure safe to retry:
// when its tenant already published the key, on any node, and the entry
// it was published as is still in the stream (Options.MaxLen and MaxAge),
// Publish appends nothing and sets m.Event.ID to that entry's ID. The
// check and the append are one step of the publish script, so concurrent
// attempts on different nodes publish the event once; with appendonly
// yes the keys survive a Redis restart with the stream.
func (b *Backend) Publish(ctx context.Context, m *core.Message) error {
	// core.Broker validated m already; this guards direct callers, since an
	// entry that nodes refuse costs its tenant a gap event everywhere.
	if err := validate(m); err != nil {
		return err
	}
	sh := b.shardOf(m.Target.Tenant)
	r := &pubReq{
		tenant:  m.Target.Tenant,
		payload: encodePayload(make([]byte, 0, 64+len(m.Event.Data)), m),
		key:     m.IdempotencyKey,
		done:    make(chan struct{}),
	}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return ErrClosed
	}
	select {
	case sh.reqs <- r:
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	b.mu.RUnlock()
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
			return ctx.Err()
		}
		<-r.done
	}
	if r.err != nil {
		return fmt.Errorf("%w: %w", ErrPublish, r.err)
	}
	m.Event.ID = sh.prefix + r.id
	return nil
}

// Append implements core.History: it is Publish. A broker with this
// Backend as its Bus never calls it.
func (b *Backend) Append(ctx context.Context, m *core.Message) error { return b.Publish(ctx, m) }

// Origin implements core.History: "0-0" precedes every stream entry ID.
func (b *Backend) Origin() string { return originID }

// flushLoop sends the queued publishes of a shard, every request queued
// meanwhile in the same script call: one round trip for a burst, none
// wasted when idle. Each shard has its own, so shards on different
// Cluster masters are written in parallel.
func (b *Backend) flushLoop(sh *shard) {
	batch := make([]*pubReq, 0, b.opt.MaxBatch)
	for {
		select {
		case r := <-sh.reqs:
			batch = append(batch[:0], r)
		case <-b.stop:
			// Close waited for every enqueuer: what is left was never sent.
			for {
				select {
				case r := <-sh.reqs:
					r.err = ErrClosed
					close(r.done)
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < b.opt.MaxBatch {
			select {
			case r := <-sh.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		b.send(sh, batch)
		clear(batch)
	}
}

func (b *Backend) send(sh *shard, batch []*pubReq) {
	live := batch[:0]
	for _, r := range batch {
		if r.state.CompareAndSwap(reqQueued, reqTaken) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.opt.PublishTimeout)
	defer cancel()
	args := make([]any, 0, 2+3*len(live))
	args = append(args, max(b.opt.MaxLen, 0), b.opt.MaxAge.Milliseconds())
	for _, r := range live {
		args = append(args, r.tenant, r.payload, r.key)
	}
	// Run loads the script again after a Redis restart emptied its cache
	// (a refused EVALSHA appended nothing).
	ids, err := publishScript.Run(ctx, b.client, []string{sh.stream, sh.heads, sh.keys, sh.keyAge}, args...).StringSlice()
	if err == nil && len(ids) != len(live) {
		err = fmt.Errorf("%d IDs for %d events", len(ids), len(live))
	}
	for i, r := range live {
		if r.err = err; err == nil {
			id, dup := strings.CutPrefix(ids[i], "=")
			if dup {
				b.deduped.Add(1)
			}
			r.id = id
			if _, ok := parseID(r.id); !ok {
				r.err = fmt.Errorf("unexpected entry ID %q", r.id)
			}
		}
		close(r.done)
	}
}

// Close stops publishing and, if a broker is still attached, detaches it.
// Close the broker first (its Close detaches, which also removes this
// node's presence), then the Backend, then the client. Close is
// idempotent.
func (b *Backend) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		c := b.cons
		b.mu.Unlock()
		close(b.stop)
		b.flushers.Wait()
		if c != nil {
			c.halt()
		}
	})
	return nil
}

// CatchUp implements core.CatchUp: it returns once this node has delivered
// lastEventID (a client coming from a node that was ahead), after
// Options.CatchUpTimeout, or when ctx ends. Without it such a client could
// be sent again the few events this node had not yet delivered when it
// connected. It returns at once for an ID this node has reached, or one
// that is not of tenant's shard.
func (b *Backend) CatchUp(ctx context.Context, tenant, lastEventID string) {
	sh, _, want, ok := b.entryOf(tenant, lastEventID)
	if !ok || want.isZero() || want.ms > uint64(time.Now().Add(time.Minute).UnixMilli()) {
		return // nothing to wait for, or an ID no Redis issued yet
	}
	b.mu.RLock()
	c := b.cons
	b.mu.RUnlock()
	if c == nil {
		return
	}
	cur := c.cursors[sh.i]
	var timer *time.Timer
	for {
		cur.mu.Lock()
		reached := !cur.pos.less(want)
		adv := cur.adv
		cur.mu.Unlock()
		if reached {
			break
		}
		if timer == nil {
			timer = time.NewTimer(b.opt.CatchUpTimeout)
			defer timer.Stop()
		}
		select {
		case <-adv:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		case <-c.done:
			return
		}
	}
}

// isNoSuchKey reports Redis's answer to XINFO STREAM on a missing key.
func isNoSuchKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such key")
}
