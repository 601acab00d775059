//go:build !js && !wasip1

package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// keyfuncConfig is testConfig with a Keyfunc that fails with err instead of
// the configured keys.
func keyfuncConfig(err error) auth.Config {
	cfg := testConfig()
	cfg.Keys = nil
	cfg.Keyfunc = func(*jwt.Token) (any, error) { return nil, err }
	return cfg
}

// errDial is what a Keyfunc fetching keys itself might return: its text
// must never reach a client.
var errDial = errors.New("jwks: dial tcp 10.0.0.5:443: connection refused")

// A Keyfunc that cannot supply keys for now makes Verify fail with
// ErrKeysUnavailable, not a final ErrInvalidToken; any other Keyfunc error
// stays an invalid token.
func TestVerifyKeysUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name        string
		keyfuncErr  error
		unavailable bool
	}{
		{"wraps ErrUnavailable", fmt.Errorf("jwks: %w", core.ErrUnavailable), true},
		{"deadline", fmt.Errorf("jwks: %w", context.DeadlineExceeded), true},
		{"other failure", errDial, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newJWT(t, keyfuncConfig(tc.keyfuncErr)).Verify(rsaToken(t, nil))
			assert.ErrorIs(t, err, tc.keyfuncErr, "Verify: %v, want it to wrap the Keyfunc's %v for logs", err, tc.keyfuncErr)
			if tc.unavailable {
				assert.ErrorIs(t, err, auth.ErrKeysUnavailable)
				assert.ErrorIs(t, err, core.ErrUnavailable)
				assert.NotErrorIs(t, err, core.ErrUnauthenticated)
			} else {
				assert.ErrorIs(t, err, auth.ErrInvalidToken)
				assert.False(t, core.IsUnavailable(err), "Verify: %v, want a final ErrInvalidToken", err)
			}
		})
	}
}

// On the wire, keys that are unavailable for now answer like a connection
// limit: a browser gets a 200 stream with a retry hint and a
// ssekit.rejected event (EventSource would give up for good on a 401), a
// client asking for statuses gets 503 with Retry-After. No body carries
// the Keyfunc's error.
func TestKeysUnavailableOnTheWire(t *testing.T) {
	for _, cause := range []error{
		fmt.Errorf("jwks: %w: %w", core.ErrUnavailable, errDial),
		fmt.Errorf("jwks: %w", context.DeadlineExceeded),
	} {
		t.Run(cause.Error(), func(t *testing.T) {
			s := startServer(t, keyfuncConfig(cause))
			tok := rsaToken(t, nil)

			resp := s.open(t, conn{bearer: tok, query: topics("orders/1")})
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, "browser: %d %q %q, want a 200 event stream", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"), "browser: %d %q %q, want a 200 event stream", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			d := core.NewDecoder(strings.NewReader(string(body)))
			ev, err := d.Next()
			var data struct{ Reason string }
			if assert.NoError(t, err, "browser: no event in %q", body) {
				assert.Equal(t, core.RejectedEventType, ev.Type, "browser: event in %q", body)
				if assert.NoError(t, json.Unmarshal([]byte(ev.Data), &data), "browser: event data %q", ev.Data) {
					assert.Equal(t, "unavailable", data.Reason, "browser: reason in %q", body)
				}
			}
			assert.Greater(t, d.Retry(), time.Duration(0), "browser: no retry hint in %q", body)
			noLeak(t, body)
			logged := s.lastReject()
			assert.ErrorIs(t, logged, auth.ErrKeysUnavailable)
			assert.ErrorContains(t, logged, "jwks", "logged error lacks the Keyfunc's cause")

			resp = s.open(t, conn{bearer: tok, header: http.Header{core.RejectModeHeader: {"status"}}})
			body, _ = io.ReadAll(resp.Body)
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "status mode: %d %q, want 503", resp.StatusCode, body)
			n, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if assert.NoError(t, err, "status mode: Retry-After %q, want whole seconds", resp.Header.Get("Retry-After")) {
				assert.GreaterOrEqual(t, n, 1, "status mode: Retry-After")
			}

			noLeak(t, body)
		})
	}
}

// Any other Keyfunc failure is a 401 whose body says only that.
func TestKeyfuncFailureNotEchoed(t *testing.T) {
	s := startServer(t, keyfuncConfig(errDial))
	s.refused(t, conn{bearer: rsaToken(t, nil)}, http.StatusUnauthorized, auth.ErrInvalidToken, errDial)
	resp := s.open(t, conn{bearer: rsaToken(t, nil), header: http.Header{core.RejectModeHeader: {"status"}}})
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "status mode: %d %q, want 401", resp.StatusCode, body)
	noLeak(t, body)
}

func noLeak(t *testing.T, body []byte) {
	t.Helper()
	for _, leak := range []string{"10.0.0.5", "dial", "jwks", "deadline"} {
		assert.NotContains(t, string(body), leak, "body %q mentions %q", body, leak)
	}
}
