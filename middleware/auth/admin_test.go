package auth_test

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// TestCanAdmin: only a verified token whose admin claim is the JSON value
// true holds the grant; every near miss is a 403 naming the grant.
func TestCanAdmin(t *testing.T) {
	j := newJWT(t, testConfig())
	for _, tc := range []struct {
		name  string
		value any // nil: no admin claim
		admin bool
	}{
		{"true", true, true},
		{"absent", nil, false},
		{"false", false, false},
		{"string true", "true", false},
		{"number 1", 1, false},
		{"list", []string{"true"}, false},
		{"object", map[string]any{"all": true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := j.Verify(rsaToken(t, map[string]any{auth.AdminClaim: tc.value}))
			require.NoError(t, err, "Verify")
			err = auth.CanAdmin(id)
			if tc.admin {
				require.NoError(t, err, "CanAdmin: %v, want nil", err)
				return
			}
			require.ErrorIs(t, err, auth.ErrAdminNotAllowed, "CanAdmin: %v, want ErrAdminNotAllowed (403)", err)
			require.ErrorIs(t, err, core.ErrForbidden, "CanAdmin: %v, want ErrAdminNotAllowed (403)", err)
		})
	}
}

// TestCanAdminRefusesForeignIdentities: an identity not made from a token,
// or altered after verification, never holds the grant.
func TestCanAdminRefusesForeignIdentities(t *testing.T) {
	require.ErrorIs(t, auth.CanAdmin(core.Identity{User: alice, Tenant: "acme"}), auth.ErrAdminNotAllowed, "identity without claims")
	j := newJWT(t, testConfig())
	id, err := j.Verify(rsaToken(t, map[string]any{auth.AdminClaim: true}))
	require.NoError(t, err)
	moved := id
	moved.Tenant = "globex"
	require.ErrorIs(t, auth.CanAdmin(moved), core.ErrForbidden, "identity moved to another tenant")
	// Forging the claim into a signed token breaks the signature.
	forged := tamper(t, rsaToken(t, nil), func(m map[string]any) { m[auth.AdminClaim] = true })
	_, err = j.Verify(forged)
	require.Error(t, err, "a token with a forged admin claim verified")
}

// TestCanAdminExpired: a grant ends with its token, even when the identity
// was verified while the token was valid.
func TestCanAdminExpired(t *testing.T) {
	j := newJWT(t, testConfig())
	id, err := j.Verify(rsaToken(t, map[string]any{auth.AdminClaim: true}))
	require.NoError(t, err)
	c, ok := auth.ClaimsOf(id)
	require.True(t, ok, "no claims")
	c.ExpiresAt = time.Now().Add(-time.Second)
	require.ErrorIs(t, auth.CanAdmin(id), auth.ErrExpiredToken, "expired admin token")
}

// TestMintAdmin: the token holds every claim Mint writes (tenant, topics,
// publish, kid) plus the admin grant, and it verifies; Mint's own tokens
// never carry the grant.
func TestMintAdmin(t *testing.T) {
	secret := auth.NewSecret()
	j := newJWT(t, auth.Config{
		Algorithms:  []string{"HS256"},
		Keys:        []auth.Key{{ID: "k1", Key: secret}},
		TenantClaim: "tenant",
	})
	g := auth.Grant{User: alice, Tenant: "acme", Topics: []string{"news"}, Publish: []string{auth.GrantBroadcast}, KeyID: "k1"}
	tok, err := j.MintAdmin(secret, g)
	require.NoError(t, err, "MintAdmin")
	id, err := j.Verify(tok)
	require.NoError(t, err, "Verify")
	require.NoError(t, auth.CanAdmin(id), "CanAdmin")
	c, _ := auth.ClaimsOf(id)
	require.Equal(t, alice, id.User, "MintAdmin lost a claim of the grant: %+v", c)
	require.Equal(t, "acme", id.Tenant, "MintAdmin lost a claim of the grant: %+v", c)
	require.True(t, c.Topics.Match("news"), "MintAdmin lost a claim of the grant: %+v", c)
	require.True(t, c.Publish.Broadcast, "MintAdmin lost a claim of the grant: %+v", c)
	require.Equal(t, "k1", c.KeyID, "MintAdmin lost a claim of the grant: %+v", c)
	require.Equal(t, "HS256", c.Algorithm, "MintAdmin lost a claim of the grant: %+v", c)
	require.NoError(t, auth.CanPublish(id, core.Target{Tenant: "acme", Broadcast: true}), "the admin token lost its publish grant")

	plain, err := j.Mint(secret, g)
	require.NoError(t, err)
	pid, err := j.Verify(plain)
	require.NoError(t, err)
	require.ErrorIs(t, auth.CanAdmin(pid), auth.ErrAdminNotAllowed, "a token from Mint holds the admin grant")

	// Mint's refusals come back unchanged.
	_, err = j.MintAdmin(secret, auth.Grant{User: alice, Tenant: "acme", TTL: -time.Second})
	require.Error(t, err, "MintAdmin accepted a negative TTL")
	_, err = j.MintAdmin(auth.NewSecret(), g)
	require.Error(t, err, "MintAdmin signed with a key the JWT does not accept")

}

// TestMintAdminKeepsAlgorithm: an asymmetric key signs with its own
// algorithm, as Mint would.
func TestMintAdminKeepsAlgorithm(t *testing.T) {
	k := testKeys()
	cfg := testConfig()
	j := newJWT(t, cfg)
	tok, err := j.MintAdmin(k.ec, auth.Grant{User: alice, Tenant: "acme", KeyID: "ec-1"})
	require.NoError(t, err, "MintAdmin")
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	require.NoError(t, err)
	require.Equal(t, "ES256", parsed.Method.Alg(), "alg %s, want ES256", parsed.Method.Alg())
	id, err := j.Verify(tok)
	require.NoError(t, err)
	require.NoError(t, auth.CanAdmin(id), "CanAdmin")
}
