package nethttp

import (
	"context"
	"errors"
	"net/http"

	"github.com/ssekit/ssekit/core"
)

// Shutdown stops srv and b together. http.Server.Shutdown alone would wait
// for streams that never end, since it does not cancel request contexts;
// closing the broker at the same time ends every stream after its queue is
// flushed, with a reconnect hint, so clients come back to a new instance.
// Both respect ctx.
//
// Streams served with WithTakeover are no longer srv's to wait for: the
// broker's Close waits for them, and returns once each has its reconnect
// hint and the end of its body, and its connection is closed.
func Shutdown(ctx context.Context, srv *http.Server, b *core.Broker) error {
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	berr := b.Close(ctx)
	return errors.Join(berr, <-done)
}
