package metrics_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/metrics"
)

func Example() {
	ctx := context.Background()
	reg := prometheus.NewRegistry() // serve it with promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	m, err := metrics.New(reg)
	if err != nil {
		panic(err)
	}
	broker, err := core.New(core.Config{Observer: m.Observer()})
	if err != nil {
		panic(err)
	}
	defer broker.Close(ctx)

	_ = broker.Broadcast(ctx, "announcement", "maintenance at 22:00")
	_ = broker.SendToTopic(ctx, "orders", "order.created", `{"id":42}`)

	err = testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP ssekit_events_published_total Events published, by target kind (user, topic or broadcast).
# TYPE ssekit_events_published_total counter
ssekit_events_published_total{target="broadcast"} 1
ssekit_events_published_total{target="topic"} 1
ssekit_events_published_total{target="user"} 0
`), "ssekit_events_published_total")
	fmt.Println(err)
	// Output: <nil>
}
