package main

import (
	"context"
	"net/http"
	"time"

	"github.com/google/wire"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

// ProviderSet provides ssekit to a wire-built program: from a core.Config
// it makes the *core.Broker (whose cleanup closes it, ending every stream
// with a reconnect hint) and the http.Handler serving its streams. Copy it
// into your module, or wire.Build it with your own providers:
//
//	wire.Build(ProviderSet, NewConfig, NewOrderService, ...)
var ProviderSet = wire.NewSet(NewBroker, NewHandler)

// CloseTimeout bounds how long the broker's cleanup waits for streams to
// flush before cutting them.
const CloseTimeout = 10 * time.Second

// NewBroker makes the broker. The returned cleanup closes it; wire runs
// cleanups in reverse order of construction, so everything built on the
// broker is cleaned up first.
func NewBroker(cfg core.Config) (*core.Broker, func(), error) {
	b, err := core.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	return b, func() {
		ctx, cancel := context.WithTimeout(context.Background(), CloseTimeout)
		defer cancel()
		_ = b.Close(ctx)
	}, nil
}

// NewHandler serves the broker's streams at /events.
func NewHandler(b *core.Broker) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/events", nethttp.Handler(b))
	return mux
}
