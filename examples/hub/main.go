// Command hub is ssekit as a standalone service: an SSE endpoint, an HTTP
// publish endpoint, presence and stats, and a demo page to watch pushes
// arrive in a browser.
//
//	go run ./examples/hub                      # http://127.0.0.1:8080
//	go run ./examples/hub -addr 127.0.0.1:9000 -retry 1s
//	SSEKIT_PUBLISH_SECRET=s3cret go run ./examples/hub -addr :8080
//
// Routes:
//
//	GET  /          the demo page (embedded, no build step)
//	GET  /events    the event stream (?user=UUID&tenant=NAME&topic=A&topic=B)
//	POST /publish   {"tenant","user","topic","broadcast","event","data"} -> {"id"}
//	                or a batch, [{...}, {...}] -> {"ids"} (all checked first)
//	GET  /stats     core.Broker.Stats as JSON (auth mode: admin grant)
//	GET  /online    ?tenant=NAME -> JSON list of connected user IDs
//	                (auth mode: a token, for its own tenant unless admin)
//	GET  /metrics   Prometheus (auth mode: admin grant)
//	GET  /healthz   liveness
//
// Every core.Config field has a flag and an environment variable (flag wins
// over the environment); run with -h for the list. The stream trusts the
// user and tenant named in its query string (core.InsecureQueryAuthenticator):
// that is what lets the demo page connect as anyone, and it is why the hub
// is a demo and a test tool, not an authenticated service. The hub listens
// on loopback by default and refuses a non-loopback address while /publish
// is unprotected, unless -insecure-publish says so. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one ends the process at once
		// instead of waiting for the graceful shutdown.
		<-ctx.Done()
		stop()
	}()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err on stderr and turns it into the process status: 0
// for success and -h, 2 for a bad command line or environment (like the
// flag package), 1 for anything that went wrong while running.
func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if ue.printed {
			return 2 // the flag package printed it, with the usage
		}
		if lines := strings.Split(err.Error(), "\n"); len(lines) > 1 {
			fmt.Fprintf(stderr, "hub: invalid configuration:\n  %s\n", strings.Join(lines, "\n  "))
		} else {
			fmt.Fprintf(stderr, "hub: %v\n", err)
		}
		fmt.Fprintln(stderr, "run with -h for every flag and environment variable")
		return 2
	default:
		fmt.Fprintf(stderr, "hub: %v\n", err)
		return 1
	}
}

// devTenant is the tenant of the token -dev-token prints.
const devTenant = "demo"

// run is the whole program, minus process concerns, so that tests can run
// it in-process: it serves until ctx is done, then shuts down gracefully.
// getenv supplies the environment (os.Getenv in main). Configuration
// problems come back as *usageError.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	opts, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	obs, err := newObservability(ctx, opts.trace, stdout)
	if err != nil {
		return err
	}
	defer func() { _ = obs.shutdown(context.Background()) }()
	opts.broker.Observer = obs.observer
	opts.hub.obs = obs
	broker, err := core.New(opts.broker)
	if err != nil {
		// parseOptions validated the config, so this is not the user's input.
		return err
	}
	h, err := newHub(broker, opts.hub)
	if err != nil {
		_ = broker.Close(context.Background())
		return err
	}
	ln, err := net.Listen("tcp", opts.addr)
	if err != nil {
		_ = broker.Close(context.Background())
		return err
	}
	srv := newServer(h)
	fmt.Fprintf(stdout, "ssekit hub listening on http://%s (demo page at /, stream at /events)\n", ln.Addr())
	if opts.hub.publishSecret == "" && opts.hub.jwt == nil {
		fmt.Fprintln(stdout, "POST /publish is open to anyone who can reach this address (no -publish-secret)")
	}
	if opts.hub.jwt == nil {
		fmt.Fprintln(stdout, "streams trust the ?user= and ?tenant= query parameters: demo use only")
	} else {
		fmt.Fprintln(stdout, "auth mode: streams and /publish need a JWT (cookie ssekit_token or Authorization: Bearer); /stats and /metrics need its admin grant")
	}
	if opts.devToken {
		// An admin token, so that the demo page's stats panel (/stats,
		// /online) works in auth mode too.
		tok, err := opts.hub.jwt.MintAdmin(opts.jwtSecret, auth.Grant{
			User:    uuid.New(),
			Tenant:  devTenant,
			Topics:  []string{"**"},
			Publish: []string{"**", auth.GrantBroadcast, auth.GrantUsers},
			TTL:     12 * time.Hour,
		})
		if err != nil {
			_ = broker.Close(context.Background())
			return err
		}
		fmt.Fprintf(stdout, "dev token for tenant %q (development only; paste it in the demo page's Token field):\n%s\n", devTenant, tok)
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		// Serve only returns early when the listener fails.
		_ = broker.Close(context.Background())
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "shutting down: streams end with a reconnect hint")
	sctx, cancel := context.WithTimeout(context.Background(), opts.shutdownTimeout)
	defer cancel()
	err = nethttp.Shutdown(sctx, srv, broker)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// newServer wraps the hub in an http.Server with the timeouts that suit
// both short requests and endless streams. There is deliberately no
// ReadTimeout: net/http would cancel every stream's context when it fires,
// and WriteTimeout is cleared per stream by the adapter (core.Serve bounds
// each write with ClientTimeout instead).
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}
