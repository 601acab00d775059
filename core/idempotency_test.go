package core

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func keyed(tenant, key, data string) Message {
	return Message{
		Target:         Target{Tenant: tenant, Topics: []string{"t"}},
		Event:          Event{Type: "x", Data: data},
		IdempotencyKey: key,
	}
}

// A retry with the same key returns the first attempt's ID and sends
// nothing: the subscriber gets the event once.
func TestIdempotentPublishDeliversOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"default history", Config{}},                // the history keeps the window
		{"capped history", Config{HistorySize: 100}}, // the broker keeps the window
		{"custom history", Config{Backend: NewMemoryBackend(HistoryLimits{})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, tc.cfg)
			ctx := context.Background()
			c := connect(t, b, SubscribeRequest{Topics: []string{"t"}})
			defer c.close()

			first, err := b.Publish(ctx, keyed("", "order-42", "first"))
			require.NoError(t, err)
			again, err := b.Publish(ctx, keyed("", "order-42", "second"))
			require.NoError(t, err)
			assert.Equal(t, first, again, "a retry returns the first attempt's ID")
			other, err := b.Publish(ctx, keyed("", "", "unkeyed"))
			require.NoError(t, err)

			ev := c.next()
			assert.Equal(t, first, ev.ID)
			assert.Equal(t, "first", ev.Data)
			ev = c.next()
			assert.Equal(t, other, ev.ID, "the retry was sent")
			assert.Equal(t, "unkeyed", ev.Data)
		})
	}
}

// Keys are per tenant: the same key in two tenants is two events.
func TestIdempotencyKeyPerTenant(t *testing.T) {
	b := newBroker(t, Config{})
	ctx := context.Background()
	ca := connect(t, b, SubscribeRequest{Identity: Identity{Tenant: "a"}, Topics: []string{"t"}})
	defer ca.close()
	cb := connect(t, b, SubscribeRequest{Identity: Identity{Tenant: "b"}, Topics: []string{"t"}})
	defer cb.close()

	ida, err := b.Publish(ctx, keyed("a", "k", "to a"))
	require.NoError(t, err)
	idb, err := b.Publish(ctx, keyed("b", "k", "to b"))
	require.NoError(t, err)
	assert.NotEqual(t, ida, idb)
	again, err := b.Publish(ctx, keyed("b", "k", "to b again"))
	require.NoError(t, err)
	assert.Equal(t, idb, again)

	assert.Equal(t, Event{ID: ida, Type: "x", Data: "to a"}, ca.next())
	assert.Equal(t, Event{ID: idb, Type: "x", Data: "to b"}, cb.next())
}

// Once the first event has left the window (pushed out by the byte
// bound here), the key is forgotten: the same key is a new event.
func TestIdempotencyKeyLeavesTheWindow(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"default history", Config{HistoryBytes: 8 << 10}},
		{"capped history", Config{HistoryBytes: 8 << 10, HistorySize: 1000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBroker(t, tc.cfg)
			ctx := context.Background()
			c := connect(t, b, SubscribeRequest{Topics: []string{"t"}})
			defer c.close()

			first, err := b.Publish(ctx, keyed("", "k", "first"))
			require.NoError(t, err)
			require.Equal(t, first, c.next().ID)
			// Still inside: a duplicate.
			id, err := b.Publish(ctx, keyed("", "k", "dup"))
			require.NoError(t, err)
			require.Equal(t, first, id)

			// Each event costs at least 448 bytes: 64 of them fill 8 KiB
			// several times over.
			for i := range 64 {
				_, err := b.Publish(ctx, keyed("", "", strconv.Itoa(i)))
				require.NoError(t, err)
				require.Equal(t, strconv.Itoa(i), c.next().Data)
			}
			require.True(t, b.tenant("").win.lapsed(1), "the first event should have left the window")

			second, err := b.Publish(ctx, keyed("", "k", "new"))
			require.NoError(t, err)
			assert.NotEqual(t, first, second, "outside the window the key is a new event")
			ev := c.next()
			assert.Equal(t, second, ev.ID)
			assert.Equal(t, "new", ev.Data)

			// The forgotten entries are gone from memory too.
			b.tenant("").idem.mu.Lock()
			assert.Len(t, b.tenant("").idem.keys, 1)
			assert.LessOrEqual(t, len(b.tenant("").idem.order)-b.tenant("").idem.head, 1)
			b.tenant("").idem.mu.Unlock()
		})
	}
}

// Many publishers with one key at once: one event, one ID for all.
func TestIdempotencyConcurrentDuplicates(t *testing.T) {
	b := newBroker(t, Config{})
	ctx := context.Background()
	c := connect(t, b, SubscribeRequest{Topics: []string{"t"}})
	defer c.close()

	const n = 32
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id, err := b.Publish(ctx, keyed("", "same", strconv.Itoa(i)))
			assert.NoError(t, err)
			ids[i] = id
		})
	}
	wg.Wait()
	for _, id := range ids {
		assert.Equal(t, ids[0], id)
	}
	last, err := b.Publish(ctx, keyed("", "", "end"))
	require.NoError(t, err)
	assert.Equal(t, ids[0], c.next().ID)
	assert.Equal(t, last, c.next().ID, "only one of the %d publishes was sent", n)
}

// flakyHistory is a MemoryBackend that fails its first n publishes, or blocks each append until
// release is closed.
type flakyHistory struct {
	*MemoryBackend
	fail    int
	entered chan struct{}
	release chan struct{}
}

var errAppend = errors.New("test history: append failed")

func (h *flakyHistory) Publish(ctx context.Context, m *Message) error {
	if h.fail > 0 {
		h.fail--
		return errAppend
	}
	if h.entered != nil {
		h.entered <- struct{}{}
		<-h.release
	}
	return h.MemoryBackend.Publish(ctx, m)
}

// A failed attempt sent nothing, so it is not remembered: the retry
// publishes.
func TestIdempotencyFailedAttemptIsForgotten(t *testing.T) {
	h := &flakyHistory{MemoryBackend: NewMemoryBackend(HistoryLimits{}), fail: 1}
	b := newBroker(t, Config{Backend: h})
	ctx := context.Background()
	c := connect(t, b, SubscribeRequest{Topics: []string{"t"}})
	defer c.close()

	_, err := b.Publish(ctx, keyed("", "k", "lost"))
	require.ErrorIs(t, err, errAppend)
	id, err := b.Publish(ctx, keyed("", "k", "retry"))
	require.NoError(t, err)
	ev := c.next()
	assert.Equal(t, id, ev.ID)
	assert.Equal(t, "retry", ev.Data)
}

// A duplicate that arrives while the first attempt is in flight waits for
// it and returns its ID, unless its own context ends first.
func TestIdempotencyDuplicateWaitsForFirstAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &flakyHistory{MemoryBackend: NewMemoryBackend(HistoryLimits{}),
			entered: make(chan struct{}), release: make(chan struct{})}
		b := newBroker(t, Config{Backend: h})
		ctx := context.Background()

		firstID := make(chan string, 1)
		go func() {
			id, err := b.Publish(ctx, keyed("", "k", "first"))
			assert.NoError(t, err)
			firstID <- id
		}()
		<-h.entered // the first attempt holds the key

		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		_, err := b.Publish(cancelled, keyed("", "k", "impatient"))
		assert.ErrorIs(t, err, context.Canceled)

		waiterID := make(chan string, 1)
		go func() {
			id, err := b.Publish(ctx, keyed("", "k", "patient"))
			assert.NoError(t, err)
			waiterID <- id
		}()
		synctest.Wait() // the waiter is blocked on the first attempt
		close(h.release)
		id := <-firstID
		assert.Equal(t, id, <-waiterID)
		h.entered = nil
		again, err := b.Publish(ctx, keyed("", "k", "later"))
		require.NoError(t, err)
		assert.Equal(t, id, again)
	})
}

func TestIdempotencyKeyValidation(t *testing.T) {
	b := newBroker(t, Config{})
	ctx := context.Background()
	for _, key := range []string{
		strings.Repeat("k", MaxIdempotencyKeyLen+1),
		"has space",
		"tab\tkey",
		"new\nline",
		"naïve",
		"nul\x00",
		"del\x7f",
	} {
		err := b.Check(keyed("", key, "d"))
		assert.ErrorIs(t, err, ErrInvalidIdempotencyKey, "%q", key)
		_, err = b.Publish(ctx, keyed("", key, "d"))
		assert.ErrorIs(t, err, ErrInvalidIdempotencyKey, "%q", key)
	}
	for _, key := range []string{"", "k", strings.Repeat("k", MaxIdempotencyKeyLen), "550e8400-e29b-41d4-a716-446655440000", "a!~/:=+"} {
		assert.NoError(t, ValidateIdempotencyKey(key), "%q", key)
	}
	held, _ := b.backend.(*MemoryBackend).Held()
	assert.Zero(t, held, "invalid keys must send nothing")
}

// countingBus is a Bus that spans nothing and forgets nothing: it shows
// that the broker leaves keys to a Bus of its own (Redis deduplicates
// across nodes), passing the key along.
type countingBus struct {
	mu      sync.Mutex
	keys    []string
	deliver func(*Message)
}

func (c *countingBus) Publish(_ context.Context, m *Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = append(c.keys, m.IdempotencyKey)
	m.Event.ID = strconv.Itoa(len(c.keys))
	c.deliver(m)
	return nil
}

func (c *countingBus) Attach(deliver func(*Message)) (func(), error) {
	c.deliver = deliver
	return func() {}, nil
}

func TestIdempotencyKeyGoesToTheBus(t *testing.T) {
	bus := &countingBus{}
	b := newBroker(t, Config{Backend: withHistory(bus)})
	for range 2 {
		_, err := b.Publish(context.Background(), keyed("", "k", "d"))
		require.NoError(t, err)
	}
	assert.Equal(t, []string{"k", "k"}, bus.keys)
}

// A publish that panics (here in an Observer hook) releases its key: the
// retry publishes instead of waiting for an attempt that never ends.
func TestIdempotencyKeyReleasedOnPanic(t *testing.T) {
	panics := true
	b := newBroker(t, Config{Observer: &Observer{
		Publish: func(ctx context.Context, m *Message) func(PublishDone) {
			if panics {
				panics = false
				panic("observer")
			}
			return nil
		},
	}})
	ctx := context.Background()
	require.Panics(t, func() { _, _ = b.Publish(ctx, keyed("", "k", "d")) })
	id, err := b.Publish(ctx, keyed("", "k", "d"))
	require.NoError(t, err)
	assert.NotEmpty(t, id)
}
