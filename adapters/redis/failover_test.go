package sseredis

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
)

// publisher publishes numbered broadcasts on the first live node from a
// rotating start, counting only the events Publish accepted.
type publisher struct {
	nodes    []*node
	accepted []int // sequence numbers Publish accepted, in order
	failed   int
	next     int
}

func (p *publisher) publishOne(ctx context.Context, tenant string) error {
	seq := p.next
	p.next++
	var err error
	for i := range p.nodes {
		n := p.nodes[(seq+i)%len(p.nodes)]
		if n.down.Load() {
			continue
		}
		m := core.Message{Target: core.Target{Tenant: tenant, Broadcast: true}, Event: core.Event{Type: "seq", Data: strconv.Itoa(seq)}}
		if _, err = n.b.Publish(ctx, m); err == nil {
			p.accepted = append(p.accepted, seq)
			return nil
		}
		if !errors.Is(err, core.ErrClosed) {
			break // Redis refused: not accepted, not retried
		}
	}
	p.failed++
	return err
}

// TestFailoverNoGapNoDuplicate kills one of three nodes while publishing
// 12,000 events. Its subscribers reconnect at once to another node with
// their Last-Event-ID; every subscriber must end with every event exactly
// once, in order, without a gap event.
func TestFailoverNoGapNoDuplicate(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	forShards(t, testFailoverNoGapNoDuplicate)
}

func testFailoverNoGapNoDuplicate(t *testing.T, shards int) {
	const total, killAt, perNode = 12000, 4000, 4
	rs := startRedis(t)
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, newNode(t, rs, fmt.Sprintf("n%d", i), nodeConfig{opt: Options{MaxLen: 100000, Shards: shards}}))
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var subs []*subscriber
	for i := range 3 * perNode {
		s := newSubscriber(nodes, i%3, "?topic=x", tr)
		s.start(ctx)
		subs = append(subs, s)
	}
	defer func() {
		for _, s := range subs {
			s.stop()
		}
	}()
	waitConnected(t, nodes, len(subs))

	p := &publisher{nodes: nodes}
	for p.next < total {
		if p.next == killAt {
			nodes[0].kill()
		}
		err := p.publishOne(ctx, "")
		require.NoError(t, err, "publish %d", p.next-1)
	}
	for i, s := range subs {
		s.waitFor(t, 60*time.Second, "the last event", func(rs []received) bool {
			return len(rs) > 0 && rs[len(rs)-1].ev.Data == strconv.Itoa(total-1)
		})
		got := s.events()
		moved := 0
		for j, r := range got {
			require.Equal(t, "seq", r.ev.Type, "subscriber %d: unexpected %s event %q", i, r.ev.Type, r.ev.Data)
			require.Equal(t, strconv.Itoa(j), r.ev.Data, "subscriber %d: event %d is %q (gap or duplicate)", i, j, r.ev.Data)
			if j > 0 && got[j-1].node != r.node {
				moved++
			}
		}
		require.Len(t, got, total, "subscriber %d: %d events, want %d", i, len(got), total)
		require.False(t, i%3 == 0 && moved == 0, "subscriber %d was on the killed node but never moved", i)
	}
	var replayed, gaps uint64
	for _, n := range nodes[1:] {
		st := n.b.Stats()
		replayed += st.Replayed
		gaps += st.Gaps
	}
	t.Logf("%d events x %d subscribers, %d replayed after the kill, %d gaps", total, len(subs), replayed, gaps)
	require.Equal(t, uint64(0), gaps, "%d gap events", gaps)
}
