package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// startAdminHub serves a hub in auth mode, with /metrics as run serves it,
// and returns a function minting tokens with or without the admin grant.
func startAdminHub(t *testing.T, args ...string) (*httptest.Server, func(g auth.Grant, admin bool) string) {
	t.Helper()
	secret := auth.NewSecret()
	o, err := parseOptions(append([]string{"-jwt-secret", string(secret)}, args...), envMap(nil), &strings.Builder{})
	require.NoError(t, err)
	obs, err := newObservability(context.Background(), traceOff, io.Discard)
	require.NoError(t, err)
	o.broker.Observer = obs.observer
	o.hub.obs = obs
	srv, _ := newTestHub(t, o.broker, o.hub)
	mint := func(g auth.Grant, admin bool) string {
		t.Helper()
		minter := o.hub.jwt.Mint
		if admin {
			minter = o.hub.jwt.MintAdmin
		}
		tok, err := minter(secret, g)
		require.NoError(t, err)
		return tok
	}
	return srv, mint
}

// getAs sends GET path with the bearer credential (none when empty) and,
// when cookie is set, the stream's cookie.
func getAs(t *testing.T, srv *httptest.Server, path, bearer, cookie string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: "ssekit_token", Value: cookie})
	}
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusUnauthorized {
		assert.NotEmpty(t, res.Header.Get("WWW-Authenticate"), "%s: 401 without a Bearer challenge", path)
	}
	return res.StatusCode, string(b)
}

// TestAdminRoutesInAuthMode: /stats and /metrics need the admin grant or
// the publish secret; no token, a bad token, a token in a cookie or a
// token without the grant is refused.
func TestAdminRoutesInAuthMode(t *testing.T) {
	srv, mint := startAdminHub(t, "-publish-secret", "svc-secret")
	user := mint(auth.Grant{User: uuid.New(), Tenant: "acme", Topics: []string{"**"}, Publish: []string{"**", auth.GrantBroadcast, auth.GrantUsers}}, false)
	admin := mint(auth.Grant{User: uuid.New(), Tenant: "acme"}, true)
	for _, path := range []string{"/stats", "/metrics"} {
		for _, tc := range []struct {
			name, bearer, cookie string
			status               int
		}{
			{"no credentials", "", "", http.StatusUnauthorized},
			{"forged token", admin + "x", "", http.StatusUnauthorized},
			{"wrong secret", "svc-secretx", "", http.StatusUnauthorized},
			{"admin token in a cookie", "", admin, http.StatusUnauthorized},
			{"token without the grant", user, "", http.StatusForbidden},
			{"admin token", admin, "", http.StatusOK},
			{"publish secret", "svc-secret", "", http.StatusOK},
		} {
			status, body := getAs(t, srv, path, tc.bearer, tc.cookie)
			assert.Equal(t, tc.status, status, "%s, %s: got %d %s, want %d", path, tc.name, status, body, tc.status)
			switch {
			case status != http.StatusOK:
				assert.NotContains(t, body, "connections", "%s, %s: a refusal leaked the figures", path, tc.name)
			case path == "/stats":
				assert.Contains(t, body, `"connections"`, "%s, %s", path, tc.name)
			case path == "/metrics":
				assert.Contains(t, body, "go_goroutines", "%s, %s: body has no metrics", path, tc.name)
			}
		}
	}
	// /healthz stays open: load balancers probe it without credentials.
	status, body := getAs(t, srv, "/healthz", "", "")
	assert.Equal(t, http.StatusOK, status, "/healthz: %d %s", status, body)
}

// TestOnlineInAuthMode: /online needs a token; it lists the token's own
// tenant, and another tenant only with the admin grant (or the publish
// secret). The users of one tenant never reach a caller of another.
func TestOnlineInAuthMode(t *testing.T) {
	srv, mint := startAdminHub(t, "-publish-secret", "svc-secret")
	alice, carol := uuid.New(), uuid.New()
	for _, g := range []auth.Grant{{User: alice, Tenant: "acme"}, {User: carol, Tenant: "globex"}} {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
		req.AddCookie(&http.Cookie{Name: "ssekit_token", Value: mint(g, false)})
		res, err := srv.Client().Do(req)
		if err != nil {
			cancel()
			require.NoError(t, err)
		}
		t.Cleanup(func() { cancel(); res.Body.Close() })
		require.Equal(t, http.StatusOK, res.StatusCode, "stream of %s: %d", g.Tenant, res.StatusCode)
	}
	member := mint(auth.Grant{User: uuid.New(), Tenant: "acme"}, false)
	admin := mint(auth.Grant{User: uuid.New(), Tenant: "acme"}, true)
	for _, tc := range []struct {
		name, query, bearer string
		status              int
		want                []uuid.UUID
	}{
		{"no credentials", "", "", http.StatusUnauthorized, nil},
		{"no credentials, other tenant", "?tenant=globex", "", http.StatusUnauthorized, nil},
		{"forged token", "", member + "x", http.StatusUnauthorized, nil},
		{"member, own tenant by default", "", member, http.StatusOK, []uuid.UUID{alice}},
		{"member, own tenant named", "?tenant=acme", member, http.StatusOK, []uuid.UUID{alice}},
		{"member, other tenant", "?tenant=globex", member, http.StatusForbidden, nil},
		{"member, default tenant", "?tenant=", member, http.StatusForbidden, nil},
		{"member, other tenant second", "?tenant=acme&tenant=globex", member, http.StatusOK, []uuid.UUID{alice}},
		{"member, other tenant first", "?tenant=globex&tenant=acme", member, http.StatusForbidden, nil},
		{"admin, own tenant by default", "", admin, http.StatusOK, []uuid.UUID{alice}},
		{"admin, other tenant", "?tenant=globex", admin, http.StatusOK, []uuid.UUID{carol}},
		{"admin, bad tenant", "?tenant=a%2Fb", admin, http.StatusBadRequest, nil},
		{"publish secret, default tenant", "", "svc-secret", http.StatusOK, []uuid.UUID{}},
		{"publish secret, other tenant", "?tenant=globex", "svc-secret", http.StatusOK, []uuid.UUID{carol}},
	} {
		status, body := getAs(t, srv, "/online"+tc.query, tc.bearer, "")
		if !assert.Equal(t, tc.status, status, "%s: body %s", tc.name, body) {
			continue
		}
		if status != http.StatusOK {
			assert.NotContains(t, body, alice.String(), "%s: a refusal leaked a user", tc.name)
			assert.NotContains(t, body, carol.String(), "%s: a refusal leaked a user", tc.name)
			continue
		}
		var got []uuid.UUID
		if !assert.NoError(t, json.Unmarshal([]byte(body), &got), "%s: body %s", tc.name, body) {
			continue
		}

		assert.True(t, slices.Equal(got, tc.want), "%s: got %v, want %v", tc.name, got, tc.want)
	}
}

// TestAdminRoutesOpenOutsideAuthMode: the demo hub (streams trust the
// query string) keeps its figures open, publish secret or not.
func TestAdminRoutesOpenOutsideAuthMode(t *testing.T) {
	srv, _ := newTestHub(t, core.Config{}, hubConfig{publishSecret: "s3cret"})
	for _, path := range []string{"/stats", "/online?tenant=acme"} {
		status, body := getAs(t, srv, path, "", "")
		assert.Equal(t, http.StatusOK, status, "%s: %d %s", path, status, body)
	}
}

// TestDevTokenIsAdmin: the -dev-token the hub prints opens the demo
// page's stats panel in auth mode.
func TestDevTokenIsAdmin(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out strings.Builder
	done := make(chan error, 1)
	pr, pw := io.Pipe()
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-dev-token"}, envMap(nil), pw, io.Discard)
		pw.Close()
	}()
	// The token is the line after "dev token"; the address is in the
	// first line.
	buf := make([]byte, 64<<10)
	var addr, token string
	for addr == "" || token == "" {
		n, err := pr.Read(buf)
		require.NoError(t, err, "the hub ended before printing its token: %v (%q)", err, out.String())
		out.Write(buf[:n])
		lines := strings.Split(out.String(), "\n")
		for i, l := range lines {
			if a, ok := strings.CutPrefix(l, "ssekit hub listening on http://"); ok {
				addr, _, _ = strings.Cut(a, " ")
			}
			if strings.HasPrefix(l, "dev token") && i+1 < len(lines)-1 {
				token = lines[i+1]
			}
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/stats", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "/stats with the dev token: %d", res.StatusCode)
	http.DefaultClient.CloseIdleConnections()
	cancel()
	require.NoError(t, <-done)
}
