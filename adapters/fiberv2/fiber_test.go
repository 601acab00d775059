package ssefiber_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/compress"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	ssefiber "github.com/ssekit/ssekit/adapters/fiberv2"
	"github.com/ssekit/ssekit/adapters/internal/fasthttpsse/traptest"
	"github.com/ssekit/ssekit/core"
)

// start serves b on a Fiber v2 app the way the README shows.
func start(t *testing.T, b *core.Broker, o traptest.Options) traptest.Server {
	t.Helper()
	app := fiber.New(fiber.Config{
		ReadTimeout:           adaptertest.ServerWriteTimeout,
		WriteTimeout:          adaptertest.ServerWriteTimeout,
		DisableStartupMessage: true,
	})
	if o.Compress {
		app.Use(compress.New(compress.Config{
			Next: func(c *fiber.Ctx) bool { return c.Path() == "/events" },
		}))
		app.Get("/big", func(c *fiber.Ctx) error { return c.SendString(traptest.BigBody) })
	}
	var opts []ssefiber.Option
	if o.CORS != nil {
		opts = append(opts, ssefiber.WithCORS(*o.CORS))
	}
	if o.ErrorLog != nil {
		opts = append(opts, ssefiber.WithErrorLog(o.ErrorLog))
	}
	app.Get("/events", ssefiber.Handler(b, opts...))
	// fasthttp's worker pool looks for its stop signal only between naps of
	// this length (10s by default): keep goleak from waiting on it.
	app.Server().MaxIdleWorkerDuration = 100 * time.Millisecond
	return serve(t, app, b)
}

// serve runs app until the end of t; its Shutdown is the adapter's, with b.
func serve(t *testing.T, app *fiber.App, b *core.Broker) traptest.Server {
	t.Helper()
	return traptest.Serve(t, traptest.App{
		Listen:             func(ln net.Listener) error { return app.Listener(ln) },
		Shutdown:           app.ShutdownWithContext,
		ShutdownWithBroker: func(ctx context.Context) error { return ssefiber.Shutdown(ctx, app, b) },
	})
}

// TestFiber runs the conformance suite (HTTP/1.1) and the fasthttp trap
// tests.
func TestFiber(t *testing.T) {
	traptest.Run(t, start)
}

// TestCompressNotExcluded: Fiber v2's compress middleware does not buffer
// a stream it is not excluded from, unlike v3.1.0's: fasthttp compresses
// it as it streams, flushing after each write, so the events still arrive
// (compressed). The README still excludes the route: compressed streams
// cost CPU per connection, and proxies handle them worse.
func TestCompressNotExcluded(t *testing.T) {
	t.Parallel()
	b := adaptertest.NewBroker(t, core.Config{})
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Use(compress.New())
	app.Get("/events", ssefiber.Handler(b))
	app.Server().MaxIdleWorkerDuration = 100 * time.Millisecond
	srv := serve(t, app, b)

	tr := &http.Transport{} // asks for gzip and decompresses
	t.Cleanup(tr.CloseIdleConnections)
	conn := adaptertest.Dial(t, &http.Client{Transport: tr}, srv.URL+"/events", nil)
	assert.True(t, conn.Resp.Uncompressed, "stream not compressed (Content-Encoding %q): has fiber/v2's compress changed?", conn.Resp.Header.Get("Content-Encoding"))
	conn.Opened(t)
	id, err := b.Publish(context.Background(), core.Message{Target: core.Target{Broadcast: true}, Event: core.Event{Type: "e", Data: "x"}})
	require.NoError(t, err)
	ev := conn.Event(t)
	assert.Equal(t, id, ev.ID, "got event %q, want %q", ev.ID, id)
}

// TestInvalidOption: New refuses an invalid option, Handler panics on it.
func TestInvalidOption(t *testing.T) {
	b := adaptertest.NewBroker(t, core.Config{})
	bad := ssefiber.CORS{AllowedOrigins: []string{"*"}, AllowCredentials: true}
	_, err := ssefiber.New(b, ssefiber.WithCORS(bad))
	assert.Error(t, err, "New accepted \"*\" with credentials")
	defer func() {
		assert.NotNil(t, recover(), "Handler did not panic on an invalid option")
	}()
	ssefiber.Handler(b, ssefiber.WithCORS(bad))
}
