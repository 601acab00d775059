package ssefiber_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gofiber/fiber/v3"
	"github.com/gofiber/fiber/v3/middleware/compress"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	ssefiber "github.com/ssekit/ssekit/adapters/fiber"
	"github.com/ssekit/ssekit/adapters/internal/fasthttpsse/traptest"
	"github.com/ssekit/ssekit/core"
)

// start serves b on a Fiber v3 app the way the README shows.
func start(t *testing.T, b *core.Broker, o traptest.Options) traptest.Server {
	t.Helper()
	app := fiber.New(fiber.Config{
		ReadTimeout:  adaptertest.ServerWriteTimeout,
		WriteTimeout: adaptertest.ServerWriteTimeout,
	})
	if o.Compress {
		app.Use(compress.New(compress.Config{
			Next: func(c fiber.Ctx) bool { return c.Path() == "/events" },
		}))
		app.Get("/big", func(c fiber.Ctx) error { return c.SendString(traptest.BigBody) })
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
		Listen:             func(ln net.Listener) error { return app.Listener(ln, fiber.ListenConfig{DisableStartupMessage: true}) },
		Shutdown:           app.ShutdownWithContext,
		ShutdownWithBroker: func(ctx context.Context) error { return ssefiber.Shutdown(ctx, app, b) },
	})
}

// TestFiber runs the conformance suite (HTTP/1.1) and the fasthttp trap
// tests.
func TestFiber(t *testing.T) {
	traptest.Run(t, start)
}

// TestCompressNotExcluded documents gofiber/fiber#4283, the reason for the
// exclusion the README shows: behind Fiber v3.1.0's compress middleware, a
// stream that is not excluded reaches the client not even with its headers,
// because the middleware reads the whole body before it compresses. The
// stream still ends when the client gives up. If this test fails, Fiber
// has fixed the issue and the README can say so.
func TestCompressNotExcluded(t *testing.T) {
	t.Parallel()
	b := adaptertest.NewBroker(t, core.Config{})
	app := fiber.New()
	app.Use(compress.New())
	app.Get("/events", ssefiber.Handler(b))
	app.Server().MaxIdleWorkerDuration = 100 * time.Millisecond
	srv := serve(t, app, b)

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	if resp, err := tr.RoundTrip(req); err == nil {
		_ = resp.Body.Close()
		require.FailNow(t, fmt.Sprintf("a stream behind compress got its headers (%d %v): is gofiber/fiber#4283 fixed?", resp.StatusCode, resp.Header))
	}
	deadline := time.Now().Add(traptest.DisconnectBound)
	for b.Stats().Connections != 0 {
		require.False(t, time.Now().After(deadline), "the stream the client gave up on is still registered after %v", traptest.DisconnectBound)
		time.Sleep(time.Millisecond)
	}
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
