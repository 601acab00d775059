package nethttp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

// traceKey stands for the trace a tracing middleware puts in the request's
// context.
type traceKey struct{}

// TestAuthFailuresOnTheWire runs issue 14's failing auth back ends through
// the handler: the body names only the class of the refusal, an outage
// gets a retry hint, and the full error reaches Observer.Reject with the
// request's context, where an application logs it with its trace.
func TestAuthFailuresOnTheWire(t *testing.T) {
	leak := errors.New("acl lookup: dial tcp 10.0.0.5:5432: connection refused")
	failures := map[string]error{
		"unauthenticated": fmt.Errorf("%w: token expired", core.ErrUnauthenticated),
		"unavailable":     fmt.Errorf("jwks: %w", core.ErrUnavailable),
		"deadline":        fmt.Errorf("session store: %w", context.DeadlineExceeded),
	}
	authn := core.AuthenticatorFunc(func(_ context.Context, r core.Request) (core.Identity, error) {
		if f := r.Query("fail"); len(f) > 0 {
			return core.Identity{}, failures[f[0]]
		}
		return core.Identity{User: uuid.New()}, nil
	})
	authz := core.AuthorizerFunc(func(_ context.Context, _ core.Identity, topics []string) error {
		switch topics[0] {
		case "acl-down":
			return leak
		case "acl-slow":
			return fmt.Errorf("acl lookup: %w", context.DeadlineExceeded)
		}
		return nil
	})
	var (
		mu     sync.Mutex
		logged = map[string]error{} // by trace
	)
	b := newBroker(t, core.Config{Authenticator: authn, Authorizer: authz, Observer: &core.Observer{
		Reject: func(ctx context.Context, _ string, err error) {
			mu.Lock()
			defer mu.Unlock()
			logged[ctx.Value(traceKey{}).(string)] = err
		},
	}})
	h := nethttp.Handler(b)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), traceKey{}, r.Header.Get("Trace"))
		h.ServeHTTP(w, r.WithContext(ctx))
	}))

	for _, tc := range []struct {
		query  string
		status int    // for a browser; a 200 is a retry hint
		body   string // for a final refusal
		is     error  // what the logged error wraps
	}{
		{"?fail=unauthenticated", 401, "unauthenticated\n", core.ErrUnauthenticated},
		{"?topic=acl-down", 403, "forbidden\n", leak},
		{"?fail=unavailable", 200, "", core.ErrUnavailable},
		{"?fail=deadline", 200, "", context.DeadlineExceeded},
		{"?topic=acl-slow", 200, "", core.ErrUnavailable},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, body := do(t, srv, http.MethodGet, tc.query, http.Header{"Trace": {tc.query}})
			require.Equal(t, tc.status, resp.StatusCode, "browser: status %d %q, want %d", resp.StatusCode, body, tc.status)
			assert.False(t, strings.Contains(body, "10.0.0.5") || strings.Contains(body, "jwks") || strings.Contains(body, "deadline"), "body %q carries the error's text", body)
			if tc.status == 200 {
				unavailable(t, resp, body)
			} else if body != tc.body {
				assert.Fail(t, fmt.Sprintf("body %q, want %q", body, tc.body))
			}
			mu.Lock()
			err := logged[tc.query]
			mu.Unlock()
			assert.ErrorIs(t, err, tc.is, "Observer.Reject got %v for this request's trace, want it to wrap %v", err, tc.is)

			resp, body = do(t, srv, http.MethodGet, tc.query, http.Header{core.RejectModeHeader: {"status"}, "Trace": {"status"}})
			want := tc.status
			if want == 200 {
				want = http.StatusServiceUnavailable
				n, err := strconv.Atoi(resp.Header.Get("Retry-After"))
				assert.False(t, err != nil || n < 1, "status mode: Retry-After %q, want whole seconds >= 1", resp.Header.Get("Retry-After"))
			}
			assert.Equal(t, want, resp.StatusCode, "status mode: %d %q, want %d", resp.StatusCode, body, want)
			assert.NotContains(t, body, "10.0.0.5", "status mode: body %q carries the error's text", body)
		})
	}
	n := b.Stats().Connections
	assert.Equal(t, 0, n, "%d connections registered by refused requests", n)
}

// unavailable checks a browser's answer to an outage: a 200 event stream
// holding a retry hint and one ssekit.rejected event with reason
// "unavailable".
func unavailable(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	ct := resp.Header.Get("Content-Type")
	assert.Equal(t, "text/event-stream", ct, "Content-Type %q, want text/event-stream", ct)
	d := core.NewDecoder(strings.NewReader(body))
	ev, err := d.Next()
	require.NoError(t, err, "want a %s event, got %+v, %v in %q", core.RejectedEventType, ev, err, body)
	require.Equal(t, core.RejectedEventType, ev.Type, "want a %s event, got %+v, %v in %q", core.RejectedEventType, ev, err, body)
	var data struct {
		Reason  string `json:"reason"`
		RetryMs int64  `json:"retryMs"`
	}
	if assert.NoError(t, json.Unmarshal([]byte(ev.Data), &data), "%s data %q", core.RejectedEventType, ev.Data) {
		assert.Equal(t, "unavailable", data.Reason, "%s data %q: reason", core.RejectedEventType, ev.Data)
		assert.Positive(t, data.RetryMs, "%s data %q: retryMs", core.RejectedEventType, ev.Data)
	}
	assert.Positive(t, d.Retry(), "no retry hint in %q", body)
}
