package sseredis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/ssekit/ssekit/core"
)

// consumer reads the streams for one attached broker and calls deliver,
// one entry at a time per shard, in stream order: the order of a shard,
// so of each tenant, is the same on every node because it is the
// stream's. Its readers are goroutines that each read some shards (all of
// them with one XREAD, or one each in Redis Cluster); different shards
// may be delivered concurrently, which core allows since they hold
// different tenants.
type consumer struct {
	b        *Backend
	deliver  func(*core.Message)
	stop     chan struct{}
	done     chan struct{} // closed once every reader returned
	once     sync.Once
	cursors  []*cursor // by shard
	presence func()    // stops presence; nil without
}

// cursor is where a node stands in one shard's stream.
type cursor struct {
	sh *shard

	mu  sync.Mutex    // guards pos, adv (written by its reader only)
	pos streamID      // newest entry delivered (or skipped past)
	adv chan struct{} // closed and replaced when pos advances

	posStr  string              // pos as Redis wrote it
	tenants map[string]struct{} // tenants of this shard this broker was delivered anything for
}

// nobody is a user no connection has: seed messages target it, so that
// even if a subscriber existed it would not receive them.
var nobody = uuid.Max

// positionEventType names the seed messages Attach delivers. They set
// where each tenant stands on this broker and reach no connection.
const positionEventType = "ssekit.position"

// Attach implements core.Bus. Before it returns, it tells the broker where
// every tenant stands (the newest entry of each, from each shard's heads
// hash), so that a broker that has just started replays a reconnecting
// client exactly as one that ran all along; then it reads the streams from
// there: one goroutine for every shard with a *redis.Client, one per shard
// otherwise. It fails when Redis cannot be read, and when a broker is
// already attached: use one Backend per broker.
func (b *Backend) Attach(deliver func(*core.Message)) (func(), error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if b.cons != nil {
		return nil, errors.New("ssekit/redis: a broker is already attached to this Backend")
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.opt.PublishTimeout)
	defer cancel()
	cmds := make([]*redis.MapStringStringCmd, len(b.shards))
	_, err := b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, sh := range b.shards {
			cmds[i] = p.HGetAll(ctx, sh.heads)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ssekit/redis: reading stream heads: %w", err)
	}
	c := &consumer{
		b:       b,
		deliver: deliver,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	type seed struct {
		tenant string
		id     streamID
		raw    string
	}
	for i, sh := range b.shards {
		cur := &cursor{sh: sh, adv: make(chan struct{}), posStr: originID, tenants: make(map[string]struct{})}
		c.cursors = append(c.cursors, cur)
		heads := cmds[i].Val()
		if id, ok := parseID(heads["*"]); ok {
			cur.pos, cur.posStr = id, heads["*"]
		}
		var seeds []seed
		for tenant, raw := range heads {
			id, ok := parseID(raw)
			if tenant == "*" || tenant == "#" || !ok || core.ValidateTenant(tenant) != nil || cur.pos.less(id) || b.shardOf(tenant) != sh {
				continue
			}
			seeds = append(seeds, seed{tenant, id, raw})
		}
		slices.SortFunc(seeds, func(x, y seed) int {
			if x.id.less(y.id) {
				return -1
			}
			if y.id.less(x.id) {
				return 1
			}
			return strings.Compare(x.tenant, y.tenant)
		})
		for _, s := range seeds {
			cur.tenants[s.tenant] = struct{}{}
			deliver(&core.Message{
				Target: core.Target{Tenant: s.tenant, Users: []uuid.UUID{nobody}},
				Event:  core.Event{ID: sh.prefix + s.raw, Type: positionEventType},
			})
		}
	}
	b.cons = c
	var readers sync.WaitGroup
	if b.combined {
		readers.Go(func() { c.run(c.cursors) })
	} else {
		for _, cur := range c.cursors {
			readers.Go(func() { c.run([]*cursor{cur}) })
		}
	}
	go func() { readers.Wait(); close(c.done) }()
	if b.pres != nil {
		c.presence = b.pres.start()
	}
	return c.halt, nil
}

// halt stops the consumer and waits for it; no delivery happens after it
// returns.
func (c *consumer) halt() {
	c.once.Do(func() {
		close(c.stop)
		if c.presence != nil {
			c.presence()
		}
	})
	<-c.done
	c.b.mu.Lock()
	if c.b.cons == c {
		c.b.cons = nil
	}
	c.b.mu.Unlock()
}

func (c *consumer) stopped() bool {
	select {
	case <-c.stop:
		return true
	default:
		return false
	}
}

// sleep waits d or until the consumer stops; it reports whether to go on.
func (c *consumer) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.stop:
		return false
	}
}

// idleChecks is how many empty reads in a row trigger a continuity check.
const idleChecks = 10

// run reads the streams of cs (with one XREAD BLOCK) until the consumer
// stops.
func (c *consumer) run(cs []*cursor) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	o := &c.b.opt
	byStream := make(map[string]*cursor, len(cs))
	streams := make([]string, 2*len(cs))
	for i, cur := range cs {
		byStream[cur.sh.stream] = cur
		streams[i] = cur.sh.stream
	}
	backoff := o.MinBackoff
	check, failing, idle := false, false, 0
	for !c.stopped() {
		if check {
			if err := c.verify(ctx, cs); err != nil {
				if !c.stopped() {
					c.logOnce(&failing, cs, err)
				}
				if !c.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, o.MaxBackoff)
				continue
			}
			check = false
		}
		for i, cur := range cs {
			streams[len(cs)+i] = cur.posStr
		}
		res, err := c.b.client.XRead(ctx, &redis.XReadArgs{
			Streams: streams,
			Count:   int64(o.MaxBatch),
			Block:   o.BlockTimeout,
		}).Result()
		if errors.Is(err, redis.Nil) {
			failing, backoff = false, o.MinBackoff
			if idle++; idle >= idleChecks {
				// A Redis that restarted between two reads shows up only
				// when something is published: look for it while idle.
				check, idle = true, 0
			}
			continue
		}
		if err != nil {
			if c.stopped() {
				return
			}
			c.logOnce(&failing, cs, err)
			check = true
			if !c.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, o.MaxBackoff)
			continue
		}
		failing, backoff, idle = false, o.MinBackoff, 0
		for _, s := range res {
			if cur := byStream[s.Stream]; cur != nil {
				c.handle(ctx, cur, s.Messages)
			}
		}
	}
}

func (c *consumer) logOnce(failing *bool, cs []*cursor, err error) {
	if !*failing {
		*failing = true
		what := cs[0].sh.stream
		if len(cs) > 1 {
			what = fmt.Sprintf("%d streams", len(cs))
		}
		c.b.opt.ErrorLog(fmt.Errorf("ssekit/redis: reading %s (retrying with backoff): %w", what, err))
	}
}

// verify checks, after a failed read or a long idle time, that each stream
// of cs still continues from its cursor. When Redis lost one (restarted
// without persistence, or failed over to a replica that had not received
// the newest entries), every tenant of that shard is sent the gap event
// and reading resumes where the stream now ends.
func (c *consumer) verify(ctx context.Context, cs []*cursor) error {
	cmds := make([]*redis.XInfoStreamCmd, len(cs))
	_, _ = c.b.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, cur := range cs {
			cmds[i] = p.XInfoStream(ctx, cur.sh.stream)
		}
		return nil
	})
	for i, cur := range cs {
		info, err := cmds[i].Result()
		if isNoSuchKey(err) {
			if !cur.pos.isZero() {
				c.gapAll(ctx, cur, originID, "unknown")
				cur.advance(streamID{}, originID)
				cur.signal()
			}
			continue
		}
		if err != nil {
			return err
		}
		if last, ok := parseID(info.LastGeneratedID); ok && last.less(cur.pos) {
			c.gapAll(ctx, cur, info.LastGeneratedID, "unknown")
			cur.advance(last, info.LastGeneratedID)
			cur.signal()
		}
	}
	return nil
}

// handle delivers a batch of entries of one shard. An entry whose
// predecessor ("g") is not the last entry delivered proves that entries
// were lost in between: trimmed before this node read them (it lagged by
// more than MaxLen), or gone with a Redis that restarted or failed over.
// Every tenant of the shard is then sent the gap event, positioned so that
// a replay from it is exact.
func (c *consumer) handle(ctx context.Context, cur *cursor, msgs []redis.XMessage) {
	pre := cur.sh.prefix
	for _, x := range msgs {
		id, ok := parseID(x.ID)
		if !ok {
			continue
		}
		prev, _ := x.Values[fieldGlobalPrev].(string)
		if prev != cur.posStr {
			reason := "expired"
			if p, ok := parseID(prev); !ok || p.less(cur.pos) {
				reason = "unknown" // the stream went back: Redis lost entries
			}
			c.gapAll(ctx, cur, prev, reason)
		}
		tenant, _ := x.Values[fieldTenant].(string)
		payload, _ := x.Values[fieldPayload].(string)
		m, err := decodeMessage(pre+x.ID, tenant, []byte(payload))
		if err == nil && c.b.shardOf(tenant) != cur.sh {
			err = fmt.Errorf("tenant %q is not of shard %d", tenant, cur.sh.i)
		}
		if c.b.lag > 0 {
			time.Sleep(c.b.lag)
		}
		switch {
		case err == nil:
			cur.tenants[tenant] = struct{}{}
			c.deliver(m)
		case core.ValidateTenant(tenant) == nil && c.b.shardOf(tenant) == cur.sh:
			// Subscribers of the tenant miss this entry: tell them.
			c.b.opt.ErrorLog(fmt.Errorf("ssekit/redis: entry %s: %w", x.ID, err))
			cur.tenants[tenant] = struct{}{}
			c.deliver(gapMessage(tenant, pre+x.ID, pre+cur.posStr, "unknown"))
		default:
			c.b.opt.ErrorLog(fmt.Errorf("ssekit/redis: entry %s of %s: %w", x.ID, cur.sh.stream, err))
		}
		cur.advance(id, x.ID)
	}
	cur.signal()
}

// gapAll delivers the gap event, with ID at (an entry of cur's shard), to
// every tenant of the shard this broker knows and every tenant the
// shard's heads hash names: the tenants of other shards lost nothing.
func (c *consumer) gapAll(ctx context.Context, cur *cursor, at, reason string) {
	sh := cur.sh
	last := cur.posStr
	names, err := c.b.client.HKeys(ctx, sh.heads).Result()
	if err != nil {
		c.b.opt.ErrorLog(fmt.Errorf("ssekit/redis: listing tenants for a gap: %w", err))
	}
	for _, t := range names {
		if t != "*" && t != "#" && core.ValidateTenant(t) == nil && c.b.shardOf(t) == sh {
			cur.tenants[t] = struct{}{}
		}
	}
	list := make([]string, 0, len(cur.tenants))
	for t := range cur.tenants {
		list = append(list, t)
	}
	slices.Sort(list)
	for _, t := range list {
		c.deliver(gapMessage(t, sh.prefix+at, sh.prefix+last, reason))
	}
}

// gapMessage is core's gap event, sent live to a whole tenant.
func gapMessage(tenant, id, lastID, reason string) *core.Message {
	data, _ := json.Marshal(struct {
		LastEventID string `json:"lastEventId"`
		Reason      string `json:"reason"`
	}{lastID, reason})
	return &core.Message{
		Target: core.Target{Tenant: tenant, Broadcast: true},
		Event:  core.Event{ID: id, Type: core.GapEventType, Data: string(data)},
	}
}

func (cur *cursor) advance(id streamID, raw string) {
	cur.mu.Lock()
	cur.pos = id
	cur.mu.Unlock()
	cur.posStr = raw
}

// signal wakes catch-up waiters once per batch.
func (cur *cursor) signal() {
	cur.mu.Lock()
	close(cur.adv)
	cur.adv = make(chan struct{})
	cur.mu.Unlock()
}
