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

// TestRedisRestartWhilePublishing kills redis-server (no persistence: the
// stream is gone) while publishing, and starts it again on the same port.
// Publishes during the outage must fail with ErrPublish; every event
// Publish accepted must reach every subscriber, or the subscriber must
// have been sent a gap event in its place.
func TestRedisRestartWhilePublishing(t *testing.T) { forShards(t, testRedisRestartWhilePublishing) }

func testRedisRestartWhilePublishing(t *testing.T, shards int) {
	rs := startRedis(t)
	fast := Options{Shards: shards, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, PublishTimeout: time.Second}
	var nodes []*node
	for i := range 2 {
		nodes = append(nodes, newNode(t, rs, fmt.Sprintf("n%d", i), nodeConfig{opt: fast}))
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var subs []*subscriber
	for i := range 6 {
		s := newSubscriber(nodes, i%2, "?topic=x", tr)
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
	const before, during, after = 2000, 200, 2000
	var outageErr error
	recovering := time.Time{}
	for len(p.accepted) < before+after {
		switch p.next {
		case before:
			rs.kill()
		case before + during:
			rs.start()
		}
		err := p.publishOne(ctx, "")
		if p.next > before && p.next <= before+during {
			require.Error(t, err, "publish %d accepted while Redis was down", p.next-1)
			outageErr = err
			time.Sleep(time.Millisecond)
		} else if err != nil {
			// go-redis throttles dialing after failures: the pool comes
			// back within about a second of Redis.
			if recovering.IsZero() {
				recovering = time.Now()
			} else if time.Since(recovering) > 15*time.Second {
				require.FailNow(t, fmt.Sprintf("publish %d: Redis is back but publishing still fails: %v", p.next-1, err))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	require.ErrorIs(t, outageErr, ErrPublish, "outage error %v does not wrap ErrPublish", outageErr)
	t.Logf("accepted %d, failed %d; outage error: %v", len(p.accepted), p.failed, outageErr)
	last := strconv.Itoa(p.accepted[len(p.accepted)-1])
	for i, s := range subs {
		s.waitFor(t, 30*time.Second, "the last event", func(rs []received) bool {
			return len(rs) > 0 && rs[len(rs)-1].ev.Data == last
		})
		checkAcceptedOrGap(t, i, p.accepted, s.events())
	}
}

// checkAcceptedOrGap checks that got holds every accepted event once and
// in order, except events that a gap event received later covers: an
// event may be missing only if a gap event came between the last event
// received before it and the first received after it.
func checkAcceptedOrGap(t *testing.T, i int, accepted []int, got []received) {
	t.Helper()
	pos := map[int]int{} // seq -> index in got
	gaps := 0
	prev := -1
	for j, r := range got {
		switch r.ev.Type {
		case core.GapEventType:
			gaps++
			continue
		case "seq":
		default:
			require.FailNow(t, fmt.Sprintf("subscriber %d: unexpected event %+v", i, r.ev))
		}
		seq, _ := strconv.Atoi(r.ev.Data)
		_, dup := pos[seq]
		require.False(t, dup, "subscriber %d: %d received twice", i, seq)
		require.Greater(t, seq, prev, "subscriber %d: %d after %d", i, seq, prev)
		pos[seq], prev = j, seq
	}
	missing := 0
	for k, seq := range accepted {
		if _, ok := pos[seq]; ok {
			continue
		}
		missing++
		// The neighbours received on each side must have a gap between them.
		lo, hi := -1, len(got)
		for a := k - 1; a >= 0; a-- {
			if j, ok := pos[accepted[a]]; ok {
				lo = j
				break
			}
		}
		for a := k + 1; a < len(accepted); a++ {
			if j, ok := pos[accepted[a]]; ok {
				hi = j
				break
			}
		}
		covered := false
		for j := lo + 1; j < hi && j < len(got); j++ {
			if got[j].ev.Type == core.GapEventType {
				covered = true
			}
		}
		require.True(t, covered, "subscriber %d: accepted event %d lost without a gap event", i, seq)
	}
	t.Logf("subscriber %d: %d events, %d accepted missing, %d gap events", i, len(pos), missing, gaps)
}
