package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// TestAuthMode runs the hub as -jwt-secret sets it up: streams and
// /publish take their identity from tokens, the publish claim decides the
// targets, and the tenant always comes from the token.
func TestAuthMode(t *testing.T) {
	secret := auth.NewSecret()
	o, err := parseOptions([]string{"-jwt-secret", string(secret)}, envMap(nil), &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := core.New(o.broker)
	if err != nil {
		t.Fatal(err)
	}
	h, err := newHub(b, o.hub)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
		srv.Close()
	})
	mint := func(g auth.Grant) string {
		t.Helper()
		tok, err := o.hub.jwt.Mint(secret, g)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	alice, bob := uuid.New(), uuid.New()
	reader := mint(auth.Grant{User: alice, Tenant: "acme", Topics: []string{"news"}})
	writer := mint(auth.Grant{User: bob, Tenant: "acme", Publish: []string{"news", auth.GrantUsers}})

	// A stream without a token is refused; with the cookie it is alice's,
	// whatever the query claims.
	res, err := srv.Client().Get(srv.URL + "/events?user=" + bob.String())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("stream without token: %d", res.StatusCode)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events?topic=news&user="+bob.String(), nil)
	req.AddCookie(&http.Cookie{Name: "ssekit_token", Value: reader})
	res, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("stream with token: %d", res.StatusCode)
	}
	if !b.Tenant("acme").IsUserOnline(alice) || b.Tenant("acme").IsUserOnline(bob) {
		t.Fatal("the stream must belong to the token's user in the token's tenant")
	}

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
		if status, body := post(t, srv.Client(), srv.URL, tc.token, tc.body); status != tc.status {
			t.Errorf("%s: got %d %s, want %d", tc.name, status, body, tc.status)
		}
	}
	dec := core.NewDecoder(res.Body)
	for _, want := range []string{"t1", "t2"} {
		ev, err := dec.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Data != want {
			t.Fatalf("got %q, want %q", ev.Data, want)
		}
	}
}

func TestAuthModeOptions(t *testing.T) {
	_, err := parseOptions([]string{"-jwt-secret", "short"}, envMap(nil), &strings.Builder{})
	if err == nil || !strings.Contains(err.Error(), "-jwt-secret") {
		t.Fatalf("a short secret must be refused naming the flag, got %v", err)
	}
	// Auth mode protects /publish, so a public address is allowed.
	o, err := parseOptions([]string{"-addr", "0.0.0.0:0", "-dev-token"}, envMap(nil), &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	if o.hub.jwt == nil || len(o.jwtSecret) < 32 {
		t.Fatal("-dev-token must turn on auth mode with a random secret")
	}
}
