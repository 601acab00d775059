package adaptertest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// The checks adapters call beyond Run hold for the net/http adapter, with
// and without WithTakeover, which keeps them tested in this module.
var variants = []struct {
	name string
	opts []nethttp.Option
}{
	{"Plain", nil},
	{"Takeover", []nethttp.Option{nethttp.WithTakeover()}},
}

func mux(b *core.Broker, opts ...nethttp.Option) http.Handler {
	m := http.NewServeMux()
	m.Handle("/events", nethttp.Handler(b, opts...))
	return m
}

func TestRunCORS(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			adaptertest.RunCORS(t, func(t *testing.T, b *core.Broker, origin string) http.Handler {
				return mux(b, append(v.opts, nethttp.WithCORS(nethttp.CORS{AllowedOrigins: []string{origin}}))...)
			})
		})
	}
}

func TestCheckShutdown(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			adaptertest.CheckShutdown(t, func(t *testing.T, b *core.Broker) (string, func(context.Context) error) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				srv := &http.Server{Handler: mux(b, v.opts...), ReadHeaderTimeout: time.Minute, WriteTimeout: time.Second}
				served := make(chan error, 1)
				go func() { served <- srv.Serve(ln) }()
				return "http://" + ln.Addr().String(), func(ctx context.Context) error {
					if err := nethttp.Shutdown(ctx, srv, b); err != nil {
						return fmt.Errorf("nethttp.Shutdown: %w", err)
					}
					if err := <-served; !errors.Is(err, http.ErrServerClosed) {
						return fmt.Errorf("Serve: %w", err)
					}
					return nil
				}
			})
		})
	}
}

func TestCheckStreaming(t *testing.T) {
	t.Parallel()
	adaptertest.ForEachProto(t, func(t *testing.T, proto int) {
		for _, v := range variants {
			b := adaptertest.NewBroker(t, core.Config{})
			srv := adaptertest.Serve(t, mux(b, v.opts...), proto)
			adaptertest.CheckStreaming(t, b, adaptertest.Dial(t, srv.Client(), srv.URL+"/events", nil))
		}
	})
}
