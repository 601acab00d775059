package auth

import (
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/ssekit/ssekit/core"
)

// Entries of the publish claim that grant more than topics. They start
// with "@", which no topic name can, so they never collide with a topic.
const (
	// GrantBroadcast allows broadcasting to the whole tenant.
	GrantBroadcast = "@broadcast"
	// GrantUsers allows pushing to any user of the tenant.
	GrantUsers = "@users"
	// GrantSelf allows pushing to the token's own user (all its devices).
	GrantSelf = "@self"
)

// Claims is what Authenticate and Verify put in core.Identity.Claims: the
// verified token, mapped. Read it with ClaimsOf.
type Claims struct {
	// User is the user ID made from the user claim as Config.Subjects
	// says: the claim's UUID, or core.UserFromSubject of the claim;
	// uuid.Nil for an anonymous token (Config.AllowAnonymous).
	User uuid.UUID
	// Subject is the user claim as the token carries it, such as
	// "auth0|5f7c8ec7c33c6c004bbafe82", for logs and for looking the user
	// up at the identity provider; "" for an anonymous token.
	Subject string
	// Tenant is the tenant claim; "" without Config.TenantClaim.
	Tenant string
	// Topics are the patterns of the topics claim: what the holder may
	// subscribe to.
	Topics Patterns
	// Publish is what the publish claim grants, read by CanPublish.
	Publish PublishGrant
	// ExpiresAt is the token's exp plus Config.Leeway: the moment the
	// token stops being accepted, and the stream ends. Zero when the token
	// has no exp (Config.AllowNoExpiry).
	ExpiresAt time.Time
	// Issuer and Audience are the iss and aud claims, as the token has them.
	Issuer   string
	Audience []string
	// KeyID and Algorithm are the kid and alg of the token's header.
	KeyID     string
	Algorithm string
	// Raw holds every claim of the verified token, for checks of your own.
	// Do not modify it.
	Raw jwt.MapClaims
}

// PublishGrant is what a token's publish claim allows.
type PublishGrant struct {
	// Topics are the topic patterns the holder may publish to.
	Topics Patterns
	// Broadcast, from GrantBroadcast, allows broadcasting to the tenant.
	Broadcast bool
	// Users, from GrantUsers, allows pushing to any user of the tenant.
	Users bool
	// Self, from GrantSelf, allows pushing to the holder's own user.
	Self bool
}

// ClaimsOf returns the claims behind an identity made by Authenticate or
// Verify, and false for an identity made some other way.
func ClaimsOf(id core.Identity) (*Claims, bool) {
	c, ok := id.Claims.(*Claims)
	return c, ok && c != nil
}

// mapClaims turns verified claims into Claims following the configured
// claim names.
func (j *JWT) mapClaims(m jwt.MapClaims) (*Claims, error) {
	cfg := &j.cfg
	c := &Claims{Raw: m}
	var err error
	if c.Subject, err = subjectClaim(m, cfg.UserClaim, cfg.AllowAnonymous); err != nil {
		return nil, err
	}
	if c.Subject != "" {
		if c.User, err = userOf(c.Subject, cfg.UserClaim, cfg.Subjects); err != nil {
			return nil, err
		}
	}
	if cfg.TenantClaim != "" {
		v, ok := m[cfg.TenantClaim]
		s, isString := v.(string)
		switch {
		case !ok || v == nil || s == "" && isString:
			return nil, fmt.Errorf("tenant claim %q is missing", cfg.TenantClaim)
		case !isString:
			return nil, fmt.Errorf("tenant claim %q is a %s, not a string", cfg.TenantClaim, jsonType(v))
		}
		if err := core.ValidateTenant(s); err != nil {
			return nil, fmt.Errorf("tenant claim %q: %w", cfg.TenantClaim, err)
		}
		c.Tenant = s
	}
	list, err := listClaim(m, cfg.TopicsClaim)
	if err != nil {
		return nil, err
	}
	for _, s := range list {
		p, err := ParsePattern(s)
		if err != nil {
			return nil, fmt.Errorf("topics claim %q: %w", cfg.TopicsClaim, err)
		}
		c.Topics = append(c.Topics, p)
	}
	if c.Publish, err = publishClaim(m, cfg.PublishClaim); err != nil {
		return nil, err
	}
	if exp, err := m.GetExpirationTime(); err == nil && exp != nil {
		c.ExpiresAt = exp.Time.Add(cfg.Leeway)
	}
	c.Issuer, _ = m.GetIssuer()
	aud, _ := m.GetAudience()
	c.Audience = []string(aud)
	return c, nil
}

// subjectClaim reads the user claim: a string, or "" for a token without
// one when anonymous tokens are allowed.
func subjectClaim(m jwt.MapClaims, name string, anonymous bool) (string, error) {
	v, ok := m[name]
	if !ok || v == nil || v == "" {
		if anonymous {
			return "", nil
		}
		return "", fmt.Errorf("user claim %q is missing", name)
	}
	s, ok := v.(string)
	if !ok {
		// RFC 7519 makes sub a string; a number would also lose digits
		// as a float64 (Google's subjects have 21).
		return "", fmt.Errorf("user claim %q is a %s, not a string", name, jsonType(v))
	}
	return s, nil
}

// userOf maps a non-empty subject to a user ID under mapping.
//
// A UUID subject must be in the canonical form
// xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx: uuid.Parse also takes
// "urn:uuid:", braces and bare hex, and one user must have one spelling.
// Under MapNonUUIDSubjects those other spellings are therefore mapped like
// any string, to a user of their own.
func userOf(subject, claim string, mapping SubjectMapping) (uuid.UUID, error) {
	if mapping == MapAllSubjects {
		return core.UserFromSubject(subject), nil
	}
	u, err := uuid.Parse(subject)
	if err != nil || len(subject) != 36 {
		if mapping == MapNonUUIDSubjects {
			return core.UserFromSubject(subject), nil
		}
		return uuid.Nil, fmt.Errorf("user claim %q is %q, not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx); for other subjects set Config.Subjects to MapAllSubjects", claim, clip(subject))
	}
	if u == uuid.Nil {
		// Nil is the anonymous user: a token naming it would be a user
		// that no push can reach, so it is refused.
		return uuid.Nil, fmt.Errorf("user claim %q is the nil UUID", claim)
	}
	return u, nil
}

// UserFor returns the user ID that a token whose user claim is subject
// gets in Identity.User, under Config.Subjects: the ID to pass to
// SendToUser, from the subject your application stores for the user.
// With MapAllSubjects it is core.UserFromSubject(subject); with
// MapNonUUIDSubjects the UUID itself for a canonical UUID subject, and
// core.UserFromSubject(subject) for any other; with UUIDSubjects the
// UUID, and an error wrapping ErrInvalidClaims for any other subject.
// The empty subject is an error: it names no user.
func (j *JWT) UserFor(subject string) (uuid.UUID, error) {
	if subject == "" {
		return uuid.Nil, fmt.Errorf("%w: the subject is empty", ErrInvalidClaims)
	}
	u, err := userOf(subject, j.cfg.UserClaim, j.cfg.Subjects)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%w: %w", ErrInvalidClaims, err)
	}
	return u, nil
}

// listClaim reads a claim holding a JSON array of strings, or one string
// of space-separated entries (the OAuth "scope" style). A missing claim is
// an empty list.
func listClaim(m jwt.MapClaims, name string) ([]string, error) {
	switch v := m[name].(type) {
	case nil:
		return nil, nil
	case string:
		return strings.Fields(v), nil
	case []any:
		out := make([]string, 0, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("claim %q: entry %d is a %s, not a string", name, i, jsonType(e))
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("claim %q is a %s, not a list of strings", name, jsonType(v))
	}
}

func publishClaim(m jwt.MapClaims, name string) (PublishGrant, error) {
	var g PublishGrant
	list, err := listClaim(m, name)
	if err != nil {
		return g, err
	}
	for _, s := range list {
		switch s {
		case GrantBroadcast:
			g.Broadcast = true
		case GrantUsers:
			g.Users = true
		case GrantSelf:
			g.Self = true
		default:
			if strings.HasPrefix(s, "@") {
				return g, fmt.Errorf("publish claim %q: unknown grant %q (want %s, %s or %s)", name, clip(s), GrantBroadcast, GrantUsers, GrantSelf)
			}
			p, err := ParsePattern(s)
			if err != nil {
				return g, fmt.Errorf("publish claim %q: %w", name, err)
			}
			g.Topics = append(g.Topics, p)
		}
	}
	return g, nil
}

// jsonType names the JSON type of a decoded claim value.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64, int, int64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
