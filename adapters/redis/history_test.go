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

	"github.com/redis/go-redis/v9"
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

func TestReplay(t *testing.T) { forShards(t, testReplay) }

func testReplay(t *testing.T, shards int) {
	rs := startRedis(t)
	be := newBackend(t, rs, Options{Shards: shards})
	got, err := replay(t, be, "", "0-0", "")
	require.NoError(t, err, "empty: %v %v", got, err)
	require.Nil(t, got, "empty: %v %v", got, err)
	// "other" is in another shard than "" when there are 3.
	var a, b []string
	for i := range 10 {
		a = append(a, publish(t, be, "", "a"+strconv.Itoa(i)))
		b = append(b, publish(t, be, "other", "b"+strconv.Itoa(i)))
	}
	pre := be.shardOf("").prefix
	entryA2 := strings.TrimPrefix(a[2], pre)
	type testCase struct {
		name, tenant, after, upto string
		want                      string
		err                       error
	}
	cases := []testCase{
		{"middle", "", a[2], a[5], "[a3 a4 a5]", nil},
		{"tenant other", "other", b[2], b[5], "[b3 b4 b5]", nil},
		{"from origin", "", "0-0", a[2], "[a0 a1 a2]", nil},
		{"up to date", "", a[9], a[9], "[]", nil},
		{"paged", "", "0-0", a[9], "[a0 a1 a2 a3 a4 a5 a6 a7 a8 a9]", nil},
		{"malformed", "", "x-1", a[9], "[]", core.ErrEventUnknown},
		{"range syntax", "", "-", a[9], "[]", core.ErrEventUnknown},
		{"future", "", pre + "99999999999999-0", a[9], "[]", core.ErrEventUnknown},
		// a[2]'s millisecond with a sequence no entry of that millisecond
		// has (the old "replace the last digit by 7" could name a real one).
		{"not an entry", "", a[2][:strings.LastIndexByte(a[2], '-')] + "-999999", a[5], "[]", core.ErrEventUnknown},
		{"client ahead", "", a[5], a[2], "[]", nil},
		{"no upto", "", a[5], "", "[]", nil},
		{"no upto, unknown", "", pre + "5-5", "", "[]", core.ErrEventUnknown},
	}
	if shards == 1 {
		// One stream: a position of another tenant is a position in it.
		cases = append(cases, testCase{"other tenant's position", "other", a[0], b[1], "[b0 b1]", nil},
			testCase{"shard prefix with one shard", "", "0:" + entryA2, a[5], "[]", core.ErrEventUnknown})
	} else {
		require.NotEqual(t, be.shardOf(""), be.shardOf("other"), "the test wants two shards")
		cases = append(cases,
			// After resharding, or a position of another tenant: the
			// client gets the gap event, never a silent loss.
			testCase{"another shard's ID", "other", a[0], b[1], "[]", core.ErrEventUnknown},
			testCase{"plain entry ID", "", entryA2, a[5], "[]", core.ErrEventUnknown},
			testCase{"shard out of range", "", strconv.Itoa(shards) + ":" + entryA2, a[5], "[]", core.ErrEventUnknown},
			testCase{"shard with a leading zero", "", "0" + a[2], a[5], "[]", core.ErrEventUnknown})
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
func TestReplayTrimmed(t *testing.T) { forShards(t, testReplayTrimmed) }

func testReplayTrimmed(t *testing.T, shards int) {
	rs := startRedis(t)
	be := newBackend(t, rs, Options{MaxLen: 10, Shards: shards})
	// The quiet tenant shares the stream of "" (it is trimmed by the
	// other's events) whatever the number of shards.
	quietTenant := "quiet"
	for i := 0; be.shardOf(quietTenant) != be.shardOf(""); i++ {
		quietTenant = "quiet" + strconv.Itoa(i)
	}
	quiet := publish(t, be, quietTenant, "q0")
	first := publish(t, be, "", "a0")
	var last string
	for i := 1; i < 500; i++ {
		last = publish(t, be, "", "a"+strconv.Itoa(i))
	}
	q1 := publish(t, be, quietTenant, "q1")
	_, err := replay(t, be, "", first, last)
	require.ErrorIs(t, err, core.ErrEventExpired, "trimmed position: %v, want ErrEventExpired", err)
	_, err = replay(t, be, "", "0-0", last)
	require.ErrorIs(t, err, core.ErrEventExpired, "origin after trimming: %v, want ErrEventExpired", err)
	// The quiet tenant's q0 was trimmed, but nothing of it was lost after.
	got, err := replay(t, be, quietTenant, quiet, q1)
	require.NoError(t, err, "quiet tenant: %v %v, want [q1]", got, err)
	require.Equal(t, "[q1]", fmt.Sprint(got), "quiet tenant: %v %v, want [q1]", got, err)
	_, err = replay(t, be, quietTenant, "0-0", q1)
	require.ErrorIs(t, err, core.ErrEventExpired, "quiet tenant from origin: %v, want ErrEventExpired (q0 is gone)", err)
}

// TestReplayAfterRedisLostData: an ID from before Redis lost the stream is
// unknown, not silently replayed from.
func TestReplayAfterRedisLostData(t *testing.T) { forShards(t, testReplayAfterRedisLostData) }

func testReplayAfterRedisLostData(t *testing.T, shards int) {
	rs := startRedis(t)
	be := newBackend(t, rs, Options{Shards: shards})
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
func TestFreshNodeReplaysExactly(t *testing.T) { forShards(t, testFreshNodeReplaysExactly) }

func testFreshNodeReplaysExactly(t *testing.T, shards int) {
	rs := startRedis(t)
	nc := nodeConfig{opt: Options{Shards: shards}}
	n0 := newNode(t, rs, "n0", nc)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	pub := func(n *node, i int) string {
		t.Helper()
		m := core.Message{Target: core.Target{Topics: []string{"x"}}, Event: core.Event{Type: "seq", Data: strconv.Itoa(i)}}
		id, err := n.b.Publish(context.Background(), m)
		require.NoError(t, err)
		return id
	}
	first := pub(n0, 0) // before anyone listens: nobody gets it
	// Publish returns once Redis has the event; n0 delivers it from its
	// stream reader a moment later. Wait for that (the reader's position),
	// or the subscriber below would (rightly) receive it live.
	require.Eventually(t, func() bool { return delivered(n0.be, "", first) }, 5*time.Second, 5*time.Millisecond, "n0 never delivered event 0")
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
	n1 := newNode(t, rs, "n1", nc)
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
	_, err := core.New(core.Config{Backend: be})
	require.Error(t, err, "core.New succeeded without Redis")
}

func TestOptions(t *testing.T) {
	rs := startRedis(t)
	c := rs.client(t)
	for _, o := range []Options{{Prefix: "a{b"}, {MaxLen: -2}, {MaxAge: -1}, {MinBackoff: time.Second, MaxBackoff: time.Millisecond}, {MaxBatch: -1}, {Shards: -1}, {Shards: MaxShards + 1}, {Presence: PresenceOptions{TTL: time.Millisecond}}} {
		_, err := New(c, o)
		assert.ErrorIs(t, err, core.ErrInvalidConfig, "%+v", o)
	}
	_, err := New(nil, Options{})
	assert.ErrorIs(t, err, core.ErrInvalidConfig, "nil client accepted")
	be := newBackend(t, rs, Options{})
	require.Equal(t, 1, be.Shards(), "default shards for a *redis.Client")
	require.Equal(t, []string{"ssekit:{bus}:events"}, be.StreamKeys())
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{rs.addr}})
	defer cc.Close()
	sharded, err := New(cc, Options{})
	require.NoError(t, err)
	defer sharded.Close()
	require.Equal(t, DefaultClusterShards, sharded.Shards(), "default shards for a *redis.ClusterClient")
	require.Regexp(t, `^ssekit:\{bus:2(-\d+)?\}:events$`, sharded.StreamKeys()[2])
	b, err := core.New(core.Config{Backend: be})
	require.NoError(t, err)
	defer b.Close(context.Background())
	_, err = be.Attach(func(*core.Message) {})
	require.Error(t, err, "second Attach accepted")
}

// shardCounts are the Options.Shards the tests whose behaviour depends on
// sharding run with: one stream (plain entry IDs) and several.
var shardCounts = []int{1, 3}

// forShards runs f as a subtest for each of shardCounts.
func forShards(t *testing.T, f func(t *testing.T, shards int)) {
	t.Helper()
	for _, n := range shardCounts {
		t.Run(fmt.Sprintf("shards=%d", n), func(t *testing.T) { f(t, n) })
	}
}

// entryID is the stream entry an event ID names, its shard prefix left out.
func entryID(t testing.TB, id string) streamID {
	t.Helper()
	if i := strings.IndexByte(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	sid, ok := parseID(id)
	require.True(t, ok, "event ID %q", id)
	return sid
}

// delivered reports whether be's consumer has delivered the event ID of
// tenant (or anything after it in its shard).
func delivered(be *Backend, tenant, id string) bool {
	sh, _, want, ok := be.entryOf(tenant, id)
	if !ok {
		return false
	}
	be.mu.RLock()
	c := be.cons
	be.mu.RUnlock()
	if c == nil {
		return false
	}
	cur := c.cursors[sh.i]
	cur.mu.Lock()
	defer cur.mu.Unlock()
	return !cur.pos.less(want)
}

// streamLen is the number of entries in all of be's streams.
func streamLen(t testing.TB, be *Backend) int64 {
	t.Helper()
	var n int64
	for _, k := range be.StreamKeys() {
		l, err := be.client.XLen(context.Background(), k).Result()
		require.NoError(t, err)
		n += l
	}
	return n
}

// TestShardTags checks that the shards' hash tags spread them evenly over
// the slot range, so over masters that own equal contiguous ranges.
func TestShardTags(t *testing.T) {
	require.Equal(t, uint16(0x31C3), crc16("123456789"), "CRC-16/XMODEM check value")
	require.Equal(t, uint16(12182), crc16("foo")%clusterSlots, "CLUSTER KEYSLOT foo")
	for _, n := range []int{2, 3, 6, 16, 100, MaxShards} {
		tags := map[string]bool{}
		for i := range n {
			tag := shardTag(i, n)
			require.False(t, tags[tag], "shard %d of %d: tag %q twice", i, n, tag)
			tags[tag] = true
			slot := int(crc16(tag)) % clusterSlots
			require.Equal(t, i, slot*n/clusterSlots, "shard %d of %d: tag %q has slot %d", i, n, tag, slot)
		}
	}
	perMaster := make([]int, 3)
	for i := range DefaultClusterShards {
		perMaster[int(crc16(shardTag(i, DefaultClusterShards)))%clusterSlots*3/clusterSlots]++
	}
	assert.Equal(t, []int{1, 1, 1}, perMaster, "the default shards: one on each of 3 masters")
}
