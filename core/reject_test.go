package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rejectRequest is a Request with fixed headers and query.
type rejectRequest struct {
	header map[string]string
	query  map[string][]string
}

func (r rejectRequest) Header(name string) string  { return r.header[name] }
func (r rejectRequest) Query(name string) []string { return r.query[name] }
func (r rejectRequest) Cookie(string) string       { return "" }
func (r rejectRequest) RemoteAddr() string         { return "192.0.2.1:1234" }
func (r rejectRequest) with(k, v string) rejectRequest {
	h := map[string]string{k: v}
	for name, value := range r.header {
		h[name] = value
	}
	return rejectRequest{header: h, query: r.query}
}

var (
	browserRequest = rejectRequest{query: map[string][]string{"topic": {"orders"}}}
	statusRequest  = browserRequest.with(RejectModeHeader, "status")
)

// errLeaky is the Authorizer error of issue 14: its text names an internal
// address that must never reach a client.
var errLeaky = errors.New("acl lookup: dial tcp 10.0.0.5:5432: connection refused")

// timeoutErr is a net.Error-like timeout that wraps no sentinel.
type timeoutErr struct{}

func (timeoutErr) Error() string   { return "read tcp 10.0.0.5:5432: i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// assertRetryLater checks the answers for a request refused for now: a 200
// stream with a retry hint and one ssekit.rejected event for a browser, the
// status with Retry-After for a client that asks for statuses.
func assertRetryLater(t *testing.T, b *Broker, err error, reason string, status int) {
	t.Helper()
	hint := 5 * b.cfg.RetryHint

	rej := b.Reject(err, browserRequest)
	require.Equal(t, 200, rej.Status, "browser: %q", rej.Body)
	assert.Equal(t, "text/event-stream", rej.ContentType)
	assert.Zero(t, rej.RetryAfter)
	d := NewDecoder(strings.NewReader(string(rej.Body)))
	ev, derr := d.Next()
	require.NoError(t, derr)
	assert.Equal(t, RejectedEventType, ev.Type)
	var data struct {
		Reason  string `json:"reason"`
		RetryMs int64  `json:"retryMs"`
	}
	require.NoError(t, json.Unmarshal([]byte(ev.Data), &data))
	assert.Equal(t, reason, data.Reason)
	assert.GreaterOrEqual(t, data.RetryMs, hint.Milliseconds())
	assert.Equal(t, time.Duration(data.RetryMs)*time.Millisecond, d.Retry(), "the retry field and the event agree")
	_, derr = d.Next()
	assert.Error(t, derr, "one event only")

	rej = b.Reject(err, statusRequest)
	assert.Equal(t, status, rej.Status)
	assert.Equal(t, int(hint/time.Second), rej.RetryAfter)
	assert.Equal(t, reason+"\n", string(rej.Body))
}

func TestRejectStatusesAndFixedBodies(t *testing.T) {
	b := newBroker(t, Config{})
	for _, tc := range []struct {
		name   string
		err    error
		status int
		body   string
	}{
		{"unauthenticated", fmt.Errorf("%w: key kid-7 from https://idp.internal/jwks", ErrUnauthenticated), 401, "unauthenticated\n"},
		{"forbidden", fmt.Errorf("%w: %w", ErrForbidden, errLeaky), 403, "forbidden\n"},
		{"invalid topic", fmt.Errorf("%w: %w: topic %q has an empty segment", ErrBadRequest, ErrInvalidTopic, "a//b"), 400, "bad request: invalid topic\n"},
		{"invalid tenant", fmt.Errorf("%w: %w: secret detail", ErrBadRequest, ErrInvalidTenant), 400, "bad request: invalid tenant\n"},
		{"invalid user", fmt.Errorf("%w: %w: user %q", ErrBadRequest, ErrInvalidUser, "x"), 400, "bad request: invalid user ID\n"},
		{"invalid Last-Event-ID", fmt.Errorf("%w: Last-Event-ID: %w", ErrBadRequest, ErrInvalidID), 400, "bad request: invalid event ID\n"},
		{"too many topics", fmt.Errorf("%w: %d, limit %d", ErrTooManyTopics, 5000, 100), 400, "bad request: too many topics\n"},
		{"bare bad request", fmt.Errorf("%w: %w", ErrBadRequest, errLeaky), 400, "bad request\n"},
		{"anything else", errLeaky, 500, "internal error\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []Request{browserRequest, statusRequest, nil} {
				rej := b.Reject(tc.err, r)
				assert.Equal(t, tc.status, rej.Status)
				assert.Equal(t, "text/plain; charset=utf-8", rej.ContentType)
				assert.Equal(t, tc.body, string(rej.Body))
				assert.Zero(t, rej.RetryAfter)
			}
		})
	}
}

func TestRejectRetryLater(t *testing.T) {
	b := newBroker(t, Config{RetryHint: time.Second})
	for _, tc := range []struct {
		name   string
		err    error
		reason string
		status int
	}{
		{"unavailable", fmt.Errorf("jwks: %w", ErrUnavailable), "unavailable", 503},
		{"deadline", fmt.Errorf("acl: %w", context.DeadlineExceeded), "unavailable", 503},
		{"timeout", timeoutErr{}, "unavailable", 503},
		// An application that wrapped the outage as a refusal still gets
		// a retry: a 401 would end the browser's EventSource for good.
		{"unavailable wins over unauthenticated", fmt.Errorf("%w: %w", ErrUnauthenticated, ErrUnavailable), "unavailable", 503},
		{"deadline wins over forbidden", fmt.Errorf("%w: %w", ErrForbidden, context.DeadlineExceeded), "unavailable", 503},
		{"connection limit", fmt.Errorf("%w: limit 1", ErrTooManyConnections), "too_many_connections", 503},
		{"user limit", fmt.Errorf("%w: limit 1", ErrTooManyUserConnections), "too_many_user_connections", 429},
		{"shutdown", ErrClosed, "shutting_down", 503},
	} {
		t.Run(tc.name, func(t *testing.T) { assertRetryLater(t, b, tc.err, tc.reason, tc.status) })
	}
}

// A refused Connect answers by class, never with the application's error
// text, and hands that full error with the request's context to
// Observer.Reject for logging.
func TestConnectAuthFailures(t *testing.T) {
	type ctxKey struct{}
	anyone := AuthenticatorFunc(func(context.Context, Request) (Identity, error) {
		return Identity{User: uuid.New()}, nil
	})
	refuse := func(err error) AuthenticatorFunc {
		return func(context.Context, Request) (Identity, error) { return Identity{}, err }
	}
	deny := func(err error) AuthorizerFunc {
		return func(context.Context, Identity, []string) error { return err }
	}
	for _, tc := range []struct {
		name   string
		authn  Authenticator
		authz  Authorizer
		status int    // for a browser
		reason string // of the ssekit.rejected event, for a 200
		is     error  // what the returned and observed error wraps
	}{
		{"authorizer dial error", anyone, deny(errLeaky), 403, "", ErrForbidden},
		{"authenticator dial error", refuse(errLeaky), nil, 401, "", ErrUnauthenticated},
		{"authenticator unauthenticated", refuse(fmt.Errorf("%w: token expired", ErrUnauthenticated)), nil, 401, "", ErrUnauthenticated},
		{"authenticator unavailable", refuse(fmt.Errorf("jwks: %w", ErrUnavailable)), nil, 200, "unavailable", ErrUnavailable},
		{"authenticator deadline", refuse(fmt.Errorf("session store: %w", context.DeadlineExceeded)), nil, 200, "unavailable", ErrUnavailable},
		{"authorizer unavailable", anyone, deny(fmt.Errorf("acl: %w: %w", ErrUnavailable, errLeaky)), 200, "unavailable", ErrUnavailable},
		{"authorizer deadline", anyone, deny(fmt.Errorf("acl lookup: %w", context.DeadlineExceeded)), 200, "unavailable", ErrUnavailable},
		{"authorizer timeout", anyone, deny(timeoutErr{}), 200, "unavailable", ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var observed []error
			obs := &Observer{Reject: func(ctx context.Context, _ string, err error) {
				assert.Equal(t, "req-1", ctx.Value(ctxKey{}), "the hook gets the request's context")
				observed = append(observed, err)
			}}
			b := newBroker(t, Config{Authenticator: tc.authn, Authorizer: tc.authz, Observer: obs})
			ctx := context.WithValue(context.Background(), ctxKey{}, "req-1")

			sub, err := b.Connect(ctx, browserRequest)
			require.Error(t, err)
			require.Nil(t, sub)
			assert.ErrorIs(t, err, tc.is)
			require.Len(t, observed, 1)
			assert.Equal(t, err, observed[0], "the hook gets the full error")
			if strings.Contains(tc.name, "dial") {
				assert.ErrorIs(t, err, errLeaky, "the cause is kept for logs")
			}

			rej := b.Reject(err, browserRequest)
			assert.Equal(t, tc.status, rej.Status)
			assert.NotContains(t, string(rej.Body), "10.0.0.5")
			assert.NotContains(t, string(rej.Body), "dial")
			if tc.reason != "" {
				assertRetryLater(t, b, err, tc.reason, 503)
			}
			assert.Zero(t, b.Stats().Connections)
		})
	}
}

// notTimeoutErr has a Timeout method that says no.
type notTimeoutErr struct{}

func (notTimeoutErr) Error() string { return "connection refused" }
func (notTimeoutErr) Timeout() bool { return false }

func TestIsUnavailable(t *testing.T) {
	for _, err := range []error{
		ErrUnavailable,
		fmt.Errorf("jwks: %w", ErrUnavailable),
		context.DeadlineExceeded,
		fmt.Errorf("%w: %w", ErrForbidden, context.DeadlineExceeded),
		timeoutErr{},
		fmt.Errorf("acl: %w", timeoutErr{}),
	} {
		assert.True(t, IsUnavailable(err), "%v", err)
	}
	for _, err := range []error{nil, errLeaky, notTimeoutErr{}, ErrUnauthenticated, context.Canceled, ErrTooManyConnections} {
		assert.False(t, IsUnavailable(err), "%v", err)
	}
}
