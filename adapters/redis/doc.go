// Package sseredis runs ssekit brokers as one cluster on Redis: a Backend
// is the core.Bus and the core.History of every node, on one Redis stream,
// and a Presence answers who is online across the nodes.
//
// Its import path is github.com/ssekit/ssekit/adapters/redis; the package
// is named sseredis so that it never collides with go-redis (package
// redis), which every user of it imports too.
//
// The happy path, on each node:
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
//	presence, _ := sseredis.NewPresence(client, sseredis.PresenceOptions{})
//	broker, err := core.New(core.Config{Bus: r, History: r,
//		Observer: core.JoinObservers(r.Observer(), presence.Observer())})
//	// ... serve broker with any adapter; publish on any node ...
//	defer func() { broker.Close(ctx); presence.Close(ctx); r.Close(); client.Close() }()
//
// # How it works
//
// Publish appends the event to the stream (a Lua script: XADD, trimmed
// approximately to Options.MaxLen and optionally by Options.MaxAge) and
// returns its entry ID, which becomes the SSE event ID. Concurrent
// publishes go to Redis together, one script call per batch. Every node
// reads the stream with XREAD BLOCK on one goroutine and hands each entry
// to its broker, so every node delivers the same events in the same order
// with the same IDs, and a client can resume with Last-Event-ID on any
// node: Replay reads the stream with XRANGE.
//
// Each entry names the entry before it in the stream and the previous entry
// of its tenant. That chain lets a reader prove it missed nothing: a node
// whose next entry does not follow the last one it delivered (it lagged
// behind the trimming, or Redis lost entries in a restart or a failover)
// sends every tenant the gap event (core.GapEventType) at once, and Replay
// tells a trimmed Last-Event-ID (core.ErrEventExpired) from one Redis never
// held or lost (core.ErrEventUnknown). Either way the client gets the gap
// event and refetches its state: an event Publish accepted is delivered or
// announced as lost, never silently dropped.
//
// A message with an IdempotencyKey is appended at most once per tenant
// while its entry is in the stream, whichever node publishes it: a retry
// after a failed publish (which may have been appended anyway) returns the
// first entry's ID and appends nothing. MaxRetries: -1 leaves retries to
// the application, and ContextTimeoutEnabled lets Options.PublishTimeout
// bound a call to a Redis that stalls.
//
// Observer's Connect hook waits (up to Options.CatchUpTimeout) for this node
// to reach a reconnecting client's Last-Event-ID when the client comes from
// a node that was ahead; without it the client could be sent those few
// events twice. Attach tells a newly started broker where each tenant
// stands, so it replays exactly like a node that ran all along.
//
// # Redis setups
//
// New takes a redis.UniversalClient: a single Redis (*redis.Client), a
// Sentinel-managed primary (redis.NewFailoverClient) or Redis Cluster
// (*redis.ClusterClient). The stream and its index share the hash tag
// {bus}, so they live in one Cluster slot; each tenant's presence keys
// share the tag {p:tenant}. Cluster gives availability (replicas, failover)
// and spreads presence, but the event stream is one key on one shard: the
// bus does not scale writes with shards (every node reads every event
// anyway). Redis 7.0 or later is required. See README.md for measurements
// and failure behaviour.
package sseredis
