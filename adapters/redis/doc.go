// Package sseredis runs ssekit brokers as one cluster on Redis: a Backend
// is the whole core.Backend of every node (bus, history, catch-up and
// cluster-wide presence), on Redis streams.
//
// Its import path is github.com/ssekit/ssekit/adapters/redis; the package
// is named sseredis so that it never collides with go-redis (package
// redis), which every user of it imports too.
//
// The happy path, on each node, is one line of wiring:
//
//	import (
//		"github.com/redis/go-redis/v9"
//		sseredis "github.com/ssekit/ssekit/adapters/redis"
//	)
//
//	client := redis.NewClient(&redis.Options{Addr: "redis:6379", MaxRetries: -1, ContextTimeoutEnabled: true})
//	r, err := sseredis.New(client, sseredis.Options{})
//	if err != nil {
//		log.Fatal(err)
//	}
//	broker, err := core.New(core.Config{Backend: r})
//	// ... serve broker with any adapter; publish on any node ...
//	defer func() { broker.Close(ctx); r.Close(); client.Close() }()
//
// # How it works
//
// The event log is Options.Shards streams; each tenant belongs to one, by
// a stable hash (FNV-1a) of its name. Publish appends the event to its
// tenant's stream (a Lua script: XADD, trimmed approximately to
// Options.MaxLen and optionally by Options.MaxAge) and returns its entry
// ID, prefixed with the shard ("3:1712345678901-0") when there are
// several, which becomes the SSE event ID. Concurrent publishes to a shard
// go to Redis together, one script call per batch. Every node reads every
// stream and hands each entry to its broker, so every node delivers each
// tenant's events in the same order with the same IDs, and a client can
// resume with Last-Event-ID on any node: Replay reads the tenant's stream
// with XRANGE. An ID that names another shard than its tenant's (the
// number of shards changed) is core.ErrEventUnknown: the client gets the
// gap event.
//
// Each entry names the entry before it in its stream and the previous
// entry of its tenant. That chain lets a reader prove it missed nothing: a
// node whose next entry of a shard does not follow the last one it
// delivered (it lagged behind the trimming, or Redis lost entries in a
// restart or a failover) sends every tenant of that shard the gap event
// (core.GapEventType) at once, and Replay tells a trimmed Last-Event-ID
// (core.ErrEventExpired) from one Redis never held or lost
// (core.ErrEventUnknown). Either way the client gets the gap event and
// refetches its state: an event Publish accepted is delivered or announced
// as lost, never silently dropped.
//
// A message with an IdempotencyKey is appended at most once per tenant
// while its entry is in the stream, whichever node publishes it: a retry
// after a failed publish (which may have been appended anyway) returns the
// first entry's ID and appends nothing. MaxRetries: -1 leaves retries to
// the application, and ContextTimeoutEnabled lets Options.PublishTimeout
// bound a call to a Redis that stalls.
//
// The broker finds the Backend's optional capabilities itself. CatchUp
// waits (up to Options.CatchUpTimeout) for this node to reach a
// reconnecting client's Last-Event-ID when the client comes from a node
// that was ahead; without it the client could be sent those few events
// twice. Attach tells a newly started broker where each tenant stands, so
// it replays exactly like a node that ran all along. Presence (on unless
// Options.Presence.Off) makes the broker's IsUserOnline, UserConnections,
// OnlineUsers and Stats().Cluster count every node's connections: each
// node keeps its own counts in Redis and publishes every change on Redis
// Pub/Sub, and every node answers from a view it keeps in memory, so a
// query costs no round trip. A change shows on the other nodes within
// milliseconds (within Presence.TTL/3 if a message was lost, by the
// periodic resync), and a node that dies without closing drops out of
// every view at most Presence.TTL (default 30s) after its last heartbeat.
//
// # Readers and shards
//
// With a *redis.Client (a single Redis, or a Sentinel-managed primary with
// redis.NewFailoverClient) every key is on one server: one XREAD BLOCK
// reads all shards, on one goroutine, and the default is one shard, since
// a single server executes every script and every read whatever the
// layout (more shards only split publish batches and lengthen each XREAD:
// on one redis-server, 64 publishers through a broker reached 73,000 to
// 82,000 events/s with one shard, 40,000 to 51,000 with 16). With any
// other client, such as *redis.ClusterClient, XREAD cannot span slots: each
// node runs one blocking read loop per shard, and the default is 3
// shards, whose hash tags are chosen to spread evenly over the slot range
// and so over the masters (one on each of 3), so that publishing scales
// with masters. More shards than masters only cost (smaller batches, more
// read loops): on a larger cluster set Options.Shards to the number of
// masters, once. Shards deliver concurrently, which core allows: it
// serialises per tenant, and a tenant is in one shard. Every node of a
// cluster must use the same number of shards. Redis 7.0 or later is
// required. See README.md for measurements and failure behaviour.
package sseredis
