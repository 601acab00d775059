package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/ssekit/ssekit/core"
)

// Defaults and limits applied by New.
const (
	// DefaultCookie is the cookie read for a token unless Config.Cookie
	// names another (or Config.DisableCookie is set).
	DefaultCookie = "ssekit_token"
	// DefaultQueryParam is the query parameter name RFC 6750 uses for
	// bearer tokens. Query tokens are off unless Config.QueryParam is set;
	// when it is not, a token found under this name is ignored, and the
	// error says so.
	DefaultQueryParam = "access_token"
	// TenantQueryParam is the query parameter a client may use to say which
	// tenant it expects. The tenant always comes from the token; a request
	// naming another tenant is refused with ErrTenantNotAllowed (403).
	TenantQueryParam = "tenant"
	// DefaultUserClaim, DefaultTopicsClaim and DefaultPublishClaim are the
	// claim names used when Config leaves them empty.
	DefaultUserClaim    = "sub"
	DefaultTopicsClaim  = "topics"
	DefaultPublishClaim = "publish"
	// DefaultMaxTokenSize bounds the length of a token in bytes, so a
	// client cannot make the server parse megabytes of base64.
	DefaultMaxTokenSize = 8 << 10
	// MaxLeeway is the largest Config.Leeway accepted: clock skew beyond
	// it is a broken clock, not skew.
	MaxLeeway = 5 * time.Minute
	// MinHMACSecretSize is the shortest HMAC secret accepted, in bytes
	// (RFC 7518 section 3.2 asks for a key at least as long as the hash).
	MinHMACSecretSize = 32
	// MinRSAKeyBits is the smallest RSA modulus accepted (RFC 7518 section 3.3).
	MinRSAKeyBits = 2048
)

// Key is one verification key.
type Key struct {
	// ID, when set, is the key's "kid": a token that names a kid is only
	// checked against keys with that ID (and keys without an ID). A token
	// without a kid is checked against every key of its algorithm.
	ID string
	// Key is one of: []byte, an HMAC secret (for HS256, HS384, HS512; at
	// least MinHMACSecretSize bytes); *rsa.PublicKey (RS*, PS*; at least
	// MinRSAKeyBits); *ecdsa.PublicKey (ES256 on P-256, ES384 on P-384,
	// ES512 on P-521); ed25519.PublicKey (EdDSA). For tests and
	// development the matching private keys are accepted too, and only
	// their public half is kept. PublicKeyFromPEM reads a PEM file.
	Key any
}

// Config configures a JWT. Algorithms and one key source (Keys or Keyfunc)
// are required; every other zero field means its default.
type Config struct {
	// Algorithms lists the JWS algorithms ("alg") accepted, for example
	// {"RS256"}: HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512
	// ES256 ES384 ES512 EdDSA. It is always enforced, whatever the token
	// says; "none" is never accepted. Required.
	Algorithms []string
	// Keys verifies signatures. Several keys allow rotation: list the new
	// key next to the old one until every token signed by the old one has
	// expired. Each key is only ever used with algorithms of its own type,
	// so a public key can never be misused as an HMAC secret.
	Keys []Key
	// Keyfunc, instead of Keys, returns the key (or a
	// jwt.VerificationKeySet) for a token, for example from a JWKS
	// document refreshed in the background (see the Keyfunc example). It
	// runs on the request path: it must not fetch keys from the network
	// per request. Algorithms is still enforced before it is called. When
	// it cannot supply keys for now (no key set fetched yet, the JWKS
	// endpoint down), return an error wrapping core.ErrUnavailable:
	// requests are then refused with ErrKeysUnavailable and a retry hint,
	// not a 401 that would end browsers' streams for good. Any other
	// error is an ErrInvalidToken.
	Keyfunc jwt.Keyfunc

	// Issuer, when set, is required in the "iss" claim.
	Issuer string
	// Audience, when set, requires the "aud" claim to list at least one of
	// these values.
	Audience []string
	// Leeway tolerates clock skew on exp and nbf (default 0, at most
	// MaxLeeway). A stream then ends Leeway after exp.
	Leeway time.Duration
	// AllowNoExpiry accepts tokens without an "exp" claim; such streams
	// never end for expiry. By default exp is required.
	AllowNoExpiry bool
	// MaxTokenSize bounds a token's length in bytes (default
	// DefaultMaxTokenSize).
	MaxTokenSize int

	// DisableHeader ignores the Authorization header. By default an
	// "Authorization: Bearer <token>" header is the first source.
	DisableHeader bool
	// Cookie names the cookie holding the token, the second source
	// (default DefaultCookie). It is the way for browsers: EventSource
	// cannot send headers, but sends cookies.
	Cookie string
	// DisableCookie ignores cookies.
	DisableCookie bool
	// QueryParam, when set, enables the third source: the token in this
	// query parameter (DefaultQueryParam is the conventional name). Off by
	// default, because URLs end up in access logs, proxy logs and browser
	// history: turn it on only for clients that can use neither a header
	// nor a cookie, with short-lived tokens, and serve streams with
	// "Cache-Control: no-store".
	QueryParam string

	// UserClaim is the claim holding the user (default "sub"). Its value
	// must be a string; Subjects says how it becomes Identity.User.
	UserClaim string
	// Subjects says how the user claim becomes Identity.User. The default,
	// UUIDSubjects, accepts only a UUID in the canonical 36-character form.
	// Set MapAllSubjects for an identity provider whose subjects are not
	// UUIDs (Auth0, Google, Okta and most others): every subject then
	// becomes core.UserFromSubject(subject), which is also how the code
	// that pushes names the user. MapNonUUIDSubjects keeps UUID subjects
	// as they are and maps only the others, for a deployment that has
	// UUID users already.
	Subjects SubjectMapping
	// AllowAnonymous accepts tokens without the user claim, as anonymous
	// connections (uuid.Nil): they receive topic events and broadcasts,
	// never user pushes. By default the user claim is required.
	AllowAnonymous bool
	// TenantClaim, when set, is the claim holding the tenant, for example
	// "tenant" or "org_id"; it is then required in every token and must be
	// a valid core tenant name. When empty, every identity is in the
	// default tenant "".
	TenantClaim string
	// TopicsClaim is the claim listing the topics the holder may subscribe
	// to, as Patterns (default "topics"). A token without it may subscribe
	// to no topic, though it still receives its user's pushes and the
	// tenant's broadcasts.
	TopicsClaim string
	// PublishClaim is the claim listing what the holder may publish, read
	// by CanPublish (default "publish"): topic Patterns, plus GrantBroadcast,
	// GrantUsers and GrantSelf.
	PublishClaim string
}

// SubjectMapping says how the user claim of a token becomes
// Identity.User (Config.Subjects). Every mapping refuses a user claim
// that is not a string, and treats a missing or empty one as anonymous
// when Config.AllowAnonymous is set.
type SubjectMapping int

const (
	// UUIDSubjects, the default, requires the user claim to be a UUID in
	// canonical form (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, any case), not
	// the nil UUID, and uses it as the user ID. Any other subject is
	// refused with ErrInvalidClaims.
	UUIDSubjects SubjectMapping = iota
	// MapAllSubjects maps every subject, UUID-shaped or not, through
	// core.UserFromSubject. It is the choice for a provider whose subjects
	// are not UUIDs: one rule for every user, so a publisher always calls
	// core.UserFromSubject(sub), and no subject can pick its own user ID.
	// A provider that issues UUID subjects gets new IDs under it, unlike
	// with the other two mappings.
	MapAllSubjects
	// MapNonUUIDSubjects keeps a subject that is a canonical UUID as
	// UUIDSubjects does, and maps any other through core.UserFromSubject:
	// for a deployment whose users are UUIDs already and that adds a
	// provider whose subjects are not, with no user changing ID. A
	// publisher must then apply the same rule (JWT.UserFor does). Use it
	// only when subjects are assigned by the provider, never chosen by
	// users: a subject spelling the UUID that another subject maps to
	// would be that other user.
	MapNonUUIDSubjects
)

// String returns the constant's name, for errors and logs.
func (m SubjectMapping) String() string {
	switch m {
	case UUIDSubjects:
		return "UUIDSubjects"
	case MapAllSubjects:
		return "MapAllSubjects"
	case MapNonUUIDSubjects:
		return "MapNonUUIDSubjects"
	}
	return fmt.Sprintf("SubjectMapping(%d)", int(m))
}

// family is the key type an algorithm needs.
type family int

const (
	famHMAC family = iota + 1
	famRSA
	famEC256
	famEC384
	famEC521
	famEd25519
)

func (f family) String() string {
	switch f {
	case famHMAC:
		return "HMAC secret ([]byte)"
	case famRSA:
		return "RSA key"
	case famEC256:
		return "ECDSA P-256 key"
	case famEC384:
		return "ECDSA P-384 key"
	case famEC521:
		return "ECDSA P-521 key"
	case famEd25519:
		return "Ed25519 key"
	}
	return "unknown key"
}

// algorithms maps every accepted alg to the key type it verifies with.
var algorithms = map[string]family{
	"HS256": famHMAC, "HS384": famHMAC, "HS512": famHMAC,
	"RS256": famRSA, "RS384": famRSA, "RS512": famRSA,
	"PS256": famRSA, "PS384": famRSA, "PS512": famRSA,
	"ES256": famEC256, "ES384": famEC384, "ES512": famEC521,
	"EdDSA": famEd25519,
}

// key is a validated verification key.
type key struct {
	id  string
	fam family
	key any // []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Cookie == "" {
		c.Cookie = DefaultCookie
	}
	if c.MaxTokenSize == 0 {
		c.MaxTokenSize = DefaultMaxTokenSize
	}
	if c.UserClaim == "" {
		c.UserClaim = DefaultUserClaim
	}
	if c.TopicsClaim == "" {
		c.TopicsClaim = DefaultTopicsClaim
	}
	if c.PublishClaim == "" {
		c.PublishClaim = DefaultPublishClaim
	}
	c.Algorithms = slices.Clone(c.Algorithms)
	c.Audience = slices.Clone(c.Audience)
	c.Keys = slices.Clone(c.Keys)
	return c
}

// validate reports every rule c breaks, each error wrapping
// core.ErrInvalidConfig, and returns the validated keys.
func (c Config) validate() ([]key, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: auth: "+format, append([]any{core.ErrInvalidConfig}, args...)...))
	}
	if len(c.Algorithms) == 0 {
		bad("Algorithms is empty: list the algorithms your tokens are signed with, for example RS256")
	}
	fams := map[family]bool{}
	for _, alg := range c.Algorithms {
		f, ok := algorithms[alg]
		switch {
		case ok:
			fams[f] = true
		case alg == "none" || alg == "None" || alg == "NONE":
			bad("Algorithms: %q is never accepted (unsigned tokens)", alg)
		default:
			bad("Algorithms: unknown algorithm %q (want HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA)", clip(alg))
		}
	}
	switch {
	case len(c.Keys) == 0 && c.Keyfunc == nil:
		bad("no key source: set Keys or Keyfunc")
	case len(c.Keys) > 0 && c.Keyfunc != nil:
		bad("Keys and Keyfunc are both set: use one key source")
	}
	keys := make([]key, 0, len(c.Keys))
	have := map[family]bool{}
	for i, k := range c.Keys {
		vk, err := checkKey(k)
		if err != nil {
			bad("Keys[%d]: %v", i, err)
			continue
		}
		if !fams[vk.fam] {
			bad("Keys[%d] (%s) matches none of Algorithms %v", i, vk.fam, c.Algorithms)
			continue
		}
		have[vk.fam] = true
		keys = append(keys, vk)
	}
	if len(c.Keys) > 0 {
		for _, alg := range c.Algorithms {
			if f, ok := algorithms[alg]; ok && !have[f] {
				bad("Algorithms: %s needs a %s in Keys, and there is none", alg, f)
			}
		}
	}
	if c.Leeway < 0 || c.Leeway > MaxLeeway {
		bad("Leeway must be between 0 and %v, got %v", MaxLeeway, c.Leeway)
	}
	switch c.Subjects {
	case UUIDSubjects, MapAllSubjects, MapNonUUIDSubjects:
	default:
		bad("Subjects is %v: want UUIDSubjects, MapAllSubjects or MapNonUUIDSubjects", c.Subjects)
	}
	if c.MaxTokenSize < 0 {
		bad("MaxTokenSize must be >= 0, got %d", c.MaxTokenSize)
	}
	for _, a := range c.Audience {
		if a == "" {
			bad("Audience holds an empty string")
		}
	}
	if c.DisableHeader && c.DisableCookie && c.QueryParam == "" {
		bad("every token source is off: enable the header, the cookie or QueryParam")
	}
	if !c.DisableCookie && !validToken(c.Cookie) {
		bad("Cookie %q is not a valid cookie name", clip(c.Cookie))
	}
	switch c.QueryParam {
	case "", DefaultQueryParam:
	case "topic", "lastEventId", TenantQueryParam:
		bad("QueryParam %q is a stream parameter already", c.QueryParam)
	default:
		if !validToken(c.QueryParam) {
			bad("QueryParam %q is not a valid parameter name", clip(c.QueryParam))
		}
	}
	claims := map[string]string{"UserClaim": c.UserClaim, "TopicsClaim": c.TopicsClaim, "PublishClaim": c.PublishClaim}
	if c.TenantClaim != "" {
		claims["TenantClaim"] = c.TenantClaim
	}
	seen := map[string]string{}
	for _, field := range []string{"UserClaim", "TenantClaim", "TopicsClaim", "PublishClaim"} {
		name, ok := claims[field]
		if !ok {
			continue
		}
		if other, dup := seen[name]; dup {
			bad("%s and %s both name the claim %q", other, field, name)
		}
		seen[name] = field
		switch name {
		case "exp", "nbf", "iat", "iss", "aud", "jti":
			bad("%s cannot be the registered claim %q", field, name)
		}
	}
	return keys, errors.Join(errs...)
}

// checkKey validates one configured key and reduces private keys to their
// public half.
func checkKey(k Key) (key, error) {
	switch v := k.Key.(type) {
	case nil:
		return key{}, errors.New("Key is nil")
	case string:
		return key{}, errors.New("an HMAC secret must be []byte, not string (a string invites a human-chosen secret)")
	case []byte:
		if len(v) < MinHMACSecretSize {
			return key{}, fmt.Errorf("HMAC secret is %d bytes, want at least %d random bytes", len(v), MinHMACSecretSize)
		}
		return key{id: k.ID, fam: famHMAC, key: slices.Clone(v)}, nil
	case *rsa.PrivateKey:
		return checkKey(Key{ID: k.ID, Key: &v.PublicKey})
	case *rsa.PublicKey:
		if v == nil || v.N == nil {
			return key{}, errors.New("RSA key is nil")
		}
		if bits := v.N.BitLen(); bits < MinRSAKeyBits {
			return key{}, fmt.Errorf("RSA key has %d bits, want at least %d", bits, MinRSAKeyBits)
		}
		return key{id: k.ID, fam: famRSA, key: v}, nil
	case *ecdsa.PrivateKey:
		return checkKey(Key{ID: k.ID, Key: &v.PublicKey})
	case *ecdsa.PublicKey:
		if v == nil || v.Curve == nil {
			return key{}, errors.New("ECDSA key is nil")
		}
		f, ok := map[string]family{"P-256": famEC256, "P-384": famEC384, "P-521": famEC521}[v.Curve.Params().Name]
		if !ok {
			return key{}, fmt.Errorf("ECDSA curve %s is not one of P-256, P-384, P-521", v.Curve.Params().Name)
		}
		return key{id: k.ID, fam: f, key: v}, nil
	case ed25519.PrivateKey:
		if len(v) != ed25519.PrivateKeySize {
			return key{}, errors.New("Ed25519 private key has the wrong size")
		}
		return checkKey(Key{ID: k.ID, Key: v.Public()})
	case ed25519.PublicKey:
		if len(v) != ed25519.PublicKeySize {
			return key{}, fmt.Errorf("Ed25519 public key is %d bytes, want %d", len(v), ed25519.PublicKeySize)
		}
		return key{id: k.ID, fam: famEd25519, key: slices.Clone(v)}, nil
	}
	return key{}, fmt.Errorf("unsupported key type %T (want []byte, *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey)", k.Key)
}

// validToken reports whether s is an RFC 7230 token, the syntax of cookie
// and parameter names that need no escaping.
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '"' || c == '(' || c == ')' || c == ',' || c == '/' || c == ':' ||
			c == ';' || c == '<' || c == '=' || c == '>' || c == '?' || c == '@' || c == '[' || c == '\\' ||
			c == ']' || c == '{' || c == '}' {
			return false
		}
	}
	return true
}
