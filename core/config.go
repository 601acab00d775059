package core

import (
	"errors"
	"fmt"
	"time"
)

// Defaults applied by New to every zero Config field.
const (
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultClientTimeout     = 5 * time.Minute
	DefaultRetryHint         = 3 * time.Second
	DefaultMaxEventSize      = 64 << 10
	// DefaultHistoryBytes holds a burst of 20,000 events of 1 KiB (about
	// 40 MiB as Message.Cost counts them) for its slowest reader, with
	// room to spare. It is a bound, not an allocation: a quiet broker
	// holds what was published, no more.
	DefaultHistoryBytes = 64 << 20
	// DefaultMaxTopicsPerConnection is far more than a page subscribes
	// to, and small enough that one stream cannot cost the server more
	// than a few idle streams do.
	DefaultMaxTopicsPerConnection = 64
	// MaxLastEventIDLen bounds the Last-Event-ID a client may send; the
	// kit's own IDs are far shorter.
	MaxLastEventIDLen = 256
	// DefaultHistoryAge covers a client's reconnect after a network
	// change or a laptop's short sleep.
	DefaultHistoryAge = 10 * time.Minute

	// MinHeartbeatInterval is the shortest heartbeat Validate accepts: a
	// shorter one costs every idle connection a write for no benefit, since
	// proxies time out idle streams after tens of seconds, not seconds.
	MinHeartbeatInterval = 5 * time.Second

	// NoHistory, as Config.HistorySize, switches replay off: a client that
	// reconnects with Last-Event-ID always gets the gap event.
	NoHistory = -1
)

// SlowConsumerPolicy says what happens when an event arrives for a
// connection whose queue already holds Config.ClientBufferSize events. It
// applies only when ClientBufferSize is set: by default a backlog is
// bounded by the history window instead (see Config.HistoryBytes).
type SlowConsumerPolicy int

const (
	// Disconnect closes the connection. Nothing is lost within the history
	// window: the client reconnects with Last-Event-ID and is replayed what
	// it missed.
	Disconnect SlowConsumerPolicy = iota
	// DropOldest discards the oldest queued event to make room.
	DropOldest
	// DropNewest discards the arriving event.
	DropNewest
)

// String returns the policy's name as used in flags and logs.
func (p SlowConsumerPolicy) String() string {
	switch p {
	case Disconnect:
		return "disconnect"
	case DropOldest:
		return "drop-oldest"
	case DropNewest:
		return "drop-newest"
	}
	return fmt.Sprintf("SlowConsumerPolicy(%d)", int(p))
}

// ParseSlowConsumerPolicy is the inverse of SlowConsumerPolicy.String.
func ParseSlowConsumerPolicy(s string) (SlowConsumerPolicy, error) {
	for _, p := range []SlowConsumerPolicy{Disconnect, DropOldest, DropNewest} {
		if p.String() == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown slow consumer policy %q (want disconnect, drop-oldest or drop-newest)", ErrInvalidConfig, s)
}

// Config tunes a Broker. The zero value of every field means its default, so
// Config{} is a working configuration; the table in docs/OPERATIONS.md gives
// each default, rule and tuning advice.
type Config struct {
	// ClientBufferSize, when positive, caps each connection's backlog at
	// that many events, and SlowConsumer says what happens beyond it. By
	// default (0) a backlog is not counted in events: it is references to
	// the shared, encoded events, bounded by the history window
	// (HistoryBytes, HistoryAge). A client that keeps reading is never cut
	// while the next event it needs is still held; one whose backlog
	// reaches past the window is cut, and gets on reconnect what the
	// History still holds, or the gap event.
	ClientBufferSize int
	// SlowConsumer is the policy when a ClientBufferSize queue is full
	// (default Disconnect).
	SlowConsumer SlowConsumerPolicy
	// HeartbeatInterval is how long a stream may stay silent before a
	// comment line is written to keep proxies from closing it (default 30s,
	// must be >= 5s).
	HeartbeatInterval time.Duration
	// ClientTimeout closes a connection whose writes make no progress for
	// this long (default 5m, must be >= 2 x HeartbeatInterval). The write
	// deadline is renewed lazily, to spare a timer update per write, so a
	// stalled connection is closed after between 1 and 1.5 x ClientTimeout.
	ClientTimeout time.Duration
	// HistoryBytes bounds the memory of the events this broker holds, as
	// Message.Cost counts them: the default in-memory History, and how far
	// back a connection's backlog may reach (default 64 MiB). The process
	// holds this much event memory at most, plus what a connection cut for
	// reaching past it still references until its write ends.
	HistoryBytes int64
	// HistoryAge bounds how long events are held, on the same terms
	// (default 10m).
	HistoryAge time.Duration
	// HistorySize, when positive, also caps the default in-memory History
	// at that many events; NoHistory switches replay off. Default 0: no
	// cap beyond HistoryBytes and HistoryAge. Ignored when Backend is set.
	HistorySize int
	// RetryHint is the reconnection delay sent to clients in the retry
	// field, with up to 50% random jitter added so that a restart does not
	// bring every client back in the same millisecond (default 3s).
	RetryHint time.Duration
	// MaxConnections caps open connections on this broker (0: unlimited).
	MaxConnections int
	// MaxConnectionsPerUser caps one user's open connections within a
	// tenant (0: unlimited). Anonymous connections are not counted.
	MaxConnectionsPerUser int
	// MaxTopicsPerConnection caps the topics of one connection, at
	// Subscribe and through AddTopics (default 64). Each topic costs an
	// index entry, so without a cap one stream could hold the memory of
	// hundreds.
	MaxTopicsPerConnection int
	// FlushInterval, when positive, makes each connection write at most
	// once per interval: the first event after a quiet spell is written at
	// once, and what arrives during the interval goes out together in the
	// next write. It trades up to one interval of latency for far fewer
	// writes under bursts (each write is a system call per connection).
	// Default 0: write as soon as events are queued; a writer that wakes
	// takes everything pending, so bursts coalesce without a timer.
	FlushInterval time.Duration
	// MaxEventSize caps the encoded size of one event in bytes, id field
	// excluded (default 64 KiB, at most DefaultMaxLineSize, 1 MiB). The cap
	// exists because a Decoder, and so the Go client, refuses a line over
	// DefaultMaxLineSize, and one data line can be nearly the whole event:
	// a larger MaxEventSize would let the broker accept events that its own
	// client cannot read.
	MaxEventSize int

	// AnnounceConnection sends every new stream a ConnectedEventType event
	// carrying its connection ID, so a page can later ask its server to
	// change that connection's topics (Broker.AddTopics).
	AnnounceConnection bool

	// Backend numbers, keeps and carries events: a cluster's whole wiring
	// is this one field (the Redis backend, for one). Nil means a
	// MemoryBackend bounded by HistoryBytes and HistoryAge (and by
	// HistorySize when set).
	Backend Backend
	// Authenticator identifies connecting clients in Connect. Nil means
	// every connection is anonymous in the default tenant.
	Authenticator Authenticator
	// Authorizer decides which topics an identity may subscribe to. Nil
	// allows every valid topic.
	Authorizer Authorizer
	// Observer receives lifecycle hooks for metrics and tracing. Nil
	// observes nothing and costs nothing.
	Observer *Observer
}

// Validate reports every rule the configuration breaks, each error naming
// its field and wrapping ErrInvalidConfig. Zero fields are valid: they mean
// the default.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, rule string, got any) {
		errs = append(errs, fmt.Errorf("%w: %s must be %s, got %v", ErrInvalidConfig, field, rule, got))
	}
	if c.ClientBufferSize < 0 {
		bad("ClientBufferSize", ">= 0", c.ClientBufferSize)
	}
	if c.HistoryBytes < 0 {
		bad("HistoryBytes", ">= 0", c.HistoryBytes)
	}
	if c.HistoryAge < 0 {
		bad("HistoryAge", ">= 0", c.HistoryAge)
	}
	if c.SlowConsumer < Disconnect || c.SlowConsumer > DropNewest {
		bad("SlowConsumer", "Disconnect, DropOldest or DropNewest", c.SlowConsumer)
	}
	hb := c.HeartbeatInterval
	if hb == 0 {
		hb = DefaultHeartbeatInterval
	}
	if hb < MinHeartbeatInterval {
		bad("HeartbeatInterval", ">= "+MinHeartbeatInterval.String(), c.HeartbeatInterval)
	}
	if c.ClientTimeout != 0 && c.ClientTimeout < 2*hb {
		bad("ClientTimeout", ">= 2 x HeartbeatInterval ("+(2*hb).String()+")", c.ClientTimeout)
	}
	if c.HistorySize < NoHistory {
		bad("HistorySize", ">= 0 (or NoHistory)", c.HistorySize)
	}
	if c.RetryHint < 0 {
		bad("RetryHint", ">= 0", c.RetryHint)
	}
	if c.MaxConnections < 0 {
		bad("MaxConnections", ">= 0", c.MaxConnections)
	}
	if c.MaxConnectionsPerUser < 0 {
		bad("MaxConnectionsPerUser", ">= 0", c.MaxConnectionsPerUser)
	}
	if c.MaxTopicsPerConnection < 0 {
		bad("MaxTopicsPerConnection", ">= 0", c.MaxTopicsPerConnection)
	}
	if c.FlushInterval < 0 || c.FlushInterval > hb {
		bad("FlushInterval", "between 0 and HeartbeatInterval", c.FlushInterval)
	}
	if c.MaxEventSize < 0 {
		bad("MaxEventSize", ">= 0", c.MaxEventSize)
	}
	if c.MaxEventSize > DefaultMaxLineSize {
		bad("MaxEventSize", fmt.Sprintf("<= %d (DefaultMaxLineSize, the longest line the Go client's Decoder reads)", DefaultMaxLineSize), c.MaxEventSize)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.HistoryBytes == 0 {
		c.HistoryBytes = DefaultHistoryBytes
	}
	if c.HistoryAge == 0 {
		c.HistoryAge = DefaultHistoryAge
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.ClientTimeout == 0 {
		c.ClientTimeout = max(DefaultClientTimeout, 2*c.HeartbeatInterval)
	}
	if c.RetryHint == 0 {
		c.RetryHint = DefaultRetryHint
	}
	if c.MaxEventSize == 0 {
		c.MaxEventSize = DefaultMaxEventSize
	}
	if c.MaxTopicsPerConnection == 0 {
		c.MaxTopicsPerConnection = DefaultMaxTopicsPerConnection
	}
	return c
}
