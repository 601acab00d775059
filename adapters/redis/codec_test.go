package sseredis

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ssekit/ssekit/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCodecRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	in := []*core.Message{
		{
			Target:      core.Target{Tenant: "acme", Users: []uuid.UUID{uuid.New(), uuid.New()}, Topics: []string{"a/b", "c:d"}},
			Event:       core.Event{Type: "t", Data: "line1\nline2 ünï", Comment: "c", Retry: 1500 * time.Millisecond},
			Metadata:    map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "": "empty key"},
			PublishedAt: at,
		},
		{Target: core.Target{Broadcast: true}, Event: core.Event{Type: "b"}},
	}
	for _, m := range in {
		got, err := decodeMessage("1-2", m.Target.Tenant, encodePayload(nil, m))
		require.NoError(t, err)
		want := *m
		want.Event.ID = "1-2"
		require.Equal(t, want.Target, got.Target, "got %+v, want %+v", got, want)
		require.Equal(t, want.Event, got.Event, "got %+v, want %+v", got, want)
		require.True(t, got.PublishedAt.Equal(want.PublishedAt), "got %+v, want %+v", got, want)
		require.Len(t, got.Metadata, len(want.Metadata), "got %+v, want %+v", got, want)
		for k, v := range want.Metadata {
			require.Equal(t, v, got.Metadata[k], "metadata %q: %q", k, got.Metadata[k])
		}
	}
}

func TestCodecRefusesBadEntries(t *testing.T) {
	good := encodePayload(nil, &core.Message{Target: core.Target{Topics: []string{"x"}}, Event: core.Event{Type: "t", Data: "d"}})
	bad := map[string]struct {
		tenant  string
		payload []byte
	}{
		"empty":          {"", nil},
		"version":        {"", append([]byte{9}, good[1:]...)},
		"truncated":      {"", good[:len(good)-1]},
		"trailing":       {"", append(append([]byte(nil), good...), 0)},
		"bad tenant":     {"a b", good},
		"no target":      {"", encodePayload(nil, &core.Message{Event: core.Event{Type: "t"}})},
		"no type":        {"", encodePayload(nil, &core.Message{Target: core.Target{Broadcast: true}})},
		"newline type":   {"", encodePayload(nil, &core.Message{Target: core.Target{Broadcast: true}, Event: core.Event{Type: "a\nid: 1"}})},
		"bad topic":      {"", encodePayload(nil, &core.Message{Target: core.Target{Topics: []string{"a//b"}}, Event: core.Event{Type: "t"}})},
		"nil user":       {"", encodePayload(nil, &core.Message{Target: core.Target{Users: []uuid.UUID{uuid.Nil}}, Event: core.Event{Type: "t"}})},
		"huge count":     {"", []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		"invalid utf8":   {"", encodePayload(nil, &core.Message{Target: core.Target{Broadcast: true}, Event: core.Event{Type: "t", Data: "\xff"}})},
		"negative retry": {"", encodePayload(nil, &core.Message{Target: core.Target{Broadcast: true}, Event: core.Event{Type: "t", Retry: -1}})},
	}
	for name, c := range bad {
		_, err := decodeMessage("1-1", c.tenant, c.payload)
		assert.ErrorIs(t, err, errBadPayload, "%s", name)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encodePayload(nil, &core.Message{Target: core.Target{Topics: []string{"x"}, Users: []uuid.UUID{uuid.New()}}, Event: core.Event{Type: "t", Data: "d"}, Metadata: map[string]string{"k": "v"}}))
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := decodeMessage("1-1", "", p)
		require.False(t, err == nil && m.Frame() == nil, "decoded a message that does not encode")
	})
}

// TestMetadataSurvivesTheTrip publishes on one node with an observer that
// adds a trace context (as middleware/tracing does) and checks what a
// subscriber's node delivers: metadata and PublishedAt intact.
func TestMetadataSurvivesTheTrip(t *testing.T) {
	rs := startRedis(t)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	pubObs := &core.Observer{Publish: func(ctx context.Context, m *core.Message) func(core.PublishDone) {
		if m.Metadata == nil {
			m.Metadata = map[string]string{}
		}
		m.Metadata["traceparent"] = tp
		return nil
	}}
	var mu sync.Mutex
	var seen []*core.Message
	subObs := &core.Observer{Flush: func(ctx context.Context, s *core.Subscription, f core.FlushInfo) {
		mu.Lock()
		seen = append(seen, f.Messages...)
		mu.Unlock()
	}}
	a := newNode(t, rs, "a", nodeConfig{core: core.Config{Observer: pubObs}})
	b := newNode(t, rs, "b", nodeConfig{core: core.Config{Observer: subObs}})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	s := newSubscriber([]*node{b}, 0, "?topic=x", tr)
	s.start(context.Background())
	defer s.stop()
	waitConnected(t, []*node{b}, 1)
	before := time.Now()
	m := core.Message{Target: core.Target{Topics: []string{"x"}}, Event: core.Event{Type: "e", Data: "d"}, Metadata: map[string]string{"app": "v1"}}
	_, err := a.b.Publish(context.Background(), m)
	require.NoError(t, err)
	s.waitFor(t, 5*time.Second, "the event", func(rs []received) bool { return len(rs) == 1 })
	// The Flush hook runs after the write returns, which can be after the
	// subscriber has already decoded the event: wait for it too.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 1, "flushed %d messages", len(seen))
	got := seen[0]
	require.Equal(t, tp, got.Metadata["traceparent"], "metadata %v", got.Metadata)
	require.Equal(t, "v1", got.Metadata["app"], "metadata %v", got.Metadata)
	require.False(t, got.PublishedAt.Before(before), "PublishedAt %v", got.PublishedAt)
	require.LessOrEqual(t, time.Since(got.PublishedAt), 5*time.Second, "PublishedAt %v", got.PublishedAt)
}
