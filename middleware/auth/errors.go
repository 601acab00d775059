package auth

import (
	"fmt"

	"github.com/ssekit/ssekit/core"
)

// Errors returned by Authenticate, Verify, Authorize and CanPublish. Each
// wraps core.ErrUnauthenticated (the adapters answer 401) or
// core.ErrForbidden (403), so errors.Is works with both levels; the cause
// from github.com/golang-jwt/jwt/v5 (jwt.ErrTokenExpired,
// jwt.ErrTokenSignatureInvalid, ...) is wrapped too, for logs.
//
// None of these messages, nor the causes wrapped in them, ever holds key
// material. What reaches the wire is decided by core.Broker.Reject: a 401
// body is always "unauthenticated", a 403 body is the error's first line,
// which for the errors below names the refused topic or tenant and nothing
// else.
var (
	// ErrNoToken reports a request that carried no token in any enabled
	// source.
	ErrNoToken = fmt.Errorf("%w: no token", core.ErrUnauthenticated)
	// ErrInvalidToken reports a token that is malformed, too large, signed
	// with an algorithm that is not allowed, signed by no configured key
	// (unknown kid included), or whose iss, aud or nbf does not check out.
	ErrInvalidToken = fmt.Errorf("%w: invalid token", core.ErrUnauthenticated)
	// ErrExpiredToken reports a token whose exp has passed (Leeway
	// included). A token without exp, while exp is required, is an
	// ErrInvalidToken.
	ErrExpiredToken = fmt.Errorf("%w: token expired", core.ErrUnauthenticated)
	// ErrInvalidClaims reports a verified token whose claims cannot be
	// mapped: a subject that is not a UUID, a missing or malformed tenant,
	// a topics or publish claim that is not a list of valid patterns.
	ErrInvalidClaims = fmt.Errorf("%w: invalid token claims", core.ErrUnauthenticated)

	// ErrTopicNotAllowed reports a subscription to a topic the token's
	// topics claim does not grant.
	ErrTopicNotAllowed = fmt.Errorf("%w: topic not allowed by the token", core.ErrForbidden)
	// ErrTenantNotAllowed reports a request or a publish naming a tenant
	// other than the token's.
	ErrTenantNotAllowed = fmt.Errorf("%w: tenant not allowed by the token", core.ErrForbidden)
	// ErrPublishNotAllowed reports a publish target the token's publish
	// claim does not grant, or an identity that carries no token claims.
	ErrPublishNotAllowed = fmt.Errorf("%w: publish not allowed by the token", core.ErrForbidden)
)
