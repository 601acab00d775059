// Command echo is the hub's stream and publish endpoints on Echo v5:
// ssekit embedded in an Echo app with the adapter
// github.com/ssekit/ssekit/adapters/echo (adapters/echov4 for Echo v4).
//
//	go run ./examples/echo     # from the repository root; listens on 127.0.0.1:8092
//
//	curl -N 'http://127.0.0.1:8092/events?topic=news'
//	curl -d '{"topic":"news","event":"headline","data":"hello"}' http://127.0.0.1:8092/publish
//
// Like the hub's demo, the stream trusts the user and tenant its query
// names (core.InsecureQueryAuthenticator): a real app authenticates it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	sseecho "github.com/ssekit/ssekit/adapters/echo"
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
func newApp(b *core.Broker) *echo.Echo {
	e := echo.New()
	e.Use(middleware.Recover())
	e.Use(middleware.Gzip()) // the stream is written beneath it, uncompressed
	e.GET("/events", sseecho.Handler(b))
	e.POST("/publish", func(c *echo.Context) error {
		var req publishRequest
		if err := json.NewDecoder(c.Request().Body).Decode(&req); err != nil {
			return c.JSON(http.StatusBadRequest, map[string]string{"error": err.Error()})
		}
		tg := core.Target{Tenant: req.Tenant, Broadcast: req.Broadcast}
		if req.User != uuid.Nil {
			tg.Users = []uuid.UUID{req.User}
		}
		if req.Topic != "" {
			tg.Topics = []string{req.Topic}
		}
		id, err := b.Publish(c.Request().Context(), core.Message{Target: tg, Event: core.Event{Type: req.Event, Data: req.Data}})
		switch {
		case errors.Is(err, core.ErrClosed):
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		case err != nil:
			return c.JSON(http.StatusBadRequest, map[string]string{"error": err.Error()})
		}
		return c.JSON(http.StatusOK, map[string]string{"id": id})
	})
	e.GET("/stats", func(c *echo.Context) error { return c.JSON(http.StatusOK, b.Stats()) })
	return e
}

// serve runs e on ln until ctx is done, then shuts the server down
// gracefully; CloseOnShutdown closes the broker as that starts, so the
// streams end with a reconnect hint instead of holding the shutdown up.
func serve(ctx context.Context, ln net.Listener, e *echo.Echo, b *core.Broker) error {
	sc := echo.StartConfig{
		Listener:        ln,
		HideBanner:      true,
		HidePort:        true,
		GracefulTimeout: 10 * time.Second,
		BeforeServeFunc: func(s *http.Server) error {
			s.ReadHeaderTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second // streams are exempt
			return sseecho.CloseOnShutdown(b, 10*time.Second)(s)
		},
	}
	return sc.Start(ctx, e)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8092", "listen address")
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
	log.Printf("ssekit on Echo v5: stream at http://%s/events, publish at /publish", ln.Addr())
	if err := serve(ctx, ln, newApp(b), b); err != nil {
		log.Fatal(err)
	}
}
