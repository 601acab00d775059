package core

import (
	"context"
	"time"
)

// CloseReason says why a stream ended.
type CloseReason string

// Close reasons reported to Observer.Disconnect and counted in Stats.
const (
	ReasonClientGone   CloseReason = "client_gone"   // the client went away or the request context ended
	ReasonSlowConsumer CloseReason = "slow_consumer" // the backlog left the history window, or the ClientBufferSize queue overflowed under Disconnect
	ReasonTimeout      CloseReason = "timeout"       // a write made no progress for ClientTimeout
	ReasonTokenExpired CloseReason = "token_expired" // Identity.ExpiresAt passed
	ReasonShutdown     CloseReason = "shutdown"      // the broker closed
	ReasonWriteError   CloseReason = "write_error"   // the transport failed a write
)

// DropReason says why an event did not reach a connection it was meant for.
type DropReason string

// Drop reasons reported to Observer.Drop and counted in Stats.
const (
	DropQueueFullOldest DropReason = "queue_full_oldest" // DropOldest discarded a queued event
	DropQueueFullNewest DropReason = "queue_full_newest" // DropNewest discarded the arriving event
	DropDisconnected    DropReason = "slow_consumer"     // the connection was cut as a slow consumer (see ErrSlowConsumer); replayable on reconnect
)

// PublishDone reports the outcome of one publish to Observer.Publish.
type PublishDone struct {
	ID string
	// Recipients counts the local connections the message was queued for
	// when delivery happened in-process before Publish returned; -1 when a
	// cluster Backend delivers it later.
	Recipients int
	Err        error
}

// FlushInfo describes one write of a connection to its Observer.
type FlushInfo struct {
	// Messages holds the live messages written by this flush, in order.
	// The slice is reused after the hook returns: do not keep it.
	Messages []*Message
	// Bytes is the number of bytes of this write (live events only:
	// the opening frame, replays and heartbeats are not reported).
	Bytes int
	// At is when the flush completed: At - PublishedAt is delivery latency.
	At time.Time
	// Backlog and BacklogBytes are what was still queued for the
	// connection after this flush: how far it runs behind. Within the
	// history window (Config.HistoryBytes) it is never cut.
	Backlog      int
	BacklogBytes int64
}

// ReplayInfo describes what a reconnecting client was replayed.
type ReplayInfo struct {
	LastEventID string
	Count       int
	// Gap is set when the client was sent the gap event because its
	// Last-Event-ID was older than the history or unknown.
	Gap bool
}

// Observer holds optional hooks that metrics and tracing layers fill in.
// Every field may be nil; a nil hook costs one comparison. Hooks observe:
// they run on the broker's hot paths, must not block, and nothing they do
// changes what is delivered (what a cluster backend needs at connect time,
// such as catching up, the broker asks of the Backend itself; see CatchUp
// and Presence). The context a hook receives for a
// connection is the one Connect returned, so a hook can keep per-connection
// state (such as a span) in it.
type Observer struct {
	// Connect runs when a connection is registered; the returned context is
	// handed to that connection's later hooks.
	Connect func(ctx context.Context, s *Subscription) context.Context
	// Disconnect runs once when a connection ends.
	Disconnect func(ctx context.Context, s *Subscription, reason CloseReason)
	// Reject runs when Connect or Subscribe refuses a request.
	Reject func(ctx context.Context, tenant string, err error)
	// Publish runs before a message is handed to the Backend; it may
	// add to m.Metadata, and the function it returns (if any) runs when
	// publishing is done.
	Publish func(ctx context.Context, m *Message) func(PublishDone)
	// Flush runs after each successful write of a connection.
	Flush func(ctx context.Context, s *Subscription, f FlushInfo)
	// Drop runs when events are dropped for a connection: n is 1 for the
	// drop policies, and for DropDisconnected the events the connection
	// lost with its queue (m is the one that overflowed it). It runs on the
	// publisher's goroutine, under the routing lock: keep it short.
	Drop func(ctx context.Context, s *Subscription, m *Message, reason DropReason, n int)
	// Replay runs after a reconnecting client was replayed its missed events.
	Replay func(ctx context.Context, s *Subscription, r ReplayInfo)
}

// JoinObservers returns an Observer that calls each of obs in order.
// Nil entries are skipped.
func JoinObservers(obs ...*Observer) *Observer {
	var list []*Observer
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	j := &Observer{}
	for _, o := range list {
		if o.Connect != nil {
			prev, f := j.Connect, o.Connect
			j.Connect = func(ctx context.Context, s *Subscription) context.Context {
				if prev != nil {
					ctx = prev(ctx, s)
				}
				return f(ctx, s)
			}
		}
		if o.Disconnect != nil {
			prev, f := j.Disconnect, o.Disconnect
			j.Disconnect = func(ctx context.Context, s *Subscription, r CloseReason) {
				if prev != nil {
					prev(ctx, s, r)
				}
				f(ctx, s, r)
			}
		}
		if o.Reject != nil {
			prev, f := j.Reject, o.Reject
			j.Reject = func(ctx context.Context, tenant string, err error) {
				if prev != nil {
					prev(ctx, tenant, err)
				}
				f(ctx, tenant, err)
			}
		}
		if o.Publish != nil {
			prev, f := j.Publish, o.Publish
			j.Publish = func(ctx context.Context, m *Message) func(PublishDone) {
				var d1 func(PublishDone)
				if prev != nil {
					d1 = prev(ctx, m)
				}
				d2 := f(ctx, m)
				return func(d PublishDone) {
					if d2 != nil {
						d2(d)
					}
					if d1 != nil {
						d1(d)
					}
				}
			}
		}
		if o.Flush != nil {
			prev, f := j.Flush, o.Flush
			j.Flush = func(ctx context.Context, s *Subscription, fi FlushInfo) {
				if prev != nil {
					prev(ctx, s, fi)
				}
				f(ctx, s, fi)
			}
		}
		if o.Drop != nil {
			prev, f := j.Drop, o.Drop
			j.Drop = func(ctx context.Context, s *Subscription, m *Message, r DropReason, n int) {
				if prev != nil {
					prev(ctx, s, m, r, n)
				}
				f(ctx, s, m, r, n)
			}
		}
		if o.Replay != nil {
			prev, f := j.Replay, o.Replay
			j.Replay = func(ctx context.Context, s *Subscription, r ReplayInfo) {
				if prev != nil {
					prev(ctx, s, r)
				}
				f(ctx, s, r)
			}
		}
	}
	return j
}
