package sseredis

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
)

func newBackend(t *testing.T, rs *redisServer, opt Options) *Backend {
	t.Helper()
	be, err := New(rs.client(t), opt)
	require.NoError(t, err)
	t.Cleanup(func() { _ = be.Close() })
	return be
}

func publish(t *testing.T, be *Backend, tenant, data string) string {
	t.Helper()
	m := &core.Message{Target: core.Target{Tenant: tenant, Broadcast: true}, Event: core.Event{Type: "e", Data: data}}
	require.NoError(t, be.Publish(context.Background(), m))
	return m.Event.ID
}

func replay(t *testing.T, be *Backend, tenant, after, upto string) ([]string, error) {
	t.Helper()
	var got []string
	err := be.Replay(context.Background(), tenant, after, upto, func(m *core.Message) bool {
		got = append(got, m.Event.Data)
		return true
	})
	return got, err
}

func TestReplay(t *testing.T) {
	rs := startRedis(t)
	be := newBackend(t, rs, Options{})
	got, err := replay(t, be, "", "0-0", "")
	require.NoError(t, err, "empty: %v %v", got, err)
	require.Nil(t, got, "empty: %v %v", got, err)
	var a, b []string
	for i := range 10 {
		a = append(a, publish(t, be, "", "a"+strconv.Itoa(i)))
		b = append(b, publish(t, be, "b", "b"+strconv.Itoa(i)))
	}
	cases := []struct {
		name, tenant, after, upto string
		want                      string
		err                       error
	}{
		{"middle", "", a[2], a[5], "[a3 a4 a5]", nil},
		{"tenant b", "b", b[2], b[5], "[b3 b4 b5]", nil},
		{"from origin", "", "0-0", a[2], "[a0 a1 a2]", nil},
		{"other tenant's position", "b", a[0], b[1], "[b0 b1]", nil},
		{"up to date", "", a[9], a[9], "[]", nil},
		{"paged", "", "0-0", a[9], "[a0 a1 a2 a3 a4 a5 a6 a7 a8 a9]", nil},
		{"malformed", "", "x-1", a[9], "[]", core.ErrEventUnknown},
		{"range syntax", "", "-", a[9], "[]", core.ErrEventUnknown},
		{"future", "", "99999999999999-0", a[9], "[]", core.ErrEventUnknown},
		// a[2]'s millisecond with a sequence no entry of that millisecond
		// has (the old "replace the last digit by 7" could name a real one).
		{"not an entry", "", a[2][:strings.LastIndexByte(a[2], '-')] + "-999999", a[5], "[]", core.ErrEventUnknown},
		{"client ahead", "", a[5], a[2], "[]", nil},
		{"no upto", "", a[5], "", "[]", nil},
		{"no upto, unknown", "", "5-5", "", "[]", core.ErrEventUnknown},
	}
	for _, c := range cases {
		got, err := replay(t, be, c.tenant, c.after, c.upto)
		assert.False(t, fmt.Sprint(got) != c.want && !(c.want == "[]" && got == nil) || !errors.Is(err, c.err) && (c.err != nil || err != nil), "%s: got %v, %v; want %s, %v", c.name, got, err, c.want, c.err)
	}
	// fn returning false stops.
	n := 0
	err = be.Replay(context.Background(), "", "0-0", a[9], func(*core.Message) bool { n++; return n < 2 })
	require.NoError(t, err, "stop: n=%d %v", n, err)
	require.Equal(t, 2, n, "stop: n=%d %v", n, err)
}

// TestReplayTrimmed checks expiry with a short stream: a trimmed position
// is expired, unless the tenant lost nothing after it.
func TestReplayTrimmed(t *testing.T) {
	rs := startRedis(t)
	be := newBackend(t, rs, Options{MaxLen: 10})
	quiet := publish(t, be, "quiet", "q0")
	first := publish(t, be, "", "a0")
	var last string
	for i := 1; i < 500; i++ {
		last = publish(t, be, "", "a"+strconv.Itoa(i))
	}
	q1 := publish(t, be, "quiet", "q1")
	_, err := replay(t, be, "", first, last)
	require.ErrorIs(t, err, core.ErrEventExpired, "trimmed position: %v, want ErrEventExpired", err)
	_, err = replay(t, be, "", "0-0", last)
	require.ErrorIs(t, err, core.ErrEventExpired, "origin after trimming: %v, want ErrEventExpired", err)
	// The quiet tenant's q0 was trimmed, but nothing of it was lost after.
	got, err := replay(t, be, "quiet", quiet, q1)
	require.NoError(t, err, "quiet tenant: %v %v, want [q1]", got, err)
	require.Equal(t, "[q1]", fmt.Sprint(got), "quiet tenant: %v %v, want [q1]", got, err)
	_, err = replay(t, be, "quiet", "0-0", q1)
	require.ErrorIs(t, err, core.ErrEventExpired, "quiet tenant from origin: %v, want ErrEventExpired (q0 is gone)", err)
}

// TestReplayAfterRedisLostData: an ID from before Redis lost the stream is
// unknown, not silently replayed from.
func TestReplayAfterRedisLostData(t *testing.T) {
	rs := startRedis(t)
	be := newBackend(t, rs, Options{})
	old := publish(t, be, "", "old")
	rs.kill()
	rs.start()
	var fresh string
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := &core.Message{Target: core.Target{Broadcast: true}, Event: core.Event{Type: "e", Data: "new"}}
		if err := be.Publish(context.Background(), m); err == nil {
			fresh = m.Event.ID
			break
		} else if time.Now().After(deadline) {
			require.FailNow(t, fmt.Sprint(err))
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err := replay(t, be, "", old, fresh)
	require.ErrorIs(t, err, core.ErrEventUnknown, "old ID after data loss: %v, want ErrEventUnknown", err)
}

// TestFreshNodeReplaysExactly starts a node after events were published:
// a client that reconnects there with its Last-Event-ID gets exactly what
// it missed, and a second reconnect gets nothing twice.
func TestFreshNodeReplaysExactly(t *testing.T) {
	rs := startRedis(t)
	n0 := newNode(t, rs, "n0", nodeConfig{})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	pub := func(n *node, i int) string {
		t.Helper()
		m := core.Message{Target: core.Target{Topics: []string{"x"}}, Event: core.Event{Type: "seq", Data: strconv.Itoa(i)}}
		id, err := n.b.Publish(context.Background(), m)
		require.NoError(t, err)
		return id
	}
	first, _ := parseID(pub(n0, 0)) // before anyone listens: nobody gets it
	// Publish returns once Redis has the event; n0 delivers it from its
	// stream reader a moment later. Wait for that (the reader's position),
	// or the subscriber below would (rightly) receive it live.
	for deadline := time.Now().Add(5 * time.Second); ; {
		n0.be.mu.RLock()
		c := n0.be.cons
		n0.be.mu.RUnlock()
		c.mu.Lock()
		reached := !c.pos.less(first)
		c.mu.Unlock()
		if reached {
			break
		}
		require.False(t, time.Now().After(deadline), "n0 never delivered event 0")
		time.Sleep(5 * time.Millisecond)
	}
	s := newSubscriber([]*node{n0}, 0, "?topic=x", tr)
	s.start(context.Background())
	waitConnected(t, []*node{n0}, 1)
	for i := 1; i <= 5; i++ {
		pub(n0, i)
	}
	s.waitFor(t, 5*time.Second, "5 events", func(rs []received) bool { return len(dataOf(rs, "seq")) >= 5 })
	s.stop()
	for i := 6; i <= 8; i++ {
		pub(n0, i) // missed
	}
	n1 := newNode(t, rs, "n1", nodeConfig{})
	s2 := newSubscriber([]*node{n1}, 0, "?topic=x", tr)
	s2.lastID = s.lastID
	s2.got = s.got
	s2.start(context.Background())
	// Count the sequence events only: the final check below asserts
	// exactly 1..9 once each, whatever else the stream carried.
	s2.waitFor(t, 5*time.Second, "8 events", func(rs []received) bool { return len(dataOf(rs, "seq")) >= 8 })
	waitConnected(t, []*node{n1}, 1)
	s2.cut() // reconnect with the position of the replay
	time.Sleep(100 * time.Millisecond)
	waitConnected(t, []*node{n1}, 1)
	pub(n0, 9)
	s2.waitFor(t, 5*time.Second, "event 9", func(rs []received) bool { return rs[len(rs)-1].ev.Data == "9" })
	s2.stop()
	for _, r := range s2.events() {
		if r.ev.Type != "seq" {
			t.Logf("also received %s %q from %s", r.ev.Type, r.ev.Data, r.node)
		}
	}
	got := fmt.Sprint(dataOf(s2.events(), "seq"))
	require.Equal(t, "[1 2 3 4 5 6 7 8 9]", got, "got %s", got)
}

func TestPublishFailsWhenRedisIsDown(t *testing.T) {
	rs := startRedis(t)
	be := newBackend(t, rs, Options{PublishTimeout: 500 * time.Millisecond})
	rs.kill()
	m := &core.Message{Target: core.Target{Broadcast: true}, Event: core.Event{Type: "e"}}
	err := be.Publish(context.Background(), m)
	require.ErrorIs(t, err, ErrPublish, "got %v, ID %q; want ErrPublish and no ID", err, m.Event.ID)
	require.Equal(t, "", m.Event.ID, "got %v, ID %q; want ErrPublish and no ID", err, m.Event.ID)
	t.Logf("error: %v", err)
	_ = be.Close()
	require.ErrorIs(t, be.Publish(context.Background(), m), core.ErrClosed, "after Close")
}

func TestAttachFailsWhenRedisIsDown(t *testing.T) {
	rs := startRedis(t)
	be := newBackend(t, rs, Options{})
	rs.kill()
	_, err := core.New(core.Config{Bus: be, History: be})
	require.Error(t, err, "core.New succeeded without Redis")
}

func TestOptions(t *testing.T) {
	rs := startRedis(t)
	c := rs.client(t)
	for _, o := range []Options{{Prefix: "a{b"}, {MaxLen: -2}, {MaxAge: -1}, {MinBackoff: time.Second, MaxBackoff: time.Millisecond}, {MaxBatch: -1}} {
		_, err := New(c, o)
		assert.ErrorIs(t, err, core.ErrInvalidConfig, "%+v", o)
	}
	_, err := New(nil, Options{})
	assert.ErrorIs(t, err, core.ErrInvalidConfig, "nil client accepted")
	be := newBackend(t, rs, Options{})
	b, err := core.New(core.Config{Bus: be, History: be})
	require.NoError(t, err)
	defer b.Close(context.Background())
	_, err = be.Attach(func(*core.Message) {})
	require.Error(t, err, "second Attach accepted")
}
