package core_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ssekit/ssekit/core"
)

// statusRequest is a stream request from a client that asks for plain
// statuses (core.RejectModeHeader).
type statusRequest struct{}

func (statusRequest) Header(name string) string {
	if name == core.RejectModeHeader {
		return "status"
	}
	return ""
}
func (statusRequest) Query(name string) []string {
	if name == "topic" {
		return []string{"orders"}
	}
	return nil
}
func (statusRequest) Cookie(string) string { return "" }
func (statusRequest) RemoteAddr() string   { return "192.0.2.1:1234" }

// A refusal's body names only its class; the full error goes to the
// Observer's Reject hook, with the request's context, for the logs. An
// Authorizer that cannot reach its database wraps core.ErrUnavailable, so
// the client is told to retry instead of being refused for good.
func ExampleBroker_Reject() {
	dbDown := true
	b, err := core.New(core.Config{
		Authorizer: core.AuthorizerFunc(func(context.Context, core.Identity, []string) error {
			if dbDown {
				return fmt.Errorf("acl lookup: %w: dial tcp 10.0.0.5:5432: connection refused", core.ErrUnavailable)
			}
			return errors.New("acl lookup: no grant for orders in table acl_v2")
		}),
		Observer: &core.Observer{Reject: func(ctx context.Context, tenant string, err error) {
			fmt.Println("log:", err) // slog.WarnContext(ctx, ...) in a real server
		}},
	})
	if err != nil {
		panic(err)
	}
	defer b.Close(context.Background())

	for range 2 {
		_, err := b.Connect(context.Background(), statusRequest{})
		rej := b.Reject(err, statusRequest{})
		fmt.Printf("wire: %d Retry-After=%d %q\n", rej.Status, rej.RetryAfter, rej.Body)
		dbDown = false
	}
	// Output:
	// log: acl lookup: ssekit: temporarily unavailable: dial tcp 10.0.0.5:5432: connection refused
	// wire: 503 Retry-After=15 "unavailable\n"
	// log: ssekit: forbidden: acl lookup: no grant for orders in table acl_v2
	// wire: 403 Retry-After=0 "forbidden\n"
}
