package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssekit/ssekit/core"
)

// JWT authenticates stream requests with JSON Web Tokens and authorizes
// their topics from the token's claims. It implements core.Authenticator
// and core.Authorizer; set it as both in core.Config. It is safe for
// concurrent use and holds no per-token state.
type JWT struct {
	cfg   Config
	keys  map[string][]key // by alg: the keys of its type
	opts  []jwt.ParserOption
	now   func() time.Time
	algs  []string
	kfunc jwt.Keyfunc
}

var (
	_ core.Authenticator = (*JWT)(nil)
	_ core.Authorizer    = (*JWT)(nil)
)

// New validates cfg and returns a JWT. The error wraps
// core.ErrInvalidConfig and lists every rule cfg breaks.
func New(cfg Config) (*JWT, error) {
	cfg = cfg.withDefaults()
	keys, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	j := &JWT{cfg: cfg, keys: map[string][]key{}, now: time.Now, algs: cfg.Algorithms}
	for _, alg := range cfg.Algorithms {
		for _, k := range keys {
			if k.fam == algorithms[alg] {
				j.keys[alg] = append(j.keys[alg], k)
			}
		}
	}
	j.kfunc = j.keyfunc
	if cfg.Keyfunc != nil {
		j.kfunc = cfg.Keyfunc
	}
	j.opts = []jwt.ParserOption{
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithStrictDecoding(),
		jwt.WithTimeFunc(func() time.Time { return j.now() }),
	}
	if !cfg.AllowNoExpiry {
		j.opts = append(j.opts, jwt.WithExpirationRequired())
	}
	if cfg.Issuer != "" {
		j.opts = append(j.opts, jwt.WithIssuer(cfg.Issuer))
	}
	if len(cfg.Audience) > 0 {
		j.opts = append(j.opts, jwt.WithAudience(cfg.Audience...))
	}
	return j, nil
}

// Config returns the configuration in effect, defaults filled in.
func (j *JWT) Config() Config { return j.cfg }

// Authenticate implements core.Authenticator. It reads the token from the
// first enabled source that carries one — the Authorization: Bearer
// header, then the cookie, then (only when Config.QueryParam is set) the
// query parameter — verifies it with Verify, and refuses a request whose
// "tenant" query parameter names another tenant than the token's.
//
// The first source with a token decides: a request whose header and cookie
// disagree is authenticated by the header, and an invalid header token is
// refused even when the cookie holds a valid one. An Authorization header
// with another scheme than Bearer (such as Basic, for a proxy in front)
// counts as no header.
func (j *JWT) Authenticate(_ context.Context, r core.Request) (core.Identity, error) {
	tok, err := j.token(r)
	if err != nil {
		return core.Identity{}, err
	}
	id, err := j.Verify(tok)
	if err != nil {
		return core.Identity{}, err
	}
	if t := r.Query(TenantQueryParam); len(t) > 0 && (len(t) > 1 || t[0] != id.Tenant) {
		return core.Identity{}, fmt.Errorf("%w: the request names tenant %q", ErrTenantNotAllowed, clip(t[0]))
	}
	return id, nil
}

// token finds the token of a request in the enabled sources, in order.
func (j *JWT) token(r core.Request) (string, error) {
	c := &j.cfg
	if !c.DisableHeader {
		if v := r.Header("Authorization"); v != "" {
			scheme, tok, _ := strings.Cut(strings.TrimSpace(v), " ")
			if strings.EqualFold(scheme, "Bearer") {
				return j.checkSize(strings.TrimSpace(tok), "Authorization header")
			}
		}
	}
	if !c.DisableCookie {
		if tok := r.Cookie(c.Cookie); tok != "" {
			return j.checkSize(tok, "cookie")
		}
	}
	if c.QueryParam != "" {
		switch q := r.Query(c.QueryParam); {
		case len(q) > 1:
			return "", fmt.Errorf("%w: %d tokens in query parameter %q", ErrInvalidToken, len(q), c.QueryParam)
		case len(q) == 1 && q[0] != "":
			return j.checkSize(q[0], "query parameter")
		}
	} else if len(r.Query(DefaultQueryParam)) > 0 {
		return "", fmt.Errorf("%w (a token in query parameter %q was ignored: query tokens are off, see Config.QueryParam)", ErrNoToken, DefaultQueryParam)
	}
	return "", ErrNoToken
}

func (j *JWT) checkSize(tok, source string) (string, error) {
	switch {
	case tok == "":
		return "", fmt.Errorf("%w: empty token in %s", ErrInvalidToken, source)
	case len(tok) > j.cfg.MaxTokenSize:
		return "", fmt.Errorf("%w: token in %s is %d bytes, limit %d", ErrInvalidToken, source, len(tok), j.cfg.MaxTokenSize)
	}
	return tok, nil
}

// Verify checks a token — signature with an allowed algorithm and a
// configured key, exp, nbf, iss and aud — and maps its claims to an
// Identity whose Claims field is a *Claims. Use it where a token arrives
// some other way than a stream request, such as a publish endpoint; answer
// its error by class (core.IsUnavailable: 503, else 401), never with its
// text.
func (j *JWT) Verify(token string) (core.Identity, error) {
	if len(token) > j.cfg.MaxTokenSize {
		return core.Identity{}, fmt.Errorf("%w: token is %d bytes, limit %d", ErrInvalidToken, len(token), j.cfg.MaxTokenSize)
	}
	m := jwt.MapClaims{}
	t, err := jwt.NewParser(j.opts...).ParseWithClaims(token, m, j.kfunc)
	if err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			return core.Identity{}, fmt.Errorf("%w: %w", ErrExpiredToken, err)
		case errors.Is(err, jwt.ErrTokenUnverifiable) && core.IsUnavailable(err):
			// Only the Keyfunc makes a token unverifiable for a transient
			// reason; a bad token never does, so this cannot turn a forged
			// token into endless retries.
			return core.Identity{}, fmt.Errorf("%w: %w", ErrKeysUnavailable, err)
		}
		return core.Identity{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	c, err := j.mapClaims(m)
	if err != nil {
		return core.Identity{}, fmt.Errorf("%w: %w", ErrInvalidClaims, err)
	}
	c.KeyID, _ = t.Header["kid"].(string)
	c.Algorithm = t.Method.Alg()
	return core.Identity{Tenant: c.Tenant, User: c.User, ExpiresAt: c.ExpiresAt, Claims: c}, nil
}

// keyfunc picks the configured keys that may verify t: keys of the type
// its algorithm needs (so no key is ever used with another algorithm
// family), restricted to its kid when it names one.
func (j *JWT) keyfunc(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	kid, ok := t.Header["kid"].(string)
	if !ok && t.Header["kid"] != nil {
		return nil, errors.New("kid header is not a string")
	}
	var set []jwt.VerificationKey
	for _, k := range j.keys[alg] {
		if k.id == "" || kid == "" || k.id == kid {
			set = append(set, k.key)
		}
	}
	switch len(set) {
	case 0:
		return nil, fmt.Errorf("no configured %s key has kid %q", alg, clip(kid))
	case 1:
		return set[0], nil
	}
	return jwt.VerificationKeySet{Keys: set}, nil
}

// Authorize implements core.Authorizer: every topic must be granted by a
// pattern of the token's topics claim, and the identity must still be the
// one the token made (same tenant, not expired). It refuses identities
// that this package did not authenticate.
func (j *JWT) Authorize(_ context.Context, id core.Identity, topics []string) error {
	c, err := j.claimsFor(id, ErrTopicNotAllowed)
	if err != nil {
		return err
	}
	for _, topic := range topics {
		if err := core.ValidateTopic(topic); err != nil {
			return fmt.Errorf("%w: %w", core.ErrBadRequest, err)
		}
		if !c.Topics.Match(topic) {
			return fmt.Errorf("%w: %q", ErrTopicNotAllowed, topic)
		}
	}
	return nil
}

// claimsFor returns the claims behind id after checking that they still
// hold: same tenant as the identity, not expired.
func (j *JWT) claimsFor(id core.Identity, refuse error) (*Claims, error) {
	return claimsFor(id, refuse, j.now())
}

func claimsFor(id core.Identity, refuse error, now time.Time) (*Claims, error) {
	c, ok := ClaimsOf(id)
	if !ok {
		return nil, fmt.Errorf("%w: the identity carries no token claims", refuse)
	}
	if c.Tenant != id.Tenant {
		return nil, fmt.Errorf("%w: identity tenant %q differs from the token's", ErrTenantNotAllowed, clip(id.Tenant))
	}
	if c.User != id.User {
		return nil, fmt.Errorf("%w: identity user differs from the token's", refuse)
	}
	if !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt) {
		return nil, ErrExpiredToken
	}
	return c, nil
}
