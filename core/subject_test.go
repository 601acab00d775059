package core

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUserFromSubjectGolden pins the mapping. These values were computed
// independently, with Python's uuid.uuid5(uuid.UUID(SubjectNamespace),
// subject): if this test fails, every mapped user in every deployment
// would move to a new ID, so fix the code, never the values.
func TestUserFromSubjectGolden(t *testing.T) {
	golden := []struct{ subject, user string }{
		{"auth0|42", "1f0c81be-fe95-5212-93be-67975e4005eb"},
		{"auth0|5f7c8ec7c33c6c004bbafe82", "2f71811c-6c69-5394-a18d-1ecdca6ffe8f"}, // Auth0
		{"107353926327235112234", "8fcd0632-e0a8-508f-a50a-ac2235d4c547"},          // Google
		{"00u1abcd2EFGHijk3l4m", "885c8285-2efb-511e-9080-e5943be4002f"},           // Okta
		{"alice@example.com", "ec6ecdec-a449-5d13-8d08-334554026224"},
		{"Alice@example.com", "c7c52808-c608-5011-bf81-38490c92a358"}, // no case folding
		{"ünïcode", "477852d0-1dad-5167-955c-134246131b99"},           // UTF-8 bytes as given
		// A UUID subject is hashed like any other string.
		{"0f5c2a9e-7a43-4c4e-9a55-6d2a1b7c0a01", "849cd76e-a4a3-599a-aa9f-59955b228a66"},
	}
	for _, g := range golden {
		t.Run(g.subject, func(t *testing.T) {
			u := UserFromSubject(g.subject)
			assert.Equal(t, g.user, u.String())
			assert.Equal(t, uuid.Version(5), u.Version())
			assert.Equal(t, uuid.RFC4122, u.Variant())
			assert.Equal(t, u, UserFromSubject(g.subject), "not deterministic")
		})
	}
}

func TestUserFromSubjectNamespace(t *testing.T) {
	ns, err := uuid.Parse(SubjectNamespace)
	require.NoError(t, err)
	assert.Equal(t, SubjectNamespace, ns.String(), "the constant must be in canonical form")
	assert.Equal(t, uuid.NewSHA1(ns, []byte("auth0|42")), UserFromSubject("auth0|42"))
}

func TestUserFromSubjectEmptyIsNobody(t *testing.T) {
	assert.Equal(t, uuid.Nil, UserFromSubject(""))
}

// A subject never picks its own ID: one that spells a UUID, or the ID
// another subject maps to, gets an ID of its own.
func TestUserFromSubjectNeverIdentity(t *testing.T) {
	mapped := UserFromSubject("alice")
	for _, s := range []string{mapped.String(), uuid.Nil.String(), "0f5c2a9e-7a43-4c4e-9a55-6d2a1b7c0a01"} {
		u := UserFromSubject(s)
		assert.NotEqual(t, s, u.String())
		assert.NotEqual(t, uuid.Nil, u)
	}
	assert.NotEqual(t, mapped, UserFromSubject(mapped.String()))
}

func TestUserFromSubjectDistinct(t *testing.T) {
	seen := map[uuid.UUID]string{}
	for _, s := range []string{"a", "A", "a ", " a", "auth0|1", "auth0|10", "google-oauth2|1", "1", "01"} {
		u := UserFromSubject(s)
		if other, dup := seen[u]; dup {
			t.Fatalf("%q and %q map to the same user %s", s, other, u)
		}
		seen[u] = s
	}
}
