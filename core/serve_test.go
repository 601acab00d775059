package core

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPreambleBeforeAnyPublish(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{})
		c := connect(t, b, SubscribeRequest{})
		// The first write is the preamble: it opens the stream at once.
		first := <-c.st.out
		assert.Regexp(t, `^: ok\nid: [0-9a-f]+-0\nretry: \d+\n\n$`, string(first))
		d := NewDecoder(strings.NewReader(string(first)))
		_, err := d.Next()
		assert.ErrorIs(t, err, errEOF())
		assert.Equal(t, b.backend.Origin(), d.LastEventID(), "the client knows its position before any event")
		retry := d.Retry()
		assert.GreaterOrEqual(t, retry, DefaultRetryHint)
		assert.LessOrEqual(t, retry, DefaultRetryHint*3/2, "jitter is at most 50%")
		require.NoError(t, c.close())
	})
}

func TestHeartbeatOnlyWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{HeartbeatInterval: 10 * time.Second})
		c := connect(t, b, SubscribeRequest{})
		<-c.st.out // preamble
		start := time.Now()
		assert.Equal(t, ":\n\n", string(<-c.st.out))
		assert.Equal(t, 10*time.Second, time.Since(start))

		// Traffic postpones the heartbeat: events at 5s intervals keep the
		// stream busy, so no comment is written between them.
		for range 4 {
			time.Sleep(5 * time.Second)
			require.NoError(t, b.Broadcast(context.Background(), "tick", ""))
			assert.Contains(t, string(<-c.st.out), "event: tick")
		}
		start = time.Now()
		assert.Equal(t, ":\n\n", string(<-c.st.out))
		assert.Equal(t, 10*time.Second, time.Since(start))
		require.NoError(t, c.close())
	})
}

func TestWriteStallTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{HeartbeatInterval: 10 * time.Second, ClientTimeout: 30 * time.Second})
		c := connect(t, b, SubscribeRequest{})
		<-c.st.out // preamble; then the client stops reading
		start := time.Now()
		err := <-c.done
		assert.ErrorIs(t, err, ErrWriteTimeout)
		// The preamble armed the deadline for 45s (1.5 x ClientTimeout);
		// the heartbeat write at 10s still had 35s left, so it kept that
		// deadline and stalled until it: 35s, within [30s, 45s].
		assert.Equal(t, 45*time.Second, time.Since(start))
		c.cancel()
		assert.Zero(t, b.Stats().Connections)
	})
}

// TestWriteStallAfterQuietSpell checks the deadline is renewed when the
// one in force would give a write less than ClientTimeout: a stall that
// starts long after the last renewal is still allowed its full timeout.
func TestWriteStallAfterQuietSpell(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{HeartbeatInterval: 10 * time.Second, ClientTimeout: 30 * time.Second})
		c := connect(t, b, SubscribeRequest{})
		<-c.st.out // preamble at 0s: deadline 45s
		<-c.st.out // heartbeat at 10s keeps it
		<-c.st.out // heartbeat at 20s has 25s left: renewed to 65s
		start := time.Now()
		err := <-c.done // the heartbeat at 30s stalls until 65s
		assert.ErrorIs(t, err, ErrWriteTimeout)
		assert.Equal(t, 45*time.Second, time.Since(start))
		c.st.mu.Lock()
		assert.Equal(t, 4, c.st.writes, "three writes, then the stalled one")
		assert.Equal(t, 2, c.st.deadlineSets, "armed at 0s, renewed at 20s")
		c.st.mu.Unlock()
		c.cancel()
	})
}

func TestSlowConsumerDisconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var reasons []CloseReason
		b := newBroker(t, Config{ClientBufferSize: 4, Observer: &Observer{
			Disconnect: func(_ context.Context, _ *Subscription, r CloseReason) { reasons = append(reasons, r) },
		}})
		ctx := context.Background()
		slow := connect(t, b, SubscribeRequest{})
		fast := connect(t, b, SubscribeRequest{})
		<-slow.st.out // preamble; then slow never reads again
		var got []string
		read := make(chan struct{})
		go func() {
			defer close(read)
			for range 20 {
				got = append(got, fast.next().Data)
			}
		}()
		for i := range 20 {
			require.NoError(t, b.Broadcast(ctx, "e", string(rune('a'+i))), "publishing never blocks on a slow reader")
			synctest.Wait()
		}
		<-read
		assert.Equal(t, "abcdefghijklmnopqrst", strings.Join(got, ""), "a slow reader does not delay others")
		err := <-slow.done
		assert.ErrorIs(t, err, ErrSlowConsumer)
		slow.cancel()
		synctest.Wait()
		st := b.Stats()
		assert.Equal(t, 1, st.Connections)
		assert.NotZero(t, st.Dropped[DropDisconnected])
		assert.Equal(t, []CloseReason{ReasonSlowConsumer}, reasons)
		require.NoError(t, fast.close())
	})
}

func TestSlowConsumerDropPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy SlowConsumerPolicy
		reason DropReason
		want   []string
	}{
		{DropOldest, DropQueueFullOldest, []string{"0", "6", "7", "8", "9"}},
		{DropNewest, DropQueueFullNewest, []string{"0", "1", "2", "3", "4"}},
	} {
		t.Run(tc.policy.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var drops int
				b := newBroker(t, Config{ClientBufferSize: 4, SlowConsumer: tc.policy, Observer: &Observer{
					Drop: func(_ context.Context, _ *Subscription, _ *Message, r DropReason, _ int) {
						assert.Equal(t, tc.reason, r)
						drops++
					},
				}})
				c := connect(t, b, SubscribeRequest{})
				<-c.st.out // preamble
				ctx := context.Background()
				require.NoError(t, b.Broadcast(ctx, "e", "0"))
				synctest.Wait() // Serve took "0" and blocks writing it
				for i := 1; i < 10; i++ {
					require.NoError(t, b.Broadcast(ctx, "e", string(rune('0'+i))))
				}
				var got []string
				for range 5 {
					got = append(got, c.next().Data)
				}
				assert.Equal(t, tc.want, got)
				assert.Equal(t, 5, drops)
				assert.EqualValues(t, 5, b.Stats().Dropped[tc.reason])
				require.NoError(t, c.close())
			})
		})
	}
}

func TestCloseFlushesAndHintsReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(Config{})
		require.NoError(t, err)
		c := connect(t, b, SubscribeRequest{})
		<-c.st.out // preamble
		require.NoError(t, b.Broadcast(context.Background(), "last", "words"))
		idle, err := b.Subscribe(context.Background(), SubscribeRequest{})
		require.NoError(t, err)

		closed := make(chan error, 1)
		go func() { closed <- b.Close(context.Background()) }()
		ev := c.next()
		assert.Equal(t, "words", ev.Data, "what was accepted before Close is delivered")
		_, err = c.dec.Next()
		assert.ErrorIs(t, err, errEOF())
		assert.Positive(t, c.dec.Retry())
		assert.Contains(t, c.seenComments(), "shutdown")
		assert.NoError(t, <-c.done)
		assert.NoError(t, <-closed)
		c.cancel()

		assert.ErrorIs(t, b.Serve(context.Background(), idle, newTestStream()), ErrClosed)
		assert.ErrorIs(t, b.Broadcast(context.Background(), "x", ""), ErrClosed)
		_, err = b.Subscribe(context.Background(), SubscribeRequest{})
		assert.ErrorIs(t, err, ErrClosed)
		assert.NoError(t, b.Close(context.Background()), "Close is idempotent")
	})
}

// closingStream is a Stream that owns its connection, as a taken-over
// HTTP/1 connection does: Serve must close it before Broker.Close returns.
type closingStream struct {
	Stream
	closed chan struct{}
}

func (s *closingStream) Close() error {
	close(s.closed) // a second Close would panic: Serve closes once
	return nil
}

func TestServeClosesOwnedStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(Config{})
		require.NoError(t, err)
		sub, err := b.Subscribe(context.Background(), SubscribeRequest{})
		require.NoError(t, err)
		st := &closingStream{Stream: discardStream{}, closed: make(chan struct{})}
		served := make(chan error, 1)
		go func() { served <- b.Serve(context.Background(), sub, st) }()
		synctest.Wait()
		require.NoError(t, b.Close(context.Background()))
		select {
		case <-st.closed:
		default:
			t.Fatal("Close returned before the stream's connection was closed")
		}
		assert.NoError(t, <-served)

		// A stream Close cut before Serve started is closed by Serve too.
		b2, err := New(Config{})
		require.NoError(t, err)
		sub2, err := b2.Subscribe(context.Background(), SubscribeRequest{})
		require.NoError(t, err)
		require.NoError(t, b2.Close(context.Background()))
		st2 := &closingStream{Stream: discardStream{}, closed: make(chan struct{})}
		assert.ErrorIs(t, b2.Serve(context.Background(), sub2, st2), ErrClosed)
		<-st2.closed
	})
}

type discardStream struct{}

func (discardStream) Write(p []byte) (int, error) { return len(p), nil }
func (discardStream) Flush() error                { return nil }

func TestCloseRespectsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := New(Config{})
		require.NoError(t, err)
		c := connect(t, b, SubscribeRequest{})
		<-c.st.out // preamble; the client never reads the closing frame
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		err = b.Close(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 5*time.Second, time.Since(start))
		assert.NoError(t, <-c.done, "a stream cut by Close ends cleanly")
		c.cancel()
	})
}

func TestTokenExpiryEndsStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{})
		c := connect(t, b, SubscribeRequest{Identity: Identity{User: user(), ExpiresAt: time.Now().Add(time.Minute)}})
		start := time.Now()
		_, err := c.dec.Next()
		assert.ErrorIs(t, err, errEOF())
		assert.Equal(t, time.Minute, time.Since(start))
		assert.Contains(t, c.seenComments(), "token_expired")
		assert.ErrorIs(t, <-c.done, ErrTokenExpired)
		c.cancel()
	})
}

func TestObserverHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		type key struct{}
		var log []string
		var flushed []*Message
		obs := &Observer{
			Connect: func(ctx context.Context, s *Subscription) context.Context {
				log = append(log, "connect")
				return context.WithValue(ctx, key{}, s.ID())
			},
			Disconnect: func(ctx context.Context, s *Subscription, r CloseReason) {
				assert.Equal(t, s.ID(), ctx.Value(key{}), "hooks get the context Connect returned")
				log = append(log, "disconnect:"+string(r))
			},
			Publish: func(ctx context.Context, m *Message) func(PublishDone) {
				m.Metadata = map[string]string{"trace": "t1"}
				return func(d PublishDone) {
					log = append(log, "published:"+d.ID[strings.Index(d.ID, "-"):])
					assert.Equal(t, 1, d.Recipients)
				}
			},
			Flush: func(ctx context.Context, s *Subscription, f FlushInfo) {
				flushed = append(flushed, f.Messages...)
				assert.Positive(t, f.Bytes)
			},
			Reject: func(ctx context.Context, tenant string, err error) { log = append(log, "reject") },
		}
		// Two observers joined: both see everything.
		var second int
		b := newBroker(t, Config{MaxConnections: 1, Observer: JoinObservers(obs, nil, &Observer{
			Connect: func(ctx context.Context, s *Subscription) context.Context { second++; return ctx },
		})})
		c := connect(t, b, SubscribeRequest{})
		_, err := b.Subscribe(context.Background(), SubscribeRequest{})
		require.ErrorIs(t, err, ErrTooManyConnections)
		require.NoError(t, b.Broadcast(context.Background(), "e", "x"))
		assert.Equal(t, "x", c.next().Data)
		require.NoError(t, c.close())
		require.Len(t, flushed, 1)
		assert.Equal(t, "t1", flushed[0].Metadata["trace"])
		assert.Equal(t, []string{"connect", "reject", "published:-1", "disconnect:client_gone"}, log)
		assert.Equal(t, 1, second)
	})
}

func TestGapEventPayload(t *testing.T) {
	buf := appendGap(nil, "old-1", "abc-0", "unknown")
	d := NewDecoder(strings.NewReader(string(buf)))
	ev, err := d.Next()
	require.NoError(t, err)
	assert.Equal(t, GapEventType, ev.Type)
	assert.Equal(t, "abc-0", ev.ID, "the client resumes from where the broker stands")
	var data map[string]string
	require.NoError(t, json.Unmarshal([]byte(ev.Data), &data))
	assert.Equal(t, map[string]string{"lastEventId": "old-1", "reason": "unknown"}, data)
}

func TestFlushIntervalCoalesces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{FlushInterval: time.Second})
		ctx := context.Background()
		c := connect(t, b, SubscribeRequest{})
		<-c.st.out // preamble
		start := time.Now()
		require.NoError(t, b.Broadcast(ctx, "e", "1"))
		first := string(<-c.st.out)
		assert.Equal(t, 1, strings.Count(first, "event: e"), "the first event after a quiet spell is written at once")
		assert.Zero(t, time.Since(start))
		for _, d := range []string{"2", "3", "4"} {
			require.NoError(t, b.Broadcast(ctx, "e", d))
		}
		second := string(<-c.st.out)
		assert.Equal(t, 3, strings.Count(second, "event: e"), "a burst goes out in one write")
		assert.Equal(t, time.Second, time.Since(start))
		require.NoError(t, c.close())
	})
}

func TestAnnounceConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, Config{AnnounceConnection: true})
		c := connect(t, b, SubscribeRequest{})
		ev := c.next()
		assert.Equal(t, ConnectedEventType, ev.Type)
		assert.JSONEq(t, `{"connectionId":"`+c.sub.ID()+`"}`, ev.Data)
		assert.Equal(t, b.backend.Origin(), ev.ID, "the announcement does not move the client's position")
		require.NoError(t, b.AddTopics(context.Background(), c.sub.ID(), "late"))
		require.NoError(t, b.SendToTopic(context.Background(), "late", "e", "x"))
		assert.Equal(t, "x", c.next().Data)
		require.NoError(t, c.close())
	})
}
