//go:build wireinject

package main

import (
	"github.com/google/wire"

	"github.com/ssekit/ssekit/core"
)

// initializeApp is the injector; wire writes its body into wire_gen.go.
// Regenerate after changing providers: cd examples/wire && go tool wire
func initializeApp(cfg core.Config) (*App, func(), error) {
	wire.Build(ProviderSet, NewClock, wire.Struct(new(App), "*"))
	return nil, nil, nil
}
