// Package ssegin serves ssekit streams from a Gin router.
//
//	broker, err := core.New(core.Config{Authenticator: myAuth})
//	if err != nil {
//		log.Fatal(err)
//	}
//	r := gin.New()
//	r.GET("/events", ssegin.Handler(broker))
//	srv := &http.Server{Addr: "localhost:8080", Handler: r}
//	go srv.ListenAndServe()
//	// ... broker.SendToUser(ctx, user, "notification", payload) ...
//	ssegin.Shutdown(ctx, srv, broker) // streams end with a reconnect hint
//
// The handler is the net/http adapter's (see package nethttp for the
// request parameters, the statuses and the options, which ssegin
// re-exports: WithCORS, WithErrorLog, WithTakeover) on gin's writer: it
// streams from the handler's own goroutine with c.Writer and
// c.Request.Context(), never with c.Stream (which needs CloseNotify and
// flushes late) or c.Done() (nil unless the engine sets
// ContextWithFallback).
//
// Graceful shutdown: r.Run blocks with no way to stop it, so serve r with
// an http.Server and stop both with Shutdown, which closes the broker
// while the server shuts down: http.Server.Shutdown alone would wait for
// streams that never end.
//
// Compression: behind gin-contrib/gzip (v1.2.5) the stream goes out
// compressed, and still streams: gzip's writer flushes its compressor at
// every batch, and the handler clears the server's WriteTimeout on the
// connection beneath that writer (TestGzip). But the stream holds a gzip
// writer (about 800 KiB at the default level) for as long as it is open:
// exclude the route with gzip.WithExcludedPaths([]string{"/events"}). With
// WithTakeover, a stream behind gzip is not taken over (gzip has set
// Content-Encoding, which only its writer honours) and is served
// compressed the ordinary way (TestTakeoverBehindGzip).
package ssegin
