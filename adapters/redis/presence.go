package sseredis

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/ssekit/ssekit/core"
)

// DefaultPresenceTTL is how long a node's presence entries live without a
// refresh; see PresenceOptions.TTL.
const DefaultPresenceTTL = 30 * time.Second

// PresenceOptions tunes a Presence.
type PresenceOptions struct {
	// Prefix starts every key (default "ssekit"); no "{" or "}".
	Prefix string
	// TTL bounds how long the connections of a node that died keep
	// counting (default 30s, at least 100ms). A live node refreshes its
	// entries every TTL/3, so a crashed node's users are gone from every
	// query at most TTL after its last refresh, and a Redis that lost its
	// data is repopulated within TTL/3.
	TTL time.Duration
	// ErrorLog receives failed writes (retried at the next refresh).
	ErrorLog func(error)
}

// Presence answers who is online across every broker of a cluster. Each
// node counts its own connections (through the hooks of Observer) and
// keeps them in Redis with an expiry, refreshed while it lives; queries
// add up the live entries of every node. Create it with NewPresence, join
// its Observer into core.Config.Observer, and Close it after the broker.
//
// Per tenant, with keys hash-tagged on the tenant (one Cluster slot each):
// a sorted set of users scored by their newest expiry, and per user a
// sorted set of nodes scored by expiry plus a hash of each node's count.
// Expiry is measured on the Redis server's clock, so nodes' clocks may
// disagree.
type Presence struct {
	client redis.UniversalClient
	opt    PresenceOptions
	node   string

	mu     sync.Mutex
	counts map[presenceKey]int
	dirty  map[presenceKey]struct{}
	closed bool

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

type presenceKey struct {
	tenant string
	user   uuid.UUID
}

// NewPresence returns a Presence writing through client, with a random
// node ID. It does not contact Redis until the first connection.
func NewPresence(client redis.UniversalClient, opt PresenceOptions) (*Presence, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: ssekit/redis: nil client", core.ErrInvalidConfig)
	}
	if opt.Prefix == "" {
		opt.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(opt.Prefix, "{}") {
		return nil, fmt.Errorf("%w: ssekit/redis: Prefix must be free of { and }, got %q", core.ErrInvalidConfig, opt.Prefix)
	}
	if opt.TTL == 0 {
		opt.TTL = DefaultPresenceTTL
	}
	if opt.TTL < 100*time.Millisecond {
		return nil, fmt.Errorf("%w: ssekit/redis: presence TTL must be >= 100ms, got %v", core.ErrInvalidConfig, opt.TTL)
	}
	if opt.ErrorLog == nil {
		opt.ErrorLog = func(error) {}
	}
	p := &Presence{
		client: client,
		opt:    opt,
		node:   uuid.NewString(),
		counts: make(map[presenceKey]int),
		dirty:  make(map[presenceKey]struct{}),
		wake:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go p.loop()
	return p, nil
}

// Observer returns the hooks that count this node's connections. They
// never block: Redis is written by a background goroutine, within
// milliseconds. Anonymous connections are not counted.
func (p *Presence) Observer() *core.Observer {
	return &core.Observer{
		Connect: func(ctx context.Context, s *core.Subscription) context.Context {
			p.add(s.Identity(), 1)
			return ctx
		},
		Disconnect: func(_ context.Context, s *core.Subscription, _ core.CloseReason) {
			p.add(s.Identity(), -1)
		},
	}
}

func (p *Presence) add(id core.Identity, delta int) {
	if id.User == uuid.Nil {
		return
	}
	k := presenceKey{id.Tenant, id.User}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.counts[k] += delta
	p.dirty[k] = struct{}{}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Presence) loop() {
	defer close(p.done)
	refresh := time.NewTicker(p.opt.TTL / 3)
	defer refresh.Stop()
	for {
		select {
		case <-p.wake:
		case <-refresh.C:
			p.mu.Lock()
			for k := range p.counts {
				p.dirty[k] = struct{}{}
			}
			p.mu.Unlock()
		case <-p.stop:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.opt.TTL/3)
		if err := p.flush(ctx); err != nil {
			p.opt.ErrorLog(fmt.Errorf("ssekit/redis: presence: %w", err))
		}
		cancel()
	}
}

// presenceBatch caps the users written by one script call.
const presenceBatch = 128

// flush writes every dirty count; what fails stays dirty.
func (p *Presence) flush(ctx context.Context) error {
	p.mu.Lock()
	byTenant := make(map[string][]presenceKey)
	for k := range p.dirty {
		byTenant[k.tenant] = append(byTenant[k.tenant], k)
	}
	counts := make(map[presenceKey]int, len(p.dirty))
	for k := range p.dirty {
		counts[k] = p.counts[k]
	}
	clear(p.dirty)
	p.mu.Unlock()

	var firstErr error
	for tenant, keys := range byTenant {
		for len(keys) > 0 {
			n := min(len(keys), presenceBatch)
			batch := keys[:n]
			keys = keys[n:]
			rkeys := make([]string, 0, 1+2*n)
			args := make([]any, 0, 2+2*n)
			rkeys = append(rkeys, p.usersKey(tenant))
			args = append(args, p.opt.TTL.Milliseconds(), p.node)
			for _, k := range batch {
				nodes, conns := p.userKeys(tenant, k.user)
				rkeys = append(rkeys, nodes, conns)
				args = append(args, k.user.String(), max(counts[k], 0))
			}
			if err := presenceSyncScript.Run(ctx, p.client, rkeys, args...).Err(); err != nil {
				if firstErr == nil {
					firstErr = err
				}
				p.mu.Lock()
				for _, k := range batch {
					p.dirty[k] = struct{}{}
				}
				p.mu.Unlock()
				continue
			}
			p.mu.Lock()
			for _, k := range batch {
				if _, again := p.dirty[k]; !again && p.counts[k] <= 0 {
					delete(p.counts, k)
				}
			}
			p.mu.Unlock()
		}
	}
	return firstErr
}

// Close removes this node's entries (best effort, bounded by ctx) and
// stops the refresh. Close the broker first: its connections then report
// their Disconnect, and Close writes the zero counts. Close is idempotent.
func (p *Presence) Close(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.mu.Lock()
		for k := range p.counts {
			p.counts[k] = 0
			p.dirty[k] = struct{}{}
		}
		p.closed = true
		p.mu.Unlock()
		err = p.flush(ctx)
	})
	return err
}

func (p *Presence) usersKey(tenant string) string {
	return p.opt.Prefix + ":{p:" + tenant + "}:users"
}

func (p *Presence) userKeys(tenant string, user uuid.UUID) (nodes, conns string) {
	base := p.opt.Prefix + ":{p:" + tenant + "}:"
	u := user.String()
	return base + "n:" + u, base + "c:" + u
}

// UserConnections returns how many connections user has in tenant on all
// live nodes.
func (p *Presence) UserConnections(ctx context.Context, tenant string, user uuid.UUID) (int, error) {
	nodes, conns := p.userKeys(tenant, user)
	n, err := presenceCountScript.Run(ctx, p.client, []string{nodes, conns}).Int()
	if err != nil {
		return 0, fmt.Errorf("ssekit/redis: presence: %w", err)
	}
	return n, nil
}

// IsUserOnline reports whether user has a connection in tenant on any live
// node.
func (p *Presence) IsUserOnline(ctx context.Context, tenant string, user uuid.UUID) (bool, error) {
	n, err := p.UserConnections(ctx, tenant, user)
	return n > 0, err
}

// OnlineUsers returns the users with a connection in tenant on any live
// node, sorted.
func (p *Presence) OnlineUsers(ctx context.Context, tenant string) ([]uuid.UUID, error) {
	raw, err := presenceUsersScript.Run(ctx, p.client, []string{p.usersKey(tenant)}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("ssekit/redis: presence: %w", err)
	}
	out := make([]uuid.UUID, 0, len(raw))
	for _, s := range raw {
		if u, err := uuid.Parse(s); err == nil {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	return out, nil
}

// nowMs is the Redis server's clock in milliseconds, in Lua.
const luaNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nows = string.format('%.0f', now)
`

// presenceSyncScript sets one node's counts for users of a tenant.
// KEYS: users, then per user its nodes zset and counts hash.
// ARGV: ttl ms, node, then per user its UUID and count.
var presenceSyncScript = redis.NewScript(luaNow + `
local ttl = tonumber(ARGV[1])
local node = ARGV[2]
local exp = string.format('%.0f', now + ttl)
for i = 1, (#KEYS - 1) / 2 do
  local zk, hk = KEYS[2*i], KEYS[2*i+1]
  local user, count = ARGV[1+2*i], tonumber(ARGV[2+2*i])
  redis.call('ZREMRANGEBYSCORE', zk, '-inf', nows)
  if count > 0 then
    redis.call('ZADD', zk, exp, node)
    redis.call('HSET', hk, node, count)
  else
    redis.call('ZREM', zk, node)
    redis.call('HDEL', hk, node)
  end
  for _, n in ipairs(redis.call('HKEYS', hk)) do
    if not redis.call('ZSCORE', zk, n) then redis.call('HDEL', hk, n) end
  end
  local top = redis.call('ZRANGE', zk, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('ZADD', KEYS[1], top[2], user)
    redis.call('PEXPIRE', zk, 2 * ttl)
    redis.call('PEXPIRE', hk, 2 * ttl)
  else
    redis.call('ZREM', KEYS[1], user)
    redis.call('DEL', zk, hk)
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', nows)
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], 2 * ttl) end
return 1
`)

// presenceCountScript sums the counts of a user's live nodes.
var presenceCountScript = redis.NewScript(luaNow + `
local sum = 0
for _, n in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. nows, '+inf')) do
  sum = sum + (tonumber(redis.call('HGET', KEYS[2], n)) or 0)
end
return sum
`)

// presenceUsersScript lists the users with a live node.
var presenceUsersScript = redis.NewScript(luaNow + `
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. nows, '+inf')
`)

// abandon stops the refresh without removing anything, as a crash would
// (tests only).
func (p *Presence) abandon() {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
	})
}
