package adaptertest_test

import (
	"net/http"
	"testing"

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
			adaptertest.CheckShutdown(t, adaptertest.HTTPServerStart(func(t *testing.T, b *core.Broker) http.Handler {
				return mux(b, v.opts...)
			}))
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

func TestCheckErrorLog(t *testing.T) {
	t.Parallel()
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			adaptertest.CheckErrorLog(t, func(t *testing.T, b *core.Broker, log func(error)) string {
				return adaptertest.Serve(t, mux(b, append(v.opts, nethttp.WithErrorLog(log))...), 1).URL
			})
		})
	}
}
