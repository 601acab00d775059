package core

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPublishValidation(t *testing.T) {
	b := newBroker(t, Config{MaxEventSize: 1024})
	ctx := context.Background()
	u := user()
	cases := []struct {
		name string
		err  error
		do   func() error
	}{
		{"nil user", ErrInvalidUser, func() error { return b.SendToUser(ctx, uuid.Nil, "x", "d") }},
		{"empty type", ErrInvalidType, func() error { return b.SendToUser(ctx, u, "", "d") }},
		{"newline in type", ErrInvalidType, func() error { return b.Broadcast(ctx, "a\ndata: x", "d") }},
		{"CR in type", ErrInvalidType, func() error { return b.Broadcast(ctx, "a\rb", "d") }},
		{"reserved type", ErrInvalidType, func() error { return b.Broadcast(ctx, GapEventType, "d") }},
		{"bad topic", ErrInvalidTopic, func() error { return b.SendToTopic(ctx, "a//b", "x", "d") }},
		{"empty topic", ErrInvalidTopic, func() error { return b.SendToTopic(ctx, "", "x", "d") }},
		{"bad tenant", ErrInvalidTenant, func() error { return b.Tenant("a b").Broadcast(ctx, "x", "d") }},
		{"oversized", ErrEventTooLarge, func() error { return b.Broadcast(ctx, "x", strings.Repeat("a", 2000)) }},
		{"unmarshallable", ErrInvalidData, func() error { return b.Broadcast(ctx, "x", make(chan int)) }},
		{"invalid UTF-8", ErrInvalidUTF8, func() error { return b.Broadcast(ctx, "x", []byte{0xff}) }},
		{"no target", ErrNoTarget, func() error {
			_, err := b.Publish(ctx, Message{Event: Event{Type: "x"}})
			return err
		}},
		{"caller-chosen ID", ErrInvalidID, func() error {
			_, err := b.Publish(ctx, Message{Target: Target{Broadcast: true}, Event: Event{Type: "x", ID: "7"}})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorIs(t, tc.do(), tc.err)
		})
	}
	assert.Zero(t, b.Stats().Published, "rejected publishes must send nothing")
}

func TestRouting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{})
		ctx := context.Background()
		alice, bob := user(), user()
		a1 := connect(t, b, SubscribeRequest{Identity: Identity{User: alice}, Topics: []string{"news"}})
		a2 := connect(t, b, SubscribeRequest{Identity: Identity{User: alice}})
		bb := connect(t, b, SubscribeRequest{Identity: Identity{User: bob}, Topics: []string{"sport"}})
		other := connect(t, b, SubscribeRequest{Identity: Identity{Tenant: "acme", User: alice}, Topics: []string{"news"}})
		anon := connect(t, b, SubscribeRequest{Topics: []string{"news"}})

		require.NoError(t, b.SendToUser(ctx, alice, "dm", "hi alice"))
		require.NoError(t, b.SendToTopic(ctx, "news", "headline", map[string]int{"n": 1}))
		require.NoError(t, b.Broadcast(ctx, "all", []byte("everyone")))
		require.NoError(t, b.Tenant("acme").Broadcast(ctx, "acme-only", "x"))

		type got struct{ typ, data string }
		read := func(c *client, n int) []got {
			var out []got
			for range n {
				ev := c.next()
				out = append(out, got{ev.Type, ev.Data})
			}
			return out
		}
		assert.Equal(t, []got{{"dm", "hi alice"}, {"headline", `{"n":1}`}, {"all", "everyone"}}, read(a1, 3))
		assert.Equal(t, []got{{"dm", "hi alice"}, {"all", "everyone"}}, read(a2, 2))
		assert.Equal(t, []got{{"all", "everyone"}}, read(bb, 1))
		assert.Equal(t, []got{{"headline", `{"n":1}`}, {"all", "everyone"}}, read(anon, 2))
		assert.Equal(t, []got{{"acme-only", "x"}}, read(other, 1), "no message crosses tenants")

		// A connection matched by several parts of one target gets it once.
		_, err := b.Publish(ctx, Message{
			Target: Target{Users: []uuid.UUID{alice, alice}, Topics: []string{"news", "sport"}},
			Event:  Event{Type: "multi", Data: "once"},
		})
		require.NoError(t, err)
		require.NoError(t, b.Broadcast(ctx, "marker", ""))
		assert.Equal(t, []got{{"multi", "once"}, {"marker", ""}}, read(a1, 2))
		assert.Equal(t, []got{{"multi", "once"}, {"marker", ""}}, read(bb, 2))

		for _, c := range []*client{a1, a2, bb, other, anon} {
			assert.NoError(t, c.close())
		}
		synctest.Wait()
		assert.Zero(t, b.Stats().Connections)
	})
}

// TestRoutingProperty publishes random targets to random connections and
// checks every connection received exactly what it is entitled to, in
// publish order.
func TestRoutingProperty(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		b := newBroker(t, Config{ClientBufferSize: 1024})
		ctx := context.Background()
		tenants := []string{"", "a", "b"}
		users := []uuid.UUID{user(), user(), user()}
		topics := []string{"t1", "t2", "t3"}
		var clients []*client
		for range 12 {
			var ts []string
			for _, tp := range topics {
				if rng.IntN(2) == 0 {
					ts = append(ts, tp)
				}
			}
			id := Identity{Tenant: tenants[rng.IntN(3)]}
			if rng.IntN(4) > 0 {
				id.User = users[rng.IntN(3)]
			}
			clients = append(clients, connect(t, b, SubscribeRequest{Identity: id, Topics: ts}))
		}
		var published []Message
		for i := range 300 {
			tg := Target{Tenant: tenants[rng.IntN(3)]}
			switch rng.IntN(4) {
			case 0:
				tg.Broadcast = true
			case 1:
				tg.Users = []uuid.UUID{users[rng.IntN(3)]}
			case 2:
				tg.Topics = []string{topics[rng.IntN(3)]}
			default:
				tg.Users = []uuid.UUID{users[rng.IntN(3)]}
				tg.Topics = []string{topics[rng.IntN(3)], topics[rng.IntN(3)]}
			}
			m := Message{Target: tg, Event: Event{Type: "e", Data: strings.Repeat("x", i%7) + string(rune('a'+i%26))}}
			id, err := b.Publish(ctx, m)
			require.NoError(t, err)
			m.Event.ID = id
			published = append(published, m)
		}
		require.NoError(t, b.Broadcast(ctx, "end", ""))
		for _, tenant := range tenants[1:] {
			require.NoError(t, b.Tenant(tenant).Broadcast(ctx, "end", ""))
		}
		for _, c := range clients {
			var want []string
			for i := range published {
				if published[i].entitled(c.sub) {
					want = append(want, published[i].Event.ID)
				}
			}
			var got []string
			for {
				ev := c.next()
				if ev.Type == "end" {
					break
				}
				got = append(got, ev.ID)
			}
			assert.Equal(t, want, got)
			assert.NoError(t, c.close())
		}
	})
}

func TestPresenceAndStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{})
		alice, bob := user(), user()
		c1 := connect(t, b, SubscribeRequest{Identity: Identity{User: alice}, Topics: []string{"x", "y"}})
		c2 := connect(t, b, SubscribeRequest{Identity: Identity{User: alice}, Topics: []string{"x"}})
		c3 := connect(t, b, SubscribeRequest{Identity: Identity{Tenant: "t", User: bob}})
		assert.True(t, b.IsUserOnline(alice))
		assert.False(t, b.IsUserOnline(bob), "bob is online in tenant t only")
		assert.True(t, b.Tenant("t").IsUserOnline(bob))
		assert.Equal(t, 2, b.UserConnections(alice))
		assert.Equal(t, []uuid.UUID{alice}, b.OnlineUsers())
		st := b.Stats()
		assert.Equal(t, 3, st.Connections)
		assert.Equal(t, 2, st.Users)
		assert.Equal(t, 2, st.Topics)
		assert.Equal(t, 2, st.Tenants)
		require.NoError(t, b.Broadcast(context.Background(), "e", "1"))
		c1.next()
		c2.next()
		synctest.Wait()
		st = b.Stats()
		assert.EqualValues(t, 1, st.Published)
		assert.EqualValues(t, 2, st.Sent)

		require.NoError(t, c1.close())
		assert.Equal(t, 1, b.UserConnections(alice))
		require.NoError(t, c2.close())
		assert.False(t, b.IsUserOnline(alice))
		assert.Empty(t, b.OnlineUsers())
		require.NoError(t, c3.close())
		st = b.Stats()
		assert.Zero(t, st.Connections)
		assert.Zero(t, st.Topics)
		raw, err := json.Marshal(st)
		require.NoError(t, err)
		assert.Contains(t, string(raw), `"dropped":{`)
	})
}

func TestDynamicTopics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{Authorizer: AuthorizerFunc(func(_ context.Context, _ Identity, topics []string) error {
			for _, tp := range topics {
				if strings.HasPrefix(tp, "secret") {
					return ErrForbidden
				}
			}
			return nil
		})})
		ctx := context.Background()
		c := connect(t, b, SubscribeRequest{Topics: []string{"a"}})
		require.NoError(t, b.AddTopics(ctx, c.sub.ID(), "b", "c"))
		assert.Equal(t, []string{"a", "b", "c"}, c.sub.Topics())
		assert.ErrorIs(t, b.AddTopics(ctx, c.sub.ID(), "secret"), ErrForbidden)
		assert.ErrorIs(t, b.AddTopics(ctx, c.sub.ID(), "bad topic"), ErrInvalidTopic)
		assert.ErrorIs(t, b.AddTopics(ctx, "nope", "b"), ErrUnknownConnection)
		require.NoError(t, b.RemoveTopics(ctx, c.sub.ID(), "a"))
		require.NoError(t, b.SendToTopic(ctx, "a", "e", "from a"))
		require.NoError(t, b.SendToTopic(ctx, "c", "e", "from c"))
		assert.Equal(t, "from c", c.next().Data)
		require.NoError(t, c.close())
		assert.ErrorIs(t, b.RemoveTopics(ctx, c.sub.ID(), "c"), ErrUnknownConnection)
	})
}

func TestLimits(t *testing.T) {
	b := newBroker(t, Config{MaxConnections: 3, MaxConnectionsPerUser: 2})
	ctx := context.Background()
	alice := user()
	s1, err := b.Subscribe(ctx, SubscribeRequest{Identity: Identity{User: alice}})
	require.NoError(t, err)
	s2, err := b.Subscribe(ctx, SubscribeRequest{Identity: Identity{User: alice}})
	require.NoError(t, err)
	_, err = b.Subscribe(ctx, SubscribeRequest{Identity: Identity{User: alice}})
	assert.ErrorIs(t, err, ErrTooManyUserConnections)
	// The same user in another tenant is another person.
	s3, err := b.Subscribe(ctx, SubscribeRequest{Identity: Identity{Tenant: "t", User: alice}})
	require.NoError(t, err)
	_, err = b.Subscribe(ctx, SubscribeRequest{})
	assert.ErrorIs(t, err, ErrTooManyConnections)
	s1.Close()
	s4, err := b.Subscribe(ctx, SubscribeRequest{Identity: Identity{User: alice}})
	require.NoError(t, err, "a closed connection frees its slots")
	for _, s := range []*Subscription{s2, s3, s4} {
		s.Close()
	}
	assert.Zero(t, b.Stats().Connections)
}

func TestSubscribeValidation(t *testing.T) {
	b := newBroker(t, Config{Authorizer: AuthorizerFunc(func(context.Context, Identity, []string) error {
		return errors.New("policy says no")
	})})
	ctx := context.Background()
	_, err := b.Subscribe(ctx, SubscribeRequest{Topics: []string{"a/"}})
	assert.ErrorIs(t, err, ErrBadRequest)
	assert.ErrorIs(t, err, ErrInvalidTopic)
	_, err = b.Subscribe(ctx, SubscribeRequest{Identity: Identity{Tenant: "x/y"}})
	assert.ErrorIs(t, err, ErrInvalidTenant)
	_, err = b.Subscribe(ctx, SubscribeRequest{LastEventID: "1\n2"})
	assert.ErrorIs(t, err, ErrBadRequest)
	_, err = b.Subscribe(ctx, SubscribeRequest{Topics: []string{"ok"}})
	assert.ErrorIs(t, err, ErrForbidden, "an Authorizer's own error means forbidden")
}

func TestTopicAndTenantRules(t *testing.T) {
	for _, ok := range []string{"a", "orders/eu", "a.b-c_d:e", strings.Repeat("x", MaxTopicLen)} {
		assert.NoError(t, ValidateTopic(ok), ok)
	}
	for _, bad := range []string{"", "/a", "a/", "a//b", "a b", "a*", "ä", strings.Repeat("x", MaxTopicLen+1)} {
		assert.ErrorIs(t, ValidateTopic(bad), ErrInvalidTopic, bad)
	}
	for _, ok := range []string{"", "acme", "a-b_c.d"} {
		assert.NoError(t, ValidateTenant(ok), ok)
	}
	for _, bad := range []string{"a/b", "a:b", " ", strings.Repeat("x", MaxTenantLen+1)} {
		assert.ErrorIs(t, ValidateTenant(bad), ErrInvalidTenant, bad)
	}
}

func TestConfigValidate(t *testing.T) {
	assert.NoError(t, Config{}.Validate())
	err := Config{
		ClientBufferSize:      -1,
		HeartbeatInterval:     1e9,
		ClientTimeout:         1e9,
		HistorySize:           -2,
		HistoryBytes:          -1,
		HistoryAge:            -1,
		RetryHint:             -1,
		MaxConnections:        -1,
		MaxConnectionsPerUser: -1,
		MaxEventSize:          -1,
		FlushInterval:         -1,
		SlowConsumer:          9,
	}.Validate()
	require.ErrorIs(t, err, ErrInvalidConfig)
	for _, field := range []string{"ClientBufferSize", "HeartbeatInterval", "ClientTimeout", "HistorySize", "HistoryBytes", "HistoryAge", "RetryHint",
		"MaxConnections", "MaxConnectionsPerUser", "MaxEventSize", "FlushInterval", "SlowConsumer"} {
		assert.Contains(t, err.Error(), field)
	}
	_, err = New(Config{HeartbeatInterval: 10e9, ClientTimeout: 15e9})
	assert.ErrorIs(t, err, ErrInvalidConfig, "ClientTimeout below twice the heartbeat")

	b := newBroker(t, Config{HeartbeatInterval: 10e9})
	cfg := b.Config()
	assert.Zero(t, cfg.ClientBufferSize, "no count bound by default: the window bounds backlogs")
	assert.Equal(t, DefaultClientTimeout, cfg.ClientTimeout)
	assert.Equal(t, int64(DefaultHistoryBytes), cfg.HistoryBytes)
	assert.Equal(t, DefaultHistoryAge, cfg.HistoryAge)

	for _, p := range []SlowConsumerPolicy{Disconnect, DropOldest, DropNewest} {
		got, err := ParseSlowConsumerPolicy(p.String())
		require.NoError(t, err)
		assert.Equal(t, p, got)
	}
	_, err = ParseSlowConsumerPolicy("block")
	assert.ErrorIs(t, err, ErrInvalidConfig)
}

// TestBusGapCounted checks a gap event that a Bus delivers to a whole
// tenant (events lost between nodes) counts once per connection written
// to, as a gap and not as an event sent.
func TestBusGapCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bus := &manualBus{}
		b := newBroker(t, Config{Backend: withHistory(bus)})
		c1 := connect(t, b, SubscribeRequest{})
		c2 := connect(t, b, SubscribeRequest{})
		bus.deliver(&Message{
			Target: Target{Broadcast: true},
			Event:  Event{ID: "x-9", Type: GapEventType, Data: `{"lastEventId":"x-3","reason":"unknown"}`},
		})
		assert.Equal(t, GapEventType, c1.next().Type)
		assert.Equal(t, GapEventType, c2.next().Type)
		synctest.Wait() // counted after the write returns
		st := b.Stats()
		assert.Equal(t, uint64(2), st.Gaps)
		assert.Zero(t, st.Sent, "a gap event is not an event sent")
		assert.Equal(t, uint64(1), st.Delivered, "routed from the Bus")
		assert.Zero(t, st.Published, "nothing was published on this broker")
		assert.NoError(t, c1.close())
		assert.NoError(t, c2.close())
	})
}

func TestCheck(t *testing.T) {
	b := newBroker(t, Config{MaxEventSize: 64})
	good := Message{Target: Target{Broadcast: true}, Event: Event{Type: "x", Data: "d"}}
	assert.NoError(t, b.Check(good))
	assert.ErrorIs(t, b.Check(Message{Event: Event{Type: "x"}}), ErrNoTarget)
	assert.ErrorIs(t, b.Check(Message{Target: good.Target, Event: Event{Type: "x", Data: strings.Repeat("a", 100)}}), ErrEventTooLarge)
	assert.ErrorIs(t, b.Check(Message{Target: good.Target, Event: Event{Type: "ssekit.x"}}), ErrInvalidType)
	assert.Zero(t, b.Stats().Published, "Check publishes nothing")
	require.NoError(t, b.Close(context.Background()))
	assert.ErrorIs(t, b.Check(good), ErrClosed)
}

func TestTopicCap(t *testing.T) {
	b := newBroker(t, Config{MaxTopicsPerConnection: 3})
	ctx := context.Background()
	_, err := b.Subscribe(ctx, SubscribeRequest{Topics: []string{"a", "b", "c", "d"}})
	assert.ErrorIs(t, err, ErrTooManyTopics)
	assert.ErrorIs(t, err, ErrBadRequest, "answered 400")
	assert.Equal(t, 400, b.Reject(err, nil).Status)

	s, err := b.Subscribe(ctx, SubscribeRequest{Topics: []string{"a", "b", "a"}})
	require.NoError(t, err, "duplicates count once")
	defer s.Close()
	assert.ErrorIs(t, b.AddTopics(ctx, s.ID(), "c", "d"), ErrTooManyTopics)
	assert.Equal(t, []string{"a", "b"}, s.Topics(), "nothing added when the cap would be passed")
	require.NoError(t, b.AddTopics(ctx, s.ID(), "c", "c", "a"))
	assert.Equal(t, []string{"a", "b", "c"}, s.Topics())

	_, err = New(Config{MaxTopicsPerConnection: -1})
	assert.ErrorIs(t, err, ErrInvalidConfig)
	assert.Equal(t, DefaultMaxTopicsPerConnection, newBroker(t, Config{}).Config().MaxTopicsPerConnection)
}

func TestLastEventIDLength(t *testing.T) {
	b := newBroker(t, Config{})
	_, err := b.Subscribe(context.Background(), SubscribeRequest{LastEventID: strings.Repeat("1", MaxLastEventIDLen+1)})
	assert.ErrorIs(t, err, ErrBadRequest)
	s, err := b.Subscribe(context.Background(), SubscribeRequest{LastEventID: strings.Repeat("1", MaxLastEventIDLen)})
	require.NoError(t, err)
	s.Close()
}

// withHistory makes a Backend of a test Bus.
func withHistory(bus Bus) Backend {
	return struct {
		Bus
		*MemoryHistory
	}{bus, NewMemoryHistory(HistoryLimits{})}
}

// manualBus is a Bus whose test delivers messages itself, as a remote
// node's would arrive.
type manualBus struct{ deliver func(*Message) }

func (m *manualBus) Publish(context.Context, *Message) error { return errors.New("manual bus") }

func (m *manualBus) Attach(deliver func(*Message)) (func(), error) {
	m.deliver = deliver
	return func() {}, nil
}
