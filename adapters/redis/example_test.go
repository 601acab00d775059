package sseredis_test

import (
	"context"
	"log"
	"net/http"

	"github.com/redis/go-redis/v9"
	"github.com/ssekit/ssekit/adapters/nethttp"
	sseredis "github.com/ssekit/ssekit/adapters/redis"
	"github.com/ssekit/ssekit/core"
)

// One node of a cluster: run the same program on every node, behind any
// load balancer, all pointing at the same Redis.
func Example() {
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", MaxRetries: -1, ContextTimeoutEnabled: true})
	defer client.Close()
	r, err := sseredis.New(client, sseredis.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	broker, err := core.New(core.Config{Backend: r}) // the whole wiring
	if err != nil {
		log.Fatal(err) // Redis unreachable at start, or invalid options
	}
	defer broker.Close(ctx)

	http.Handle("GET /events", nethttp.Handler(broker))
	go func() { _ = http.ListenAndServe("127.0.0.1:8080", nil) }()

	// Publish on any node; every node's subscribers get it.
	if err := broker.SendToTopic(ctx, "news", "headline", "hello"); err != nil {
		log.Print(err) // wraps sseredis.ErrPublish when Redis did not take it
	}
	online := broker.OnlineUsers() // users on every node, from this node's view
	_ = online
}
