// Package httpserve runs an example's HTTP server the way a real service
// should: it serves until its context ends, then ends every stream with a
// reconnect hint (nethttp.Shutdown) before it stops.
package httpserve

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

// Run listens on addr and serves h until ctx is done, then shuts the server
// and broker down together within ten seconds.
func Run(ctx context.Context, addr string, h http.Handler, broker *core.Broker) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("listening on http://%s", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		_ = broker.Close(context.Background())
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = nethttp.Shutdown(sctx, srv, broker)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
