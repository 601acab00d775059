package auth

import (
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssekit/ssekit/core"
)

// AdminClaim is the claim that grants a token the administrative view of
// a service: node-wide figures (stats, metrics) and the presence of every
// tenant, not only the token's own. Only the JSON value true grants it;
// anything else (false, "true", 1, a list) grants nothing, so a claim an
// identity provider spells loosely never opens the admin surface by
// accident. The name is prefixed because a bare "admin" claim often means
// "administrator of the application", which is not the same privilege.
const AdminClaim = "ssekit_admin"

// ErrAdminNotAllowed reports an identity whose token carries no admin
// grant (AdminClaim), or an identity this package did not make. It wraps
// core.ErrForbidden (403).
var ErrAdminNotAllowed = fmt.Errorf("%w: admin grant required", core.ErrForbidden)

// CanAdmin reports whether the identity holds the admin grant: it was
// made by Authenticate or Verify from a token whose AdminClaim is true,
// and the token has not expired since. Refusals wrap ErrAdminNotAllowed
// (403), or ErrExpiredToken (401) for a token that expired after it was
// verified, so a long-lived caller learns to fetch a new one.
func CanAdmin(id core.Identity) error {
	c, err := claimsFor(id, ErrAdminNotAllowed, time.Now())
	if err != nil {
		return err
	}
	if granted, _ := c.Raw[AdminClaim].(bool); !granted {
		return fmt.Errorf("%w: the token has no %s claim set to true", ErrAdminNotAllowed, AdminClaim)
	}
	return nil
}

// MintAdmin is Mint for a token that also carries the admin grant
// (AdminClaim: true), for development, tests and demos: production admin
// tokens come from your identity provider, like every other token.
//
// It signs the claims Mint would write, plus the grant, with the same key
// and algorithm, and checks the result with Verify.
func (j *JWT) MintAdmin(signingKey any, g Grant) (string, error) {
	// Mint validates the grant and the key, and writes the configured
	// claim names; the admin grant is added to exactly those claims, so
	// the two functions can never disagree on the rest of the token.
	plain, err := j.Mint(signingKey, g)
	if err != nil {
		return "", err
	}
	m := jwt.MapClaims{}
	parsed, _, err := jwt.NewParser().ParseUnverified(plain, m)
	if err != nil {
		return "", fmt.Errorf("auth: re-reading the minted token: %w", err)
	}
	m[AdminClaim] = true
	t := jwt.NewWithClaims(parsed.Method, m)
	if kid, ok := parsed.Header["kid"]; ok {
		t.Header["kid"] = kid
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
