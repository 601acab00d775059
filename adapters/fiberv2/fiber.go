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
// method other than GET gets 405. The options are the net/http adapter's
// too, under the same names, except WithTakeover (fasthttp has nothing to
// take over): WithCORS and WithErrorLog.
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
	"fmt"

	"github.com/gofiber/fiber/v2"

	"github.com/ssekit/ssekit/adapters/internal/cors"
	"github.com/ssekit/ssekit/adapters/internal/fasthttpsse"
	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

// Option configures New and Handler. Options are functions over the
// handler's configuration, as in every ssekit adapter; New reports an
// invalid one.
type Option func(*config)

// config is what the options set.
type config struct {
	cors *CORS
	log  func(error)
}

// CORS lets EventSource connect from other origins; see nethttp.CORS. The
// answers are the net/http adapter's.
type CORS = nethttp.CORS

// WithCORS answers cross-origin stream requests, refusing unknown origins
// with 403 before a stream is opened, and puts the CORS headers on
// rejections too. Preflights (sent only by polyfills that add headers)
// reach the handler only if it is also mounted for OPTIONS:
// app.Add("OPTIONS", "/events", h) besides app.Get. New refuses an empty AllowedOrigins, and "*" with
// AllowCredentials.
func WithCORS(c CORS) Option {
	return func(o *config) { o.cors = &c }
}

// WithErrorLog receives errors the client never sees: why Serve ended a
// stream (core.ErrSlowConsumer, core.ErrWriteTimeout,
// core.ErrTokenExpired, ...). fasthttp writes the stream after the handler
// has returned, so this is the only place those errors surface. The
// default (and a nil f) discards them.
func WithErrorLog(f func(error)) Option {
	return func(o *config) { o.log = f }
}

// New returns a Fiber handler that serves b's streams, or an error for an
// invalid option. The handler copies what it needs from the fiber.Ctx
// before it returns (Fiber recycles the Ctx); c.UserContext() is the context
// Connect, the Authenticator and the Observer see.
func New(b *core.Broker, opts ...Option) (fiber.Handler, error) {
	var o config
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	cfg := fasthttpsse.Config{ErrorLog: o.log}
	if o.cors != nil {
		p := cors.Policy(*o.cors)
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("ssekit/fiber: %w", err)
		}
		cfg.CORS = &p
	}
	return func(c *fiber.Ctx) error {
		fasthttpsse.Serve(c.Context(), c.UserContext(), b, cfg)
		return nil
	}, nil
}

// Handler is New for options known to be valid: it panics on an invalid
// one, like regexp.MustCompile.
//
//	app.Get("/events", ssefiber.Handler(broker))
func Handler(b *core.Broker, opts ...Option) fiber.Handler {
	h, err := New(b, opts...)
	if err != nil {
		panic(err)
	}
	return h
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
