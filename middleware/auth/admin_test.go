package auth_test

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

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
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			err = auth.CanAdmin(id)
			if tc.admin {
				if err != nil {
					t.Fatalf("CanAdmin: %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, auth.ErrAdminNotAllowed) || !errors.Is(err, core.ErrForbidden) {
				t.Fatalf("CanAdmin: %v, want ErrAdminNotAllowed (403)", err)
			}
		})
	}
}

// TestCanAdminRefusesForeignIdentities: an identity not made from a token,
// or altered after verification, never holds the grant.
func TestCanAdminRefusesForeignIdentities(t *testing.T) {
	if err := auth.CanAdmin(core.Identity{User: alice, Tenant: "acme"}); !errors.Is(err, auth.ErrAdminNotAllowed) {
		t.Fatalf("identity without claims: %v", err)
	}
	j := newJWT(t, testConfig())
	id, err := j.Verify(rsaToken(t, map[string]any{auth.AdminClaim: true}))
	if err != nil {
		t.Fatal(err)
	}
	moved := id
	moved.Tenant = "globex"
	if err := auth.CanAdmin(moved); !errors.Is(err, core.ErrForbidden) {
		t.Fatalf("identity moved to another tenant: %v", err)
	}
	// Forging the claim into a signed token breaks the signature.
	forged := tamper(t, rsaToken(t, nil), func(m map[string]any) { m[auth.AdminClaim] = true })
	if _, err := j.Verify(forged); err == nil {
		t.Fatal("a token with a forged admin claim verified")
	}
}

// TestCanAdminExpired: a grant ends with its token, even when the identity
// was verified while the token was valid.
func TestCanAdminExpired(t *testing.T) {
	j := newJWT(t, testConfig())
	id, err := j.Verify(rsaToken(t, map[string]any{auth.AdminClaim: true}))
	if err != nil {
		t.Fatal(err)
	}
	c, ok := auth.ClaimsOf(id)
	if !ok {
		t.Fatal("no claims")
	}
	c.ExpiresAt = time.Now().Add(-time.Second)
	if err := auth.CanAdmin(id); !errors.Is(err, auth.ErrExpiredToken) {
		t.Fatalf("expired admin token: %v, want ErrExpiredToken", err)
	}
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
	if err != nil {
		t.Fatalf("MintAdmin: %v", err)
	}
	id, err := j.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := auth.CanAdmin(id); err != nil {
		t.Fatalf("CanAdmin: %v", err)
	}
	c, _ := auth.ClaimsOf(id)
	if id.User != alice || id.Tenant != "acme" || !c.Topics.Match("news") || !c.Publish.Broadcast || c.KeyID != "k1" || c.Algorithm != "HS256" {
		t.Fatalf("MintAdmin lost a claim of the grant: %+v", c)
	}
	if err := auth.CanPublish(id, core.Target{Tenant: "acme", Broadcast: true}); err != nil {
		t.Fatalf("the admin token lost its publish grant: %v", err)
	}

	plain, err := j.Mint(secret, g)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := j.Verify(plain)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.CanAdmin(pid); !errors.Is(err, auth.ErrAdminNotAllowed) {
		t.Fatalf("a token from Mint holds the admin grant: %v", err)
	}

	// Mint's refusals come back unchanged.
	if _, err := j.MintAdmin(secret, auth.Grant{User: alice, Tenant: "acme", TTL: -time.Second}); err == nil {
		t.Fatal("MintAdmin accepted a negative TTL")
	}
	if _, err := j.MintAdmin(auth.NewSecret(), g); err == nil {
		t.Fatal("MintAdmin signed with a key the JWT does not accept")
	}
}

// TestMintAdminKeepsAlgorithm: an asymmetric key signs with its own
// algorithm, as Mint would.
func TestMintAdminKeepsAlgorithm(t *testing.T) {
	k := testKeys()
	cfg := testConfig()
	j := newJWT(t, cfg)
	tok, err := j.MintAdmin(k.ec, auth.Grant{User: alice, Tenant: "acme", KeyID: "ec-1"})
	if err != nil {
		t.Fatalf("MintAdmin: %v", err)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Method.Alg() != "ES256" {
		t.Fatalf("alg %s, want ES256", parsed.Method.Alg())
	}
	id, err := j.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.CanAdmin(id); err != nil {
		t.Fatalf("CanAdmin: %v", err)
	}
}
