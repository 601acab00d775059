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
//	nethttp.Shutdown(ctx, srv, broker) // streams end with a reconnect hint
//
// The handler is the net/http adapter's (see package nethttp for the
// request parameters, the statuses and the options) on gin's writer: it
// streams from the handler's own goroutine with c.Writer and
// c.Request.Context(), never with c.Stream (which needs CloseNotify and
// flushes late) or c.Done() (nil unless the engine sets
// ContextWithFallback).
//
// Graceful shutdown: r.Run blocks with no way to stop it, so serve r with
// an http.Server and stop both with nethttp.Shutdown, which closes the
// broker while the server shuts down: http.Server.Shutdown alone would
// wait for streams that never end.
//
// Compression: gin-contrib/gzip in front of the stream works (it flushes
// the compressed stream at every batch, and the handler still clears the
// server's WriteTimeout beneath it), but it keeps a compressor of about
// 800 KiB per open stream: exclude the route with
// gzip.WithExcludedPaths([]string{"/events"}).
package ssegin
