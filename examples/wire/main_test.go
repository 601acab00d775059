package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
)

func TestInjectedAppStreams(t *testing.T) {
	app, cleanup, err := initializeApp(core.Config{})
	require.NoError(t, err)
	srv := httptest.NewServer(app.Handler)
	s := subscribe(t, srv.URL+"/events")

	clock := NewClock(app.Broker)
	clock.Interval = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); clock.Run(ctx) }()
	s.Expect("tick", nil)
	s.Expect("tick", nil)
	cancel()
	<-done

	// The cleanup closes the broker: the stream ends and publishing fails.
	cleanup()
	assert.ErrorIs(t, app.Broker.Broadcast(context.Background(), "tick", "late"), core.ErrClosed, "Broadcast after cleanup")
	s.Close()
	srv.Close()
}

func TestInjectorRefusesABadConfig(t *testing.T) {
	_, _, err := initializeApp(core.Config{HeartbeatInterval: time.Second})
	require.ErrorIs(t, err, core.ErrInvalidConfig, "got %v, want ErrInvalidConfig", err)
}

// TestWireGenIsCurrent fails when wire_gen.go is not what wire generates
// from wire.go and providers.go now: regenerate with `go tool wire`.
func TestWireGenIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wire tool")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	// "wire diff" generates into memory and compares with the committed
	// wire_gen.go, writing nothing; it exits 1 when they differ.
	cmd := exec.CommandContext(ctx, "go", "tool", "wire", "diff", ".")
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	require.NoError(t, err, "wire_gen.go is stale or wire failed (%v); run `cd examples/wire && go tool wire`:\n%s", err, out.String())
}
