// Package auth authenticates ssekit streams with JSON Web Tokens
// (github.com/golang-jwt/jwt/v5) and authorizes topics, tenants and
// publishing from the token's claims. A *JWT is both the
// core.Authenticator and the core.Authorizer of a broker:
//
//	a, err := auth.New(auth.Config{
//		Algorithms:  []string{"RS256"},
//		Keys:        []auth.Key{{ID: "2025-06", Key: publicKey}}, // auth.PublicKeyFromPEM
//		Issuer:      "https://id.example.com/",
//		Audience:    []string{"ssekit"},
//		TenantClaim: "tenant",
//	})
//	if err != nil { log.Fatal(err) }
//	broker, err := core.New(core.Config{Authenticator: a, Authorizer: a})
//	if err != nil { log.Fatal(err) }
//	http.Handle("GET /events", nethttp.Handler(broker))
//
// # Where the token comes from
//
// Authenticate looks in these sources, in this order, and the first one
// holding a token decides (an invalid token there is refused, even if a
// later source holds a valid one):
//
//  1. the "Authorization: Bearer <token>" header (Config.DisableHeader to
//     switch off): what Go clients, polyfills and fetch-based clients send,
//     and the most explicit statement of who the caller is, so it wins
//     when a request also carries a cookie for another user;
//  2. a cookie, DefaultCookie unless Config.Cookie names another
//     (Config.DisableCookie to switch off): the way for browsers, since
//     EventSource cannot send headers. Set it HttpOnly, Secure,
//     SameSite=Lax or Strict, with a Max-Age no longer than the token's
//     lifetime; from another origin, open the stream with
//     new EventSource(url, {withCredentials: true}) and allow credentials
//     in the adapter's CORS options;
//  3. a query parameter, only when Config.QueryParam names it. It is off
//     by default because URLs are written to access logs, proxy logs and
//     browser history, where a token stays valid until it expires. Turn it
//     on only for clients that have no other way, with tokens that live
//     minutes, and serve streams with "Cache-Control: no-store".
//
// # Verification
//
// The accepted algorithms are configured and enforced with
// jwt.WithValidMethods before any key is looked at: the token's "alg"
// never chooses, and "none" is never accepted. Each key is used only with
// algorithms of its own type, so an RSA public key can never be used as an
// HMAC secret (the algorithm confusion attack). Keys can be HMAC secrets,
// RSA, ECDSA or Ed25519 public keys, several at once for rotation (a
// token's "kid" picks among them; without a kid every key of the right
// type is tried), or a jwt.Keyfunc of your own, for example over a JWKS
// document (see the Config (Jwks) example; this package adds no JWKS
// dependency). exp is required unless Config.AllowNoExpiry; nbf is
// honoured; iss and aud are checked when configured; Config.Leeway
// tolerates clock skew.
//
// # Claims
//
// The user claim ("sub" by default) becomes Identity.User, the UUID the
// broker routes user pushes by, as Config.Subjects says (see "Identity
// providers" below); the tenant claim (Config.TenantClaim) is the only source of the tenant,
// never the request; the topics claim ("topics") lists Patterns the
// holder may subscribe to, such as "orders/*" (one segment) or
// "orders/**" (any depth); the publish claim ("publish") lists patterns
// plus GrantBroadcast, GrantUsers and GrantSelf, which CanPublish checks.
// A list claim is a JSON array of strings or one space-separated string.
// The Identity's ExpiresAt is the token's exp (plus Leeway): the broker
// ends the stream then with a reconnect hint, and a browser whose cookie
// was refreshed meanwhile comes back with the new token.
//
// # Identity providers
//
// By default (UUIDSubjects) the user claim must be a UUID in canonical
// form, used as it is. Most identity providers' subjects are not UUIDs:
// Auth0 "auth0|5f7c8ec7c33c6c004bbafe82", Google "107353926327235112234",
// Okta "00u1abcd2EFGHijk3l4m". Such tokens are refused (401) until
// Config.Subjects maps them:
//
//   - MapAllSubjects: every subject becomes core.UserFromSubject(sub), a
//     UUIDv5 in the fixed namespace core.SubjectNamespace. The choice for
//     a new deployment: the code that pushes names a user the same way,
//     broker.SendToUser(ctx, core.UserFromSubject(sub), ...), whatever
//     the subject looks like, and no subject can pick its own user ID.
//   - MapNonUUIDSubjects: a canonical UUID subject stays that UUID and
//     any other is mapped, so that users who had UUID subjects keep their
//     IDs when a second kind of subject appears. Pushers then apply the
//     same rule: JWT.UserFor(sub) does. Use it only when the provider
//     assigns subjects; a subject a user could choose might spell the
//     UUID that another subject maps to.
//
// Claims.Subject keeps the claim as the token carries it. Grants follow
// the mapped ID: GrantSelf allows pushing to the holder's own mapped user,
// and CanPublish, CanAdmin and Authorize compare mapped IDs. Subjects are
// hashed byte for byte, so use a stable, case-exact identifier (OpenID
// Connect's sub), not an e-mail address a user may change or re-case. A
// subject is unique per issuer only: a JWT that trusts several issuers
// (a Keyfunc over several key sets) maps equal subjects of two issuers to
// one user; keep issuers apart by tenant (Config.TenantClaim).
//
// # Tenants
//
// The broker keys everything (routing, replay, presence, per-user limits)
// by Identity.Tenant, which comes only from the verified token. A request
// whose "tenant" query parameter names another tenant is refused with 403;
// Authorize and CanPublish refuse an identity whose tenant no longer
// matches its token's. This package keeps no cache: nothing is keyed by
// token data.
//
// # Errors on the wire
//
// Missing, invalid and expired tokens wrap core.ErrUnauthenticated, which
// the adapters answer with 401 and the body "unauthenticated"; a valid
// token asking for a topic or tenant it may not have wraps
// core.ErrForbidden, answered with 403 and the body "forbidden". A
// Keyfunc that cannot supply keys for now (see Config.Keyfunc) yields
// ErrKeysUnavailable, which wraps core.ErrUnavailable: browsers get a 200
// stream with a retry hint and a ssekit.rejected event, clients sending
// SSEKit-Reject: status get 503 with Retry-After. No body ever carries an
// error's text; the full error, with the jwt/v5 or Keyfunc cause, is for
// your logs (core.Observer's Reject hook, which receives the request's
// context).
package auth
