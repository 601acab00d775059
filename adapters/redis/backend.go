package sseredis

import (
	"context"
	"errors"
	"fmt"
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

// Backend is a core.Bus and a core.History on one Redis stream: every
// broker of a cluster appends to it and reads it, and the stream entry ID
// is the event ID. Create it with New, hand it to core.Config as both Bus
// and History (one Backend per broker), and Close it after the broker.
type Backend struct {
	client redis.UniversalClient
	opt    Options
	stream string // the stream of every event
	heads  string // hash: "*" -> newest entry ID, tenant -> its newest entry ID
	keys   string // hash: "tenant:idempotency key" -> the entry ID it was published as
	keyAge string // sorted set: the same fields, scored by their entry's time, for forgetting

	mu     sync.RWMutex // guards closed, cons; held shared while enqueuing
	closed bool
	cons   *consumer

	reqs      chan *pubReq
	stop      chan struct{}
	flushers  sync.WaitGroup
	closeOnce sync.Once

	lag     time.Duration // tests: delay every delivery by this much
	deduped atomic.Uint64 // tests: publishes answered with an earlier entry's ID
}

var (
	_ core.Bus     = (*Backend)(nil)
	_ core.History = (*Backend)(nil)
)

// New returns a Backend that keeps its stream in the Redis client reaches:
// a *redis.Client, a failover (Sentinel) client or a *redis.ClusterClient.
// The client stays the caller's: close it after the Backend. It returns an
// error wrapping core.ErrInvalidConfig for invalid options; it does not
// contact Redis (Attach does).
func New(client redis.UniversalClient, opt Options) (*Backend, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: ssekit/redis: nil client", core.ErrInvalidConfig)
	}
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Backend{
		client: client,
		opt:    opt,
		stream: opt.Prefix + ":{bus}:events",
		heads:  opt.Prefix + ":{bus}:heads",
		keys:   opt.Prefix + ":{bus}:keys",
		keyAge: opt.Prefix + ":{bus}:keys:age",
		reqs:   make(chan *pubReq, opt.MaxBatch),
		stop:   make(chan struct{}),
	}
	b.flushers.Go(b.flushLoop)
	return b, nil
}

// StreamKey returns the key of the stream, for operators (XINFO, XLEN).
func (b *Backend) StreamKey() string { return b.stream }

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

// Publish appends m to the stream and sets m.Event.ID to the entry ID; every
// attached broker, this one included, then delivers it from the stream in
// the stream's order. Concurrent calls are pipelined together, up to
// Options.MaxBatch per round trip.
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
	case b.reqs <- r:
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
	m.Event.ID = r.id
	return nil
}

// Append implements core.History: it is Publish. A broker with this
// Backend as its Bus never calls it.
func (b *Backend) Append(ctx context.Context, m *core.Message) error { return b.Publish(ctx, m) }

// Origin implements core.History: "0-0" precedes every stream entry ID.
func (b *Backend) Origin() string { return originID }

// flushLoop sends queued publishes, every request queued meanwhile in the
// same script call: one round trip for a burst, none wasted when idle.
func (b *Backend) flushLoop() {
	batch := make([]*pubReq, 0, b.opt.MaxBatch)
	for {
		select {
		case r := <-b.reqs:
			batch = append(batch[:0], r)
		case <-b.stop:
			// Close waited for every enqueuer: what is left was never sent.
			for {
				select {
				case r := <-b.reqs:
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
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		b.send(batch)
		clear(batch)
	}
}

func (b *Backend) send(batch []*pubReq) {
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
	ids, err := publishScript.Run(ctx, b.client, []string{b.stream, b.heads, b.keys, b.keyAge}, args...).StringSlice()
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
// Close the broker first (its Close detaches), then the Backend, then the
// client. Close is idempotent.
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

// Observer returns hooks to join into core.Config.Observer (with
// core.JoinObservers when there are others). Its Connect hook lets a
// reconnecting client that comes from a node ahead of this one wait, at
// most Options.CatchUpTimeout, until this node has delivered the client's
// Last-Event-ID: without it, such a client could be sent again the few
// events this node had not yet delivered when it connected.
func (b *Backend) Observer() *core.Observer {
	return &core.Observer{
		Connect: func(ctx context.Context, s *core.Subscription) context.Context {
			b.catchUp(s.LastEventID())
			return ctx
		},
	}
}

// catchUp waits until the attached consumer has delivered id, the timeout
// passes or the consumer stops.
func (b *Backend) catchUp(id string) {
	want, ok := parseID(id)
	if !ok || want.isZero() || want.ms > uint64(time.Now().Add(time.Minute).UnixMilli()) {
		return // nothing to wait for, or an ID no Redis issued yet
	}
	b.mu.RLock()
	c := b.cons
	b.mu.RUnlock()
	if c == nil {
		return
	}
	var timer *time.Timer
	for {
		c.mu.Lock()
		reached := !c.pos.less(want)
		adv := c.adv
		c.mu.Unlock()
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
		case <-c.done:
			return
		}
	}
}

// isNoSuchKey reports Redis's answer to XINFO STREAM on a missing key.
func isNoSuchKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such key")
}
