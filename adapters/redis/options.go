package sseredis

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ssekit/ssekit/core"
)

// Defaults applied by New to every zero Options field.
const (
	DefaultPrefix         = "ssekit"
	DefaultMaxLen         = 10000
	DefaultCatchUpTimeout = time.Second
	DefaultBlockTimeout   = 200 * time.Millisecond
	DefaultMinBackoff     = 50 * time.Millisecond
	DefaultMaxBackoff     = 2 * time.Second
	DefaultPublishTimeout = 5 * time.Second
	DefaultMaxBatch       = 256
	// DefaultShards is the number of streams with a single Redis or a
	// Sentinel-managed primary (*redis.Client): one server runs every
	// script and every read whatever the layout, so more streams would
	// only split publish batches and lengthen every XREAD.
	DefaultShards = 1
	// DefaultClusterShards is the number of streams with any other
	// client, such as *redis.ClusterClient: one per master of the
	// smallest Redis Cluster (3 masters), whose aligned hash tags put one
	// stream on each. More shards than masters add no capacity and cost
	// every event more (smaller publish and read batches, a read loop per
	// shard on every node): on 3 masters, 16 shards cost the busiest
	// server 27-31 µs of CPU per event against 13-15 µs with 3 (see
	// docs/BENCHMARKS.md). Set Options.Shards to the number of masters
	// you plan for on a larger cluster.
	DefaultClusterShards = 3
	// MaxShards bounds Options.Shards.
	MaxShards = 1024
)

// NoTrim, as Options.MaxLen, keeps every entry (trim by MaxAge only, or
// not at all).
const NoTrim = -1

// Options tunes a Backend. The zero value of every field means its default.
type Options struct {
	// Prefix starts every key the backend writes (default "ssekit"), so
	// several applications can share a Redis. It must not contain "{" or
	// "}": the keys carry their own hash tags.
	Prefix string
	// Shards is the number of streams the event log is split into (at
	// most MaxShards). Each tenant belongs to one shard, chosen by a
	// stable hash of its name, and each shard has its own stream, heads
	// and idempotency keys under its own hash tag, so that in Redis
	// Cluster the shards spread over the masters. The default is
	// DefaultShards (1) for a *redis.Client (single Redis or Sentinel)
	// and DefaultClusterShards (3) for any other client. Every node of a
	// cluster must use the same value: changing it moves tenants to other
	// streams, and their clients get the gap event once.
	Shards int
	// MaxLen trims each shard's stream, approximately (XADD MAXLEN ~), to
	// this many entries of all its tenants together (default 10,000;
	// NoTrim keeps all). It is the replay window: a client that was away
	// for more events than this gets the gap event.
	MaxLen int64
	// MaxAge also trims entries older than this (XTRIM MINID ~, against
	// the Redis server's clock); 0 trims by MaxLen only.
	MaxAge time.Duration
	// CatchUpTimeout bounds how long CatchUp (which the broker calls
	// before it registers a client that sent a Last-Event-ID) waits for
	// this node to have delivered that ID, when the client comes from a
	// node that was ahead (default 1s).
	CatchUpTimeout time.Duration
	// BlockTimeout is how long one XREAD waits for new entries (default
	// 200ms). Detaching takes up to this long, and an idle consumer
	// checks the stream's continuity about every 10 of them.
	BlockTimeout time.Duration
	// MinBackoff and MaxBackoff bound the delay between read attempts
	// while Redis is unreachable (defaults 50ms and 2s, doubling).
	MinBackoff, MaxBackoff time.Duration
	// PublishTimeout bounds one publish round trip (default 5s).
	PublishTimeout time.Duration
	// MaxBatch caps how many concurrent publishes are pipelined in one
	// round trip (default 256).
	MaxBatch int
	// Presence tunes cluster-wide presence, on unless Presence.Off: the
	// broker's IsUserOnline, UserConnections, OnlineUsers and
	// Stats.Cluster then count every node's connections.
	Presence PresenceOptions
	// ErrorLog receives errors that no caller sees: failed reads of the
	// stream, malformed entries, failed presence writes. The default
	// discards them.
	ErrorLog func(error)
}

func (o Options) withDefaults() (Options, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	var errs []error
	bad := func(field, rule string, got any) {
		errs = append(errs, fmt.Errorf("%w: ssekit/redis: %s must be %s, got %v", core.ErrInvalidConfig, field, rule, got))
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		bad("Prefix", "free of { and }", o.Prefix)
	}
	switch {
	case o.MaxLen == 0:
		o.MaxLen = DefaultMaxLen
	case o.MaxLen < NoTrim:
		bad("MaxLen", "> 0 or NoTrim", o.MaxLen)
	}
	if o.Shards < 0 || o.Shards > MaxShards {
		bad("Shards", fmt.Sprintf("between 1 and %d (0: the default)", MaxShards), o.Shards)
	}
	if o.MaxAge < 0 {
		bad("MaxAge", ">= 0", o.MaxAge)
	}
	def := func(d *time.Duration, v time.Duration, field string) {
		if *d == 0 {
			*d = v
		} else if *d < 0 {
			bad(field, "> 0", *d)
		}
	}
	def(&o.CatchUpTimeout, DefaultCatchUpTimeout, "CatchUpTimeout")
	def(&o.BlockTimeout, DefaultBlockTimeout, "BlockTimeout")
	def(&o.MinBackoff, DefaultMinBackoff, "MinBackoff")
	def(&o.MaxBackoff, DefaultMaxBackoff, "MaxBackoff")
	def(&o.PublishTimeout, DefaultPublishTimeout, "PublishTimeout")
	if o.MaxBackoff < o.MinBackoff {
		bad("MaxBackoff", ">= MinBackoff", o.MaxBackoff)
	}
	if o.BlockTimeout < time.Millisecond {
		bad("BlockTimeout", ">= 1ms", o.BlockTimeout)
	}
	switch {
	case o.MaxBatch == 0:
		o.MaxBatch = DefaultMaxBatch
	case o.MaxBatch < 0:
		bad("MaxBatch", ">= 1", o.MaxBatch)
	}
	switch {
	case o.Presence.TTL == 0:
		o.Presence.TTL = DefaultPresenceTTL
	case o.Presence.TTL < 100*time.Millisecond:
		bad("Presence.TTL", ">= 100ms", o.Presence.TTL)
	}
	if o.ErrorLog == nil {
		o.ErrorLog = func(error) {}
	}
	return o, errors.Join(errs...)
}
