// Package ssefiber serves ssekit streams from a Fiber v2 app.
//
//	broker, err := core.New(core.Config{Authenticator: myAuth})
//	if err != nil {
//		log.Fatal(err)
//	}
//	app := fiber.New()
//	app.Get("/events", ssefiber.Handler(broker))
//	go app.Listen(":8080")
//	// ... broker.SendToUser(ctx, user, "notification", payload) ...
//	ssefiber.Shutdown(ctx, app, broker) // streams end with a reconnect hint
//
// The stream request, the statuses on the wire and the behaviour at limits
// and at shutdown are those of the net/http adapter (see
// github.com/ssekit/ssekit/adapters/nethttp and core.Broker.Reject); a
// method other than GET gets 405.
//
// Exclude the stream route from the compress middleware with its Next
// function. Fiber v2's compress does not hold a stream back (fasthttp
// compresses it as it goes, flushing each write), but it spends a
// compressor per connection and makes the stream harder for proxies;
// Fiber v3.1.0's compress does hold it back (gofiber/fiber#4283):
//
//	app.Use(compress.New(compress.Config{
//		Next: func(c *fiber.Ctx) bool { return c.Path() == "/events" },
//	}))
//
// fasthttp tells a handler nothing when its client leaves. The adapter
// probes the connection's read side while the stream is idle, so a client
// that closes or resets its connection is unregistered within milliseconds
// even when nothing is published (see the README for the measured delay).
// Fiber's WriteTimeout does not cut streams: each write gets the broker's
// ClientTimeout instead. Fiber (fasthttp) does not build for wasip1 or js.
package ssefiber

import (
	"context"
	"errors"

	"github.com/gofiber/fiber/v2"

	"github.com/ssekit/ssekit/adapters/internal/fasthttpsse"
	"github.com/ssekit/ssekit/core"
)

// Handler returns a Fiber handler that serves b's streams. It copies what
// it needs from the fiber.Ctx before it returns (Fiber recycles the Ctx);
// c.UserContext() is the context Connect, the Authenticator and the Observer
// see.
func Handler(b *core.Broker) fiber.Handler {
	return func(c *fiber.Ctx) error {
		fasthttpsse.Serve(c.Context(), c.UserContext(), b)
		return nil
	}
}

// Shutdown closes b, which ends every stream after its queue is flushed
// with a reconnect hint, and then shuts app down. In that order: fasthttp
// waits for open connections, and a server shutting down first would end
// the streams without the hint. Both respect ctx; app.ShutdownWithContext
// alone also ends the streams, without the hint.
func Shutdown(ctx context.Context, app *fiber.App, b *core.Broker) error {
	berr := b.Close(ctx)
	return errors.Join(berr, app.ShutdownWithContext(ctx))
}
