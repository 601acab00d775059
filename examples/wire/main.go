// Command wire builds an ssekit service with dependency injection by
// github.com/google/wire: ProviderSet (providers.go) turns a core.Config
// into a *core.Broker and the http.Handler serving its streams, the
// injector (wire.go) asks for an App, and wire_gen.go is the code wire
// generated from them, committed, and checked to be current by this
// package's tests.
//
//	go run ./examples/wire                  # http://127.0.0.1:8088
//	curl -N http://127.0.0.1:8088/events    # a "tick" event every second
//
// After changing providers.go or wire.go, regenerate (wire is a tool
// dependency of the examples module):
//
//	cd examples/wire && go tool wire
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

	"github.com/ssekit/ssekit/core"
)

// App is what the injector builds: everything main needs.
type App struct {
	Handler http.Handler
	Broker  *core.Broker
	Clock   *Clock
}

// Clock is an application service that depends on the broker: it
// broadcasts the time every Interval while Run runs.
type Clock struct {
	broker   *core.Broker
	Interval time.Duration
}

// NewClock is the Clock's provider.
func NewClock(b *core.Broker) *Clock { return &Clock{broker: b, Interval: time.Second} }

// Run broadcasts "tick" events until ctx is done.
func (c *Clock) Run(ctx context.Context) {
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			_ = c.broker.Broadcast(ctx, "tick", map[string]string{"time": now.UTC().Format(time.RFC3339)})
		case <-ctx.Done():
			return
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8088", "listen address")
	flag.Parse()
	app, cleanup, err := initializeApp(core.Config{HeartbeatInterval: 15 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cleanup() // closes the broker: streams end with a reconnect hint

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Print(err)
		return
	}
	srv := &http.Server{Handler: app.Handler, ReadHeaderTimeout: 10 * time.Second}
	go app.Clock.Run(ctx)
	go func() {
		<-ctx.Done()
		// Closing the broker ends the streams, which Shutdown waits for.
		cleanup()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Printf("listening on http://%s", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Print(err)
	}
}
