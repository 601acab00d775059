package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/ssekit/ssekit/client"
)

func Example() {
	// Any SSE server will do; this one sends two events and ends the stream.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "retry: 1000\n\nid: 1\nevent: greeting\ndata: hello\n\nid: 2\ndata: world\n\n")
	}))
	defer srv.Close()

	c, err := client.New(srv.URL,
		client.WithHTTPClient(srv.Client()),
		client.WithHeader("Authorization", "Bearer my-token"),
	)
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for ev, err := range c.Events(ctx) {
		if err != nil {
			fmt.Println("gave up:", err)
			break
		}
		fmt.Printf("id=%s type=%q data=%q\n", ev.ID, ev.Type, ev.Data)
		if ev.ID == "2" {
			break // or cancel ctx, from anywhere
		}
	}
	fmt.Println("resume from", c.LastEventID())
	// Output:
	// id=1 type="greeting" data="hello"
	// id=2 type="" data="world"
	// resume from 2
}

func ExampleStatusError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
	}))
	defer srv.Close()

	c, _ := client.New(srv.URL, client.WithHTTPClient(srv.Client()))
	for _, err := range c.Events(context.Background()) {
		var se *client.StatusError
		if errors.As(err, &se) && se.Code == http.StatusUnauthorized {
			fmt.Println("refresh the token:", err)
		}
	}
	// Output: refresh the token: ssekit: client: unexpected status 401 Unauthorized: unauthenticated
}

func ExampleWithHeaderFunc() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", r.Header.Get("Authorization"))
	}))
	defer srv.Close()

	tokens := 0
	c, _ := client.New(srv.URL,
		client.WithHTTPClient(srv.Client()),
		client.WithBackoff(client.Backoff{Initial: 1}), // reconnect at once
		client.WithHeaderFunc(func(ctx context.Context) (http.Header, error) {
			tokens++ // fetch a fresh token for every connection attempt
			return http.Header{"Authorization": {fmt.Sprintf("Bearer token-%d", tokens)}}, nil
		}),
	)
	for ev, err := range c.Events(context.Background()) {
		if err != nil {
			panic(err)
		}
		fmt.Println(ev.Data)
		if tokens == 2 {
			break
		}
	}
	// Output:
	// Bearer token-1
	// Bearer token-2
}
