package core

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBurstReachesReadingClients publishes, with the default Config, a
// burst far larger than any per-connection count the kit once used (256
// queued, 1,024 in history) while the clients are not reading yet: every
// client that then reads gets every event, exactly once and in order.
func TestBurstReachesReadingClients(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{})
		ctx := context.Background()
		clients := make([]*client, 3)
		for i := range clients {
			clients[i] = connect(t, b, SubscribeRequest{})
			<-clients[i].st.out // preamble
		}
		const n = 5000
		payload := strings.Repeat("p", 1024)
		for i := range n {
			require.NoError(t, b.Broadcast(ctx, "e", strconv.Itoa(i)+" "+payload))
		}
		for _, c := range clients {
			for i := range n {
				ev := c.next()
				require.Equal(t, strconv.Itoa(i), strings.Fields(ev.Data)[0], "event %d", i)
			}
		}
		synctest.Wait() // the writers count what they wrote after the write
		st := b.Stats()
		assert.Zero(t, st.Dropped[DropDisconnected])
		assert.Equal(t, uint64(3*n), st.Sent)
		// Batching: the writer took what was pending when it woke, so the
		// burst cost far fewer writes than events.
		clients[0].st.mu.Lock()
		writes := clients[0].st.writes
		clients[0].st.mu.Unlock()
		assert.Less(t, writes, n/10, "writes for %d events", n)
		for _, c := range clients {
			require.NoError(t, c.close())
		}
	})
}

// TestBacklogPastWindowIsCut: a client that does not read, while a burst
// larger than the window goes by, is cut once its next event leaves the
// window; a client that reads gets the whole burst; the one that was cut
// reconnects and is told of the gap, since the history let go of the same
// events.
func TestBacklogPastWindowIsCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var lags []int
		b := newBroker(t, Config{HistoryBytes: 1 << 20, Observer: &Observer{
			Flush: func(_ context.Context, _ *Subscription, f FlushInfo) { lags = append(lags, f.Backlog) },
		}})
		ctx := context.Background()
		stalled := connect(t, b, SubscribeRequest{})
		first := <-stalled.st.out // preamble; then it reads no more
		position := decodePosition(t, first)
		reader := connect(t, b, SubscribeRequest{})
		<-reader.st.out
		payload := strings.Repeat("w", 1024)
		const n = 2000 // about 4 MiB as Message.Cost counts, four windows
		got := make(chan int)
		go func() {
			count := 0
			for count < n {
				reader.next()
				count++
			}
			got <- count
		}()
		for range n {
			require.NoError(t, b.Broadcast(ctx, "e", payload))
			synctest.Wait() // the reader keeps up, as a client on a fast link
		}
		assert.Equal(t, n, <-got, "the reading client got the whole burst")
		err := <-stalled.done
		assert.ErrorIs(t, err, ErrSlowConsumer)
		st := b.Stats()
		assert.Positive(t, st.Dropped[DropDisconnected])
		assert.LessOrEqual(t, st.HeldBytes, int64(1<<20))
		assert.Positive(t, st.HeldBytes)
		assert.NotEmpty(t, lags)

		again := connect(t, b, SubscribeRequest{LastEventID: position})
		ev := decodeFirst(t, <-again.st.out) // the preamble, then the gap
		assert.Equal(t, GapEventType, ev.Type)
		var gap struct{ Reason string }
		require.NoError(t, json.Unmarshal([]byte(ev.Data), &gap))
		assert.Equal(t, "expired", gap.Reason)
		stalled.cancel()
		require.NoError(t, reader.close())
		require.NoError(t, again.close())
	})
}

// decodePosition returns the Last-Event-ID a client holds after chunk.
func decodePosition(t *testing.T, chunk []byte) string {
	t.Helper()
	d := NewDecoder(strings.NewReader(string(chunk)))
	_, _ = d.Next()
	require.NotEmpty(t, d.LastEventID())
	return d.LastEventID()
}

// decodeFirst returns the first event in chunk.
func decodeFirst(t *testing.T, chunk []byte) Event {
	t.Helper()
	ev, err := NewDecoder(strings.NewReader(string(chunk))).Next()
	require.NoError(t, err)
	return ev
}

// TestWindowAge: events older than HistoryAge leave the window (and the
// history) at the next publish, and Stats reports the oldest age held.
func TestWindowAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{HistoryAge: time.Minute})
		ctx := context.Background()
		old, err := b.Publish(ctx, Message{Target: Target{Broadcast: true}, Event: Event{Type: "e", Data: "old"}})
		require.NoError(t, err)
		time.Sleep(30 * time.Second)
		assert.Equal(t, 30*time.Second, b.Stats().OldestAge)
		time.Sleep(31 * time.Second)
		require.NoError(t, b.Broadcast(ctx, "e", "new"))
		assert.Zero(t, b.Stats().OldestAge, "the old event left; the new one is the oldest")
		err = b.backend.Replay(ctx, "", old, old, func(*Message) bool { return true })
		require.NoError(t, err, "the newest kept event can still be resumed from")
		origin := b.backend.Origin()
		err = b.backend.Replay(ctx, "", origin, old, func(*Message) bool { return true })
		assert.ErrorIs(t, err, ErrEventExpired)
	})
}

func TestMemoryHistoryLimits(t *testing.T) {
	ctx := context.Background()
	publish := func(h *MemoryHistory, data string) string {
		m := &Message{Target: Target{Broadcast: true}, Event: Event{Type: "e", Data: data}}
		require.NoError(t, h.Append(ctx, m))
		return m.Event.ID
	}
	t.Run("bytes", func(t *testing.T) {
		h := NewMemoryHistory(HistoryLimits{Bytes: 10 << 10})
		var ids []string
		for range 100 {
			ids = append(ids, publish(h, strings.Repeat("b", 1000)))
		}
		n, size := h.Held()
		assert.LessOrEqual(t, size, int64(10<<10))
		assert.Greater(t, n, 3)
		assert.Less(t, n, 10)
		err := h.Replay(ctx, "", ids[len(ids)-n-1], ids[99], func(*Message) bool { return true })
		assert.NoError(t, err, "replay after the event just before the oldest held")
		err = h.Replay(ctx, "", ids[len(ids)-n-2], ids[99], func(*Message) bool { return true })
		assert.ErrorIs(t, err, ErrEventExpired)
	})
	t.Run("newest stays", func(t *testing.T) {
		h := NewMemoryHistory(HistoryLimits{Bytes: 1})
		publish(h, "a")
		id := publish(h, "b")
		n, _ := h.Held()
		assert.Equal(t, 1, n)
		var got []string
		require.NoError(t, h.Replay(ctx, "", h.part("").epoch+"-1", id, func(m *Message) bool {
			got = append(got, m.Event.Data)
			return true
		}))
		assert.Equal(t, []string{"b"}, got)
	})
	t.Run("events", func(t *testing.T) {
		h := NewMemoryHistory(HistoryLimits{Events: 3})
		for range 10 {
			publish(h, "x")
		}
		n, _ := h.Held()
		assert.Equal(t, 3, n)
	})
	t.Run("none", func(t *testing.T) {
		h := NewMemoryHistory(HistoryLimits{Events: NoHistory})
		a := publish(h, "x")
		b := publish(h, "y")
		n, _ := h.Held()
		assert.Zero(t, n)
		assert.ErrorIs(t, h.Replay(ctx, "", a, b, func(*Message) bool { return true }), ErrEventExpired)
	})
}

// TestBroadcastLogMergesInOrder interleaves broadcasts (the tenant's shared
// log), pushes to the client's user and to its topic (its own queue), and
// pushes to others, while the client reads concurrently: it gets exactly
// its events, once each, in publish order, across many log segments.
func TestBroadcastLogMergesInOrder(t *testing.T) {
	b := newBroker(t, Config{})
	ctx := context.Background()
	u := user()
	c := connect(t, b, SubscribeRequest{Identity: Identity{User: u}, Topics: []string{"mine"}})
	other := connect(t, b, SubscribeRequest{Identity: Identity{User: user()}})
	go func() {
		for range other.st.out { // a second reader, so broadcasts have two cursors
		}
	}()
	<-c.st.out // preamble
	const n = 3000
	var want []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			data := strconv.Itoa(i)
			var err error
			switch i % 4 {
			case 0, 1:
				err = b.Broadcast(ctx, "b", data)
				want = append(want, data)
			case 2:
				err = b.SendToUser(ctx, u, "u", data)
				want = append(want, data)
			default:
				if i%8 == 3 {
					err = b.SendToTopic(ctx, "mine", "t", data)
					want = append(want, data)
				} else {
					err = b.SendToTopic(ctx, "theirs", "t", data)
				}
			}
			if err != nil {
				panic(err)
			}
		}
	}()
	var got []string
	for len(got) < n*7/8 {
		got = append(got, c.next().Data)
	}
	<-done
	require.Equal(t, want, got)
	require.NoError(t, c.close())
	require.NoError(t, other.close())
}

// TestSweepCutsStalledCursor: a connection stalled in a write holds a
// cursor into the broadcast log; once its next broadcast leaves the window
// the tenant's sweep cuts it, and the log lets go of the old segments.
func TestSweepCutsStalledCursor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{HistoryBytes: 256 << 10})
		ctx := context.Background()
		stalled := connect(t, b, SubscribeRequest{})
		<-stalled.st.out // then it stops reading
		payload := strings.Repeat("s", 512)
		for range 8 * segSize {
			require.NoError(t, b.Broadcast(ctx, "e", payload))
		}
		assert.ErrorIs(t, <-stalled.done, ErrSlowConsumer)
		log := b.def.log
		b.def.mu.Lock()
		kept := len(log.segs)
		b.def.mu.Unlock()
		// The window holds about 250 of these events: the log keeps the
		// segments that overlap it, and the one being filled.
		assert.LessOrEqual(t, kept, 3, "segments outside the window are dropped")
		stalled.cancel()
	})
}

// TestTenantsShareTheBudget: every tenant's part of the history draws on
// one byte budget. A tenant that publishes after another filled it gets
// room from the other's oldest events, the total stays within the bound,
// and each tenant's IDs are its own.
func TestTenantsShareTheBudget(t *testing.T) {
	ctx := context.Background()
	h := NewMemoryHistory(HistoryLimits{Bytes: 64 << 10})
	publish := func(tenant string) string {
		m := &Message{Target: Target{Tenant: tenant, Broadcast: true}, Event: Event{Type: "e", Data: strings.Repeat("d", 1000)}}
		require.NoError(t, h.Append(ctx, m))
		return m.Event.ID
	}
	var first string
	for i := range 200 {
		id := publish("a")
		if i == 0 {
			first = id
		}
	}
	_, held := h.Held()
	assert.LessOrEqual(t, held, int64(64<<10))
	var last string
	for range 10 { // about 25 KiB as Message.Cost counts: a's oldest must go
		last = publish("b")
	}
	_, held = h.Held()
	assert.LessOrEqual(t, held, int64(64<<10), "b's events fit within the one budget")
	var got int
	require.NoError(t, h.Replay(ctx, "b", h.Origin(), last, func(*Message) bool { got++; return true }),
		"b's events are all held: a's oldest made room")
	assert.Equal(t, 10, got)
	assert.ErrorIs(t, h.Replay(ctx, "a", h.Origin(), first, func(*Message) bool { return true }), ErrEventExpired)
	assert.ErrorIs(t, h.Replay(ctx, "b", first, last, func(*Message) bool { return true }), ErrEventUnknown,
		"an ID of tenant a means nothing to tenant b")
	assert.NotEqual(t, first[:8], last[:8], "each tenant's IDs carry their own epoch")
}

// TestQuietTenantAges: the events of a tenant that stopped publishing
// leave by age, its newest too, trimmed by another tenant's publishes, so
// Stats.OldestAge stays within HistoryAge; a client that had the quiet
// tenant's newest event still resumes with nothing missed.
func TestQuietTenantAges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{HistoryAge: time.Minute})
		ctx := context.Background()
		require.NoError(t, b.Tenant("quiet").Broadcast(ctx, "e", "old"))
		newest, err := b.Publish(ctx, Message{Target: Target{Tenant: "quiet", Broadcast: true}, Event: Event{Type: "e", Data: "newest"}})
		require.NoError(t, err)
		time.Sleep(2 * time.Minute)
		require.NoError(t, b.Tenant("busy").Broadcast(ctx, "e", "now"))
		n, _ := b.backend.(*MemoryBackend).Held()
		assert.Equal(t, 1, n, "the quiet tenant keeps nothing past the age bound")
		assert.Zero(t, b.Stats().OldestAge, "the oldest held is the busy tenant's, just published")
		assert.NoError(t, b.backend.Replay(ctx, "quiet", newest, newest, func(*Message) bool { return true }),
			"resuming from the quiet tenant's newest event misses nothing")
		resumed := connect(t, b, SubscribeRequest{Identity: Identity{Tenant: "quiet"}, LastEventID: newest})
		require.NoError(t, b.Tenant("quiet").Broadcast(ctx, "e", "later"))
		assert.Equal(t, "later", resumed.next().Data, "no gap event first")
		require.NoError(t, resumed.close())
	})
}

// TestBudgetUnderParallelTenants: tenants publishing at once on a small
// budget take each other's oldest events (reclaim) without deadlock, and
// the bytes held end within the bound plus each tenant's newest event.
func TestBudgetUnderParallelTenants(t *testing.T) {
	const tenants, each, budget = 8, 400, 64 << 10
	b := newBroker(t, Config{HistoryBytes: budget})
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range tenants {
		wg.Go(func() {
			tn := b.Tenant(fmt.Sprintf("t%d", i))
			for range each {
				assert.NoError(t, tn.Broadcast(ctx, "e", strings.Repeat("x", 300)))
			}
		})
	}
	wg.Wait()
	st := b.Stats()
	assert.Equal(t, uint64(tenants*each), st.Published)
	assert.LessOrEqual(t, st.HeldBytes, int64(budget+tenants*2048), "within the budget, give or take each tenant's newest")
	events, _ := b.backend.(*MemoryBackend).Held()
	assert.GreaterOrEqual(t, events, tenants, "every tenant keeps at least its newest event")
}

// TestManyTenantsOverBudget: when every tenant's newest event alone passes
// the budget, each keeps its newest (its connections must still get it),
// and a reclaim that cannot get back under the bound raises the point of
// the next one, so that publishes do not scan every window in vain.
func TestManyTenantsOverBudget(t *testing.T) {
	h := NewMemoryHistory(HistoryLimits{Bytes: 16 << 10})
	ctx := context.Background()
	for i := range 100 {
		m := &Message{Target: Target{Tenant: fmt.Sprintf("t%d", i), Broadcast: true}, Event: Event{Type: "e", Data: strings.Repeat("d", 1000)}}
		require.NoError(t, h.Append(ctx, m))
	}
	n, held := h.Held()
	assert.Equal(t, 100, n, "every tenant keeps its newest")
	assert.Greater(t, held, int64(16<<10))
	assert.Greater(t, h.bud.reclaimAt.Load(), held, "the next reclaim waits for more growth")
}

// TestReclaimGuardResets: once the tenants that held the budget are gone
// by age, the bound applies again in full to the ones that publish.
func TestReclaimGuardResets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewMemoryHistory(HistoryLimits{Bytes: 16 << 10, Age: time.Minute})
		ctx := context.Background()
		publish := func(tenant string) {
			m := &Message{Target: Target{Tenant: tenant, Broadcast: true}, Event: Event{Type: "e", Data: strings.Repeat("d", 1000)}}
			require.NoError(t, h.Append(ctx, m))
		}
		for i := range 50 {
			publish(fmt.Sprintf("t%d", i))
		}
		require.Greater(t, h.bud.reclaimAt.Load(), int64(16<<10))
		time.Sleep(2 * time.Minute)
		for range 100 {
			publish("busy")
		}
		_, held := h.Held()
		assert.LessOrEqual(t, held, int64(16<<10), "within the bound again")
		assert.Equal(t, int64(16<<10), h.bud.reclaimAt.Load())
	})
}
