package sseredis

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
)

// TestCatchUpLaggingNode moves a client from a node to one that delivers
// 100ms late. Without the catch-up wait of Backend.CatchUp, the lagging
// node would register the client before delivering what the client
// already has, and send it again.
func TestCatchUpLaggingNode(t *testing.T) { forShards(t, testCatchUpLaggingNode) }

func testCatchUpLaggingNode(t *testing.T, shards int) {
	for _, withCatchUp := range []bool{true, false} {
		t.Run(fmt.Sprintf("catchup=%v", withCatchUp), func(t *testing.T) {
			rs := startRedis(t)
			nc := nodeConfig{opt: Options{Shards: shards}}
			fast := newNode(t, rs, "fast", nc)
			slow := newNodeWith(t, rs, "slow", nc, func(be *Backend) { be.lag = 100 * time.Millisecond }, withCatchUp)
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			s := newSubscriber([]*node{fast, slow}, 0, "?topic=x", tr)
			s.start(context.Background())
			defer s.stop()
			waitConnected(t, []*node{fast}, 1)
			for i := range 3 {
				m := core.Message{Target: core.Target{Broadcast: true}, Event: core.Event{Type: "seq", Data: strconv.Itoa(i)}}
				_, err := fast.b.Publish(context.Background(), m)
				require.NoError(t, err)
			}
			s.waitFor(t, 5*time.Second, "3 events", func(rs []received) bool { return len(rs) == 3 })
			fast.kill() // the client moves to the slow node at once
			time.Sleep(600 * time.Millisecond)
			m := core.Message{Target: core.Target{Broadcast: true}, Event: core.Event{Type: "seq", Data: "3"}}
			_, err := slow.b.Publish(context.Background(), m)
			require.NoError(t, err)
			s.waitFor(t, 5*time.Second, "event 3", func(rs []received) bool { return rs[len(rs)-1].ev.Data == "3" })
			got := dataOf(s.events(), "seq")
			require.False(t, withCatchUp && len(got) != 4, "got %v, want [0 1 2 3]", got)
			if !withCatchUp && len(got) == 4 {
				t.Logf("no duplicate without the catch-up wait this time: %v", got)
			}
			if !withCatchUp {
				t.Logf("without catch-up: %v", got)
			}
		})
	}
}
