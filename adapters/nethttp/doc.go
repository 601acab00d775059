// Package nethttp serves ssekit streams from any net/http program.
//
//	broker, err := core.New(core.Config{Authenticator: myAuth})
//	if err != nil {
//		log.Fatal(err)
//	}
//	mux := http.NewServeMux()
//	mux.Handle("GET /events", nethttp.Handler(broker))
//	srv := &http.Server{Addr: "localhost:8080", Handler: mux}
//	go srv.ListenAndServe()
//	// ... broker.SendToUser(ctx, user, "notification", payload) ...
//	nethttp.Shutdown(ctx, srv, broker) // streams end with a reconnect hint
//
// A stream request is GET with the topics in repeated "topic" query
// parameters and, on reconnects, a Last-Event-ID header (or a "lastEventId"
// query parameter, for first connects and polyfills). The identity comes
// from core.Config.Authenticator; without one every client is anonymous in
// the default tenant (core.InsecureQueryAuthenticator lets a demo name the
// user in the query).
//
// Statuses on the wire: 400 bad parameters, 401 unauthenticated, 403 topic,
// tenant or origin not allowed, 405 not GET, 500 when the ResponseWriter
// cannot flush. At a connection limit, or while the broker closes, a
// browser gets a 200 stream carrying only a long retry hint and a
// ssekit.rejected event, because EventSource gives up for good on any other
// status; a client that sends "SSEKit-Reject: status" gets 503 (429 for the
// per-user limit) with Retry-After instead. See core.Broker.Reject.
//
// On HTTP/1.x a stream's body is not chunked: it ends when the connection
// closes (the response says "Connection: close"), the framing the SSE
// specification recommends. Chunking would cost every write a chunk header
// and every reader a decoder and a read per chunk, for the one thing it
// adds, a connection reusable after the stream, which an SSE client that
// reconnects does not need. (With it, a reader cannot tell a cut stream
// from an ended one; EventSource treats both alike, by reconnecting.)
//
// A server holding many idle streams can opt into WithTakeover: each
// accepted HTTP/1.x stream then runs on a connection taken over from
// net/http, at about a third of the memory per stream (HTTP/2 streams are
// served as usual). net/http no longer tracks those connections, so such a
// server must stop with Shutdown (or core.Broker.Close), never with
// http.Server.Shutdown alone.
package nethttp
