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

// consumer reads the stream for one attached broker and calls deliver,
// one entry at a time, in stream order: the order is the same on every
// node because it is the stream's.
type consumer struct {
	b       *Backend
	deliver func(*core.Message)
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	mu  sync.Mutex    // guards pos, adv (written by run only)
	pos streamID      // newest entry delivered (or skipped past)
	adv chan struct{} // closed and replaced when pos advances

	posStr  string              // pos as Redis wrote it
	tenants map[string]struct{} // tenants this broker was delivered anything for
}

// nobody is a user no connection has: seed messages target it, so that
// even if a subscriber existed it would not receive them.
var nobody = uuid.Max

// positionEventType names the seed messages Attach delivers. They set
// where each tenant stands on this broker and reach no connection.
const positionEventType = "ssekit.position"

// Attach implements core.Bus. Before it returns, it tells the broker where
// every tenant stands (the newest entry of each, from the heads hash), so
// that a broker that has just started replays a reconnecting client
// exactly as one that ran all along; then it reads the stream from there
// on one goroutine. It fails when Redis cannot be read, and when a broker
// is already attached: use one Backend per broker.
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
	heads, err := b.client.HGetAll(ctx, b.heads).Result()
	if err != nil {
		return nil, fmt.Errorf("ssekit/redis: reading stream heads: %w", err)
	}
	c := &consumer{
		b:       b,
		deliver: deliver,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		adv:     make(chan struct{}),
		posStr:  originID,
		tenants: make(map[string]struct{}),
	}
	if id, ok := parseID(heads["*"]); ok {
		c.pos, c.posStr = id, heads["*"]
	}
	type seed struct {
		tenant string
		id     streamID
		raw    string
	}
	var seeds []seed
	for tenant, raw := range heads {
		id, ok := parseID(raw)
		if tenant == "*" || !ok || core.ValidateTenant(tenant) != nil || c.pos.less(id) {
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
		c.tenants[s.tenant] = struct{}{}
		deliver(&core.Message{
			Target: core.Target{Tenant: s.tenant, Users: []uuid.UUID{nobody}},
			Event:  core.Event{ID: s.raw, Type: positionEventType},
		})
	}
	b.cons = c
	go c.run()
	return c.halt, nil
}

// halt stops the consumer and waits for it; no delivery happens after it
// returns.
func (c *consumer) halt() {
	c.once.Do(func() { close(c.stop) })
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

func (c *consumer) run() {
	defer close(c.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-c.done:
		}
	}()
	o := &c.b.opt
	backoff := o.MinBackoff
	check, failing, idle := false, false, 0
	for !c.stopped() {
		if check {
			if err := c.verify(ctx); err != nil {
				if !c.stopped() {
					c.logOnce(&failing, err)
				}
				if !c.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, o.MaxBackoff)
				continue
			}
			check = false
		}
		res, err := c.b.client.XRead(ctx, &redis.XReadArgs{
			Streams: []string{c.b.stream, c.posStr},
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
			c.logOnce(&failing, err)
			check = true
			if !c.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, o.MaxBackoff)
			continue
		}
		failing, backoff, idle = false, o.MinBackoff, 0
		for _, s := range res {
			c.handle(ctx, s.Messages)
		}
	}
}

func (c *consumer) logOnce(failing *bool, err error) {
	if !*failing {
		*failing = true
		c.b.opt.ErrorLog(fmt.Errorf("ssekit/redis: reading %s (retrying with backoff): %w", c.b.stream, err))
	}
}

// verify checks, after a failed read or a long idle time, that the stream
// still continues from pos. When Redis lost it (restarted without
// persistence, or failed over to a replica that had not received the
// newest entries), every tenant is sent the gap event and reading resumes
// where the stream now ends.
func (c *consumer) verify(ctx context.Context) error {
	info, err := c.b.client.XInfoStream(ctx, c.b.stream).Result()
	if isNoSuchKey(err) {
		if !c.pos.isZero() {
			c.gapAll(ctx, originID, "unknown")
			c.advance(streamID{}, originID)
			c.signal()
		}
		return nil
	}
	if err != nil {
		return err
	}
	if last, ok := parseID(info.LastGeneratedID); ok && last.less(c.pos) {
		c.gapAll(ctx, info.LastGeneratedID, "unknown")
		c.advance(last, info.LastGeneratedID)
		c.signal()
	}
	return nil
}

// handle delivers a batch of entries. An entry whose predecessor ("g") is
// not the last entry delivered proves that entries were lost in between:
// trimmed before this node read them (it lagged by more than MaxLen), or
// gone with a Redis that restarted or failed over. Every tenant is then
// sent the gap event, positioned so that a replay from it is exact.
func (c *consumer) handle(ctx context.Context, msgs []redis.XMessage) {
	for _, x := range msgs {
		id, ok := parseID(x.ID)
		if !ok {
			continue
		}
		prev, _ := x.Values[fieldGlobalPrev].(string)
		if prev != c.posStr {
			reason := "expired"
			if p, ok := parseID(prev); !ok || p.less(c.pos) {
				reason = "unknown" // the stream went back: Redis lost entries
			}
			c.gapAll(ctx, prev, reason)
		}
		tenant, _ := x.Values[fieldTenant].(string)
		payload, _ := x.Values[fieldPayload].(string)
		m, err := decodeMessage(x.ID, tenant, []byte(payload))
		if c.b.lag > 0 {
			time.Sleep(c.b.lag)
		}
		switch {
		case err == nil:
			c.tenants[tenant] = struct{}{}
			c.deliver(m)
		case core.ValidateTenant(tenant) == nil:
			// Subscribers of the tenant miss this entry: tell them.
			c.b.opt.ErrorLog(fmt.Errorf("ssekit/redis: entry %s: %w", x.ID, err))
			c.tenants[tenant] = struct{}{}
			c.deliver(gapMessage(tenant, x.ID, c.posStr, "unknown"))
		default:
			c.b.opt.ErrorLog(fmt.Errorf("ssekit/redis: entry %s: %w", x.ID, err))
		}
		c.advance(id, x.ID)
	}
	c.signal()
}

// gapAll delivers the gap event, with ID at, to every tenant this broker
// knows and every tenant the heads hash names.
func (c *consumer) gapAll(ctx context.Context, at, reason string) {
	last := c.posStr
	names, err := c.b.client.HKeys(ctx, c.b.heads).Result()
	if err != nil {
		c.b.opt.ErrorLog(fmt.Errorf("ssekit/redis: listing tenants for a gap: %w", err))
	}
	for _, t := range names {
		if t != "*" && core.ValidateTenant(t) == nil {
			c.tenants[t] = struct{}{}
		}
	}
	list := make([]string, 0, len(c.tenants))
	for t := range c.tenants {
		list = append(list, t)
	}
	slices.Sort(list)
	for _, t := range list {
		c.deliver(gapMessage(t, at, last, reason))
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

func (c *consumer) advance(id streamID, raw string) {
	c.mu.Lock()
	c.pos = id
	c.mu.Unlock()
	c.posStr = raw
}

// signal wakes catch-up waiters once per batch.
func (c *consumer) signal() {
	c.mu.Lock()
	close(c.adv)
	c.adv = make(chan struct{})
	c.mu.Unlock()
}
