package auth_test

import (
	"context"
	"testing"

	"github.com/ssekit/ssekit/middleware/auth"
)

// BenchmarkAuthenticate measures one stream request's token check, per
// algorithm family: the cost a connection storm pays per reconnect.
func BenchmarkAuthenticate(b *testing.B) {
	k := testKeys()
	for _, c := range []struct {
		alg        string
		sign, veri any
	}{
		{"HS256", k.hmac, k.hmac},
		{"RS256", k.rsa, &k.rsa.PublicKey},
		{"ES256", k.ec, &k.ec.PublicKey},
		{"EdDSA", k.ed, k.ed.Public()},
	} {
		b.Run(c.alg, func(b *testing.B) {
			j := newJWT(b, auth.Config{Algorithms: []string{c.alg}, Keys: []auth.Key{{Key: c.veri}}, TenantClaim: "tenant"})
			tok, err := j.Mint(c.sign, auth.Grant{User: alice, Tenant: "acme", Topics: []string{"orders/*", "news"}})
			if err != nil {
				b.Fatal(err)
			}
			r := request{cookies: map[string]string{auth.DefaultCookie: tok}}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := j.Authenticate(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
