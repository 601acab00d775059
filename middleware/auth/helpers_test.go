package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/middleware/auth"
)

// Test keys are generated at run time: nothing secret is committed.
type testKeySet struct {
	rsa, rsaAttacker *rsa.PrivateKey
	ec               *ecdsa.PrivateKey
	ed               ed25519.PrivateKey
	hmac             []byte
}

var testKeys = sync.OnceValue(func() *testKeySet {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	k := &testKeySet{hmac: auth.NewSecret()}
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsaAttacker, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

const (
	testIssuer   = "https://issuer.test/"
	testAudience = "ssekit-test"
)

var (
	alice = uuid.MustParse("0f5c2a9e-7a43-4c4e-9a55-6d2a1b7c0a01")
	bob   = uuid.MustParse("5d1b8f3e-2c6a-4f0d-8e77-3a9c4b2d1e02")
)

// testConfig is the configuration the attack tests run against: RS256 and
// ES256 keys with kids, issuer, audience and a tenant claim.
func testConfig() auth.Config {
	k := testKeys()
	return auth.Config{
		Algorithms:  []string{"RS256", "ES256"},
		Keys:        []auth.Key{{ID: "rsa-1", Key: &k.rsa.PublicKey}, {ID: "ec-1", Key: &k.ec.PublicKey}},
		Issuer:      testIssuer,
		Audience:    []string{testAudience},
		TenantClaim: "tenant",
	}
}

func newJWT(t testing.TB, cfg auth.Config) *auth.JWT {
	t.Helper()
	j, err := auth.New(cfg)
	require.NoError(t, err, "auth.New")
	return j
}

// claims returns valid claims for testConfig, with overrides applied (a
// nil value deletes the claim).
func claims(over map[string]any) jwt.MapClaims {
	now := time.Now()
	m := jwt.MapClaims{
		"sub":    alice.String(),
		"tenant": "acme",
		"topics": []string{"orders/*"},
		"iss":    testIssuer,
		"aud":    testAudience,
		"iat":    now.Unix(),
		"exp":    now.Add(time.Hour).Unix(),
	}
	for k, v := range over {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// sign signs c with method and key, with extra header fields.
func sign(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	maps.Copy(tok.Header, header)
	s, err := tok.SignedString(key)
	require.NoError(t, err, "signing")
	return s
}

// rsaToken is a valid RS256 token for testConfig with overrides.
func rsaToken(t testing.TB, over map[string]any) string {
	return sign(t, jwt.SigningMethodRS256, testKeys().rsa, map[string]any{"kid": "rsa-1"}, claims(over))
}

// rawToken assembles a token from JSON parts and a signature, to build what
// no well-behaved library would sign.
func rawToken(t testing.TB, header, payload any, sig []byte) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(payload) + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// tamper re-encodes tok's payload with changes, keeping its signature.
func tamper(t testing.TB, tok string, change func(m map[string]any)) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	change(m)
	b, err = json.Marshal(m)
	require.NoError(t, err)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// publicPEM is the PKIX PEM encoding of the RSA public key: what an
// attacker finds at a JWKS or PEM URL and tries as an HMAC secret.
func publicPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// request is a core.Request for tests that need no sockets.
type request struct {
	header  map[string]string
	query   map[string][]string
	cookies map[string]string
}

func (r request) Header(name string) string  { return r.header[name] }
func (r request) Query(name string) []string { return r.query[name] }
func (r request) Cookie(name string) string  { return r.cookies[name] }
func (r request) RemoteAddr() string         { return "192.0.2.1:1234" }

func bearer(tok string) request {
	return request{header: map[string]string{"Authorization": "Bearer " + tok}}
}
