// Command gin is the hub's stream and publish endpoints on Gin: ssekit
// embedded in a Gin router with the adapter
// github.com/ssekit/ssekit/adapters/gin.
//
//	go run ./examples/gin     # from the repository root; listens on 127.0.0.1:8091
//
//	curl -N 'http://127.0.0.1:8091/events?topic=news'
//	curl -d '{"topic":"news","event":"headline","data":"hello"}' http://127.0.0.1:8091/publish
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
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gin-contrib/gzip"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	ssegin "github.com/ssekit/ssekit/adapters/gin"
	"github.com/ssekit/ssekit/adapters/nethttp"
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

// newRouter serves b: GET /events (the stream), POST /publish, GET /stats.
func newRouter(b *core.Broker) *gin.Engine {
	r := gin.New()
	r.Use(gin.Recovery())
	// gzip would hold a compressor per open stream: keep it off the stream.
	r.Use(gzip.Gzip(gzip.DefaultCompression, gzip.WithExcludedPaths([]string{"/events"})))
	r.GET("/events", ssegin.Handler(b))
	r.POST("/publish", func(c *gin.Context) {
		var req publishRequest
		if err := c.ShouldBindJSON(&req); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
			return
		}
		tg := core.Target{Tenant: req.Tenant, Broadcast: req.Broadcast}
		if req.User != uuid.Nil {
			tg.Users = []uuid.UUID{req.User}
		}
		if req.Topic != "" {
			tg.Topics = []string{req.Topic}
		}
		id, err := b.Publish(c.Request.Context(), core.Message{Target: tg, Event: core.Event{Type: req.Event, Data: req.Data}})
		switch {
		case errors.Is(err, core.ErrClosed):
			c.JSON(http.StatusServiceUnavailable, gin.H{"error": err.Error()})
		case err != nil:
			c.JSON(http.StatusBadRequest, gin.H{"error": err.Error()})
		default:
			c.JSON(http.StatusOK, gin.H{"id": id})
		}
	})
	r.GET("/stats", func(c *gin.Context) { c.JSON(http.StatusOK, b.Stats()) })
	return r
}

// serve runs h on ln until ctx is done, then shuts the server down and
// closes the broker together (streams end with a reconnect hint).
func serve(ctx context.Context, ln net.Listener, h http.Handler, b *core.Broker) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second} // streams are exempt
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return errors.Join(err, b.Close(context.Background()))
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := nethttp.Shutdown(sctx, srv, b)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8091", "listen address")
	flag.Parse()
	gin.SetMode(gin.ReleaseMode)
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
	log.Printf("ssekit on Gin: stream at http://%s/events, publish at /publish", ln.Addr())
	if err := serve(ctx, ln, newRouter(b), b); err != nil {
		log.Fatal(err)
	}
}
