package auth_test

import (
	"context"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// Subjects shaped like those of common identity providers.
var (
	subAuth0 = "auth0|5f7c8ec7c33c6c004bbafe82"
	subGoogl = "107353926327235112234"
	subOkta  = "00u1abcd2EFGHijk3l4m"
	subEmail = "alice@example.com"
	subUUID  = alice.String()

	providerSubjects = []string{subAuth0, subGoogl, subOkta, subEmail, subUUID}
)

// subjectConfig is testConfig with subjects mapped as m says.
func subjectConfig(m auth.SubjectMapping) auth.Config {
	cfg := testConfig()
	cfg.Subjects = m
	return cfg
}

// wantUser is the user ID each mapping must give subject, worked out
// here rather than asked of the package.
func wantUser(m auth.SubjectMapping, subject string) (uuid.UUID, bool) {
	isUUID := subject == subUUID
	switch m {
	case auth.MapAllSubjects:
		return core.UserFromSubject(subject), true
	case auth.MapNonUUIDSubjects:
		if isUUID {
			return alice, true
		}
		return core.UserFromSubject(subject), true
	}
	if isUUID {
		return alice, true
	}
	return uuid.Nil, false
}

func TestSubjectMappings(t *testing.T) {
	for _, m := range []auth.SubjectMapping{auth.UUIDSubjects, auth.MapAllSubjects, auth.MapNonUUIDSubjects} {
		t.Run(m.String(), func(t *testing.T) {
			j := newJWT(t, subjectConfig(m))
			assert.Equal(t, m, j.Config().Subjects)
			for _, sub := range providerSubjects {
				want, ok := wantUser(m, sub)
				id, err := j.Verify(rsaToken(t, map[string]any{"sub": sub}))
				u, errFor := j.UserFor(sub)
				if !ok {
					require.ErrorIs(t, err, auth.ErrInvalidClaims, sub)
					assert.ErrorIs(t, err, core.ErrUnauthenticated, sub)
					assert.ErrorContains(t, err, "MapAllSubjects", "the error names the fix")
					assert.ErrorIs(t, errFor, auth.ErrInvalidClaims, sub)
					continue
				}
				require.NoError(t, err, sub)
				assert.Equal(t, want, id.User, sub)
				c, _ := auth.ClaimsOf(id)
				assert.Equal(t, want, c.User, sub)
				assert.Equal(t, sub, c.Subject, sub)
				require.NoError(t, errFor, sub)
				assert.Equal(t, want, u, "UserFor(%q) must agree with Verify", sub)
			}

			// Refused under every mapping: no user claim, an empty one,
			// one that is not a string.
			for name, over := range map[string]map[string]any{
				"missing": {"sub": nil},
				"empty":   {"sub": ""},
				"number":  {"sub": 107353926327235112234.0},
				"list":    {"sub": []string{subAuth0}},
			} {
				_, err := j.Verify(rsaToken(t, over))
				assert.ErrorIs(t, err, auth.ErrInvalidClaims, name)
			}
			_, err := j.UserFor("")
			assert.ErrorIs(t, err, auth.ErrInvalidClaims)

			// Anonymous tokens stay anonymous.
			cfg := subjectConfig(m)
			cfg.AllowAnonymous = true
			id, err := newJWT(t, cfg).Verify(rsaToken(t, map[string]any{"sub": nil}))
			require.NoError(t, err)
			assert.Equal(t, uuid.Nil, id.User)
		})
	}
}

// Under MapNonUUIDSubjects only the canonical spelling of a UUID is that
// UUID: other spellings are strings like any other, mapped to users of
// their own, and the nil UUID is still refused.
func TestSubjectMapNonUUIDSpellings(t *testing.T) {
	j := newJWT(t, subjectConfig(auth.MapNonUUIDSubjects))
	for _, sub := range []string{
		"urn:uuid:" + alice.String(),
		"{" + alice.String() + "}",
		strings.ReplaceAll(alice.String(), "-", ""),
	} {
		id, err := j.Verify(rsaToken(t, map[string]any{"sub": sub}))
		require.NoError(t, err, sub)
		assert.Equal(t, core.UserFromSubject(sub), id.User, sub)
		assert.NotEqual(t, alice, id.User, sub)
	}
	id, err := j.Verify(rsaToken(t, map[string]any{"sub": strings.ToUpper(alice.String())}))
	require.NoError(t, err)
	assert.Equal(t, alice, id.User, "upper case is canonical, as without mapping")

	_, err = j.Verify(rsaToken(t, map[string]any{"sub": uuid.Nil.String()}))
	assert.ErrorIs(t, err, auth.ErrInvalidClaims)
	assert.ErrorContains(t, err, "nil UUID")

	// Under MapAllSubjects even the nil UUID's spelling is just a string.
	id, err = newJWT(t, subjectConfig(auth.MapAllSubjects)).Verify(rsaToken(t, map[string]any{"sub": uuid.Nil.String()}))
	require.NoError(t, err)
	assert.Equal(t, core.UserFromSubject(uuid.Nil.String()), id.User)
}

func TestSubjectMappingValidation(t *testing.T) {
	cfg := testConfig()
	cfg.Subjects = auth.SubjectMapping(7)
	_, err := auth.New(cfg)
	assert.ErrorIs(t, err, core.ErrInvalidConfig)
	assert.ErrorContains(t, err, "SubjectMapping(7)")
}

// Publish and admin grants follow the mapped user: GrantSelf lets a
// mapped subject push to core.UserFromSubject of itself and nobody else;
// topics and admin are unaffected by the mapping.
func TestSubjectGrants(t *testing.T) {
	j := newJWT(t, subjectConfig(auth.MapAllSubjects))
	self := core.UserFromSubject(subAuth0)
	id, err := j.Verify(rsaToken(t, map[string]any{"sub": subAuth0, "publish": []string{auth.GrantSelf, "orders/*"}}))
	require.NoError(t, err)

	assert.NoError(t, auth.CanPublish(id, core.Target{Tenant: "acme", Users: []uuid.UUID{self}}))
	assert.NoError(t, auth.CanPublish(id, core.Target{Tenant: "acme", Topics: []string{"orders/1"}}))
	for name, other := range map[string]uuid.UUID{
		"another subject": core.UserFromSubject(subGoogl),
		"the raw UUID":    alice,
		"case variant":    core.UserFromSubject(strings.ToUpper(subAuth0)),
	} {
		assert.ErrorIs(t, auth.CanPublish(id, core.Target{Tenant: "acme", Users: []uuid.UUID{other}}), auth.ErrPublishNotAllowed, name)
	}
	assert.NoError(t, j.Authorize(context.Background(), id, []string{"orders/eu"}))

	// An identity whose user was swapped for the unmapped one is refused.
	forged := id
	forged.User = alice
	assert.ErrorIs(t, auth.CanPublish(forged, core.Target{Tenant: "acme", Users: []uuid.UUID{alice}}), auth.ErrPublishNotAllowed)

	// Admin grant, minted for a provider-shaped subject.
	secret := auth.NewSecret()
	ja := newJWT(t, auth.Config{Algorithms: []string{"HS256"}, Keys: []auth.Key{{Key: secret}}, Subjects: auth.MapAllSubjects})
	tok, err := ja.MintAdmin(secret, auth.Grant{Subject: subOkta})
	require.NoError(t, err)
	admin, err := ja.Verify(tok)
	require.NoError(t, err)
	assert.Equal(t, core.UserFromSubject(subOkta), admin.User)
	assert.NoError(t, auth.CanAdmin(admin))
	plain, err := ja.Verify(mustMint(t, ja, secret, auth.Grant{Subject: subOkta}))
	require.NoError(t, err)
	assert.ErrorIs(t, auth.CanAdmin(plain), auth.ErrAdminNotAllowed)
}

func mustMint(t *testing.T, j *auth.JWT, key any, g auth.Grant) string {
	t.Helper()
	tok, err := j.Mint(key, g)
	require.NoError(t, err)
	return tok
}

func TestMintSubject(t *testing.T) {
	secret := auth.NewSecret()
	cfg := auth.Config{Algorithms: []string{"HS256"}, Keys: []auth.Key{{Key: secret}}}
	strict := newJWT(t, cfg)
	_, err := strict.Mint(secret, auth.Grant{User: alice, Subject: subAuth0})
	assert.ErrorContains(t, err, "both set")
	// The token is minted as asked, then refused by Verify: without a
	// mapping its subject is no user.
	_, err = strict.Mint(secret, auth.Grant{Subject: subAuth0})
	assert.ErrorIs(t, err, auth.ErrInvalidClaims)

	cfg.Subjects = auth.MapAllSubjects
	j := newJWT(t, cfg)
	tok := mustMint(t, j, secret, auth.Grant{Subject: subAuth0})
	m := jwt.MapClaims{}
	_, _, err = jwt.NewParser().ParseUnverified(tok, m)
	require.NoError(t, err)
	assert.Equal(t, subAuth0, m["sub"], "the subject is written as it is")
}
