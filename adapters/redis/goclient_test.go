package sseredis

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/client"
	"github.com/ssekit/ssekit/core"
)

// balancer is a stand-in for a load balancer: each new connection goes to
// the first live node from a preferred one.
func balancer(nodes []*node, prefer int) *http.Client {
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		for i := range nodes {
			n := nodes[(prefer+i)%len(nodes)]
			if !n.down.Load() {
				return d.DialContext(ctx, network, strings.TrimPrefix(n.url, "http://"))
			}
		}
		return nil, fmt.Errorf("no live node")
	}}
	return &http.Client{Transport: tr}
}

// TestFailoverWithGoClient runs the failover with the project's Go client
// (package client) behind a load balancer: the client only knows one URL,
// and resumes on whichever node the balancer picks.
func TestFailoverWithGoClient(t *testing.T) { forShards(t, testFailoverWithGoClient) }

func testFailoverWithGoClient(t *testing.T, shards int) {
	const total, killAt, clients = 3000, 1000, 6
	rs := startRedis(t)
	var nodes []*node
	for i := range 3 {
		nodes = append(nodes, newNode(t, rs, fmt.Sprintf("n%d", i), nodeConfig{opt: Options{Shards: shards}, core: core.Config{RetryHint: 20 * time.Millisecond}}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	got := make([][]core.Event, clients)
	for i := range clients {
		hc := balancer(nodes, i%3)
		defer hc.CloseIdleConnections()
		c, err := client.New("http://cluster.test/events?topic=x", client.WithHTTPClient(hc))
		require.NoError(t, err)
		wg.Go(func() {
			for ev, err := range c.Events(ctx) {
				if err != nil {
					assert.NoError(t, err, "client %d", i)
					return
				}
				got[i] = append(got[i], ev)
				if ev.Data == strconv.Itoa(total-1) {
					return
				}
			}
		})
	}
	waitConnected(t, nodes, clients)
	p := &publisher{nodes: nodes}
	for p.next < total {
		if p.next == killAt {
			nodes[0].kill()
		}
		err := p.publishOne(ctx, "")
		require.NoError(t, err, "publish %d", p.next-1)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		cancel()
		<-done
		require.FailNow(t, "clients did not get every event within 60s")
	}
	for i, evs := range got {
		require.Len(t, evs, total, "client %d: %d events, want %d", i, len(evs), total)
		for j, ev := range evs {
			require.Equal(t, "seq", ev.Type, "client %d: event %d is %s %q", i, j, ev.Type, ev.Data)
			require.Equal(t, strconv.Itoa(j), ev.Data, "client %d: event %d is %s %q", i, j, ev.Type, ev.Data)
		}
	}
}
