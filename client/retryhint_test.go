package client_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/client"
	"github.com/ssekit/ssekit/core"
)

// TestRetryZeroIsHonouredWithAFloor: "retry: 0" sets the reconnection
// delay to zero, as the spec says, which the client raises to
// MinRetryDelay; like any hint it lasts across connections until the
// server sends another.
func TestRetryZeroIsHonouredWithAFloor(t *testing.T) {
	bodies := []string{
		"retry: 0\ndata: a\n\n", // the client's configured hour no longer applies
		"data: b\n\n",           // no hint: the last one still holds
		"retry: 250\ndata: c\n\n",
		"retry: 0\r\ndata: d\r\n\r\n", // zero replaces an earlier hint
		"retry: 250\ndata: e\n\n",
		"retry: 1\ndata: f\n\n", // any hint below the floor is raised to it
	}
	srv := newPlainServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= len(bodies) {
			sse(w, bodies[n-1])
			return
		}
		sse(w, "")
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	rec := newRecorder()
	rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()), client.WithBackoff(client.Backoff{Initial: time.Hour}))

	ms := time.Millisecond
	var delays []time.Duration
	for range bodies {
		rec.next(t)
		delays = append(delays, rec.nextRetry(t).delay)
	}
	assert.Equal(t, []time.Duration{
		client.MinRetryDelay, client.MinRetryDelay, 250 * ms, client.MinRetryDelay, 250 * ms, client.MinRetryDelay,
	}, delays)
	assert.Equal(t, 100*time.Millisecond, client.MinRetryDelay, "the documented floor")
	rec.waitOpen(t)
}

// TestAuthUnavailableIsRetried: a server whose Authenticator cannot reach
// its back end answers with a retry hint, in both of its forms; the client
// backs off, retries and gets in once the back end is back.
func TestAuthUnavailableIsRetried(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status bool // send SSEKit-Reject: status
	}{
		{"503 with Retry-After", true},
		{"ssekit.rejected stream", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var down atomic.Bool
			down.Store(true)
			srv := newSSEServer(t, core.Config{
				RetryHint: 50 * time.Millisecond,
				Authenticator: core.AuthenticatorFunc(func(context.Context, core.Request) (core.Identity, error) {
					if down.Load() {
						return core.Identity{}, core.ErrUnavailable
					}
					return core.Identity{}, nil
				}),
			})
			rec := newRecorder()
			rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()), client.WithRejectStatus(tc.status), fast)
			rt := rec.nextRetry(t)
			if tc.status {
				var se *client.StatusError
				require.ErrorAs(t, rt.err, &se)
				assert.Equal(t, http.StatusServiceUnavailable, se.Code)
				assert.Equal(t, "unavailable", se.Body)
				assert.GreaterOrEqual(t, rt.delay, se.RetryAfter)
			} else {
				assert.ErrorIs(t, rt.err, client.ErrRejected)
				assert.ErrorContains(t, rt.err, "unavailable")
				assert.GreaterOrEqual(t, rt.delay, 250*time.Millisecond, "core asks for 5 x the hint")
			}
			down.Store(false)
			// A rejection stream opens too (it is a 200): wait for the
			// broker to hold the connection.
			srv.waitConnections(t, 1)
			id := srv.publish(t, "e", "in")
			assert.Equal(t, core.Event{ID: id, Type: "e", Data: "in"}, rec.next(t))
		})
	}
}
