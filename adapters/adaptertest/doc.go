// Package adaptertest is the conformance suite every ssekit HTTP adapter
// passes: one bar for net/http, Gin, Echo and Fiber alike.
//
// An adapter for a net/http-compatible framework calls Run with a Factory
// that mounts its stream handler at "/events"; Run serves it over HTTP/1.1
// and HTTP/2 itself:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
//
//	func TestConformance(t *testing.T) {
//		adaptertest.Run(t, func(t *testing.T, b *core.Broker) http.Handler {
//			mux := http.NewServeMux()
//			mux.Handle("/events", nethttp.Handler(b))
//			return mux
//		})
//	}
//
// An adapter that runs its own server (fasthttp, Fiber) calls RunServer
// with a ServerFactory that starts the server and returns its base URL.
//
// Each check is a parallel subtest with a broker of its own, configured for
// what it checks; clients are plain http.Clients whose streams are parsed
// with the wire format's decoder (core/sse), exactly as a browser would.
// The checks: response headers; the preamble arriving before anything is
// published; user, topic and broadcast delivery; tenant isolation; replay
// after Last-Event-ID given as a header and as the lastEventId query
// parameter; the gap event; the heartbeat of an idle stream; a client
// leaving (subscription and presence removed); a reader that stalls, which
// must not delay others and is cut; 400, 401 and 403 answers;
// MaxConnections and MaxConnectionsPerUser for browsers (a 200 stream with
// a retry hint and a ssekit.rejected event) and for clients sending
// "SSEKit-Reject: status" (503, 429 with Retry-After); broker Close ending
// every stream with a reconnect hint; a stream outliving the server's
// WriteTimeout.
//
// Beyond the suite, an adapter's own tests share what reaches past a
// Factory: RunCORS checks an adapter's CORS option over both protocols,
// CheckShutdown stops a server the way the adapter documents and checks
// that its streams end at once with a reconnect hint, and CheckStreaming
// checks a stream served behind the framework's own middleware, on a
// broker from NewBroker and a server from Serve (ForEachProto runs a test
// over HTTP/1.1 and HTTP/2).
//
// The suite does not check for leaked goroutines itself, since other tests
// may run in parallel with it: the caller's TestMain must use
// goleak.VerifyTestMain. Every check closes what it opened, so what is left
// is the adapter's.
package adaptertest
