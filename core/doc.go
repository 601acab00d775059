// Package core is the transport-agnostic heart of ssekit: a broker that
// routes Server-Sent Events to users, topics and whole tenants, replays what
// reconnecting clients missed, bounds its memory in bytes by the history
// window (Config.HistoryBytes, HistoryAge), and writes each stream through
// a tiny Stream interface that HTTP adapters implement.
//
// The happy path, with the net/http adapter doing Connect and Serve:
//
//	broker, err := core.New(core.Config{})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer broker.Close(context.Background())
//	http.Handle("/events", nethttp.Handler(broker))
//	go http.ListenAndServe("localhost:8080", nil)
//	broker.SendToUser(ctx, userID, "notification", map[string]any{"unread": 3})
//	broker.SendToTopic(ctx, "orders/eu", "order.created", order)
//	broker.Broadcast(ctx, "announcement", "maintenance at 22:00")
//
// Every push happens inside a tenant (Broker.Tenant; the methods on Broker
// use the default tenant ""), gets an event ID from the History, is encoded
// once, and reaches each matching connection as a reference to that shared
// frame, without ever blocking the publisher. A connection's writer takes
// everything pending when it wakes and writes it in batches, so bursts
// coalesce into few writes. A client that reconnects with Last-Event-ID
// receives exactly the events it missed that it is entitled to, or a
// GapEventType event when they are no longer in the history.
//
// core builds for GOOS=js and GOOS=wasip1: it imports nothing of net/http,
// and no network code of its own.
package core
