package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// The happy path: one JWT as both Authenticator and Authorizer of a
// broker. Browsers send the token in the ssekit_token cookie, other
// clients in an Authorization: Bearer header.
func Example() {
	_, priv, _ := ed25519.GenerateKey(rand.Reader) // your identity provider's key
	a, err := auth.New(auth.Config{
		Algorithms:  []string{"EdDSA"},
		Keys:        []auth.Key{{ID: "2025-06", Key: priv.Public()}},
		Issuer:      "https://id.example.com/",
		Audience:    []string{"ssekit"},
		TenantClaim: "tenant",
	})
	if err != nil {
		log.Fatal(err)
	}
	broker, err := core.New(core.Config{Authenticator: a, Authorizer: a})
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close(context.Background())
	// mux.Handle("GET /events", nethttp.Handler(broker))

	fmt.Println(a.Config().Cookie)
	// Output: ssekit_token
}

// A development token, for a demo page or a test: Mint signs with the
// configured claim names and checks that the token verifies.
func ExampleJWT_Mint() {
	secret := auth.NewSecret() // per process: tokens die with it
	a, err := auth.New(auth.Config{
		Algorithms:  []string{"HS256"},
		Keys:        []auth.Key{{Key: secret}},
		TenantClaim: "tenant",
	})
	if err != nil {
		log.Fatal(err)
	}
	user := uuid.MustParse("7c9e6679-7425-40de-944b-e07fc1f90ae7")
	token, err := a.Mint(secret, auth.Grant{
		User:    user,
		Tenant:  "demo",
		Topics:  []string{"demo/*"},
		Publish: []string{"demo/*", auth.GrantSelf},
		TTL:     time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	// Give it to the demo page: document.cookie = "ssekit_token=" + token
	id, err := a.Verify(token)
	if err != nil {
		log.Fatal(err)
	}
	c, _ := auth.ClaimsOf(id)
	fmt.Println(id.User, id.Tenant, c.Topics.Strings())
	// Output: 7c9e6679-7425-40de-944b-e07fc1f90ae7 demo [demo/*]
}

// Key rotation: list the new key next to the old one. Tokens name their
// key with kid; tokens without a kid are tried against both.
func ExampleConfig_rotation() {
	oldKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	a, err := auth.New(auth.Config{
		Algorithms: []string{"ES256"},
		Keys: []auth.Key{
			{ID: "2025-01", Key: &oldKey.PublicKey}, // remove once its tokens have expired
			{ID: "2025-06", Key: &newKey.PublicKey},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, k := range []struct {
		kid string
		key *ecdsa.PrivateKey
	}{{"2025-01", oldKey}, {"2025-06", newKey}, {"2025-01", newKey}} {
		_, err := a.Mint(k.key, auth.Grant{User: uuid.New(), KeyID: k.kid})
		fmt.Println(k.kid, err == nil)
	}
	// Output:
	// 2025-01 true
	// 2025-06 true
	// 2025-01 false
}

// A publish endpoint (like the hub's POST /publish) checks the caller's
// publish claim with CanPublish. The tenant comes from the token, never
// from the request body.
func ExampleCanPublish() {
	secret := auth.NewSecret()
	a, _ := auth.New(auth.Config{Algorithms: []string{"HS256"}, Keys: []auth.Key{{Key: secret}}, TenantClaim: "tenant"})
	token, _ := a.Mint(secret, auth.Grant{User: uuid.New(), Tenant: "acme", Publish: []string{"orders/*"}})

	id, err := a.Verify(token) // in a handler: the Authorization header's token
	if err != nil {
		log.Fatal(err) // 401
	}
	for _, target := range []core.Target{
		{Tenant: id.Tenant, Topics: []string{"orders/42"}},
		{Tenant: id.Tenant, Topics: []string{"billing/42"}},
		{Tenant: id.Tenant, Broadcast: true},
		{Tenant: "globex", Topics: []string{"orders/42"}},
	} {
		err := auth.CanPublish(id, target)
		fmt.Println(err == nil, errors.Is(err, core.ErrForbidden), err)
	}
	// Output:
	// true false <nil>
	// false true ssekit: forbidden: publish not allowed by the token: topic "billing/42"
	// false true ssekit: forbidden: publish not allowed by the token: broadcast needs @broadcast
	// false true ssekit: forbidden: tenant not allowed by the token: target tenant "globex"
}

func ExampleParsePattern() {
	p, err := auth.ParsePattern("orders/*")
	if err != nil {
		log.Fatal(err)
	}
	deep := auth.MustParsePattern("orders/**")
	for _, topic := range []string{"orders", "orders/eu", "orders/eu/42"} {
		fmt.Println(topic, p.Match(topic), deep.Match(topic))
	}
	// Output:
	// orders false false
	// orders/eu true true
	// orders/eu/42 false true
}

// JWKS without a JWKS dependency: a Keyfunc over a key set that a
// background goroutine refreshes from the issuer's jwks_uri. The Keyfunc
// itself never touches the network, so a flood of tokens with made-up
// kids cannot turn into a flood of fetches. (This example is compiled but
// not run: it would need the network.)
func ExampleConfig_jwks() {
	ctx := context.Background()
	keys := new(jwksCache)
	fetch := func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://id.example.com/.well-known/jwks.json", nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("jwks: %s", resp.Status)
		}
		return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	}
	if err := keys.Refresh(ctx, fetch); err != nil {
		log.Fatal(err) // no keys at start: refuse to serve
	}
	go func() { // keep the last good set when a refresh fails
		for range time.Tick(10 * time.Minute) {
			if err := keys.Refresh(ctx, fetch); err != nil {
				log.Print(err)
			}
		}
	}()
	a, err := auth.New(auth.Config{
		Algorithms: []string{"RS256", "ES256", "EdDSA"}, // what the issuer signs with; never from the token
		Keyfunc:    keys.Keyfunc,
		Issuer:     "https://id.example.com/",
		Audience:   []string{"ssekit"},
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = a // core.Config{Authenticator: a, Authorizer: a}
}

// The same Keyfunc over a JWKS document at hand.
func ExampleConfig_jwksDocument() {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	doc := fmt.Sprintf(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","use":"sig","x":%q}]}`,
		base64.RawURLEncoding.EncodeToString(pub))

	keys := new(jwksCache)
	if err := keys.Refresh(context.Background(), func(context.Context) ([]byte, error) { return []byte(doc), nil }); err != nil {
		log.Fatal(err)
	}
	a, err := auth.New(auth.Config{Algorithms: []string{"EdDSA"}, Keyfunc: keys.Keyfunc})
	if err != nil {
		log.Fatal(err)
	}
	user := uuid.MustParse("7c9e6679-7425-40de-944b-e07fc1f90ae7")
	for _, kid := range []string{"k1", "k2"} {
		_, err := a.Mint(priv, auth.Grant{User: user, KeyID: kid})
		fmt.Println(kid, err == nil)
	}
	// Output:
	// k1 true
	// k2 false
}

// jwksCache holds the keys of a JWKS document (RFC 7517) by kid.
type jwksCache struct {
	keys atomic.Pointer[map[string]any]
}

// Keyfunc is a jwt.Keyfunc: the key the token's kid names, or an error.
// Before the first successful fetch the error wraps core.ErrUnavailable,
// so clients are told to retry rather than refused for good.
func (c *jwksCache) Keyfunc(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	m := c.keys.Load()
	if m == nil {
		return nil, fmt.Errorf("jwks: no key set fetched yet: %w", core.ErrUnavailable)
	}
	if k, ok := (*m)[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("jwks: no key with kid %q", kid)
}

// Refresh fetches and parses the document, and swaps it in if it holds at
// least one usable key.
func (c *jwksCache) Refresh(ctx context.Context, fetch func(context.Context) ([]byte, error)) error {
	data, err := fetch(ctx)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	var doc struct {
		Keys []struct {
			Kty, Use, Kid, Crv, N, E, X, Y string
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	m := map[string]any{}
	b64 := base64.RawURLEncoding.DecodeString
	for _, k := range doc.Keys {
		if k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		switch {
		case k.Kty == "RSA":
			n, err1 := b64(k.N)
			e, err2 := b64(k.E)
			if err1 != nil || err2 != nil || len(e) > 4 {
				continue
			}
			m[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		case k.Kty == "EC":
			curve := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[k.Crv]
			x, err1 := b64(k.X)
			y, err2 := b64(k.Y)
			if curve == nil || err1 != nil || err2 != nil {
				continue
			}
			if pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...)); err == nil {
				m[k.Kid] = pub
			}
		case k.Kty == "OKP" && k.Crv == "Ed25519":
			if x, err := b64(k.X); err == nil && len(x) == ed25519.PublicKeySize {
				m[k.Kid] = ed25519.PublicKey(x)
			}
		}
	}
	if len(m) == 0 {
		return errors.New("jwks: the document holds no usable signing key")
	}
	c.keys.Store(&m)
	return nil
}
