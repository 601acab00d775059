package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errBroken = errors.New("fault stream: connection reset")

// faultStream accepts every write until the nth (counting from 1), which
// fails or panics, as a client that hangs up (or a buggy transport) at
// that point would make it. Later writes fail.
type faultStream struct {
	n      int
	panics bool
	writes int
	closed atomic.Bool
}

func (f *faultStream) Write(p []byte) (int, error) {
	f.writes++
	if f.writes == f.n && f.panics {
		panic(fmt.Sprintf("fault stream: write %d", f.n))
	}
	if f.writes >= f.n {
		return 0, errBroken
	}
	return len(p), nil
}

func (f *faultStream) Flush() error { return nil }

func (f *faultStream) Close() error {
	f.closed.Store(true)
	return nil
}

// TestServeSurvivesFaultAtEveryWrite cuts a stream at its Nth write, for
// every N, while it replays a backlog of several chunks, flushes live
// events and writes heartbeats: whatever N, Serve returns (a panic becomes
// ErrStreamPanic), closes the stream, unregisters the connection once, and
// no hook ever sees a message that was not written.
func TestServeSurvivesFaultAtEveryWrite(t *testing.T) {
	for _, panics := range []bool{false, true} {
		for n := 1; n <= 12; n++ {
			t.Run(fmt.Sprintf("panic=%v/write=%d", panics, n), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) { faultAt(t, n, panics) })
			})
		}
	}
}

func faultAt(t *testing.T, n int, panics bool) {
	var disconnects atomic.Int32
	b := newBroker(t, Config{HeartbeatInterval: 5 * time.Second, Observer: &Observer{
		Flush: func(_ context.Context, _ *Subscription, f FlushInfo) {
			for _, m := range f.Messages {
				if m == nil {
					panic("Flush hook got a nil message")
				}
			}
		},
		Disconnect: func(context.Context, *Subscription, CloseReason) { disconnects.Add(1) },
	}})
	ctx := context.Background()
	// 1,000 events of 1 KiB: the replay takes many chunks.
	payload := strings.Repeat("x", 1024)
	first, err := b.Publish(ctx, Message{Target: Target{Broadcast: true}, Event: Event{Type: "e", Data: payload}})
	require.NoError(t, err)
	for range 999 {
		require.NoError(t, b.Broadcast(ctx, "e", payload))
	}
	sub, err := b.Subscribe(ctx, SubscribeRequest{LastEventID: first})
	require.NoError(t, err)
	st := &faultStream{n: n, panics: panics}
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, sub, st) }()
	// Live events and heartbeats, for the Ns the replay did not reach.
	for range 4 {
		synctest.Wait()
		_ = b.Broadcast(ctx, "live", "y")
		time.Sleep(6 * time.Second)
	}
	err = <-done
	require.Error(t, err)
	if panics {
		assert.ErrorIs(t, err, ErrStreamPanic)
	}
	assert.True(t, st.closed.Load(), "the stream is closed on every exit")
	assert.Equal(t, int32(1), disconnects.Load(), "unregistered exactly once")
	assert.Zero(t, b.Stats().Connections)
}

// panicCloser panics when Serve closes it.
type panicCloser struct{ faultStream }

func (*panicCloser) Close() error { panic("close") }

// TestServeSurvivesPanickingHooks checks that panics in what Serve calls
// besides the Stream (its Close, an Observer hook) end only that stream,
// which is still unregistered.
func TestServeSurvivesPanickingHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{Observer: &Observer{
			Flush:      func(context.Context, *Subscription, FlushInfo) { panic("flush hook") },
			Disconnect: func(context.Context, *Subscription, CloseReason) { panic("disconnect hook") },
		}})
		ctx := context.Background()
		sub, err := b.Subscribe(ctx, SubscribeRequest{})
		require.NoError(t, err)
		st := &panicCloser{faultStream{n: 1 << 30}}
		done := make(chan error, 1)
		go func() { done <- b.Serve(ctx, sub, st) }()
		synctest.Wait()
		require.NoError(t, b.Broadcast(ctx, "e", "x"))
		err = <-done
		assert.ErrorIs(t, err, ErrStreamPanic)
		assert.Zero(t, b.Stats().Connections, "the slot came back despite the Disconnect hook's panic")
		// The broker still serves: another connection registers and ends.
		sub, err = b.Subscribe(ctx, SubscribeRequest{})
		require.NoError(t, err)
		gone, cancel := context.WithCancel(ctx)
		cancel()
		assert.ErrorIs(t, b.Serve(gone, sub, &faultStream{n: 1 << 30}), ErrStreamPanic)
		assert.Zero(t, b.Stats().Connections)
	})
}
