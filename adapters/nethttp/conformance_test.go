package nethttp_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

func mux(b *core.Broker) http.Handler {
	m := http.NewServeMux()
	m.Handle("/events", nethttp.Handler(b))
	return m
}

// TestConformance runs the suite over HTTP/1.1 and HTTP/2 servers it
// starts itself.
func TestConformance(t *testing.T) {
	t.Parallel()
	adaptertest.Run(t, func(t *testing.T, b *core.Broker) http.Handler { return mux(b) })
}

// TestConformanceTakeover runs the suite with WithTakeover: over HTTP/1.1
// every stream is served on a taken-over connection; over HTTP/2, where
// that is impossible, the handler falls back to the ordinary path.
func TestConformanceTakeover(t *testing.T) {
	t.Parallel()
	adaptertest.Run(t, func(t *testing.T, b *core.Broker) http.Handler {
		m := http.NewServeMux()
		m.Handle("/events", nethttp.Handler(b, nethttp.WithTakeover()))
		return m
	})
}

// TestConformanceOwnServer runs the suite the way adapters with a server of
// their own (fasthttp, Fiber) do, which keeps adaptertest.RunServer tested.
func TestConformanceOwnServer(t *testing.T) {
	t.Parallel()
	adaptertest.RunServer(t, func(t *testing.T, b *core.Broker) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		srv := &http.Server{Handler: mux(b), ReadHeaderTimeout: time.Minute, WriteTimeout: time.Second}
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
			defer cancel()
			assert.NoError(t, srv.Shutdown(ctx), "Shutdown")
			assert.ErrorIs(t, <-served, http.ErrServerClosed, "Serve")
		})
		return "http://" + ln.Addr().String()
	})
}
