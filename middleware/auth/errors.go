package auth

import (
	"fmt"

	"github.com/ssekit/ssekit/core"
)

// Errors returned by Authenticate, Verify, Authorize and CanPublish. Each
// wraps core.ErrUnauthenticated (the adapters answer 401),
// core.ErrForbidden (403) or core.ErrUnavailable (a retry hint), so
// errors.Is works with both levels; the cause from
// github.com/golang-jwt/jwt/v5 (jwt.ErrTokenExpired,
// jwt.ErrTokenSignatureInvalid, ...) or from Config.Keyfunc is wrapped
// too, for logs.
//
// These errors are for logs (core.Observer's Reject hook), never for
// clients: core.Broker.Reject answers with a fixed text per class
// ("unauthenticated", "forbidden"), because a wrapped cause can name a
// topic, a tenant or, from a Keyfunc, an internal address. Code that
// answers with Verify or CanPublish itself (a publish endpoint) must do
// the same.
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
	// ErrKeysUnavailable reports a token that could not be checked because
	// Config.Keyfunc could not supply keys for now: it returned an error
	// wrapping core.ErrUnavailable, a context deadline or another timeout
	// (see core.IsUnavailable), such as a JWKS endpoint that is down. It
	// wraps core.ErrUnavailable, so a browser is told to retry instead of
	// being shut out by a 401 during the outage.
	ErrKeysUnavailable = fmt.Errorf("%w: verification keys unavailable", core.ErrUnavailable)

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
