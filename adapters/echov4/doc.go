// Package sseecho serves ssekit streams from an Echo v4 router
// (github.com/labstack/echo/v4; for Echo v5 see adapters/echo).
//
//	broker, err := core.New(core.Config{Authenticator: myAuth})
//	if err != nil {
//		log.Fatal(err)
//	}
//	e := echo.New()
//	e.GET("/events", sseecho.Handler(broker))
//	go e.Start("localhost:8080")
//	// ... broker.SendToUser(ctx, user, "notification", payload) ...
//	sseecho.Shutdown(ctx, e, broker) // streams end with a reconnect hint
//
// The handler is the net/http adapter's (see package nethttp for the
// request parameters, the statuses and the options, which sseecho
// re-exports: WithCORS, WithErrorLog, WithTakeover), writing to echo's
// Response. Flushes and write deadlines go through http.ResponseController
// to the writer beneath it (c.Response().Writer): a writer that cannot
// flush gets a 500 instead of the panic of echo.Response.Flush, and the
// server's WriteTimeout does not cut the stream.
//
// Graceful shutdown: e.Shutdown alone would wait for streams that never
// end; Shutdown(ctx, e, broker) closes the broker while e shuts down
// (e.Server, and e.TLSServer after e.StartTLS).
//
// Compression: in Echo v4, middleware wrap the writer beneath the
// Response, so the stream goes through them. middleware.Gzip works (it
// flushes the compressed stream at every batch), but it keeps a compressor
// of about 800 KiB per open stream: skip the route with
// GzipConfig.Skipper. Skip it in BodyDump too, which would copy the stream.
package sseecho
