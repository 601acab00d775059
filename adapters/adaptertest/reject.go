package adaptertest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core"
)

// checkRejectAuthFailures: an Authenticator or Authorizer that fails
// leaves nothing of its error's text in the answer, and one that cannot
// decide for now (core.ErrUnavailable, a context deadline) gets the retry
// hint of a limit instead of a final 401 or 403, so a browser's
// EventSource comes back after the outage.
func checkRejectAuthFailures(t *testing.T, s *suite) {
	hint := time.Second
	leak := errors.New("acl lookup: dial tcp 10.0.0.5:5432: connection refused")
	auth := core.AuthenticatorFunc(func(_ context.Context, r core.Request) (core.Identity, error) {
		switch strings.Join(r.Query("fail"), "") {
		case "unavailable":
			return core.Identity{}, fmt.Errorf("jwks: %w", core.ErrUnavailable)
		case "deadline":
			return core.Identity{}, fmt.Errorf("jwks: %w", context.DeadlineExceeded)
		}
		return core.Identity{}, nil
	})
	authz := core.AuthorizerFunc(func(context.Context, core.Identity, []string) error { return leak })
	e := s.start(t, core.Config{Authenticator: auth, Authorizer: authz, RetryHint: hint}, startOptions{})
	for _, h := range []http.Header{browser, statusMode} {
		r := e.get(t, query("topic", "a"), h)
		if r.status != http.StatusForbidden || string(r.body) != "forbidden\n" {
			t.Errorf("Authorizer failing with %q (%v): got %d %q, want 403 %q", leak, h, r.status, r.body, "forbidden\n")
		}
	}
	for _, fail := range []string{"unavailable", "deadline"} {
		rejected(t, e.get(t, query("fail", fail), browser), "unavailable", hint)
		statusRejected(t, e.get(t, query("fail", fail), statusMode), http.StatusServiceUnavailable)
	}
	if n := e.b.Stats().Connections; n != 0 {
		t.Errorf("%d connections registered by refused requests", n)
	}
}
