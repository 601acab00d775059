package tracing

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/ssekit/ssekit/core"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.39.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the spans this package makes.
const ScopeName = "github.com/ssekit/ssekit/middleware/tracing"

// Defaults of the options that bound deliver spans.
const (
	DefaultMaxLinks                  = 128
	DefaultMaxDeliverSpansPerMessage = 10
)

// Span names. SpanPublish and SpanDeliver are also the operation names
// (messaging.operation.name): a publish or deliver span is named by its
// operation, followed by its destination's template (see WithTopicTemplate)
// or else its kind of target when it has one, as in "publish topic" or
// "deliver order-{id}"; never by a topic, a user or a tenant, which would
// make span names unbounded. See the package documentation for the list.
const (
	SpanConnection = "sse connection"
	SpanPublish    = "publish"
	SpanDeliver    = "deliver"
)

// Attribute keys of this package; the others are OpenTelemetry semantic
// conventions.
const (
	AttrTargetKind    = attribute.Key("ssekit.target.kind")
	AttrRecipients    = attribute.Key("ssekit.recipients")
	AttrTenant        = attribute.Key("ssekit.tenant")
	AttrConnectionID  = attribute.Key("ssekit.connection.id")
	AttrTopics        = attribute.Key("ssekit.topics")
	AttrLastEventID   = attribute.Key("ssekit.last_event_id")
	AttrCloseReason   = attribute.Key("ssekit.close_reason")
	AttrDroppedEvents = attribute.Key("ssekit.dropped_events")
	AttrBytes         = attribute.Key("ssekit.bytes")
	AttrReplayCount   = attribute.Key("ssekit.replay.count")
	AttrReplayGap     = attribute.Key("ssekit.replay.gap")
	AttrUnlinked      = attribute.Key("ssekit.unlinked_events")
)

var (
	system      = semconv.MessagingSystemKey.String("ssekit")
	opPublish   = semconv.MessagingOperationName(SpanPublish)
	opDeliver   = semconv.MessagingOperationName(SpanDeliver)
	typeSend    = semconv.MessagingOperationTypeSend
	typeProcess = semconv.MessagingOperationTypeProcess
)

// Option configures New. Options are functions over an unexported
// configuration, as in every ssekit package (metrics, client,
// adapters/nethttp); none of these can be invalid, so New returns no error.
type Option func(*config)

// config is what the options set.
type config struct {
	tp         trace.TracerProvider
	prop       propagation.TextMapPropagator
	tenant     bool
	template   func(topic string) string
	maxLinks   int
	maxDeliver int
}

// WithTracerProvider sets where spans go (default otel.GetTracerProvider(),
// which follows a later otel.SetTracerProvider).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// WithPropagator sets how a publish span's context is written into
// Message.Metadata and read back at delivery (default
// propagation.TraceContext{}, the W3C traceparent). Metadata only travels
// between ssekit brokers, so every broker of a cluster must use the same
// propagator; the global one is not the default because it does nothing
// until the application sets it.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.prop = p }
}

// WithTenantAttribute records the tenant as ssekit.tenant on publish and
// connection spans. It is off by default: tenant names may identify
// customers.
func WithTenantAttribute() Option {
	return func(c *config) { c.tenant = true }
}

// WithTopicTemplate sets how to find a topic's template: the
// low-cardinality form of a name that embeds an entity, such as
// "order-{id}" for "order-123", or "" when the topic has none. A template
// is recorded as messaging.destination.template and names the span in
// place of the kind of target ("publish order-{id}" rather than "publish
// topic"), when every topic of the message (or, for a deliver span, of
// every message of the write) has the same one. Without this option, or
// for a topic without a template, the span is named by its kind of target:
// topic names are only ever attributes.
//
// f runs on every traced publish and for every message of a write that
// makes a deliver span, on the publisher's and the connections'
// goroutines: it must be fast, safe for concurrent use and return few
// distinct values, for they name spans.
func WithTopicTemplate(f func(topic string) string) Option {
	return func(c *config) { c.template = f }
}

// WithMaxLinks caps the links of one deliver span (default
// DefaultMaxLinks); the events of a write beyond it are counted in
// ssekit.unlinked_events.
func WithMaxLinks(n int) Option {
	return func(c *config) { c.maxLinks = max(n, 1) }
}

// WithMaxDeliverSpansPerMessage caps how many writes, on each node, link
// one event with a deliver span (default
// DefaultMaxDeliverSpansPerMessage). 0 turns deliver spans off; a negative
// n removes the cap, which for a broadcast means one span per connection.
func WithMaxDeliverSpansPerMessage(n int) Option {
	return func(c *config) { c.maxDeliver = n }
}

// Tracer holds the Observer hooks that trace a broker. Create it with New.
type Tracer struct {
	config
	tracer trace.Tracer
	budget *budget
	obs    *core.Observer
}

// New returns a Tracer configured by opts.
func New(opts ...Option) *Tracer {
	t := &Tracer{config: config{
		prop:       propagation.TraceContext{},
		maxLinks:   DefaultMaxLinks,
		maxDeliver: DefaultMaxDeliverSpansPerMessage,
	}}
	for _, o := range opts {
		if o != nil {
			o(&t.config)
		}
	}
	if t.tp == nil {
		t.tp = otel.GetTracerProvider()
	}
	t.tracer = t.tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL))
	if t.maxDeliver > 0 {
		t.budget = newBudget(t.maxDeliver)
	}
	t.obs = &core.Observer{
		Connect:    t.connect,
		Disconnect: t.disconnect,
		Reject:     t.reject,
		Publish:    t.publish,
		Flush:      t.flush,
		Drop:       t.drop,
		Replay:     t.replay,
	}
	return t
}

// Observer returns the hooks to set as core.Config.Observer (or to join
// with others using core.JoinObservers). Every call returns the same value.
func (t *Tracer) Observer() *core.Observer { return t.obs }

// Extract returns ctx with the publish span context carried by m's
// Metadata, for code that handles a message outside the broker (for
// example a Bus implementation or a fallback that mails an event) and
// wants to continue its trace.
func (t *Tracer) Extract(ctx context.Context, m *core.Message) context.Context {
	return t.prop.Extract(ctx, propagation.MapCarrier(m.Metadata))
}

// dest is where a message goes, as its spans tell it.
type dest struct {
	// kind is "broadcast", "topic" or "user"; "" for a message to both
	// users and topics, or a write of several kinds.
	kind string
	// name is the topic, when the message names exactly one and no user
	// (messaging.destination.name).
	name string
	// template is the one of every topic named (WithTopicTemplate).
	template string
}

// destOf says where tg goes. User IDs never appear: they identify people,
// like tenant names (see WithTenantAttribute).
func (t *Tracer) destOf(tg *core.Target) dest {
	switch {
	case tg.Broadcast:
		return dest{kind: "broadcast"}
	case len(tg.Topics) == 0:
		return dest{kind: "user"}
	case len(tg.Users) > 0:
		return dest{}
	}
	d := dest{kind: "topic"}
	if len(tg.Topics) == 1 {
		d.name = tg.Topics[0]
	}
	if t.template != nil {
		d.template = t.template(tg.Topics[0])
		for _, topic := range tg.Topics[1:] {
			if d.template == "" {
				break
			}
			if t.template(topic) != d.template {
				d.template = ""
			}
		}
	}
	return d
}

// common keeps of d what e shares with it: a write's destination is what
// all of its messages have in common.
func (d dest) common(e dest) dest {
	if d.kind != e.kind {
		d.kind = ""
	}
	if d.name != e.name {
		d.name = ""
	}
	if d.template != e.template {
		d.template = ""
	}
	return d
}

// spanName returns op followed by d's template, else its kind, else
// nothing: a name of low cardinality whatever the topics.
func (d dest) spanName(op string) string {
	switch {
	case d.template != "":
		return op + " " + d.template
	case d.kind != "":
		return op + " " + d.kind
	}
	return op
}

// appendAttrs appends the destination attributes of d.
func (d dest) appendAttrs(attrs []attribute.KeyValue) []attribute.KeyValue {
	if d.name != "" {
		attrs = append(attrs, semconv.MessagingDestinationName(d.name))
	}
	if d.template != "" {
		attrs = append(attrs, semconv.MessagingDestinationTemplate(d.template))
	}
	return attrs
}

func (t *Tracer) publish(ctx context.Context, m *core.Message) func(core.PublishDone) {
	d := t.destOf(&m.Target)
	attrs := make([]attribute.KeyValue, 0, 9)
	attrs = append(attrs, system, opPublish, typeSend, AttrTargetKind.String(m.Target.Kind()))
	attrs = d.appendAttrs(attrs)
	if len(m.Target.Topics) > 0 && d.name == "" { // several, or with users
		attrs = append(attrs, AttrTopics.StringSlice(m.Target.Topics))
	}
	if t.tenant {
		attrs = append(attrs, AttrTenant.String(m.Target.Tenant))
	}
	ctx, span := t.tracer.Start(ctx, d.spanName(SpanPublish),
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	if !span.IsRecording() {
		// Not sampled (or no SDK): deliver spans could only link to a
		// span that was never recorded, so pass nothing on.
		span.End()
		return nil
	}
	// Never write into the caller's map: it may be shared or reused.
	md := make(map[string]string, len(m.Metadata)+2)
	for k, v := range m.Metadata {
		md[k] = v
	}
	t.prop.Inject(ctx, propagation.MapCarrier(md))
	m.Metadata = md
	return func(d core.PublishDone) {
		if d.ID != "" {
			span.SetAttributes(semconv.MessagingMessageID(d.ID))
		}
		if d.Recipients >= 0 {
			span.SetAttributes(AttrRecipients.Int(d.Recipients))
		}
		if d.Err != nil {
			span.RecordError(d.Err)
			span.SetStatus(codes.Error, d.Err.Error())
		}
		span.End()
	}
}

// conn is a connection's tracing state, kept in the context Connect
// returns.
type conn struct {
	span    trace.Span
	dropped atomic.Int64
}

type connKey struct{}

func connOf(ctx context.Context) *conn {
	c, _ := ctx.Value(connKey{}).(*conn)
	return c
}

func (t *Tracer) connect(ctx context.Context, s *core.Subscription) context.Context {
	attrs := make([]attribute.KeyValue, 0, 5)
	attrs = append(attrs, system, AttrConnectionID.String(s.ID()))
	if topics := s.Topics(); len(topics) > 0 {
		attrs = append(attrs, AttrTopics.StringSlice(topics))
	}
	if id := s.LastEventID(); id != "" {
		attrs = append(attrs, AttrLastEventID.String(id))
	}
	if t.tenant {
		attrs = append(attrs, AttrTenant.String(s.Identity().Tenant))
	}
	ctx, span := t.tracer.Start(ctx, SpanConnection,
		trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...),
		trace.WithTimestamp(s.ConnectedAt()))
	return context.WithValue(ctx, connKey{}, &conn{span: span})
}

func (t *Tracer) disconnect(ctx context.Context, _ *core.Subscription, reason core.CloseReason) {
	c := connOf(ctx)
	if c == nil {
		return
	}
	c.span.SetAttributes(AttrCloseReason.String(string(reason)), AttrDroppedEvents.Int64(c.dropped.Load()))
	c.span.End()
}

func (t *Tracer) drop(ctx context.Context, _ *core.Subscription, _ *core.Message, _ core.DropReason, n int) {
	// Runs on the publisher's goroutine, under the routing lock: count
	// only, the connection span reports the total when it ends.
	if c := connOf(ctx); c != nil {
		c.dropped.Add(int64(n))
	}
}

func (t *Tracer) replay(ctx context.Context, _ *core.Subscription, r core.ReplayInfo) {
	if c := connOf(ctx); c != nil && c.span.IsRecording() {
		c.span.AddEvent("replay", trace.WithAttributes(
			AttrLastEventID.String(r.LastEventID), AttrReplayCount.Int(r.Count), AttrReplayGap.Bool(r.Gap)))
	}
}

func (t *Tracer) reject(ctx context.Context, _ string, err error) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("ssekit.rejected", trace.WithAttributes(attribute.String("exception.message", err.Error())))
	}
}

func (t *Tracer) flush(ctx context.Context, _ *core.Subscription, f core.FlushInfo) {
	if t.maxDeliver == 0 {
		return
	}
	c := connOf(ctx)
	if c == nil || !c.span.IsRecording() {
		return // the stream is not sampled: neither are its writes
	}
	var links []trace.Link
	start := f.At
	unlinked := 0
	for _, m := range f.Messages {
		if len(m.Metadata) == 0 {
			unlinked++
			continue
		}
		if len(links) == t.maxLinks || !t.budget.take(m) {
			unlinked++
			continue
		}
		sc := trace.SpanContextFromContext(t.prop.Extract(context.Background(), propagation.MapCarrier(m.Metadata)))
		if !sc.IsValid() {
			unlinked++
			continue
		}
		if links == nil {
			links = make([]trace.Link, 0, min(len(f.Messages), t.maxLinks))
		}
		links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{semconv.MessagingMessageID(m.Event.ID)}})
		if p := m.PublishedAt; !p.IsZero() && p.Before(start) {
			start = p
		}
	}
	if len(links) == 0 {
		return
	}
	d := t.destOf(&f.Messages[0].Target)
	for _, m := range f.Messages[1:] {
		d = d.common(t.destOf(&m.Target))
	}
	attrs := make([]attribute.KeyValue, 0, 10)
	attrs = append(attrs, system, opDeliver, typeProcess,
		semconv.MessagingBatchMessageCount(len(f.Messages)),
		AttrBytes.Int(f.Bytes))
	if d.kind != "" {
		attrs = append(attrs, AttrTargetKind.String(d.kind))
	}
	attrs = d.appendAttrs(attrs)
	if len(f.Messages) == 1 && f.Messages[0].Event.ID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(f.Messages[0].Event.ID))
	}
	if unlinked > 0 {
		attrs = append(attrs, AttrUnlinked.Int(unlinked))
	}
	_, span := t.tracer.Start(ctx, d.spanName(SpanDeliver),
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithTimestamp(start),
		trace.WithLinks(links...), trace.WithAttributes(attrs...))
	span.End(trace.WithTimestamp(f.At))
}

// budget counts the deliver spans each message was linked from, by event
// ID (not by pointer: that would keep up to 2 x genSize messages, frames
// included, alive). Counts live in two generations of maps: when the current one holds
// genSize messages it becomes the previous one and the oldest is
// forgotten, so memory stays bounded whatever the traffic. A message
// forgotten while still being delivered (more than genSize others traced
// since) starts a fresh count: the cap is exact as long as fewer than
// genSize messages are in delivery at once. Checking a spent message is a
// lock-free read, which is what most of a broadcast's writes do.
type budget struct {
	max  int32
	gens atomic.Pointer[generations]
	mu   sync.Mutex // serializes rotations
}

type generations struct {
	cur, old *sync.Map // event ID -> *atomic.Int32
	n        atomic.Int32
}

const genSize = 4096

func newBudget(n int) *budget {
	b := &budget{max: int32(min(n, 1<<30))}
	b.gens.Store(&generations{cur: new(sync.Map), old: new(sync.Map)})
	return b
}

// take reports whether m may be linked from one more deliver span, and
// counts it if so. A nil budget allows everything.
func (b *budget) take(m *core.Message) bool {
	if b == nil {
		return true
	}
	id := m.Event.ID
	if id == "" {
		return false // not published through a History: nothing to count by
	}
	g := b.gens.Load()
	v, ok := g.cur.Load(id)
	if !ok {
		if v, ok = g.old.Load(id); !ok {
			v = new(atomic.Int32)
		}
		var loaded bool
		if v, loaded = g.cur.LoadOrStore(id, v); !loaded && g.n.Add(1) >= genSize {
			b.rotate(g)
		}
	}
	n := v.(*atomic.Int32)
	return n.Load() < b.max && n.Add(1) <= b.max
}

// rotate makes g's current generation the previous one, unless another
// writer already did.
func (b *budget) rotate(g *generations) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gens.Load() == g {
		b.gens.Store(&generations{cur: new(sync.Map), old: g.cur})
	}
}

// Traceparent returns the W3C traceparent header value of the span in ctx,
// or "" when ctx holds none. Put it in an event's data to let the browser
// continue the trace: clients never see Message.Metadata.
func Traceparent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}
