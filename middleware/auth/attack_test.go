//go:build !js && !wasip1

package auth_test

// End-to-end attack tests: each one runs a real HTTP server (the net/http
// adapter over a broker configured with this package) and a real client,
// so they check what reaches the wire, not only what the parser says.

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// waitBound bounds every wait for the server; no assertion depends on it.
const waitBound = 30 * time.Second

type testServer struct {
	url    string
	broker *core.Broker
	auth   *auth.JWT
	client *http.Client

	mu      sync.Mutex
	rejects []error
}

// startServer serves streams at its root with the net/http adapter, over a
// broker whose Authenticator and Authorizer are a JWT made from cfg.
func startServer(t *testing.T, cfg auth.Config) *testServer {
	t.Helper()
	s := &testServer{auth: newJWT(t, cfg)}
	b, err := core.New(core.Config{
		Authenticator: s.auth,
		Authorizer:    s.auth,
		Observer: &core.Observer{Reject: func(_ context.Context, _ string, err error) {
			s.mu.Lock()
			s.rejects = append(s.rejects, err)
			s.mu.Unlock()
		}},
	})
	require.NoError(t, err)
	ts := httptest.NewServer(nethttp.Handler(b))
	s.url, s.broker, s.client = ts.URL, b, ts.Client()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitBound)
		defer cancel()
		assert.NoError(t, b.Close(ctx), "broker close")
		ts.Close()
	})
	return s
}

func (s *testServer) lastReject() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.rejects) == 0 {
		return nil
	}
	return s.rejects[len(s.rejects)-1]
}

// conn describes one stream request.
type conn struct {
	bearer      string // Authorization: Bearer
	cookie      string // the DefaultCookie
	query       url.Values
	lastEventID string
	header      http.Header // more request headers
}

// open sends the stream request; the response body is closed when the
// test ends.
func (s *testServer) open(t *testing.T, c conn) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/?"+c.query.Encode(), nil)
	require.NoError(t, err)
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: auth.DefaultCookie, Value: c.cookie})
	}
	if c.lastEventID != "" {
		req.Header.Set("Last-Event-ID", c.lastEventID)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// refused opens c and checks that it is refused with status, that the
// error behind it wraps every one of want, and that the body is short and
// says nothing about keys.
func (s *testServer) refused(t *testing.T, c conn, status int, want ...error) {
	t.Helper()
	resp := s.open(t, c)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, status, resp.StatusCode, "status %d (body %q), want %d", resp.StatusCode, body, status)
	switch status {
	case http.StatusUnauthorized:
		assert.Equal(t, "unauthenticated\n", string(body), "401 body %q", body)
	case http.StatusForbidden:
		assert.Equal(t, "forbidden\n", string(body), "403 body %q", body)
	}
	lower := strings.ToLower(string(body))
	for _, leak := range []string{"key", "kid", "secret", "begin", "rsa", "hmac", "signature"} {
		assert.NotContains(t, lower, leak, "body %q mentions %q", body, leak)
	}
	err = s.lastReject()
	for _, w := range want {
		assert.ErrorIs(t, err, w, "rejected with %v, want it to wrap %v", err, w)
	}
}

// stream opens c, which must be accepted, and returns a decoder over it.
func (s *testServer) stream(t *testing.T, c conn) *core.Decoder {
	t.Helper()
	resp := s.open(t, c)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		require.FailNow(t, fmt.Sprintf("status %d (body %q, error %v), want 200", resp.StatusCode, body, s.lastReject()))
	}
	return core.NewDecoder(resp.Body)
}

// readUntil returns the events of d up to the first of type typ.
func readUntil(t *testing.T, d *core.Decoder, typ string) []core.Event {
	t.Helper()
	var evs []core.Event
	for {
		ev, err := d.Next()
		require.NoError(t, err, "waiting for a %q event: %v (got %+v)", typ, err, evs)
		evs = append(evs, ev)
		if ev.Type == typ {
			return evs
		}
	}
}

func topics(ts ...string) url.Values { return url.Values{"topic": ts} }

// Attack: an unsigned token ("alg": "none" in any spelling), hoping the
// server takes the algorithm from the token.
func TestAttackAlgNone(t *testing.T) {
	s := startServer(t, testConfig())
	c := claims(nil)
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": "rsa-1"}, c)
	for name, tok := range map[string]string{
		"none":          none,
		"None":          rawToken(t, map[string]any{"alg": "None", "typ": "JWT"}, c, nil),
		"NONE":          rawToken(t, map[string]any{"alg": "NONE", "typ": "JWT", "kid": "rsa-1"}, c, nil),
		"none with sig": rawToken(t, map[string]any{"alg": "none"}, c, []byte("x")),
		"no alg at all": rawToken(t, map[string]any{"typ": "JWT"}, c, nil),
		"valid sig, alg none": func() string {
			valid := strings.Split(rsaToken(t, nil), ".")
			h := strings.Split(rawToken(t, map[string]any{"alg": "none", "kid": "rsa-1"}, c, nil), ".")[0]
			return h + "." + valid[1] + "." + valid[2]
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			s.refused(t, conn{bearer: tok}, http.StatusUnauthorized, auth.ErrInvalidToken)
			s.refused(t, conn{cookie: tok}, http.StatusUnauthorized, auth.ErrInvalidToken)
		})
	}
}

// Attack: algorithm confusion. The server verifies RS256 with an RSA public
// key; the attacker, who can read that public key, signs an HS256 token
// using the key's bytes as the HMAC secret, hoping the server feeds the
// same key to HMAC.
func TestAttackAlgorithmConfusion(t *testing.T) {
	k := testKeys()
	der, err := x509.MarshalPKIXPublicKey(&k.rsa.PublicKey)
	require.NoError(t, err)
	secrets := map[string][]byte{
		"PEM":      publicPEM(t, &k.rsa.PublicKey),
		"DER":      der,
		"PKCS1":    x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey),
		"modulus":  k.rsa.PublicKey.N.Bytes(),
		"PEM-trim": []byte(strings.TrimSpace(string(publicPEM(t, &k.rsa.PublicKey)))),
	}
	run := func(t *testing.T, s *testServer) {
		for name, secret := range secrets {
			for _, kid := range []string{"rsa-1", ""} {
				h := map[string]any{}
				if kid != "" {
					h["kid"] = kid
				}
				tok := sign(t, jwt.SigningMethodHS256, secret, h, claims(nil))
				t.Run(name+"/kid="+kid, func(t *testing.T) {
					s.refused(t, conn{bearer: tok}, http.StatusUnauthorized, auth.ErrInvalidToken)
				})
			}
		}
	}
	t.Run("RS256 only", func(t *testing.T) { run(t, startServer(t, testConfig())) })
	// Even with HS256 allowed (its own secret configured), the RSA key is
	// never used as an HMAC secret.
	t.Run("RS256 and HS256", func(t *testing.T) {
		cfg := testConfig()
		cfg.Algorithms = append(cfg.Algorithms, "HS256")
		cfg.Keys = append(cfg.Keys, auth.Key{ID: "hs-1", Key: k.hmac})
		s := startServer(t, cfg)
		run(t, s)
		// The server does accept a genuine HS256 token.
		tok := sign(t, jwt.SigningMethodHS256, k.hmac, map[string]any{"kid": "hs-1"}, claims(nil))
		s.stream(t, conn{bearer: tok})
	})
}

// Attack: replaying a token after its exp.
func TestAttackExpiredToken(t *testing.T) {
	s := startServer(t, testConfig())
	tok := rsaToken(t, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()})
	s.refused(t, conn{bearer: tok}, http.StatusUnauthorized, auth.ErrExpiredToken, jwt.ErrTokenExpired)
	s.refused(t, conn{cookie: tok}, http.StatusUnauthorized, auth.ErrExpiredToken)
	// A token without exp is refused too: exp is required by default.
	s.refused(t, conn{bearer: rsaToken(t, map[string]any{"exp": nil})}, http.StatusUnauthorized, auth.ErrInvalidToken, jwt.ErrTokenRequiredClaimMissing)
}

// Attack: using a token before its nbf.
func TestAttackNotYetValid(t *testing.T) {
	s := startServer(t, testConfig())
	tok := rsaToken(t, map[string]any{"nbf": time.Now().Add(time.Minute).Unix()})
	s.refused(t, conn{bearer: tok}, http.StatusUnauthorized, auth.ErrInvalidToken, jwt.ErrTokenNotValidYet)
}

// Attack: a token issued for another service (audience).
func TestAttackWrongAudience(t *testing.T) {
	s := startServer(t, testConfig())
	for name, aud := range map[string]any{
		"other":       "billing-api",
		"other list":  []string{"billing-api", "ssekit-test-not"},
		"empty":       "",
		"missing":     nil,
		"wrong type":  42,
		"prefix only": "ssekit",
	} {
		t.Run(name, func(t *testing.T) {
			s.refused(t, conn{bearer: rsaToken(t, map[string]any{"aud": aud})}, http.StatusUnauthorized, auth.ErrInvalidToken)
		})
	}
	s.refused(t, conn{bearer: rsaToken(t, map[string]any{"aud": "billing-api"})}, http.StatusUnauthorized, jwt.ErrTokenInvalidAudience)
	s.stream(t, conn{bearer: rsaToken(t, map[string]any{"aud": []string{"billing-api", testAudience}})})
}

// Attack: a token from another issuer (one that happens to share a key
// type, or a key set, with ours).
func TestAttackWrongIssuer(t *testing.T) {
	s := startServer(t, testConfig())
	for name, iss := range map[string]any{
		"other":    "https://evil.test/",
		"no slash": strings.TrimSuffix(testIssuer, "/"),
		"missing":  nil,
	} {
		t.Run(name, func(t *testing.T) {
			s.refused(t, conn{bearer: rsaToken(t, map[string]any{"iss": iss})}, http.StatusUnauthorized, auth.ErrInvalidToken)
		})
	}
	s.refused(t, conn{bearer: rsaToken(t, map[string]any{"iss": "https://evil.test/"})}, http.StatusUnauthorized, jwt.ErrTokenInvalidIssuer)
}

// Attack: a token whose kid no configured key matches: signed by the
// attacker's own key, or by a real key under a kid that does not exist.
func TestAttackUnknownKid(t *testing.T) {
	k := testKeys()
	s := startServer(t, testConfig())
	for name, tok := range map[string]string{
		"attacker key, attacker kid": sign(t, jwt.SigningMethodRS256, k.rsaAttacker, map[string]any{"kid": "evil"}, claims(nil)),
		"attacker key, real kid":     sign(t, jwt.SigningMethodRS256, k.rsaAttacker, map[string]any{"kid": "rsa-1"}, claims(nil)),
		"attacker key, no kid":       sign(t, jwt.SigningMethodRS256, k.rsaAttacker, nil, claims(nil)),
		"real key, unknown kid":      sign(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "rsa-2"}, claims(nil)),
		"real key, other type's kid": sign(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "ec-1"}, claims(nil)),
		"kid path traversal":         sign(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "../../dev/null"}, claims(nil)),
		"kid not a string":           sign(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": 1}, claims(nil)),
	} {
		t.Run(name, func(t *testing.T) {
			s.refused(t, conn{bearer: tok}, http.StatusUnauthorized, auth.ErrInvalidToken)
		})
	}
	s.refused(t, conn{bearer: sign(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "rsa-2"}, claims(nil))},
		http.StatusUnauthorized, jwt.ErrTokenUnverifiable)
}

// Attack: a genuine token whose payload (or header) was edited: another
// tenant, wider topics, another user, a later exp.
func TestAttackTamperedPayload(t *testing.T) {
	s := startServer(t, testConfig())
	valid := rsaToken(t, nil)
	s.stream(t, conn{bearer: valid, query: topics("orders/eu")})
	for name, change := range map[string]func(map[string]any){
		"tenant": func(m map[string]any) { m["tenant"] = "globex" },
		"topics": func(m map[string]any) { m["topics"] = []string{"**"} },
		"user":   func(m map[string]any) { m["sub"] = bob.String() },
		"exp":    func(m map[string]any) { m["exp"] = time.Now().Add(24 * time.Hour).Unix() },
		"added":  func(m map[string]any) { m["admin"] = true },
	} {
		t.Run(name, func(t *testing.T) {
			s.refused(t, conn{bearer: tamper(t, valid, change), query: topics("orders/eu")},
				http.StatusUnauthorized, auth.ErrInvalidToken, jwt.ErrTokenSignatureInvalid)
		})
	}
	t.Run("signature", func(t *testing.T) {
		b := []byte(valid)
		i := len(b) - 5
		b[i] ^= 'A' ^ 'B'
		if b[i] == valid[i] {
			b[i] = 'C'
		}
		s.refused(t, conn{bearer: string(b)}, http.StatusUnauthorized, auth.ErrInvalidToken)
	})
	t.Run("header alg", func(t *testing.T) {
		parts := strings.Split(valid, ".")
		parts[0] = strings.Split(rawToken(t, map[string]any{"alg": "ES256", "kid": "rsa-1"}, nil, nil), ".")[0]
		s.refused(t, conn{bearer: strings.Join(parts, ".")}, http.StatusUnauthorized, auth.ErrInvalidToken)
	})
}

// Attack: a token for tenant acme used to reach tenant globex: naming it in
// the request, replaying from a globex event ID, and sitting on a topic,
// user ID and broadcast that globex also uses. Nothing of globex arrives.
func TestAttackOtherTenant(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, testConfig())
	acme := rsaToken(t, map[string]any{"tenant": "acme", "sub": alice.String()})
	globex := s.broker.Tenant("globex")

	// The request cannot choose the tenant.
	s.refused(t, conn{bearer: acme, query: url.Values{"tenant": {"globex"}}}, http.StatusForbidden, auth.ErrTenantNotAllowed)
	s.refused(t, conn{bearer: acme, query: url.Values{"tenant": {""}}}, http.StatusForbidden, auth.ErrTenantNotAllowed)

	// An event of globex, whose ID the attacker learnt.
	gid, err := s.broker.Publish(ctx, core.Message{
		Target: core.Target{Tenant: "globex", Topics: []string{"orders/1"}},
		Event:  core.Event{Type: "globex", Data: "globex before"},
	})
	require.NoError(t, err)
	d := s.stream(t, conn{bearer: acme, query: topics("orders/1"), lastEventID: gid})
	require.True(t, s.broker.Tenant("acme").IsUserOnline(alice), "the connection is not in tenant acme alone")
	require.False(t, globex.IsUserOnline(alice), "the connection is not in tenant acme alone")
	for _, send := range []func() error{
		func() error { return globex.SendToTopic(ctx, "orders/1", "globex", "globex topic") },
		func() error { return globex.SendToUser(ctx, alice, "globex", "globex user") }, // same UUID, other tenant
		func() error { return globex.Broadcast(ctx, "globex", "globex broadcast") },
		func() error { return s.broker.SendToTopic(ctx, "orders/1", "globex", "default tenant topic") },
		func() error { return s.broker.Tenant("acme").SendToTopic(ctx, "orders/1", "mine", "acme topic") },
	} {
		require.NoError(t, send())
	}
	for _, ev := range readUntil(t, d, "mine") {
		assert.NotEqual(t, "globex", ev.Type, "tenant acme received %+v", ev)
		assert.NotContains(t, ev.Data, "globex", "tenant acme received %+v", ev)
		t.Logf("received %s %q", ev.Type, ev.Data)
	}

	// Publishing into another tenant is refused by CanPublish.
	id, err := s.auth.Verify(rsaToken(t, map[string]any{"publish": []string{"orders/*", auth.GrantBroadcast}}))
	require.NoError(t, err)
	assert.ErrorIs(t, auth.CanPublish(id, core.Target{Tenant: "globex", Topics: []string{"orders/1"}}), auth.ErrTenantNotAllowed, "publish into globex")
}

// Attack: subscribing to topics the token does not grant. The 403 says
// only "forbidden" (the logged error names the topic); a granted topic in
// the same request does not help.
func TestAttackTopicOutsideClaim(t *testing.T) {
	s := startServer(t, testConfig())
	tok := rsaToken(t, map[string]any{"topics": []string{"orders/*"}})
	for name, ts := range map[string][]string{
		"other topic":        {"billing/1"},
		"parent":             {"orders"},
		"deeper":             {"orders/eu/1"},
		"one granted of two": {"orders/eu", "billing/1"},
	} {
		t.Run(name, func(t *testing.T) {
			s.refused(t, conn{bearer: tok, query: topics(ts...)}, http.StatusForbidden, auth.ErrTopicNotAllowed)
		})
	}
	resp := s.open(t, conn{bearer: tok, query: topics("billing/1")})
	body, _ := io.ReadAll(resp.Body)
	want := "forbidden\n"
	assert.Equal(t, want, string(body), "403 body %q, want %q", body, want)
	err := s.lastReject()
	require.Error(t, err, "no logged error")
	assert.Contains(t, err.Error(), `"billing/1"`, "the logged error does not name the refused topic")

	// A wildcard in the request is not a topic: 400, not a way around.
	resp = s.open(t, conn{bearer: tok, query: topics("orders/*")})
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "wildcard topic: status %d, want 400", resp.StatusCode)
	// No topics claim at all: no topic, but the stream itself is fine.
	bare := rsaToken(t, map[string]any{"topics": nil})
	s.refused(t, conn{bearer: bare, query: topics("orders/eu")}, http.StatusForbidden, auth.ErrTopicNotAllowed)
	s.stream(t, conn{bearer: bare})
	s.stream(t, conn{bearer: tok, query: topics("orders/eu", "orders/us")})
}

// Attack (or accident): a token in the URL while query tokens are off. It
// is ignored, so the request is unauthenticated; with QueryParam set, the
// same request streams.
func TestAttackQueryTokenWhileOff(t *testing.T) {
	tok := rsaToken(t, nil)
	s := startServer(t, testConfig())
	for _, name := range []string{auth.DefaultQueryParam, "token", "jwt"} {
		s.refused(t, conn{query: url.Values{name: {tok}}}, http.StatusUnauthorized, auth.ErrNoToken)
	}
	require.Error(t, s.lastReject(), "no reject recorded")
	s.refused(t, conn{query: url.Values{auth.DefaultQueryParam: {tok}}}, http.StatusUnauthorized)
	err := s.lastReject()
	assert.Contains(t, err.Error(), "query tokens are off", "the log error does not say query tokens are off: %v", err)

	cfg := testConfig()
	cfg.QueryParam = auth.DefaultQueryParam
	on := startServer(t, cfg)
	resp := on.open(t, conn{query: url.Values{auth.DefaultQueryParam: {tok}}})
	require.Equal(t, http.StatusOK, resp.StatusCode, "query tokens on: status %d", resp.StatusCode)
	t.Logf("Cache-Control on a stream: %q (recommended with query tokens: no-store)", resp.Header.Get("Cache-Control"))
}

// Attack: a header and a cookie naming different users (a shared browser,
// or a cookie planted by a sibling site). The header wins, always: the
// connection belongs to the header's user, and an invalid header is not
// rescued by a valid cookie.
func TestAttackCookieHeaderDisagree(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, testConfig())
	ta := rsaToken(t, map[string]any{"sub": alice.String()})
	tb := rsaToken(t, map[string]any{"sub": bob.String()})
	acme := s.broker.Tenant("acme")

	d := s.stream(t, conn{bearer: ta, cookie: tb})
	require.True(t, acme.IsUserOnline(alice), "online: alice %v, bob %v; want alice only", acme.IsUserOnline(alice), acme.IsUserOnline(bob))
	require.False(t, acme.IsUserOnline(bob), "online: alice %v, bob %v; want alice only", acme.IsUserOnline(alice), acme.IsUserOnline(bob))
	require.NoError(t, acme.SendToUser(ctx, bob, "for-bob", "x"))
	require.NoError(t, acme.SendToUser(ctx, alice, "for-alice", "x"))
	for _, ev := range readUntil(t, d, "for-alice") {
		assert.NotEqual(t, "for-bob", ev.Type, "the header's connection received the cookie user's event")
	}

	s.refused(t, conn{bearer: ta + "x", cookie: tb}, http.StatusUnauthorized, auth.ErrInvalidToken)
	s.refused(t, conn{bearer: rsaToken(t, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}), cookie: tb},
		http.StatusUnauthorized, auth.ErrExpiredToken)
	// The cookie alone is fine.
	s.stream(t, conn{cookie: tb})
	assert.True(t, acme.IsUserOnline(bob), "cookie-only connection is not bob's")
}

// Attack: holding a stream open past the token's expiry. The broker ends
// it with ": token_expired" and a retry hint at exp; the stale token is
// then refused, and a refreshed cookie gets back in.
func TestAttackTokenExpiresWhileStreaming(t *testing.T) {
	ctx := context.Background()
	s := startServer(t, testConfig())
	exp := time.Now().Add(3 * time.Second).Truncate(time.Second)
	tok := rsaToken(t, map[string]any{"exp": exp.Unix()})
	d := s.stream(t, conn{cookie: tok})
	var comments []string
	d.OnComment = func(c string) { comments = append(comments, c) }

	require.NoError(t, s.broker.Tenant("acme").SendToUser(ctx, alice, "hello", "still valid"))
	readUntil(t, d, "hello")
	for {
		_, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "waiting for the stream to end")
	}
	now := time.Now()
	assert.False(t, now.Before(exp), "stream ended at %v, before exp %v", now, exp)
	assert.Contains(t, strings.Join(comments, "\n"), "token_expired", "comments %q, want token_expired", comments)
	assert.Greater(t, d.Retry(), time.Duration(0), "no retry hint at the end of the stream")

	// The browser reconnects: with the stale cookie it is refused, with a
	// refreshed one it streams again.
	s.refused(t, conn{cookie: tok}, http.StatusUnauthorized, auth.ErrExpiredToken)
	s.stream(t, conn{cookie: rsaToken(t, nil)})
}
