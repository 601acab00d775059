package core

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReplayWhatWasMissed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{})
		ctx := context.Background()
		alice, bob := user(), user()
		req := SubscribeRequest{Identity: Identity{User: alice}, Topics: []string{"news"}}
		c := connect(t, b, req)
		require.NoError(t, b.SendToUser(ctx, alice, "e", "1"))
		require.NoError(t, b.SendToUser(ctx, alice, "e", "2"))
		c.next()
		last := c.next().ID
		require.NoError(t, c.close())

		require.NoError(t, b.SendToUser(ctx, alice, "e", "3"))
		require.NoError(t, b.SendToUser(ctx, bob, "e", "not mine"))
		require.NoError(t, b.SendToTopic(ctx, "news", "e", "4"))
		require.NoError(t, b.SendToTopic(ctx, "sport", "e", "not subscribed"))
		require.NoError(t, b.Tenant("other").SendToUser(ctx, alice, "e", "other tenant"))
		require.NoError(t, b.Broadcast(ctx, "e", "5"))

		req.LastEventID = last
		c = connect(t, b, req)
		require.NoError(t, b.SendToUser(ctx, alice, "e", "6 live"))
		var got []string
		for range 4 {
			got = append(got, c.next().Data)
		}
		assert.Equal(t, []string{"3", "4", "5", "6 live"}, got)
		synctest.Wait()
		assert.EqualValues(t, 3, b.Stats().Replayed)
		require.NoError(t, c.close())
	})
}

func TestReplayGap(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		cfg          Config
		lastID       func(first string) string
	}{
		{"expired", "expired", Config{HistorySize: 4}, func(first string) string { return first }},
		{"unknown epoch", "unknown", Config{}, func(string) string { return "deadbeef-1" }},
		{"garbage", "unknown", Config{}, func(string) string { return "not an id" }},
		{"no history", "expired", Config{HistorySize: NoHistory}, func(first string) string { return first }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var replays []ReplayInfo
				tc.cfg.Observer = &Observer{Replay: func(_ context.Context, _ *Subscription, r ReplayInfo) { replays = append(replays, r) }}
				b := newBroker(t, tc.cfg)
				ctx := context.Background()
				first, err := b.Publish(ctx, Message{Target: Target{Broadcast: true}, Event: Event{Type: "e"}})
				require.NoError(t, err)
				var newest string
				for range 9 {
					newest, err = b.Publish(ctx, Message{Target: Target{Broadcast: true}, Event: Event{Type: "e"}})
					require.NoError(t, err)
				}
				c := connect(t, b, SubscribeRequest{LastEventID: tc.lastID(first)})
				gap := c.next()
				assert.Equal(t, GapEventType, gap.Type)
				assert.Equal(t, newest, gap.ID, "the gap event resumes from the newest event")
				var data struct{ LastEventID, Reason string }
				require.NoError(t, json.Unmarshal([]byte(gap.Data), &data))
				assert.Equal(t, tc.reason, data.Reason)
				assert.Equal(t, tc.lastID(first), data.LastEventID)
				require.NoError(t, b.Broadcast(ctx, "live", ""))
				assert.Equal(t, "live", c.next().Type)
				require.NoError(t, c.close())
				assert.EqualValues(t, 1, b.Stats().Gaps)
				require.Len(t, replays, 1)
				assert.True(t, replays[0].Gap)
			})
		})
	}
}

// TestReplayUnderConcurrentPublishing has publishers run flat out while one
// client keeps dropping and reconnecting with its Last-Event-ID (and is also
// cut as a slow consumer by its tiny queue): in the end it must have seen
// every event exactly once, in order.
func TestReplayUnderConcurrentPublishing(t *testing.T) {
	const publishers, perPublisher = 2, 1500
	b := newBroker(t, Config{ClientBufferSize: 64, HistorySize: publishers*perPublisher + 1}) // + the end marker
	ctx := context.Background()
	// The first connection exists before anything is published, so every
	// event is owed to this client.
	c := connect(t, b, SubscribeRequest{})
	c.st.pending = <-c.st.out // the client has the opening frame: it has joined
	var wg sync.WaitGroup
	ids := make([][]string, publishers)
	for p := range publishers {
		wg.Go(func() {
			for range perPublisher {
				id, err := b.Publish(ctx, Message{Target: Target{Broadcast: true}, Event: Event{Type: "e"}})
				if !assert.NoError(t, err) {
					return
				}
				ids[p] = append(ids[p], id)
			}
		})
	}
	published := make(chan struct{})
	go func() { wg.Wait(); close(published) }()

	rng := rand.New(rand.NewPCG(3, 4))
	var got []string
	last := ""
	endSent, sawEnd := false, false
	for attempt := 0; !sawEnd; attempt++ {
		require.Less(t, attempt, 100000, "the client makes no progress")
		if attempt > 0 {
			c = connect(t, b, SubscribeRequest{LastEventID: last})
			c.dec.SetLastEventID(last)
		}
		for n := rng.IntN(200); (n > 0 || endSent) && !sawEnd; n-- {
			if !endSent {
				select {
				case <-published:
					endSent = true
					// One more event marks the end of the stream.
					require.NoError(t, b.Broadcast(ctx, "end", ""))
				default:
				}
			}
			ev, err := c.dec.Next()
			// Like a browser, resume from the decoder's last event ID, which
			// the broker sets even before the first event.
			last = c.dec.LastEventID()
			if err != nil {
				break // cut as a slow consumer: reconnect
			}
			require.NotEqual(t, GapEventType, ev.Type, "the history holds every event")
			if ev.Type == "end" {
				sawEnd = true
				break
			}
			got = append(got, ev.ID)
		}
		_ = c.close()
	}
	<-published
	want := slices.Concat(ids...)
	seq := func(id string) int {
		n, err := strconv.Atoi(id[strings.IndexByte(id, '-')+1:])
		require.NoError(t, err)
		return n
	}
	slices.SortFunc(want, func(a, b string) int { return seq(a) - seq(b) })
	require.Equal(t, len(want), len(got), "no gap, no duplicate")
	for i := range want {
		require.Equal(t, want[i], got[i], "event %d in order", i)
	}
}

// TestMemoryHistoryReplaySteps: a replay longer than one step returns every
// event of its tenant in order, and one whose next step finds its events
// evicted (by publishes between two steps) reports them expired rather
// than skipping them.
func TestMemoryHistoryReplaySteps(t *testing.T) {
	ctx := context.Background()
	h := NewMemoryHistory(HistoryLimits{Events: 3 * replayStep})
	var ids []string
	for i := range 3 * replayStep {
		m := &Message{Target: Target{Tenant: []string{"a", "b"}[i%2], Broadcast: true}, Event: Event{Type: "e", Data: "x"}}
		require.NoError(t, h.Append(ctx, m))
		ids = append(ids, m.Event.ID)
	}
	var got []string
	require.NoError(t, h.Replay(ctx, "a", h.Origin(), ids[len(ids)-2], func(m *Message) bool {
		got = append(got, m.Event.ID)
		return true
	}))
	var want []string
	for i := 0; i < len(ids); i += 2 {
		want = append(want, ids[i])
	}
	assert.Equal(t, want, got, "every event of tenant a, in order, across steps")

	// One tenant, so that eviction takes its oldest events exactly.
	h = NewMemoryHistory(HistoryLimits{Events: 2 * replayStep})
	var last string
	for range 2 * replayStep {
		m := &Message{Target: Target{Tenant: "a", Broadcast: true}, Event: Event{Type: "e", Data: "x"}}
		require.NoError(t, h.Append(ctx, m))
		last = m.Event.ID
	}
	w := h.part("a")
	after, _ := h.parse(w, h.Origin())
	upto, _ := h.parse(w, last)
	next, err := replayPart(w, h.Origin(), after, after+1, upto, func(*Message) bool { return true })
	require.NoError(t, err)
	require.Equal(t, uint64(replayStep+1), next, "one step, then the next")
	for range replayStep + 1 { // evicts the first step's events and the next one
		require.NoError(t, h.Append(ctx, &Message{Target: Target{Tenant: "a", Broadcast: true}, Event: Event{Type: "e", Data: "y"}}))
	}
	_, err = replayPart(w, h.Origin(), after, next, upto, func(*Message) bool { return true })
	assert.ErrorIs(t, err, ErrEventExpired, "events evicted mid-replay are reported, not skipped")
}
