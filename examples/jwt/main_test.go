package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/client"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

type env struct {
	srv    *httptest.Server
	a      *auth.JWT
	secret []byte
	pub    string // a publisher token
}

func start(t *testing.T) *env {
	t.Helper()
	e := &env{secret: auth.NewSecret()}
	var err error
	e.a, err = newAuth(e.secret)
	require.NoError(t, err)
	// A short retry hint keeps the reconnect in this test quick.
	broker, err := core.New(core.Config{Authenticator: e.a, Authorizer: e.a, RetryHint: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = broker.Close(context.Background()) })
	e.srv = httptest.NewServer(newServer(broker, e.a))
	t.Cleanup(e.srv.Close)
	e.pub = e.mint(t, auth.Grant{User: uuid.New(), Tenant: "acme", Publish: []string{"orders/*", auth.GrantSelf}})
	return e
}

func (e *env) mint(t *testing.T, g auth.Grant) string {
	t.Helper()
	token, err := e.a.Mint(e.secret, g)
	require.NoError(t, err)
	return token
}

func (e *env) publish(t *testing.T, token string, body map[string]any) int {
	t.Helper()
	status, _ := post(t, e.srv.Client(), e.srv.URL+"/publish", body, "Authorization", "Bearer "+token)
	return status
}

// tryPublish is publish for goroutines other than the test's.
func (e *env) tryPublish(body map[string]any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/publish", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+e.pub)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("publish: %s", resp.Status)
	}
	return nil
}

func order(n int) map[string]any {
	return map[string]any{"topic": "orders/eu", "event": "order.created", "data": map[string]int{"id": n}}
}

// TestTokenExpiresWhileStreaming: the stream ends when the token expires;
// the client refreshes its token in WithHeaderFunc, reconnects with
// Last-Event-ID and receives what was published meanwhile, once each.
func TestTokenExpiresWhileStreaming(t *testing.T) {
	e := start(t)
	user := uuid.New()
	grant := auth.Grant{User: user, Tenant: "acme", Topics: []string{"orders/*"}, TTL: 2 * time.Second}
	first := e.mint(t, grant)

	var calls atomic.Int32
	var retries []string
	var mu sync.Mutex
	s := subscribe(t, e.srv.URL+"/events?topic=orders/eu", client.WithHeaderFunc(func(ctx context.Context) (http.Header, error) {
		token := first
		if calls.Add(1) > 1 {
			// The stream ended: publish while the client is away, then
			// hand it a refreshed token (an identity provider's job).
			// (This runs on the client's goroutine: no t.Fatal here.)
			for n := 3; n <= 4; n++ {
				if err := e.tryPublish(order(n)); err != nil {
					return nil, err
				}
			}
			grant.TTL = time.Hour
			var err error
			if token, err = e.a.Mint(e.secret, grant); err != nil {
				return nil, err
			}
		}
		return http.Header{"Authorization": {"Bearer " + token}}, nil
	}), client.WithOnRetry(func(err error, _ time.Duration) {
		mu.Lock()
		retries = append(retries, fmt.Sprint(err))
		mu.Unlock()
	}))

	for n := 1; n <= 2; n++ {
		status := e.publish(t, e.pub, order(n))
		require.Equal(t, http.StatusOK, status, "publish %d: %d", n, status)
	}
	var ids []string
	for n := 1; n <= 2; n++ {
		ids = append(ids, s.Expect("order.created", map[string]int{"id": n}).ID)
	}

	// The token expires (exp has one-second precision: within 1-2s). The
	// stream ends with the reason, the client reconnects with a new token
	// and is replayed 3 and 4.
	for n := 3; n <= 4; n++ {
		ids = append(ids, s.Expect("order.created", map[string]int{"id": n}).ID)
	}
	status := e.publish(t, e.pub, order(5))
	require.Equal(t, http.StatusOK, status, "publish 5: %d", status)
	ids = append(ids, s.Expect("order.created", map[string]int{"id": 5}).ID)
	s.ExpectNone(100 * time.Millisecond)

	got := calls.Load()
	assert.Equal(t, int32(2), got, "header func called %d times, want 2 (one reconnect)", got)
	assert.Len(t, slices.Compact(slices.Clone(ids)), 5, "event IDs not distinct: %v", ids)
	comments := s.Comments()
	assert.True(t, slices.Contains(comments, "token_expired"), "comments %q lack token_expired", comments)
	mu.Lock()
	defer mu.Unlock()
	assert.False(t, len(retries) != 1 || retries[0] != "EOF", "retries %q, want one after a clean end of stream", retries)

	// The first token is refused now, with 401.
	_, err := e.a.Verify(first)
	assert.ErrorIs(t, err, auth.ErrExpiredToken, "first token: %v, want expired", err)
	expectStatus(t, e.srv.URL+"/events?topic=orders/eu", first, http.StatusUnauthorized)
}

func expectStatus(t *testing.T, url, token string, want int) {
	t.Helper()
	var opts []client.Option
	if token != "" {
		opts = append(opts, client.WithHeader("Authorization", "Bearer "+token))
	}
	c, err := client.New(url, opts...)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, err := range c.Events(ctx) {
		var se *client.StatusError
		require.True(t, errors.As(err, &se), "%s: got %v, want status %d", url, err, want)
		require.Equal(t, want, se.Code, "%s: got %v, want status %d", url, err, want)
		return
	}
	require.FailNow(t, fmt.Sprintf("%s: no error, want status %d", url, want))
}

func TestStreamAuthentication(t *testing.T) {
	e := start(t)
	url := e.srv.URL + "/events?topic=orders/eu"
	token := e.mint(t, auth.Grant{User: uuid.New(), Tenant: "acme", Topics: []string{"orders/*"}})
	expectStatus(t, url, "", http.StatusUnauthorized)
	expectStatus(t, url, "not-a-token", http.StatusUnauthorized)
	expectStatus(t, e.srv.URL+"/events?topic=payments", token, http.StatusForbidden)
	expectStatus(t, url+"&tenant=globex", token, http.StatusForbidden)
	other := auth.NewSecret() // signed by someone else
	a2, _ := newAuth(other)
	forged, _ := a2.Mint(other, auth.Grant{User: uuid.New(), Tenant: "acme", Topics: []string{"orders/*"}})
	expectStatus(t, url, forged, http.StatusUnauthorized)

	// A browser sends the token in the ssekit_token cookie.
	s := subscribe(t, url, client.WithHeader("Cookie", auth.DefaultCookie+"="+token))
	e.publish(t, e.pub, order(1))
	s.Expect("order.created", map[string]int{"id": 1})
}

func TestPublishAuthorization(t *testing.T) {
	e := start(t)
	self := uuid.New()
	pub := e.mint(t, auth.Grant{User: self, Tenant: "acme", Publish: []string{"orders/*", auth.GrantSelf}})
	sub := e.mint(t, auth.Grant{User: self, Tenant: "acme"})
	s := subscribe(t, e.srv.URL+"/events", client.WithHeader("Authorization", "Bearer "+sub))
	for name, tc := range map[string]struct {
		token string
		body  map[string]any
		want  int
	}{
		"no token":         {"", order(1), http.StatusUnauthorized},
		"not granted":      {pub, map[string]any{"topic": "payments/eu", "event": "x"}, http.StatusForbidden},
		"other user":       {pub, map[string]any{"user": uuid.New(), "event": "x"}, http.StatusForbidden},
		"broadcast":        {pub, map[string]any{"broadcast": true, "event": "x"}, http.StatusForbidden},
		"subscriber token": {sub, order(1), http.StatusForbidden},
		"no event type":    {pub, map[string]any{"topic": "orders/eu"}, http.StatusBadRequest},
		"self":             {pub, map[string]any{"user": self, "event": "note", "data": "\"hi\""}, http.StatusOK},
	} {
		got := e.publish(t, tc.token, tc.body)
		assert.Equal(t, tc.want, got, "%s: %d, want %d", name, got, tc.want)
	}
	s.Expect("note", nil)
	s.ExpectNone(50 * time.Millisecond)
}
