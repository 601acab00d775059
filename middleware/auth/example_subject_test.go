package auth_test

import (
	"fmt"
	"log"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// Tokens from an identity provider whose subjects are not UUIDs, such as
// Auth0: with MapAllSubjects the stream's user is
// core.UserFromSubject(sub), the ID the code that pushes uses too.
func ExampleConfig_subjects() {
	secret := auth.NewSecret() // stands in for the provider's key
	a, err := auth.New(auth.Config{
		Algorithms: []string{"HS256"},
		Keys:       []auth.Key{{Key: secret}},
		Subjects:   auth.MapAllSubjects,
	})
	if err != nil {
		log.Fatal(err)
	}
	const sub = "auth0|5f7c8ec7c33c6c004bbafe82"
	token, err := a.Mint(secret, auth.Grant{Subject: sub}) // the provider's token
	if err != nil {
		log.Fatal(err)
	}
	id, err := a.Verify(token)
	if err != nil {
		log.Fatal(err)
	}
	c, _ := auth.ClaimsOf(id)
	fmt.Println(c.Subject)
	fmt.Println(id.User)
	fmt.Println(id.User == core.UserFromSubject(sub))
	// broker.SendToUser(ctx, core.UserFromSubject(sub), ...) reaches this stream.
	// Output:
	// auth0|5f7c8ec7c33c6c004bbafe82
	// 2f71811c-6c69-5394-a18d-1ecdca6ffe8f
	// true
}
