package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Request is the transport-neutral view of an incoming stream request that
// adapters build from their framework's request type.
type Request interface {
	// Header returns the first value of the named header, or "".
	Header(name string) string
	// Query returns every value of the named query parameter.
	Query(name string) []string
	// Cookie returns the value of the named cookie, or "".
	Cookie(name string) string
	// RemoteAddr returns the client's network address, for logs and limits.
	RemoteAddr() string
}

// Identity is who a connection belongs to.
type Identity struct {
	// Tenant isolates users, topics and history; "" is the default tenant.
	Tenant string
	// User identifies the person behind the connection; uuid.Nil is
	// anonymous (receives topic pushes and broadcasts, never user pushes).
	User uuid.UUID
	// ExpiresAt, when set, ends the stream at that time with a reconnect
	// hint, so a client comes back with fresh credentials.
	ExpiresAt time.Time
	// Claims is whatever the Authenticator wants its Authorizer to see
	// (for example parsed token claims). The broker never reads it.
	Claims any
}

// Authenticator establishes the identity behind a stream request.
//
// Wrap ErrUnavailable in an error when the identity cannot be established
// for now (a key or session store is down): the client is told to retry
// (see Broker.Reject) instead of receiving a final 401. A
// context.DeadlineExceeded or other timeout counts as ErrUnavailable.
// Errors that wrap ErrForbidden or ErrBadRequest keep their class, and
// any other error is treated as ErrUnauthenticated. The error's text never
// reaches the client; it goes to Config.Observer's Reject hook, for logs.
type Authenticator interface {
	Authenticate(ctx context.Context, r Request) (Identity, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(ctx context.Context, r Request) (Identity, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, r Request) (Identity, error) {
	return f(ctx, r)
}

// Authorizer decides whether an identity may subscribe to topics. It returns
// an error wrapping ErrForbidden to refuse, and one wrapping ErrUnavailable
// when it cannot decide for now (its ACL database is down), so the client
// retries later instead of giving up on a 403. A context.DeadlineExceeded
// or other timeout counts as ErrUnavailable; any other error is treated
// as ErrForbidden. As with Authenticator, the error's text is for logs
// only.
type Authorizer interface {
	Authorize(ctx context.Context, id Identity, topics []string) error
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, id Identity, topics []string) error

// Authorize calls f.
func (f AuthorizerFunc) Authorize(ctx context.Context, id Identity, topics []string) error {
	return f(ctx, id, topics)
}

// InsecureQueryAuthenticator trusts the client to name itself: the user
// UUID comes from the query parameter "user" and the tenant from "tenant".
// It exists for demos and tests; anyone can claim any user with it. A
// request without "user" is anonymous.
func InsecureQueryAuthenticator() Authenticator {
	return AuthenticatorFunc(func(_ context.Context, r Request) (Identity, error) {
		var id Identity
		if t := r.Query("tenant"); len(t) > 0 {
			id.Tenant = t[0]
		}
		if u := r.Query("user"); len(u) > 0 && u[0] != "" {
			parsed, err := uuid.Parse(u[0])
			if err != nil {
				return Identity{}, fmt.Errorf("%w: %w: user %q is not a UUID", ErrBadRequest, ErrInvalidUser, truncate(u[0]))
			}
			id.User = parsed
		}
		return id, nil
	})
}

// Connect turns a stream request into a registered Subscription: it
// authenticates with Config.Authenticator, reads the topics from the
// repeated "topic" query parameter, authorizes them with Config.Authorizer,
// takes Last-Event-ID from the header or else the "lastEventId" query
// parameter (for first connects and polyfills), and subscribes. Adapters
// call Connect, answer an error with Reject, and pass the Subscription to
// Serve.
func (b *Broker) Connect(ctx context.Context, r Request) (*Subscription, error) {
	id, err := b.authenticate(ctx, r)
	if err != nil {
		b.observeReject(ctx, "", err)
		return nil, err
	}
	topics := r.Query("topic")
	lastID := r.Header("Last-Event-ID")
	if lastID == "" {
		if q := r.Query("lastEventId"); len(q) > 0 {
			lastID = q[0]
		}
	}
	if err := (Event{ID: lastID}).Validate(); err != nil {
		err = fmt.Errorf("%w: Last-Event-ID: %w", ErrBadRequest, err)
		b.observeReject(ctx, id.Tenant, err)
		return nil, err
	}
	return b.Subscribe(ctx, SubscribeRequest{Identity: id, Topics: topics, LastEventID: lastID})
}

func (b *Broker) authenticate(ctx context.Context, r Request) (Identity, error) {
	if b.cfg.Authenticator == nil {
		return Identity{}, nil
	}
	id, err := b.cfg.Authenticator.Authenticate(ctx, r)
	if err != nil {
		return Identity{}, classifyAuthError(err, ErrUnauthenticated)
	}
	return id, nil
}

// authorize asks Config.Authorizer about topics; see classifyAuthError for
// what its errors become.
func (b *Broker) authorize(ctx context.Context, id Identity, topics []string) error {
	if b.cfg.Authorizer == nil || len(topics) == 0 {
		return nil
	}
	if err := b.cfg.Authorizer.Authorize(ctx, id, topics); err != nil {
		return classifyAuthError(err, ErrForbidden)
	}
	return nil
}

// classifyAuthError gives an Authenticator's or Authorizer's error a
// sentinel, so that Reject answers it with a status and never with its
// text. A transient failure (ErrUnavailable, or a deadline or other
// timeout, which the application did not have to wrap) becomes
// ErrUnavailable even when it also wraps ErrUnauthenticated or
// ErrForbidden: a 401 or 403 would end a browser's EventSource for good.
// An error that already names a class keeps it; any other error is
// refused as fallback, since a failed check must never let a request
// through.
func classifyAuthError(err, fallback error) error {
	switch {
	case errors.Is(err, ErrUnavailable):
		return err
	case IsUnavailable(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errors.Is(err, ErrUnauthenticated), errors.Is(err, ErrForbidden), errors.Is(err, ErrBadRequest):
		return err
	}
	return fmt.Errorf("%w: %w", fallback, err)
}

// truncate keeps error messages short whatever a client sends.
func truncate(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}
