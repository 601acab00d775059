package core

import "github.com/google/uuid"

// SubjectNamespace is the namespace UUID of UserFromSubject: every user ID
// it makes is the name-based (version 5, SHA-1) UUID of the subject in
// this namespace, as RFC 9562 section 5.5 defines it. It was generated at
// random once and will never change: changing it would move every mapped
// user to a new ID, and pushes addressed to the old one would reach no
// stream.
//
// Any language reproduces the mapping from this constant, for a service
// that publishes without Go:
//
//	Python      uuid.uuid5(uuid.UUID("f9579b09-7b4e-42a4-8692-e2b8507c3abd"), subject)
//	Node.js     v5(subject, "f9579b09-7b4e-42a4-8692-e2b8507c3abd")   // npm "uuid"
//	PostgreSQL  uuid_generate_v5('f9579b09-7b4e-42a4-8692-e2b8507c3abd', subject)  -- uuid-ossp
//
// The name hashed is the subject's UTF-8 bytes exactly as the token
// carries them. Mind that some libraries' name-based UUIDs are version 3
// (MD5), such as Java's UUID.nameUUIDFromBytes: they give other IDs.
const SubjectNamespace = "f9579b09-7b4e-42a4-8692-e2b8507c3abd"

// subjectNamespace is SubjectNamespace parsed once. It is unexported so
// that no package can reassign it and silently remap every user.
var subjectNamespace = uuid.MustParse(SubjectNamespace)

// UserFromSubject returns the user ID for subject, an identity provider's
// user identifier (a JWT's "sub"), whatever its shape: "auth0|5f7c8e...",
// Google's numeric "107353926327235112234", Okta's "00u1abcd2EFGHijk3l4m",
// an e-mail address. Identity.User and SendToUser take a uuid.UUID, and
// most providers' subjects are not UUIDs; this is the one mapping that
// bridges them, so the code that pushes and the code that authenticates
// agree on who a user is:
//
//	broker.SendToUser(ctx, core.UserFromSubject("auth0|42"), "notification", data)
//
// reaches every stream whose token's sub is "auth0|42" when the JWT layer
// maps subjects (middleware/auth, Config.Subjects).
//
// The result is the version 5 UUID of subject in SubjectNamespace: the
// same for the same subject, in every process, release and language, and
// different for different subjects (a collision would need a SHA-1
// second preimage). The subject is hashed byte for byte with no
// normalization: subjects are case-sensitive identifiers (OpenID Connect
// Core, section 5.7), so "Alice@example.com" and "alice@example.com" are
// two users. A subject that is itself a UUID is hashed like any other
// string: UserFromSubject never returns its argument, so a subject can
// never choose its own ID.
//
// The empty subject names nobody: it returns uuid.Nil, the anonymous user,
// which SendToUser refuses with ErrInvalidUser, rather than an ID that
// every token with an empty subject would share.
func UserFromSubject(subject string) uuid.UUID {
	if subject == "" {
		return uuid.Nil
	}
	return uuid.NewSHA1(subjectNamespace, []byte(subject))
}
