// Package tracing traces a broker with OpenTelemetry: a producer span per
// publish, a span per SSE connection, and consumer spans for the writes
// that deliver events, linked back to the publish that sent them, across
// nodes too. It is a core.Observer, so a broker without it pays nothing.
//
// The happy path:
//
//	tr := tracing.New() // the global TracerProvider; see WithTracerProvider
//	broker, err := core.New(core.Config{Observer: tr.Observer()})
//	if err != nil {
//		log.Fatal(err)
//	}
//	// In a handler instrumented by otelhttp, ctx holds the request span:
//	// the publish span becomes its child.
//	broker.SendToUser(r.Context(), userID, "notification", payload)
//
// Combined with metrics:
//
//	core.Config{Observer: core.JoinObservers(m.Observer(), tr.Observer())}
//
// # Spans
//
// Span names follow the OpenTelemetry messaging conventions: the
// operation, then the destination in a form of low cardinality, never a
// topic, a user ID or a tenant (a name per topic or per user would be a
// name per entity, which trace backends cannot group). The
// destination part is the template of the topics (WithTopicTemplate) when
// there is one, else the kind of target: "broadcast", "topic" or "user";
// a message to both users and topics has none. So a publish span is one of
// "publish broadcast", "publish topic", "publish user", "publish" and
// "publish <template>" (for example "publish order-{id}"), and a deliver
// span one of the same with "deliver". The concrete destination is in the
// attributes: messaging.destination.name is the topic when the message
// names exactly one and no user, ssekit.topics lists them otherwise,
// messaging.destination.template is the template, ssekit.target.kind the
// kind, and ssekit.tenant the tenant (with WithTenantAttribute). User IDs
// are never recorded.
//
// "publish ..." (kind Producer) is started by every publish, as a child of
// the span in the publisher's context, with messaging.system "ssekit",
// messaging.operation.name "publish", messaging.operation.type "send", the
// destination attributes above, messaging.message.id (the event ID) and
// ssekit.recipients (connections reached on this node, when known). Its
// context is injected into Message.Metadata, which travels with the
// message across a Bus, so every node can link to it (a publish the
// sampler dropped adds nothing: there would be nothing to link to).
//
// "sse connection" (kind Internal) lasts as long as a stream, as a child of
// the span in the context given to Subscribe or Connect: with otelhttp
// that is the HTTP server span of the stream request, which is why this
// one is not a second Server span. It ends with ssekit.close_reason and
// ssekit.dropped_events, and records replays as events. Like any span it
// is exported when it ends, so a stream shows up in the backend once it
// closes; its deliver spans show up as they happen.
//
// "deliver ..." (kind Consumer) is one span per write of a connection, a
// child of its connection span, with links (up to WithMaxLinks) to the
// publish spans of the events the write carried, messaging.operation.name
// "deliver", messaging.operation.type "process",
// messaging.batch.message_count, ssekit.bytes, and messaging.message.id
// when the write carried one event. Its destination, in its name and
// attributes, is what the events it wrote have in common: a write of a
// topic event and a user event is just "deliver". It starts when the
// oldest linked event was published and ends when the write completed, so
// its length is that event's delivery latency.
//
// # Bounded fan-out
//
// A broadcast to 10,000 connections is 10,000 writes. Deliver spans are
// therefore budgeted per message: on each node, at most
// WithMaxDeliverSpansPerMessage writes (default 10) link a given event;
// writes that carry only events whose budget is spent produce no span. The
// publish span's ssekit.recipients still says how many connections were
// reached. Deliver spans are also only recorded inside a recording
// connection span, so the sampler's decision for a stream holds for all of
// its writes.
//
// # Trace context in the browser
//
// Clients never see Metadata. An application that wants the browser to
// continue the trace puts Traceparent(ctx) in the event data, where ctx is
// the publisher's context (the publish span is its child, so both share
// the trace ID):
//
//	broker.SendToUser(ctx, user, "order.shipped", map[string]any{
//		"order":       42,
//		"traceparent": tracing.Traceparent(ctx),
//	})
//
// In the browser, read it from the event's JSON and use it as the parent
// (for example with W3CTraceContextPropagator.extract in OpenTelemetry JS).
package tracing
