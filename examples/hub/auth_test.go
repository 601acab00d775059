package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// TestAuthMode runs the hub as -jwt-secret sets it up: streams and
// /publish take their identity from tokens, the publish claim decides the
// targets, and the tenant always comes from the token.
func TestAuthMode(t *testing.T) {
	srv, b, mint := startAuthHub(t)
	alice, bob := uuid.New(), uuid.New()
	reader := mint(auth.Grant{User: alice, Tenant: "acme", Topics: []string{"news"}})
	writer := mint(auth.Grant{User: bob, Tenant: "acme", Publish: []string{"news", auth.GrantUsers}})

	// A stream without a token is refused; with the cookie it is alice's,
	// whatever the query claims.
	res, err := srv.Client().Get(srv.URL + "/events?user=" + bob.String())
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "stream without token: %d", res.StatusCode)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events?topic=news&user="+bob.String(), nil)
	req.AddCookie(&http.Cookie{Name: "ssekit_token", Value: reader})
	res, err = srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "stream with token: %d", res.StatusCode)
	require.True(t, b.Tenant("acme").IsUserOnline(alice), "the stream must belong to the token's user in the token's tenant")
	require.False(t, b.Tenant("acme").IsUserOnline(bob), "the stream must belong to the token's user in the token's tenant")

	for _, tc := range []struct {
		name, token, body string
		status            int
	}{
		{"no token", "", `{"topic":"news","event":"e"}`, http.StatusUnauthorized},
		{"forged token", writer + "x", `{"topic":"news","event":"e"}`, http.StatusUnauthorized},
		{"topic outside the claim", writer, `{"topic":"billing","event":"e"}`, http.StatusForbidden},
		{"broadcast not granted", writer, `{"broadcast":true,"event":"e"}`, http.StatusForbidden},
		{"another tenant", writer, `{"tenant":"globex","topic":"news","event":"e"}`, http.StatusForbidden},
		{"reader cannot publish", reader, `{"topic":"news","event":"e"}`, http.StatusForbidden},
		{"granted topic", writer, `{"topic":"news","event":"headline","data":"t1"}`, http.StatusOK},
		{"granted user push", writer, `{"user":"` + alice.String() + `","event":"dm","data":"t2"}`, http.StatusOK},
	} {
		status, body := post(t, srv.Client(), srv.URL, tc.token, tc.body)
		assert.Equal(t, tc.status, status, "%s: got %d %s, want %d", tc.name, status, body, tc.status)
	}
	dec := core.NewDecoder(res.Body)
	for _, want := range []string{"t1", "t2"} {
		ev, err := dec.Next()
		require.NoError(t, err)
		require.Equal(t, want, ev.Data, "got %q, want %q", ev.Data, want)
	}
}

func TestAuthModeOptions(t *testing.T) {
	_, err := parseOptions([]string{"-jwt-secret", "short"}, envMap(nil), &strings.Builder{})
	require.Error(t, err, "a short secret must be refused naming the flag, got %v", err)
	require.Contains(t, err.Error(), "-jwt-secret", "a short secret must be refused naming the flag, got %v", err)
	// Auth mode protects /publish, so a public address is allowed.
	o, err := parseOptions([]string{"-addr", "0.0.0.0:0", "-dev-token"}, envMap(nil), &strings.Builder{})
	require.NoError(t, err)
	require.NotNil(t, o.hub.jwt, "-dev-token must turn on auth mode with a random secret")
	require.GreaterOrEqual(t, len(o.jwtSecret), 32, "-dev-token must turn on auth mode with a random secret")
}

// TestAuthModeBatch: in auth mode every item of a batch must be allowed by
// the token's publish claim and tenant, or nothing of it is published; the
// publish secret still lets a trusted service publish a batch anywhere.
func TestAuthModeBatch(t *testing.T) {
	srv, b, mint := startAuthHub(t, "-publish-secret", "svc-secret")
	alice, bob := uuid.New(), uuid.New()
	reader := mint(auth.Grant{User: alice, Tenant: "acme", Topics: []string{"news"}})
	writer := mint(auth.Grant{User: bob, Tenant: "acme", Publish: []string{"news", auth.GrantUsers}})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events?topic=news", nil)
	req.AddCookie(&http.Cookie{Name: "ssekit_token", Value: reader})
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "stream with token: %d", res.StatusCode)

	news := `{"topic":"news","event":"e","data":"granted"}`
	for _, tc := range []struct {
		name, token, body string
		status            int
		field             string
	}{
		{"no token", "", batch(news), http.StatusUnauthorized, ""},
		{"topic outside the claim", writer, batch(news, `{"topic":"billing","event":"e"}`), http.StatusForbidden, "[1].target"},
		{"broadcast not granted", writer, batch(news, news, `{"broadcast":true,"event":"e"}`), http.StatusForbidden, "[2].target"},
		{"another tenant", writer, batch(news, `{"tenant":"globex","topic":"news","event":"e"}`), http.StatusForbidden, "[1].tenant"},
		{"reader cannot publish", reader, batch(news), http.StatusForbidden, "[0].target"},
		{"bad item before a forbidden one", writer, batch(`{"event":"e"}`, `{"broadcast":true,"event":"e"}`), http.StatusBadRequest, "[0].target"},
	} {
		status, body := post(t, srv.Client(), srv.URL, tc.token, tc.body)
		if !assert.Equal(t, tc.status, status, "%s: body %s", tc.name, body) {
			continue
		}

		if tc.field != "" {
			e := decodeError(t, body)
			assert.Equal(t, tc.field, e.Field, "%s: field %q, want %q", tc.name, e.Field, tc.field)
		}
	}
	got := b.Stats().Published
	require.Equal(t, uint64(0), got, "refused batches published %d events", got)

	// Allowed: the tenant is the token's, the body names none.
	status, body := post(t, srv.Client(), srv.URL, writer, batch(
		`{"topic":"news","event":"headline","data":"b1"}`,
		`{"user":"`+alice.String()+`","event":"dm","data":"b2"}`))
	require.Equal(t, http.StatusOK, status, "granted batch: %d %s", status, body)
	// The publish secret: a trusted service, any target, any tenant.
	status, body = post(t, srv.Client(), srv.URL, "svc-secret", batch(
		`{"tenant":"acme","broadcast":true,"event":"all","data":"b3"}`,
		`{"tenant":"globex","broadcast":true,"event":"all","data":"elsewhere"}`))
	require.Equal(t, http.StatusOK, status, "batch with the publish secret: %d %s", status, body)
	dec := core.NewDecoder(res.Body)
	for _, want := range []string{"b1", "b2", "b3"} {
		ev, err := dec.Next()
		require.NoError(t, err)
		require.Equal(t, want, ev.Data, "got %q, want %q", ev.Data, want)
	}
}

// startAuthHub serves a hub in auth mode (a fresh -jwt-secret plus args)
// and returns it, its broker and a function minting tokens it accepts.
func startAuthHub(t *testing.T, args ...string) (*httptest.Server, *core.Broker, func(auth.Grant) string) {
	t.Helper()
	secret := auth.NewSecret()
	o, err := parseOptions(append([]string{"-jwt-secret", string(secret)}, args...), envMap(nil), &strings.Builder{})
	require.NoError(t, err)
	srv, b := newTestHub(t, o.broker, o.hub)
	mint := func(g auth.Grant) string {
		t.Helper()
		tok, err := o.hub.jwt.Mint(secret, g)
		require.NoError(t, err)
		return tok
	}
	return srv, b, mint
}
