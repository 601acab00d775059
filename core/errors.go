package core

import (
	"errors"
	"fmt"

	"github.com/ssekit/ssekit/core/sse"
)

// Sentinel errors. Every error the broker returns wraps one of these, so
// callers compare with errors.Is; adapters turn a Connect error into an
// HTTP answer with Broker.Reject.
var (
	// ErrInvalidID reports an event ID containing CR, LF, NUL or another
	// control character, which would let a value inject SSE fields. It is
	// sse.ErrInvalidID.
	ErrInvalidID = sse.ErrInvalidID
	// ErrInvalidType reports an event type that is empty where one is
	// required, or contains CR, LF, NUL or another control character. It
	// is sse.ErrInvalidType.
	ErrInvalidType = sse.ErrInvalidType
	// ErrInvalidUTF8 reports event text that is not valid UTF-8: the SSE
	// stream is UTF-8, and a browser would silently rewrite such bytes. It
	// is sse.ErrInvalidUTF8.
	ErrInvalidUTF8 = sse.ErrInvalidUTF8
	// ErrInvalidRetry reports a negative retry hint. It is
	// sse.ErrInvalidRetry.
	ErrInvalidRetry = sse.ErrInvalidRetry
	// ErrEventTooLarge reports an encoded event larger than
	// Config.MaxEventSize, or a line or event over a Decoder's limits. It
	// is sse.ErrEventTooLarge.
	ErrEventTooLarge = sse.ErrEventTooLarge
	// ErrInvalidUser reports a missing (nil UUID) or malformed user ID.
	ErrInvalidUser = errors.New("ssekit: invalid user ID")
	// ErrInvalidTopic reports a topic name that breaks the topic rules
	// (see ValidateTopic).
	ErrInvalidTopic = errors.New("ssekit: invalid topic")
	// ErrInvalidTenant reports a tenant name that breaks the tenant rules
	// (see ValidateTenant).
	ErrInvalidTenant = errors.New("ssekit: invalid tenant")
	// ErrNoTarget reports a Message whose Target names no recipient.
	ErrNoTarget = errors.New("ssekit: message has no target")
	// ErrInvalidData reports data that could not be marshalled to JSON.
	ErrInvalidData = errors.New("ssekit: invalid event data")
	// ErrInvalidConfig reports a Config that breaks a validation rule.
	ErrInvalidConfig = errors.New("ssekit: invalid config")

	// ErrTooManyConnections reports that Config.MaxConnections is reached.
	ErrTooManyConnections = errors.New("ssekit: too many connections")
	// ErrTooManyUserConnections reports that Config.MaxConnectionsPerUser is
	// reached for this user.
	ErrTooManyUserConnections = errors.New("ssekit: too many connections for user")
	// ErrUnauthenticated reports a request whose identity could not be
	// established (missing, invalid or expired credentials).
	ErrUnauthenticated = errors.New("ssekit: unauthenticated")
	// ErrForbidden reports an authenticated identity asking for a topic or
	// tenant it may not have.
	ErrForbidden = errors.New("ssekit: forbidden")
	// ErrBadRequest reports malformed connection parameters.
	ErrBadRequest = errors.New("ssekit: bad request")
	// ErrUnavailable reports a failure the client should retry later: an
	// Authenticator or Authorizer that could not reach what it depends on
	// (a JWKS endpoint, a database). Wrap it to ask for a retry hint instead
	// of a final 401 or 403; context deadline errors are treated the same.
	ErrUnavailable = errors.New("ssekit: temporarily unavailable")
	// ErrTooManyTopics reports a connection asking for more topics than
	// Config.MaxTopicsPerConnection allows.
	ErrTooManyTopics = errors.New("ssekit: too many topics")

	// ErrClosed reports an operation on a broker that has been closed.
	ErrClosed = errors.New("ssekit: broker closed")
	// ErrUnknownConnection reports a connection ID the broker does not hold.
	ErrUnknownConnection = errors.New("ssekit: unknown connection")
	// ErrFlushUnsupported reports a transport that cannot flush a response,
	// which makes streaming impossible.
	ErrFlushUnsupported = errors.New("ssekit: transport cannot flush")
)

// Replay errors, returned by History.Replay. The broker answers both by
// sending the client the gap event (see GapEventType).
var (
	// ErrHistoryGap reports that the events after a Last-Event-ID cannot be
	// replayed in full.
	ErrHistoryGap = errors.New("ssekit: history gap")
	// ErrEventExpired reports a Last-Event-ID older than the history holds.
	ErrEventExpired = fmt.Errorf("%w: event is older than the history", ErrHistoryGap)
	// ErrEventUnknown reports a Last-Event-ID this history never issued,
	// for example one from before a restart.
	ErrEventUnknown = fmt.Errorf("%w: unknown event ID", ErrHistoryGap)
)

// Stream end errors, returned by Serve.
var (
	// ErrSlowConsumer reports a connection cut because its backlog left
	// the history window (Config.HistoryBytes, HistoryAge), or because its
	// ClientBufferSize queue overflowed under the Disconnect policy. The
	// client is replayed on reconnect what the History still holds.
	ErrSlowConsumer = errors.New("ssekit: slow consumer disconnected")
	// ErrWriteTimeout reports a connection whose writes made no progress
	// for Config.ClientTimeout.
	ErrWriteTimeout = errors.New("ssekit: write timeout")
	// ErrTokenExpired reports a stream ended because Identity.ExpiresAt
	// passed.
	ErrTokenExpired = errors.New("ssekit: credentials expired")
	// ErrStreamPanic reports a stream ended because something it called (the
	// Stream, an Observer hook) panicked. Serve recovers the panic, so one
	// connection never ends the process, and still unregisters it.
	ErrStreamPanic = errors.New("ssekit: stream panicked")
)

// ErrInvalidIdempotencyKey reports a Message.IdempotencyKey that is too
// long or holds bytes other than visible ASCII (see ValidateIdempotencyKey).
var ErrInvalidIdempotencyKey = errors.New("ssekit: invalid idempotency key")
