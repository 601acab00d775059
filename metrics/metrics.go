package metrics

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/ssekit/ssekit/core"
)

// Namespace prefixes every metric name.
const Namespace = "ssekit"

// DefaultMaxTenants is the tenant label's cap when WithTenantLabel is given
// a value <= 0.
const DefaultMaxTenants = 100

// OtherTenant is the tenant label value shared by every tenant beyond the
// cap set with WithTenantLabel.
const OtherTenant = "other"

// DefaultLatencyBuckets are the classic buckets of
// ssekit_delivery_latency_seconds, from 100µs to 10s. The histogram is also
// a native histogram (bucket factor 1.1), which a Prometheus server that
// scrapes native histograms uses instead.
var DefaultLatencyBuckets = []float64{
	0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05,
	0.1, 0.25, 0.5,
	1, 2.5, 5, 10,
}

// Reject reasons, the values of the reason label of
// ssekit_connections_rejected_total. They follow the status core.Broker.Reject
// answers with.
const (
	// RejectUnavailable: core.IsUnavailable, an outage of what the
	// Authenticator or Authorizer depends on; answered with a retry hint
	// (200 + ssekit.rejected, or 503), whatever else the error wraps. It
	// has a label of its own because it calls for a page, where the
	// client-caused reasons do not.
	RejectUnavailable     = "unavailable"
	RejectUnauthenticated = "unauthenticated" // core.ErrUnauthenticated: 401
	RejectForbidden       = "forbidden"       // core.ErrForbidden: 403
	RejectBadRequest      = "bad_request"     // core.ErrBadRequest, core.ErrTooManyTopics and the core.ErrInvalid... errors: 400
	RejectLimit           = "limit"           // core.ErrTooManyConnections or core.ErrTooManyUserConnections
	RejectShutdown        = "shutdown"        // core.ErrClosed: the broker is closing
	RejectOther           = "other"           // anything else
)

var (
	closeReasons = [...]core.CloseReason{
		core.ReasonClientGone, core.ReasonSlowConsumer, core.ReasonTimeout,
		core.ReasonTokenExpired, core.ReasonShutdown, core.ReasonWriteError,
	}
	rejectReasons = [...]string{
		RejectUnavailable, RejectUnauthenticated, RejectForbidden, RejectBadRequest,
		RejectLimit, RejectShutdown, RejectOther,
	}
	dropReasons = [...]core.DropReason{
		core.DropQueueFullOldest, core.DropQueueFullNewest, core.DropDisconnected,
	}
	// targetKinds are the values of core.Target.Kind, indexed by kindIndex.
	targetKinds = [...]string{"user", "topic", "broadcast"}
)

// Option configures New. Options are functions over an unexported
// configuration, the shape every ssekit package uses (client,
// middleware/tracing, adapters/nethttp); New reports an invalid one.
type Option func(*config)

type config struct {
	maxTenants  int // 0: no tenant label
	buckets     []float64
	constLabels prometheus.Labels
	perEvent    bool
}

// WithTenantLabel adds the label "tenant" to every series. Only the first
// maxTenants distinct tenants seen get their own value; the others share the
// value OtherTenant, so a client cannot grow the number of series. The
// default tenant has the empty value and does not count against the cap. maxTenants <= 0 means
// DefaultMaxTenants. Every tenant costs 28 series plus three histograms
// (delivery latency, and lag in events and in bytes).
func WithTenantLabel(maxTenants int) Option {
	return func(c *config) {
		if maxTenants <= 0 {
			maxTenants = DefaultMaxTenants
		}
		c.maxTenants = maxTenants
	}
}

// WithLatencyBuckets replaces DefaultLatencyBuckets as the classic buckets
// of ssekit_delivery_latency_seconds (upper bounds in seconds, increasing).
// The native histogram is unaffected.
func WithLatencyBuckets(buckets []float64) Option {
	return func(c *config) { c.buckets = append([]float64(nil), buckets...) }
}

// WithLatencyPerEvent makes ssekit_delivery_latency_seconds observe every
// event of every write instead of one per write. By default a write that
// sends a batch of events observes the latency of its oldest (first) event
// only: exact when writes carry one event, the usual case at moderate
// rates, and the batch's worst case under bursts, which keeps the cost of
// a write independent of its size. Observing every event costs about 60ns
// per event per connection: for a broadcast to many connections that is
// more than the rest of the fan-out.
func WithLatencyPerEvent() Option {
	return func(c *config) { c.perEvent = true }
}

// WithConstLabels adds labels with fixed values to every series, for
// example to tell apart several brokers registered on one registry (each
// then needs the same label names, with different values).
func WithConstLabels(labels prometheus.Labels) Option {
	return func(c *config) {
		c.constLabels = make(prometheus.Labels, len(labels))
		for k, v := range labels {
			c.constLabels[k] = v
		}
	}
}

// Metrics holds the collectors fed by a broker's Observer hooks. It is a
// prometheus.Collector. One Metrics may observe several brokers; their
// numbers add up.
type Metrics struct {
	cfg config
	obs *core.Observer

	open          *prometheus.GaugeVec
	opened        *prometheus.CounterVec
	closed        *prometheus.CounterVec
	rejected      *prometheus.CounterVec
	published     *prometheus.CounterVec
	publishErrors *prometheus.CounterVec
	sent          *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	replayed      *prometheus.CounterVec
	gaps          *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	lagEvents     *prometheus.HistogramVec
	lagBytes      *prometheus.HistogramVec
	collectors    []prometheus.Collector

	heldDesc, ageDesc, deliveredDesc *prometheus.Desc
	brokersDesc, clusterConnsDesc    *prometheus.Desc
	sourcesMu                        sync.Mutex
	sources                          []StatsSource // brokers added with Track

	// def holds every series when the tenant label is off, and the default
	// tenant's when it is on.
	def *series

	mu      sync.RWMutex // guards tenants, other, full
	tenants map[string]*series
	other   *series
	full    bool
}

// series is one tenant's set of pre-resolved children, so hooks never look
// up a label combination.
type series struct {
	open          prometheus.Gauge
	opened        prometheus.Counter
	closed        [len(closeReasons)]prometheus.Counter
	rejected      [len(rejectReasons)]prometheus.Counter
	published     [len(targetKinds)]prometheus.Counter
	publishErrors [len(targetKinds)]prometheus.Counter
	done          [len(targetKinds)]func(core.PublishDone)
	sent          prometheus.Counter
	bytes         prometheus.Counter
	dropped       [len(dropReasons)]prometheus.Counter
	replayed      prometheus.Counter
	gaps          prometheus.Counter
	latency       prometheus.Observer
	lagEvents     prometheus.Observer
	lagBytes      prometheus.Observer
	tenant        []string // the tenant label value, or nothing
}

// New creates the collectors and registers them on reg. Nothing is
// registered when reg is nil: register the returned Metrics yourself. New
// never uses the global registry unless reg is prometheus.DefaultRegisterer.
func New(reg prometheus.Registerer, opts ...Option) (*Metrics, error) {
	m := &Metrics{cfg: config{buckets: DefaultLatencyBuckets}}
	for _, o := range opts {
		o(&m.cfg)
	}
	if len(m.cfg.buckets) == 0 {
		return nil, errors.New("metrics: WithLatencyBuckets needs at least one bucket")
	}
	var tenant []string
	if m.cfg.maxTenants > 0 {
		tenant = []string{"tenant"}
		m.tenants = make(map[string]*series)
	}
	labels := func(names ...string) []string { return append(names, tenant...) }
	counter := func(name, help string, names ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: name, Help: help, ConstLabels: m.cfg.constLabels,
		}, labels(names...))
		m.collectors = append(m.collectors, v)
		return v
	}
	m.open = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "connections_open", ConstLabels: m.cfg.constLabels,
		Help: "Open SSE connections (registered and not yet ended).",
	}, labels())
	m.collectors = append(m.collectors, m.open)
	m.opened = counter("connections_opened_total", "SSE connections registered.")
	m.closed = counter("connections_closed_total", "SSE connections ended, by reason.", "reason")
	m.rejected = counter("connections_rejected_total", "SSE connection requests refused, by reason.", "reason")
	m.published = counter("events_published_total", "Events published, by target kind (user, topic or broadcast).", "target")
	m.publishErrors = counter("publish_errors_total", "Publishes that failed in the History or Bus, by target kind.", "target")
	m.sent = counter("events_sent_total", "Live events written to connections (replays and gap events excluded); core.Stats.Sent.")
	m.bytes = counter("written_bytes_total", "Bytes of live events written to connections.")
	m.dropped = counter("events_dropped_total", "Events that did not reach a connection they were meant for, by reason.", "reason")
	m.replayed = counter("events_replayed_total", "Events replayed to reconnecting clients after their Last-Event-ID.")
	m.gaps = counter("gap_events_total", "Gap events written to clients: on reconnect when the Last-Event-ID could not be replayed, and when the Bus lost events; core.Stats.Gaps.")
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace:   Namespace,
		Name:        "delivery_latency_seconds",
		Help:        "Time from publish to the write that sent the event to a connection; by default one observation per write, for its oldest event.",
		ConstLabels: m.cfg.constLabels,
		Buckets:     m.cfg.buckets,

		NativeHistogramBucketFactor:     1.1,
		NativeHistogramMaxBucketNumber:  160,
		NativeHistogramMinResetDuration: time.Hour,
	}, labels())
	m.collectors = append(m.collectors, m.latency)
	m.lagEvents = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "connection_lag_events", ConstLabels: m.cfg.constLabels,
		Help:    "Events still queued for a connection after each of its writes: how far it runs behind.",
		Buckets: []float64{0, 1, 10, 100, 1000, 10000, 100000},
	}, labels())
	m.lagBytes = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "connection_lag_bytes", ConstLabels: m.cfg.constLabels,
		Help:    "Bytes of events still queued for a connection after each of its writes; compare with the history's held bytes.",
		Buckets: []float64{0, 1 << 10, 16 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20},
	}, labels())
	m.collectors = append(m.collectors, m.lagEvents, m.lagBytes)
	m.heldDesc = prometheus.NewDesc(Namespace+"_history_held_bytes",
		"Memory the events held for replay and backlogs cost (core.Stats.HeldBytes), against core.Config.HistoryBytes.", nil, m.cfg.constLabels)
	m.ageDesc = prometheus.NewDesc(Namespace+"_history_oldest_age_seconds",
		"Age of the oldest event held (core.Stats.OldestAge), against core.Config.HistoryAge.", nil, m.cfg.constLabels)
	m.deliveredDesc = prometheus.NewDesc(Namespace+"_events_delivered_total",
		"Messages the broker routed to its connections, published on it or received from the Bus (core.Stats.Delivered).", nil, m.cfg.constLabels)
	m.brokersDesc = prometheus.NewDesc(Namespace+"_cluster_brokers",
		"Live brokers of the cluster, this one included, as its Backend sees them (core.Stats.Cluster); absent without a cluster backend that knows presence.", nil, m.cfg.constLabels)
	m.clusterConnsDesc = prometheus.NewDesc(Namespace+"_cluster_connections",
		"Open connections on every broker of the cluster (core.Stats.Cluster); absent without a cluster backend that knows presence.", nil, m.cfg.constLabels)

	m.def = m.newSeries(tenant != nil, "")
	m.obs = &core.Observer{
		Connect:    m.connect,
		Disconnect: m.disconnect,
		Reject:     m.reject,
		Publish:    m.publish,
		Flush:      m.flush,
		Drop:       m.drop,
		Replay:     m.replay,
	}
	if reg != nil {
		if err := reg.Register(m); err != nil {
			return nil, fmt.Errorf("metrics: registering collectors: %w", err)
		}
	}
	return m, nil
}

// newSeries resolves every child of one tenant, which also makes every
// series visible at zero from the start.
func (m *Metrics) newSeries(withTenant bool, tenant string) *series {
	s := &series{}
	if withTenant {
		s.tenant = []string{tenant}
	}
	lv := func(values ...string) []string { return append(values, s.tenant...) }
	s.open = m.open.WithLabelValues(lv()...)
	s.opened = m.opened.WithLabelValues(lv()...)
	for i, r := range closeReasons {
		s.closed[i] = m.closed.WithLabelValues(lv(string(r))...)
	}
	for i, r := range rejectReasons {
		s.rejected[i] = m.rejected.WithLabelValues(lv(r)...)
	}
	for i, k := range targetKinds {
		ok, failed := m.published.WithLabelValues(lv(k)...), m.publishErrors.WithLabelValues(lv(k)...)
		s.published[i], s.publishErrors[i] = ok, failed
		s.done[i] = func(d core.PublishDone) {
			if d.Err != nil {
				failed.Inc()
			} else {
				ok.Inc()
			}
		}
	}
	s.sent = m.sent.WithLabelValues(lv()...)
	s.bytes = m.bytes.WithLabelValues(lv()...)
	for i, r := range dropReasons {
		s.dropped[i] = m.dropped.WithLabelValues(lv(string(r))...)
	}
	s.replayed = m.replayed.WithLabelValues(lv()...)
	s.gaps = m.gaps.WithLabelValues(lv()...)
	s.latency = m.latency.WithLabelValues(lv()...)
	s.lagEvents = m.lagEvents.WithLabelValues(lv()...)
	s.lagBytes = m.lagBytes.WithLabelValues(lv()...)
	return s
}

// Observer returns the hooks to set as core.Config.Observer (or to join
// with others using core.JoinObservers). Every call returns the same value.
func (m *Metrics) Observer() *core.Observer { return m.obs }

// StatsSource is what Track reads at each scrape: a *core.Broker.
type StatsSource interface {
	Stats() core.Stats
}

// Track adds the series that hooks cannot feed, read from b's Stats at
// each scrape: ssekit_history_held_bytes and ssekit_events_delivered_total
// (summed over tracked brokers), ssekit_history_oldest_age_seconds (the
// oldest of them), and, when the broker's Backend knows the cluster
// (core.Stats.Cluster), ssekit_cluster_brokers and
// ssekit_cluster_connections. No hook sees a message routed from the Bus, so
// delivered comes from Stats too. Call it once per broker, after core.New.
func (m *Metrics) Track(b StatsSource) {
	m.sourcesMu.Lock()
	m.sources = append(m.sources, b)
	m.sourcesMu.Unlock()
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors {
		c.Describe(ch)
	}
	ch <- m.heldDesc
	ch <- m.ageDesc
	ch <- m.deliveredDesc
	ch <- m.brokersDesc
	ch <- m.clusterConnsDesc
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors {
		c.Collect(ch)
	}
	m.sourcesMu.Lock()
	sources := append([]StatsSource(nil), m.sources...)
	m.sourcesMu.Unlock()
	if len(sources) == 0 {
		return
	}
	var held int64
	var age time.Duration
	var delivered uint64
	var cluster *core.ClusterStats
	for _, src := range sources {
		st := src.Stats()
		held += st.HeldBytes
		age = max(age, st.OldestAge)
		delivered += st.Delivered
		if c := st.Cluster; c != nil && (cluster == nil || c.Connections > cluster.Connections) {
			// Every broker of a process sees the same cluster: the
			// largest view, not a sum that would count it twice.
			cluster = c
		}
	}
	ch <- prometheus.MustNewConstMetric(m.heldDesc, prometheus.GaugeValue, float64(held))
	ch <- prometheus.MustNewConstMetric(m.ageDesc, prometheus.GaugeValue, age.Seconds())
	ch <- prometheus.MustNewConstMetric(m.deliveredDesc, prometheus.CounterValue, float64(delivered))
	if cluster != nil {
		ch <- prometheus.MustNewConstMetric(m.brokersDesc, prometheus.GaugeValue, float64(cluster.Brokers))
		ch <- prometheus.MustNewConstMetric(m.clusterConnsDesc, prometheus.GaugeValue, float64(cluster.Connections))
	}
}

// tenantSeries returns the series of tenant, admitting it under the cap.
func (m *Metrics) tenantSeries(tenant string) *series {
	if m.tenants == nil || tenant == "" {
		return m.def
	}
	m.mu.RLock()
	s, full := m.tenants[tenant], m.full
	if s == nil && full {
		s = m.other
	}
	m.mu.RUnlock()
	if s != nil {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s = m.tenants[tenant]; s != nil {
		return s
	}
	if len(m.tenants) < m.cfg.maxTenants {
		s = m.newSeries(true, tenant)
		m.tenants[tenant] = s
		return s
	}
	m.full = true
	return m.otherLocked()
}

// otherLocked returns the series of OtherTenant; m.mu is held.
func (m *Metrics) otherLocked() *series {
	if m.other == nil {
		m.other = m.newSeries(true, OtherTenant)
	}
	return m.other
}

type seriesKey struct{}

// connSeries returns the series of a connection: the one Connect stored in
// its context, so per-write hooks do no lookup.
func (m *Metrics) connSeries(ctx context.Context, s *core.Subscription) *series {
	if m.tenants == nil {
		return m.def
	}
	if ts, ok := ctx.Value(seriesKey{}).(*series); ok {
		return ts
	}
	return m.tenantSeries(s.Identity().Tenant)
}

func (m *Metrics) connect(ctx context.Context, s *core.Subscription) context.Context {
	ts := m.def
	if m.tenants != nil {
		ts = m.tenantSeries(s.Identity().Tenant)
		ctx = context.WithValue(ctx, seriesKey{}, ts)
	}
	ts.opened.Inc()
	ts.open.Inc()
	return ctx
}

func (m *Metrics) disconnect(ctx context.Context, s *core.Subscription, reason core.CloseReason) {
	ts := m.connSeries(ctx, s)
	ts.open.Dec()
	for i, r := range closeReasons {
		if r == reason {
			ts.closed[i].Inc()
			return
		}
	}
	m.closed.WithLabelValues(append([]string{string(reason)}, ts.tenant...)...).Inc()
}

func (m *Metrics) reject(_ context.Context, tenant string, err error) {
	var ts *series
	if m.tenants != nil && core.ValidateTenant(tenant) != nil {
		// A name the broker refused must not take a place under the cap.
		m.mu.Lock()
		ts = m.otherLocked()
		m.mu.Unlock()
	} else {
		ts = m.tenantSeries(tenant)
	}
	r := RejectReason(err)
	for i, known := range rejectReasons {
		if known == r {
			ts.rejected[i].Inc()
			return
		}
	}
}

// RejectReason returns the reason label that ssekit_connections_rejected_total
// counts err under: one of the Reject... constants, chosen in the order
// core.Broker.Reject maps errors to statuses. Unavailable comes first, as
// there: an Authenticator's outage wrapped in ErrUnauthenticated is still
// an outage.
func RejectReason(err error) string {
	switch {
	case core.IsUnavailable(err):
		return RejectUnavailable
	case errors.Is(err, core.ErrUnauthenticated):
		return RejectUnauthenticated
	case errors.Is(err, core.ErrForbidden):
		return RejectForbidden
	case errors.Is(err, core.ErrBadRequest), errors.Is(err, core.ErrInvalidTopic),
		errors.Is(err, core.ErrInvalidTenant), errors.Is(err, core.ErrInvalidID),
		errors.Is(err, core.ErrInvalidUser), errors.Is(err, core.ErrInvalidUTF8),
		errors.Is(err, core.ErrTooManyTopics):
		return RejectBadRequest
	case errors.Is(err, core.ErrTooManyConnections), errors.Is(err, core.ErrTooManyUserConnections):
		return RejectLimit
	case errors.Is(err, core.ErrClosed):
		return RejectShutdown
	}
	return RejectOther
}

// kindIndex indexes targetKinds the way core.Target.Kind names them.
func kindIndex(t *core.Target) int {
	switch {
	case t.Broadcast:
		return 2
	case len(t.Topics) > 0:
		return 1
	}
	return 0
}

func (m *Metrics) publish(_ context.Context, msg *core.Message) func(core.PublishDone) {
	return m.tenantSeries(msg.Target.Tenant).done[kindIndex(&msg.Target)]
}

func (m *Metrics) flush(ctx context.Context, s *core.Subscription, f core.FlushInfo) {
	ts := m.connSeries(ctx, s)
	// A Bus that lost events delivers a gap event: count it as a gap, as
	// core.Stats does, so the gap alert sees data lost between nodes.
	sent := len(f.Messages)
	for _, msg := range f.Messages {
		if msg.Event.Type == core.GapEventType {
			sent--
		}
	}
	ts.sent.Add(float64(sent))
	if gaps := len(f.Messages) - sent; gaps > 0 {
		ts.gaps.Add(float64(gaps))
	}
	ts.bytes.Add(float64(f.Bytes))
	ts.lagEvents.Observe(float64(f.Backlog))
	ts.lagBytes.Observe(float64(f.BacklogBytes))
	for _, msg := range f.Messages {
		if msg.PublishedAt.IsZero() {
			continue // not timed (published without an Observer or Bus)
		}
		// Across a Bus the two clocks may disagree: never a negative
		// latency.
		ts.latency.Observe(max(f.At.Sub(msg.PublishedAt), 0).Seconds())
		if !m.cfg.perEvent {
			return // the oldest event's latency stands for the write
		}
	}
}

func (m *Metrics) drop(ctx context.Context, s *core.Subscription, _ *core.Message, reason core.DropReason, n int) {
	ts := m.connSeries(ctx, s)
	for i, r := range dropReasons {
		if r == reason {
			ts.dropped[i].Add(float64(n))
			return
		}
	}
	m.dropped.WithLabelValues(append([]string{string(reason)}, ts.tenant...)...).Add(float64(n))
}

func (m *Metrics) replay(ctx context.Context, s *core.Subscription, r core.ReplayInfo) {
	ts := m.connSeries(ctx, s)
	ts.replayed.Add(float64(r.Count))
	if r.Gap {
		ts.gaps.Inc()
	}
}
