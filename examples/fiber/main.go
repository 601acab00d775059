// Command fiber is the hub's stream and publish endpoints on Fiber v3:
// ssekit embedded in a Fiber app with the adapter
// github.com/ssekit/ssekit/adapters/fiber.
//
//	go run ./examples/fiber     # from the repository root; listens on 127.0.0.1:8090
//
//	curl -N 'http://127.0.0.1:8090/events?topic=news'
//	curl -d '{"topic":"news","event":"headline","data":"hello"}' http://127.0.0.1:8090/publish
//
// Like the hub's demo, the stream trusts the user and tenant its query
// names (core.InsecureQueryAuthenticator): a real app authenticates it.
package main

import (
	"context"
	"errors"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v3"
	"github.com/gofiber/fiber/v3/middleware/compress"
	"github.com/google/uuid"

	ssefiber "github.com/ssekit/ssekit/adapters/fiber"
	"github.com/ssekit/ssekit/core"
)

// publishRequest is the body of POST /publish, as the hub takes it (data
// is sent as the string it is).
type publishRequest struct {
	Tenant    string    `json:"tenant"`
	User      uuid.UUID `json:"user"`
	Topic     string    `json:"topic"`
	Broadcast bool      `json:"broadcast"`
	Event     string    `json:"event"`
	Data      string    `json:"data"`
}

// newApp serves b: GET /events (the stream), POST /publish, GET /stats.
func newApp(b *core.Broker) *fiber.App {
	app := fiber.New(fiber.Config{WriteTimeout: 10 * time.Second}) // streams are exempt
	// Fiber v3.1.0's compress buffers whole responses: keep it off the stream.
	app.Use(compress.New(compress.Config{
		Next: func(c fiber.Ctx) bool { return c.Path() == "/events" },
	}))
	app.Get("/events", ssefiber.Handler(b))
	app.Post("/publish", func(c fiber.Ctx) error {
		var req publishRequest
		if err := c.Bind().JSON(&req); err != nil {
			return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": err.Error()})
		}
		tg := core.Target{Tenant: req.Tenant, Broadcast: req.Broadcast}
		if req.User != uuid.Nil {
			tg.Users = []uuid.UUID{req.User}
		}
		if req.Topic != "" {
			tg.Topics = []string{req.Topic}
		}
		id, err := b.Publish(c.Context(), core.Message{Target: tg, Event: core.Event{Type: req.Event, Data: req.Data}})
		switch {
		case errors.Is(err, core.ErrClosed):
			return c.Status(fiber.StatusServiceUnavailable).JSON(fiber.Map{"error": err.Error()})
		case err != nil:
			return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": err.Error()})
		}
		return c.JSON(fiber.Map{"id": id})
	})
	app.Get("/stats", func(c fiber.Ctx) error { return c.JSON(b.Stats()) })
	return app
}

// serve runs app on ln until ctx is done, then closes the broker (streams
// end with a reconnect hint) and the app.
func serve(ctx context.Context, ln net.Listener, app *fiber.App, b *core.Broker) error {
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln, fiber.ListenConfig{DisableStartupMessage: true}) }()
	select {
	case err := <-served:
		return errors.Join(err, b.Close(context.Background()))
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(ssefiber.Shutdown(sctx, app, b), <-served)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := core.New(core.Config{Authenticator: core.InsecureQueryAuthenticator()})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("ssekit on Fiber v3: stream at http://%s/events, publish at /publish", ln.Addr())
	if err := serve(ctx, ln, newApp(b), b); err != nil {
		log.Fatal(err)
	}
}
