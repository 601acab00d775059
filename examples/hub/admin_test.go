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

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// startAdminHub serves a hub in auth mode, with /metrics as run serves it,
// and returns a function minting tokens with or without the admin grant.
func startAdminHub(t *testing.T, args ...string) (*httptest.Server, func(g auth.Grant, admin bool) string) {
	t.Helper()
	secret := auth.NewSecret()
	o, err := parseOptions(append([]string{"-jwt-secret", string(secret)}, args...), envMap(nil), &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := newObservability(context.Background(), traceOff, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
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
		if err != nil {
			t.Fatal(err)
		}
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
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusUnauthorized && res.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("%s: 401 without a Bearer challenge", path)
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
			if status != tc.status {
				t.Errorf("%s, %s: got %d %s, want %d", path, tc.name, status, body, tc.status)
			}
			if status == http.StatusOK && path == "/stats" && !strings.Contains(body, `"connections"`) {
				t.Errorf("%s, %s: body %s", path, tc.name, body)
			}
			if status == http.StatusOK && path == "/metrics" && !strings.Contains(body, "go_goroutines") {
				t.Errorf("%s, %s: body has no metrics", path, tc.name)
			}
			if status != http.StatusOK && strings.Contains(body, "connections") {
				t.Errorf("%s, %s: a refusal leaked the figures: %s", path, tc.name, body)
			}
		}
	}
	// /healthz stays open: load balancers probe it without credentials.
	if status, body := getAs(t, srv, "/healthz", "", ""); status != http.StatusOK {
		t.Errorf("/healthz: %d %s", status, body)
	}
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
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); res.Body.Close() })
		if res.StatusCode != http.StatusOK {
			t.Fatalf("stream of %s: %d", g.Tenant, res.StatusCode)
		}
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
		if status != tc.status {
			t.Errorf("%s: got %d %s, want %d", tc.name, status, body, tc.status)
			continue
		}
		if status != http.StatusOK {
			if strings.Contains(body, alice.String()) || strings.Contains(body, carol.String()) {
				t.Errorf("%s: a refusal leaked a user: %s", tc.name, body)
			}
			continue
		}
		var got []uuid.UUID
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Errorf("%s: %v in %s", tc.name, err, body)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestAdminRoutesOpenOutsideAuthMode: the demo hub (streams trust the
// query string) keeps its figures open, publish secret or not.
func TestAdminRoutesOpenOutsideAuthMode(t *testing.T) {
	srv, _ := newTestHub(t, core.Config{}, hubConfig{publishSecret: "s3cret"})
	for _, path := range []string{"/stats", "/online?tenant=acme"} {
		if status, body := getAs(t, srv, path, "", ""); status != http.StatusOK {
			t.Errorf("%s: %d %s", path, status, body)
		}
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
		if err != nil {
			t.Fatalf("the hub ended before printing its token: %v (%q)", err, out.String())
		}
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
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/stats with the dev token: %d", res.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
