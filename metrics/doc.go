// Package metrics exports a broker's activity as Prometheus metrics: open
// connections, why they closed or were refused, events published, sent,
// dropped and replayed, delivery latency and bytes written. It is a
// core.Observer, so it costs nothing to a broker that does not use it.
//
// The happy path:
//
//	reg := prometheus.NewRegistry()
//	m, err := metrics.New(reg)
//	if err != nil {
//		log.Fatal(err)
//	}
//	broker, err := core.New(core.Config{Observer: m.Observer()})
//	if err != nil {
//		log.Fatal(err)
//	}
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// New never touches the global registry: pass prometheus.DefaultRegisterer
// to use it, or nil to register the Metrics (a prometheus.Collector)
// yourself. To combine metrics with tracing, join the observers:
//
//	core.Config{Observer: core.JoinObservers(m.Observer(), tr.Observer())}
//
// Every series lives under the namespace "ssekit"; docs/OPERATIONS.md lists
// them. Label values are fixed sets (close, reject and drop reasons, target
// kinds), so cardinality does not grow with traffic. The optional tenant
// label (WithTenantLabel) adds one label to every series and is capped:
// tenants beyond the cap share the value "other".
//
// ssekit_delivery_latency_seconds measures publish to write. By default a
// write observes it once, for the oldest event it carries: exact when
// writes carry one event, the batch's worst case under bursts, and a cost
// per write that does not grow with the batch (WithLatencyPerEvent
// observes every event instead). It is both a classic histogram (buckets
// from 100µs to 10s) and a native one (bucket factor 1.1).
//
// ssekit_events_dropped_total{reason="slow_consumer"} counts the events a
// connection cut under the Disconnect policy lost with its queue, as
// core.Broker.Stats does. Those events are replayed when the client
// reconnects within the history window.
//
// Every figure of core.Stats that has a series counts what the series
// counts: ssekit_events_published_total the publishes made on this broker
// (Stats.Published); ssekit_events_sent_total the live events written
// (Stats.Sent); ssekit_gap_events_total the gap events written, on replay
// and when a Bus reports lost events (Stats.Gaps), so an alert on gaps
// sees data lost between nodes; and, once Track is called,
// ssekit_events_delivered_total the messages routed by this broker, from
// its own publishes or from the Bus (Stats.Delivered).
//
// The Flush hook runs after every write of every connection: it touches
// two counters and the histogram, all resolved once (in New, or per tenant
// when first seen), and never allocates, tenant label or not.
package metrics
