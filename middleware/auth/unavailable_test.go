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

	"github.com/golang-jwt/jwt/v5"

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
			if !errors.Is(err, tc.keyfuncErr) {
				t.Errorf("Verify: %v, want it to wrap the Keyfunc's %v for logs", err, tc.keyfuncErr)
			}
			if tc.unavailable {
				if !errors.Is(err, auth.ErrKeysUnavailable) || !errors.Is(err, core.ErrUnavailable) || errors.Is(err, core.ErrUnauthenticated) {
					t.Errorf("Verify: %v, want ErrKeysUnavailable (core.ErrUnavailable) and not core.ErrUnauthenticated", err)
				}
			} else if !errors.Is(err, auth.ErrInvalidToken) || core.IsUnavailable(err) {
				t.Errorf("Verify: %v, want ErrInvalidToken", err)
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
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
				t.Fatalf("browser: %d %q %q, want a 200 event stream", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			d := core.NewDecoder(strings.NewReader(string(body)))
			ev, err := d.Next()
			var data struct{ Reason string }
			if err != nil || ev.Type != core.RejectedEventType || json.Unmarshal([]byte(ev.Data), &data) != nil || data.Reason != "unavailable" {
				t.Errorf("browser: want a %s event with reason unavailable, got %+v (%v) in %q", core.RejectedEventType, ev, err, body)
			}
			if d.Retry() <= 0 {
				t.Errorf("browser: no retry hint in %q", body)
			}
			noLeak(t, body)
			if err := s.lastReject(); !errors.Is(err, auth.ErrKeysUnavailable) || !strings.Contains(err.Error(), "jwks") {
				t.Errorf("logged %v, want ErrKeysUnavailable with the Keyfunc's cause", err)
			}

			resp = s.open(t, conn{bearer: tok, header: http.Header{core.RejectModeHeader: {"status"}}})
			body, _ = io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("status mode: %d %q, want 503", resp.StatusCode, body)
			}
			if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("status mode: Retry-After %q, want whole seconds >= 1", resp.Header.Get("Retry-After"))
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
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("status mode: %d %q, want 401", resp.StatusCode, body)
	}
	noLeak(t, body)
}

func noLeak(t *testing.T, body []byte) {
	t.Helper()
	for _, leak := range []string{"10.0.0.5", "dial", "jwks", "deadline"} {
		if strings.Contains(string(body), leak) {
			t.Errorf("body %q mentions %q", body, leak)
		}
	}
}
