// Package client is a Go EventSource: it reads a Server-Sent Events stream
// from any server (ssekit's or not) and reconnects the way a browser does,
// resuming with Last-Event-ID so that a server with replay, like ssekit's
// broker, delivers what was missed while the connection was down.
//
// The happy path:
//
//	c, err := client.New("https://api.example.com/events?topic=orders",
//		client.WithHeader("Authorization", "Bearer "+token),
//		client.WithLastEventID(savedID), // resume where the last run stopped
//	)
//	if err != nil {
//		log.Fatal(err)
//	}
//	for ev, err := range c.Events(ctx) { // runs until ctx is done
//		if err != nil {
//			log.Fatal(err) // the client gave up: 401, 403, retries exhausted...
//		}
//		handle(ev.Type, ev.Data)
//	}
//	savedID = c.LastEventID()
//
// Events are parsed with the Decoder of package
// github.com/ssekit/ssekit/core/sse, which follows the WHATWG algorithm to
// the letter, so a Go client sees exactly what a browser sees. The client
// imports only that package of ssekit, never core and its broker. Between
// connections the client waits the server's retry hint (3s when the server
// sent none; "retry: 0" and other hints below MinRetryDelay, 100ms, wait
// that long, so a broken server cannot make clients spin); after
// consecutive failures it backs off exponentially with jitter (see
// Backoff). It gives up, ending Events with an error, on answers
// that cannot succeed however often it retries: 204 No Content, a 4xx
// status other than 408 and 429, and a 200 response that is not
// text/event-stream. 5xx, 408, 429 (honouring Retry-After), network errors
// and dropped streams are retried, without limit unless WithMaxRetries sets
// one.
//
// Unlike a browser, the client sends "SSEKit-Reject: status" (see
// core.RejectModeHeader), so an ssekit server that cannot take the stream
// for now (a connection limit, shutdown, an auth outage) answers 503 or
// 429 with Retry-After instead of the 200 stream it sends browsers; it
// understands that stream too (see WithRejectStatus).
package client
