package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

func TestNewValidation(t *testing.T) {
	k := testKeys()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	require.NoError(t, err)
	hs := func(c auth.Config) auth.Config {
		if c.Algorithms == nil {
			c.Algorithms = []string{"HS256"}
		}
		if c.Keys == nil && c.Keyfunc == nil {
			c.Keys = []auth.Key{{Key: k.hmac}}
		}
		return c
	}
	kf := func(*jwt.Token) (any, error) { return k.hmac, nil }
	bad := []struct {
		name string
		cfg  auth.Config
		want string
	}{
		{"no algorithms", auth.Config{Keys: []auth.Key{{Key: k.hmac}}}, "Algorithms is empty"},
		{"alg none", hs(auth.Config{Algorithms: []string{"none"}}), `"none" is never accepted`},
		{"unknown alg", hs(auth.Config{Algorithms: []string{"HS1"}}), `unknown algorithm "HS1"`},
		{"no key source", auth.Config{Algorithms: []string{"HS256"}}, "no key source"},
		{"two key sources", hs(auth.Config{Keyfunc: kf, Keys: []auth.Key{{Key: k.hmac}}}), "both set"},
		{"string secret", hs(auth.Config{Keys: []auth.Key{{Key: "secret"}}}), "must be []byte"},
		{"short secret", hs(auth.Config{Keys: []auth.Key{{Key: []byte("short")}}}), "at least 32"},
		{"small RSA", auth.Config{Algorithms: []string{"RS256"}, Keys: []auth.Key{{Key: &small.PublicKey}}}, "1024 bits"},
		{"P-224", auth.Config{Algorithms: []string{"ES256"}, Keys: []auth.Key{{Key: &p224.PublicKey}}}, "P-224"},
		{"wrong key type", auth.Config{Algorithms: []string{"RS256"}, Keys: []auth.Key{{Key: 42}}}, "unsupported key type int"},
		{"key fits no alg", auth.Config{Algorithms: []string{"RS256"}, Keys: []auth.Key{{Key: &k.rsa.PublicKey}, {Key: k.hmac}}}, "Keys[1] (HMAC secret ([]byte)) matches none"},
		{"alg without key", auth.Config{Algorithms: []string{"RS256", "ES256"}, Keys: []auth.Key{{Key: &k.rsa.PublicKey}}}, "ES256 needs a ECDSA P-256 key"},
		{"curve mismatch", auth.Config{Algorithms: []string{"ES384"}, Keys: []auth.Key{{Key: &k.ec.PublicKey}}}, "matches none"},
		{"leeway", hs(auth.Config{Leeway: time.Hour}), "Leeway"},
		{"negative leeway", hs(auth.Config{Leeway: -time.Second}), "Leeway"},
		{"token size", hs(auth.Config{MaxTokenSize: -1}), "MaxTokenSize"},
		{"no source", hs(auth.Config{DisableHeader: true, DisableCookie: true}), "every token source is off"},
		{"cookie name", hs(auth.Config{Cookie: "a b"}), "not a valid cookie name"},
		{"query name", hs(auth.Config{QueryParam: "topic"}), "stream parameter"},
		{"query name syntax", hs(auth.Config{QueryParam: "a=b"}), "not a valid parameter name"},
		{"claim clash", hs(auth.Config{TenantClaim: "sub"}), `both name the claim "sub"`},
		{"registered claim", hs(auth.Config{TopicsClaim: "aud"}), `registered claim "aud"`},
		{"empty audience", hs(auth.Config{Audience: []string{""}}), "Audience holds an empty string"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := auth.New(c.cfg)
			require.Error(t, err, "New accepted the config")
			require.ErrorIs(t, err, core.ErrInvalidConfig, "error %q: want ErrInvalidConfig mentioning %q", err, c.want)
			require.Contains(t, err.Error(), c.want, "error %q: want ErrInvalidConfig mentioning %q", err, c.want)
		})
	}
	// Private keys are accepted and reduced to their public half.
	for _, key := range []any{k.rsa, k.ec, k.ed, &k.rsa.PublicKey, &k.ec.PublicKey, k.ed.Public()} {
		alg := map[string]string{"*rsa.PrivateKey": "RS256", "*rsa.PublicKey": "PS512", "*ecdsa.PrivateKey": "ES256",
			"*ecdsa.PublicKey": "ES256", "ed25519.PrivateKey": "EdDSA", "ed25519.PublicKey": "EdDSA"}[fmt.Sprintf("%T", key)]
		_, err := auth.New(auth.Config{Algorithms: []string{alg}, Keys: []auth.Key{{Key: key}}})
		assert.NoError(t, err, "%T with %s", key, alg)
	}
	j := newJWT(t, hs(auth.Config{}))
	c := j.Config()
	assert.Equal(t, auth.DefaultCookie, c.Cookie, "default Cookie")
	assert.Empty(t, c.QueryParam, "default QueryParam")
	assert.Equal(t, "sub", c.UserClaim, "default UserClaim")
	assert.Equal(t, "topics", c.TopicsClaim, "default TopicsClaim")
	assert.Equal(t, "publish", c.PublishClaim, "default PublishClaim")
	assert.Equal(t, auth.DefaultMaxTokenSize, c.MaxTokenSize, "default MaxTokenSize")
}

// Every algorithm family verifies its own tokens, and Mint picks the
// algorithm that fits the signing key.
func TestAlgorithms(t *testing.T) {
	k := testKeys()
	ec384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	for _, c := range []struct {
		alg        string
		sign, veri any
	}{
		{"HS256", k.hmac, k.hmac},
		{"HS512", k.hmac, k.hmac},
		{"RS256", k.rsa, &k.rsa.PublicKey},
		{"PS256", k.rsa, &k.rsa.PublicKey},
		{"ES256", k.ec, &k.ec.PublicKey},
		{"ES384", ec384, &ec384.PublicKey},
		{"EdDSA", k.ed, k.ed.Public()},
	} {
		t.Run(c.alg, func(t *testing.T) {
			j := newJWT(t, auth.Config{Algorithms: []string{c.alg}, Keys: []auth.Key{{Key: c.veri}}})
			tok, err := j.Mint(c.sign, auth.Grant{User: alice, Topics: []string{"a/*"}})
			require.NoError(t, err)
			id, err := j.Verify(tok)
			require.NoError(t, err)
			cl, _ := auth.ClaimsOf(id)
			require.Equal(t, alice, id.User, "identity %+v, alg %s", id, cl.Algorithm)
			require.Equal(t, c.alg, cl.Algorithm, "identity %+v, alg %s", id, cl.Algorithm)
		})
	}
}

// Several keys at once: the kid picks one, a token without kid is tried
// against every key of its type, and an unknown kid is refused.
func TestKeyRotation(t *testing.T) {
	k := testKeys()
	old, cur := k.rsaAttacker, k.rsa // two RSA keys; here both are legitimate
	j := newJWT(t, auth.Config{
		Algorithms: []string{"RS256"},
		Keys:       []auth.Key{{ID: "2024", Key: &old.PublicKey}, {ID: "2025", Key: &cur.PublicKey}},
	})
	c := claims(map[string]any{"iss": nil, "aud": nil, "tenant": nil})
	for _, tc := range []struct {
		name string
		key  *rsa.PrivateKey
		kid  any
		ok   bool
	}{
		{"old key, its kid", old, "2024", true},
		{"new key, its kid", cur, "2025", true},
		{"old key, no kid", old, nil, true},
		{"new key, no kid", cur, nil, true},
		{"new key, old kid", cur, "2024", false},
		{"unknown kid", cur, "2026", false},
		{"kid not a string", cur, 2025, false},
	} {
		h := map[string]any{}
		if tc.kid != nil {
			h["kid"] = tc.kid
		}
		_, err := j.Verify(sign(t, jwt.SigningMethodRS256, tc.key, h, c))
		if tc.ok {
			assert.NoError(t, err, tc.name)
		} else {
			assert.ErrorIs(t, err, auth.ErrInvalidToken, tc.name)
		}
	}
	// A key without an ID matches any kid.
	j = newJWT(t, auth.Config{Algorithms: []string{"RS256"}, Keys: []auth.Key{{Key: &cur.PublicKey}}})
	_, err := j.Verify(sign(t, jwt.SigningMethodRS256, cur, map[string]any{"kid": "whatever"}, c))
	assert.NoError(t, err, "ID-less key")
}

// A caller's Keyfunc supplies keys, and Algorithms is still enforced
// before it runs.
func TestKeyfunc(t *testing.T) {
	k := testKeys()
	calls := 0
	j := newJWT(t, auth.Config{
		Algorithms: []string{"RS256"},
		Keyfunc: func(tok *jwt.Token) (any, error) {
			calls++
			if tok.Header["kid"] != "k1" {
				return nil, errors.New("unknown kid")
			}
			return &k.rsa.PublicKey, nil
		},
	})
	c := claims(map[string]any{"iss": nil, "aud": nil, "tenant": nil})
	_, err := j.Verify(sign(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "k1"}, c))
	require.NoError(t, err)
	_, err = j.Verify(sign(t, jwt.SigningMethodRS256, k.rsa, map[string]any{"kid": "k2"}, c))
	require.ErrorIs(t, err, auth.ErrInvalidToken, "unknown kid")
	n := calls
	_, err = j.Verify(sign(t, jwt.SigningMethodHS256, k.hmac, map[string]any{"kid": "k1"}, c))
	require.ErrorIs(t, err, auth.ErrInvalidToken, "HS256 under RS256-only")
	assert.Equal(t, n, calls, "the Keyfunc ran for a token whose algorithm is not allowed")
}

func TestClaimMapping(t *testing.T) {
	k := testKeys()
	j := newJWT(t, testConfig())
	verify := func(over map[string]any) (*auth.Claims, error) {
		id, err := j.Verify(rsaToken(t, over))
		if err != nil {
			return nil, err
		}
		c, ok := auth.ClaimsOf(id)
		require.True(t, ok, "identity %+v and claims %+v disagree", id, c)
		require.Equal(t, id.User, c.User, "identity %+v and claims %+v disagree", id, c)
		require.Equal(t, id.Tenant, c.Tenant, "identity %+v and claims %+v disagree", id, c)
		require.True(t, c.ExpiresAt.Equal(id.ExpiresAt), "identity %+v and claims %+v disagree", id, c)
		return c, nil
	}
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	c, err := verify(map[string]any{
		"exp":     exp.Unix(),
		"topics":  []string{"orders/*", "news"},
		"publish": "news @self @broadcast",
	})
	require.NoError(t, err)
	assert.Equal(t, alice, c.User, "claims user")
	assert.Equal(t, "acme", c.Tenant, "claims tenant")
	assert.True(t, c.ExpiresAt.Equal(exp), "claims exp %v, want %v", c.ExpiresAt, exp)
	assert.Equal(t, testIssuer, c.Issuer, "claims issuer")
	assert.Len(t, c.Audience, 1, "claims audience")
	assert.Equal(t, "rsa-1", c.KeyID, "claims kid")
	assert.Equal(t, "RS256", c.Algorithm, "claims alg")
	assert.Equal(t, "acme", c.Raw["tenant"], "claims raw tenant")
	got := strings.Join(c.Topics.Strings(), " ")
	assert.Equal(t, "orders/* news", got, "topics %q", got)
	p := c.Publish
	assert.True(t, p.Self, "publish %+v", p)
	assert.True(t, p.Broadcast, "publish %+v", p)
	assert.False(t, p.Users, "publish %+v", p)
	assert.Equal(t, "news", strings.Join(p.Topics.Strings(), " "), "publish topics")

	for _, tc := range []struct {
		name string
		over map[string]any
		want string
	}{
		{"subject missing", map[string]any{"sub": nil}, `user claim "sub" is missing`},
		{"subject not a UUID", map[string]any{"sub": "alice@example.com"}, `is "alice@example.com", not a UUID`},
		{"subject as URN", map[string]any{"sub": "urn:uuid:" + alice.String()}, "not a UUID"},
		{"subject in braces", map[string]any{"sub": "{" + alice.String() + "}"}, "not a UUID"},
		{"subject without dashes", map[string]any{"sub": strings.ReplaceAll(alice.String(), "-", "")}, "not a UUID"},
		{"subject nil UUID", map[string]any{"sub": uuid.Nil.String()}, "nil UUID"},
		{"subject a number", map[string]any{"sub": 42}, "is a number"},
		{"tenant missing", map[string]any{"tenant": nil}, `tenant claim "tenant" is missing`},
		{"tenant empty", map[string]any{"tenant": ""}, "is missing"},
		{"tenant not a string", map[string]any{"tenant": []string{"a", "b"}}, "is a array"},
		{"tenant invalid", map[string]any{"tenant": "acme/eu"}, "invalid tenant"},
		{"topics not a list", map[string]any{"topics": 7}, "is a number"},
		{"topics entry not a string", map[string]any{"topics": []any{"a", 1}}, "entry 1 is a number"},
		{"topics bad pattern", map[string]any{"topics": []string{"orders/x*"}}, "whole segment"},
		{"publish unknown grant", map[string]any{"publish": []string{"@all"}}, `unknown grant "@all"`},
		{"publish bad pattern", map[string]any{"publish": "a//b"}, "empty segment"},
	} {
		_, err := verify(tc.over)
		assert.ErrorIs(t, err, auth.ErrInvalidClaims, tc.name)
		assert.ErrorIs(t, err, core.ErrUnauthenticated, tc.name)
		assert.ErrorContains(t, err, tc.want, tc.name)
	}
	c, err = verify(map[string]any{"sub": strings.ToUpper(alice.String()), "topics": nil})
	if assert.NoError(t, err, "upper-case UUID / no topics") {
		assert.Equal(t, alice, c.User, "upper-case UUID")
		assert.Empty(t, c.Topics, "no topics")
	}

	// exp: required by default, optional on request; leeway extends it.
	_, err = verify(map[string]any{"exp": nil})
	assert.ErrorIs(t, err, auth.ErrInvalidToken, "no exp")
	assert.ErrorIs(t, err, jwt.ErrTokenRequiredClaimMissing, "no exp")
	cfg := testConfig()
	cfg.AllowNoExpiry, cfg.AllowAnonymous, cfg.Leeway = true, true, 30*time.Second
	cfg.UserClaim, cfg.TenantClaim, cfg.TopicsClaim = "uid", "org", "subs"
	j2 := newJWT(t, cfg)
	id, err := j2.Verify(sign(t, jwt.SigningMethodES256, k.ec, nil, jwt.MapClaims{
		"org": "o1", "subs": "a b/*", "iss": testIssuer, "aud": []string{"other", testAudience},
	}))
	require.NoError(t, err)
	assert.Equal(t, uuid.Nil, id.User, "anonymous")
	assert.Equal(t, "o1", id.Tenant, "custom tenant claim")
	assert.True(t, id.ExpiresAt.IsZero(), "no exp: ExpiresAt %v", id.ExpiresAt)
	c, ok := auth.ClaimsOf(id)
	require.True(t, ok, "no claims in %+v", id)
	assert.Len(t, c.Topics, 2, "custom topics claim")
	past := time.Now().Add(-10 * time.Second).Truncate(time.Second)
	id, err = j2.Verify(sign(t, jwt.SigningMethodES256, k.ec, nil, jwt.MapClaims{
		"uid": bob.String(), "org": "o1", "iss": testIssuer, "aud": testAudience, "exp": past.Unix(),
	}))
	require.NoError(t, err, "within leeway")
	want := past.Add(30 * time.Second)
	assert.Equal(t, bob, id.User, "within leeway")
	assert.True(t, id.ExpiresAt.Equal(want), "ExpiresAt = %v, want exp+leeway %v", id.ExpiresAt, want)
}

func TestTokenSources(t *testing.T) {
	ctx := context.Background()
	j := newJWT(t, testConfig())
	ta := rsaToken(t, map[string]any{"sub": alice.String()})
	tb := rsaToken(t, map[string]any{"sub": bob.String()})
	who := func(a *auth.JWT, r request) (uuid.UUID, error) {
		id, err := a.Authenticate(ctx, r)
		return id.User, err
	}
	cases := []struct {
		name string
		r    request
		want uuid.UUID
		err  error
	}{
		{"header", bearer(ta), alice, nil},
		{"lower-case scheme", request{header: map[string]string{"Authorization": "bearer " + ta}}, alice, nil},
		{"cookie", request{cookies: map[string]string{auth.DefaultCookie: tb}}, bob, nil},
		{"header beats cookie", request{header: bearer(ta).header, cookies: map[string]string{auth.DefaultCookie: tb}}, alice, nil},
		{"invalid header, no fallback to cookie", request{header: bearer(ta + "x").header, cookies: map[string]string{auth.DefaultCookie: tb}}, uuid.Nil, auth.ErrInvalidToken},
		{"Basic header is no header", request{header: map[string]string{"Authorization": "Basic dXNlcjpwdw=="}, cookies: map[string]string{auth.DefaultCookie: tb}}, bob, nil},
		{"empty bearer", request{header: map[string]string{"Authorization": "Bearer "}}, uuid.Nil, auth.ErrInvalidToken},
		{"nothing", request{}, uuid.Nil, auth.ErrNoToken},
		{"query while off", request{query: map[string][]string{auth.DefaultQueryParam: {ta}}}, uuid.Nil, auth.ErrNoToken},
		{"other cookie name", request{cookies: map[string]string{"session": ta}}, uuid.Nil, auth.ErrNoToken},
		{"oversized", bearer(strings.Repeat("a", auth.DefaultMaxTokenSize+1)), uuid.Nil, auth.ErrInvalidToken},
		{"tenant query matches", request{header: bearer(ta).header, query: map[string][]string{"tenant": {"acme"}}}, alice, nil},
		{"tenant query differs", request{header: bearer(ta).header, query: map[string][]string{"tenant": {"evil"}}}, uuid.Nil, auth.ErrTenantNotAllowed},
		{"tenant query twice", request{header: bearer(ta).header, query: map[string][]string{"tenant": {"acme", "evil"}}}, uuid.Nil, auth.ErrTenantNotAllowed},
	}
	for _, c := range cases {
		got, err := who(j, c.r)
		assert.Equal(t, c.want, got, c.name)
		if c.err == nil {
			assert.NoError(t, err, c.name)
		} else {
			assert.ErrorIs(t, err, c.err, c.name)
		}
	}
	_, err := who(j, request{query: map[string][]string{auth.DefaultQueryParam: {ta}}})
	assert.Contains(t, fmt.Sprint(err), "query tokens are off", "query-off error does not say why: %v", err)

	cfg := testConfig()
	cfg.DisableHeader, cfg.Cookie, cfg.QueryParam = true, "sse", auth.DefaultQueryParam
	q := newJWT(t, cfg)
	for _, c := range []struct {
		name string
		r    request
		want uuid.UUID
		err  error
	}{
		{"header off", bearer(ta), uuid.Nil, auth.ErrNoToken},
		{"named cookie", request{cookies: map[string]string{"sse": tb}}, bob, nil},
		{"cookie beats query", request{cookies: map[string]string{"sse": tb}, query: map[string][]string{auth.DefaultQueryParam: {ta}}}, bob, nil},
		{"query", request{query: map[string][]string{auth.DefaultQueryParam: {ta}}}, alice, nil},
		{"two query tokens", request{query: map[string][]string{auth.DefaultQueryParam: {ta, tb}}}, uuid.Nil, auth.ErrInvalidToken},
	} {
		got, err := who(q, c.r)
		assert.Equal(t, c.want, got, c.name)
		if c.err == nil {
			assert.NoError(t, err, c.name)
		} else {
			assert.ErrorIs(t, err, c.err, c.name)
		}
	}
}

func TestAuthorize(t *testing.T) {
	ctx := context.Background()
	j := newJWT(t, testConfig())
	id, err := j.Verify(rsaToken(t, map[string]any{"topics": []string{"orders/*", "news/**"}}))
	require.NoError(t, err)
	assert.NoError(t, j.Authorize(ctx, id, []string{"orders/1", "news/eu/today"}), "granted topics")
	for _, topics := range [][]string{{"billing"}, {"orders/1", "orders"}, {"orders/1/2"}, {"news"}} {
		err := j.Authorize(ctx, id, topics)
		assert.ErrorIs(t, err, auth.ErrTopicNotAllowed, "%v", topics)
		assert.ErrorIs(t, err, core.ErrForbidden, "%v", topics)
	}
	assert.ErrorIs(t, j.Authorize(ctx, id, []string{"orders//1"}), core.ErrBadRequest, "invalid topic")
	moved := id
	moved.Tenant = "other"
	assert.ErrorIs(t, j.Authorize(ctx, moved, []string{"orders/1"}), auth.ErrTenantNotAllowed, "identity moved to another tenant")
	other := id
	other.User = bob
	assert.ErrorIs(t, j.Authorize(ctx, other, []string{"orders/1"}), core.ErrForbidden, "identity given another user")
	assert.ErrorIs(t, j.Authorize(ctx, core.Identity{Tenant: "acme"}, []string{"orders/1"}), core.ErrForbidden, "identity without claims")
	_, ok := auth.ClaimsOf(core.Identity{Claims: (*auth.Claims)(nil)})
	assert.False(t, ok, "ClaimsOf accepted a nil *Claims")
	c, _ := auth.ClaimsOf(id)
	expired := *c
	expired.ExpiresAt = time.Now().Add(-time.Second)
	stale := id
	stale.Claims, stale.ExpiresAt = &expired, expired.ExpiresAt
	assert.ErrorIs(t, j.Authorize(ctx, stale, []string{"orders/1"}), auth.ErrExpiredToken, "expired identity")
}

func TestCanPublish(t *testing.T) {
	j := newJWT(t, testConfig())
	ident := func(publish any) core.Identity {
		t.Helper()
		id, err := j.Verify(rsaToken(t, map[string]any{"publish": publish}))
		require.NoError(t, err)
		return id
	}
	all := ident([]string{"orders/*", auth.GrantBroadcast, auth.GrantUsers})
	self := ident(auth.GrantSelf + " news")
	none := ident(nil)
	cases := []struct {
		name string
		id   core.Identity
		t    core.Target
		err  error
	}{
		{"topic", all, core.Target{Tenant: "acme", Topics: []string{"orders/1"}}, nil},
		{"topic outside claim", all, core.Target{Tenant: "acme", Topics: []string{"orders/1", "billing/1"}}, auth.ErrPublishNotAllowed},
		{"broadcast", all, core.Target{Tenant: "acme", Broadcast: true}, nil},
		{"broadcast without grant", self, core.Target{Tenant: "acme", Broadcast: true}, auth.ErrPublishNotAllowed},
		{"any user", all, core.Target{Tenant: "acme", Users: []uuid.UUID{bob, alice}}, nil},
		{"self", self, core.Target{Tenant: "acme", Users: []uuid.UUID{alice}, Topics: []string{"news"}}, nil},
		{"self is not others", self, core.Target{Tenant: "acme", Users: []uuid.UUID{alice, bob}}, auth.ErrPublishNotAllowed},
		{"no publish claim", none, core.Target{Tenant: "acme", Topics: []string{"orders/1"}}, auth.ErrPublishNotAllowed},
		{"other tenant", all, core.Target{Tenant: "globex", Topics: []string{"orders/1"}}, auth.ErrTenantNotAllowed},
		{"default tenant", all, core.Target{Topics: []string{"orders/1"}}, auth.ErrTenantNotAllowed},
		{"invalid topic", all, core.Target{Tenant: "acme", Topics: []string{"orders/*"}}, core.ErrInvalidTopic},
		{"foreign identity", core.Identity{Tenant: "acme"}, core.Target{Tenant: "acme", Broadcast: true}, auth.ErrPublishNotAllowed},
	}
	for _, c := range cases {
		err := auth.CanPublish(c.id, c.t)
		if c.err == nil {
			assert.NoError(t, err, c.name)
		} else {
			assert.ErrorIs(t, err, c.err, c.name)
		}
	}
}

func TestMint(t *testing.T) {
	k := testKeys()
	j := newJWT(t, testConfig())
	tok, err := j.Mint(k.rsa, auth.Grant{User: bob, Tenant: "acme", Topics: []string{"a/*"}, Publish: []string{auth.GrantSelf}, TTL: time.Minute, KeyID: "rsa-1"})
	require.NoError(t, err)
	id, err := j.Verify(tok)
	require.NoError(t, err)
	c, _ := auth.ClaimsOf(id)
	assert.Equal(t, bob, id.User, "minted user")
	assert.Equal(t, "acme", id.Tenant, "minted tenant")
	assert.Equal(t, testIssuer, c.Issuer, "minted issuer")
	assert.Equal(t, "rsa-1", c.KeyID, "minted kid")
	assert.True(t, c.Publish.Self, "minted publish %+v", c.Publish)
	assert.WithinRange(t, id.ExpiresAt, time.Now().Add(50*time.Second), time.Now().Add(time.Minute), "minted exp")
	for _, tc := range []struct {
		name string
		key  any
		g    auth.Grant
		want string
	}{
		{"wrong key type", k.ed, auth.Grant{User: bob, Tenant: "acme"}, "no algorithm"},
		{"unknown key type", "secret", auth.Grant{User: bob, Tenant: "acme"}, "unsupported signing key"},
		{"key not configured", k.rsaAttacker, auth.Grant{User: bob, Tenant: "acme", KeyID: "rsa-1"}, "does not verify"},
		{"missing tenant", k.rsa, auth.Grant{User: bob}, "tenant claim"},
		{"negative TTL", k.rsa, auth.Grant{User: bob, Tenant: "acme", TTL: -time.Second}, "negative"},
	} {
		_, err := j.Mint(tc.key, tc.g)
		assert.ErrorContains(t, err, tc.want, tc.name)
	}
	single := newJWT(t, auth.Config{Algorithms: []string{"HS256"}, Keys: []auth.Key{{Key: k.hmac}}})
	_, err = single.Mint(k.hmac, auth.Grant{User: bob, Tenant: "acme"})
	assert.ErrorContains(t, err, "TenantClaim is empty", "tenant without TenantClaim")
	tok, err = single.Mint(k.hmac, auth.Grant{User: bob})
	require.NoError(t, err)
	id, err = single.Verify(tok)
	if assert.NoError(t, err, "default TTL") {
		assert.GreaterOrEqual(t, time.Until(id.ExpiresAt), 59*time.Minute, "default TTL: ExpiresAt %v", id.ExpiresAt)
	}
}

func TestPublicKeyFromPEM(t *testing.T) {
	k := testKeys()
	for _, pub := range []any{&k.rsa.PublicKey, &k.ec.PublicKey, k.ed.Public()} {
		got, err := auth.PublicKeyFromPEM(publicPEM(t, pub))
		require.NoError(t, err)
		assert.True(t, got.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub), "%T does not round-trip", pub)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa.PublicKey)})
	got, err := auth.PublicKeyFromPEM(pkcs1)
	if assert.NoError(t, err, "PKCS #1") {
		assert.True(t, k.rsa.PublicKey.Equal(got), "PKCS #1 key does not round-trip")
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.ed)
	require.NoError(t, err)
	private := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	_, err = auth.PublicKeyFromPEM(private)
	assert.Error(t, err, "a private key was accepted")
	_, err = auth.PublicKeyFromPEM([]byte("not pem"))
	assert.Error(t, err, "garbage was accepted")

}
