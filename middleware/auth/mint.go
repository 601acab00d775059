package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// DefaultGrantTTL is the lifetime of a token Mint makes when Grant.TTL is
// zero.
const DefaultGrantTTL = time.Hour

// Grant describes a token for Mint.
type Grant struct {
	// User becomes the user claim; uuid.Nil leaves it out (an anonymous
	// token, accepted only with Config.AllowAnonymous).
	User uuid.UUID
	// Subject, instead of User, is written as the user claim as it is,
	// such as "auth0|42": a token shaped like an identity provider's, for
	// Config.Subjects other than UUIDSubjects. Set User or Subject, not
	// both.
	Subject string
	// Tenant becomes the tenant claim (Config.TenantClaim must be set).
	Tenant string
	// Topics and Publish become the topics and publish claims: patterns,
	// and for Publish also GrantBroadcast, GrantUsers and GrantSelf.
	Topics  []string
	Publish []string
	// TTL is how long the token is valid (default DefaultGrantTTL).
	TTL time.Duration
	// KeyID, when set, is written as the token's kid.
	KeyID string
}

// Mint signs a token that j accepts, for development, tests and demos:
// production tokens come from your identity provider. It uses the first
// algorithm of Config.Algorithms that fits signingKey ([]byte for HMAC,
// *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey), writes the
// configured claim names, Issuer and Audience, and then checks the token
// with Verify, so a signing key that does not match a verification key is
// an error here rather than a 401 later.
func (j *JWT) Mint(signingKey any, g Grant) (string, error) {
	method, err := j.signingMethod(signingKey)
	if err != nil {
		return "", err
	}
	if g.TTL < 0 {
		return "", fmt.Errorf("auth: Grant.TTL is negative (%v)", g.TTL)
	}
	if g.TTL == 0 {
		g.TTL = DefaultGrantTTL
	}
	if g.User != uuid.Nil && g.Subject != "" {
		return "", errors.New("auth: Grant.User and Grant.Subject are both set: the token has one user claim")
	}
	if g.Tenant != "" && j.cfg.TenantClaim == "" {
		return "", errors.New("auth: Grant.Tenant is set but Config.TenantClaim is empty: the tenant would be ignored")
	}
	now := j.now()
	m := jwt.MapClaims{
		"iat": jwt.NewNumericDate(now),
		"exp": jwt.NewNumericDate(now.Add(g.TTL)),
	}
	switch {
	case g.User != uuid.Nil:
		m[j.cfg.UserClaim] = g.User.String()
	case g.Subject != "":
		m[j.cfg.UserClaim] = g.Subject
	}
	if g.Tenant != "" {
		m[j.cfg.TenantClaim] = g.Tenant
	}
	if len(g.Topics) > 0 {
		m[j.cfg.TopicsClaim] = g.Topics
	}
	if len(g.Publish) > 0 {
		m[j.cfg.PublishClaim] = g.Publish
	}
	if j.cfg.Issuer != "" {
		m["iss"] = j.cfg.Issuer
	}
	switch len(j.cfg.Audience) {
	case 0:
	case 1:
		m["aud"] = j.cfg.Audience[0]
	default:
		m["aud"] = j.cfg.Audience
	}
	t := jwt.NewWithClaims(method, m)
	if g.KeyID != "" {
		t.Header["kid"] = g.KeyID
	}
	s, err := t.SignedString(signingKey)
	if err != nil {
		return "", fmt.Errorf("auth: signing: %w", err)
	}
	if _, err := j.Verify(s); err != nil {
		return "", fmt.Errorf("auth: the minted token does not verify: %w", err)
	}
	return s, nil
}

// signingMethod picks the first configured algorithm that signingKey fits.
func (j *JWT) signingMethod(signingKey any) (jwt.SigningMethod, error) {
	var fam family
	switch k := signingKey.(type) {
	case []byte:
		fam = famHMAC
	case *rsa.PrivateKey:
		fam = famRSA
	case *ecdsa.PrivateKey:
		if k == nil || k.Curve == nil {
			return nil, errors.New("auth: ECDSA signing key is nil")
		}
		fam = map[string]family{"P-256": famEC256, "P-384": famEC384, "P-521": famEC521}[k.Curve.Params().Name]
	case ed25519.PrivateKey:
		fam = famEd25519
	default:
		return nil, fmt.Errorf("auth: unsupported signing key type %T (want []byte, *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey)", signingKey)
	}
	for _, alg := range j.algs {
		if algorithms[alg] == fam {
			return jwt.GetSigningMethod(alg), nil
		}
	}
	return nil, fmt.Errorf("auth: no algorithm of %v signs with a %T", j.algs, signingKey)
}

// NewSecret returns 32 random bytes, an HMAC secret for HS256 (for
// example a development hub's per-process secret).
func NewSecret() []byte {
	b := make([]byte, MinHMACSecretSize)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}

// PublicKeyFromPEM reads a public key for Key.Key from PEM: a "PUBLIC
// KEY" block (PKIX: RSA, ECDSA or Ed25519), an "RSA PUBLIC KEY" block
// (PKCS #1) or a "CERTIFICATE" (its key; the certificate itself is not
// verified). It refuses private keys, so a verifier's configuration never
// needs to hold one.
func PublicKeyFromPEM(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("auth: no PEM block found")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: parsing PUBLIC KEY: %w", err)
		}
		return k, nil
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: parsing RSA PUBLIC KEY: %w", err)
		}
		return k, nil
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth: parsing CERTIFICATE: %w", err)
		}
		return c.PublicKey, nil
	}
	return nil, fmt.Errorf("auth: PEM block %q is not a public key or certificate", block.Type)
}
