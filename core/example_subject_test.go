package core_test

import (
	"context"
	"fmt"

	"github.com/ssekit/ssekit/core"
)

// Identity providers name users with strings that are rarely UUIDs.
// UserFromSubject turns any of them into the user ID the broker routes
// by: the same ID the JWT layer puts in Identity.User when it maps
// subjects (middleware/auth, Config.Subjects), so a push addressed this
// way reaches that user's streams.
func ExampleUserFromSubject() {
	for _, sub := range []string{
		"auth0|5f7c8ec7c33c6c004bbafe82", // Auth0
		"107353926327235112234",          // Google
		"00u1abcd2EFGHijk3l4m",           // Okta
	} {
		fmt.Println(core.UserFromSubject(sub))
	}

	broker, err := core.New(core.Config{})
	if err != nil {
		panic(err)
	}
	defer broker.Close(context.Background())
	err = broker.SendToUser(context.Background(), core.UserFromSubject("auth0|42"), "notification", map[string]int{"unread": 3})
	fmt.Println("sent:", err == nil)

	// The empty subject names nobody, and SendToUser refuses it.
	err = broker.SendToUser(context.Background(), core.UserFromSubject(""), "notification", "x")
	fmt.Println(err)
	// Output:
	// 2f71811c-6c69-5394-a18d-1ecdca6ffe8f
	// 8fcd0632-e0a8-508f-a50a-ac2235d4c547
	// 885c8285-2efb-511e-9080-e5943be4002f
	// sent: true
	// ssekit: invalid user ID: nil UUID
}
