// Package sseecho serves ssekit streams from an Echo v5 router
// (github.com/labstack/echo/v5; for Echo v4 see adapters/echov4).
//
//	broker, err := core.New(core.Config{Authenticator: myAuth})
//	if err != nil {
//		log.Fatal(err)
//	}
//	e := echo.New()
//	e.GET("/events", sseecho.Handler(broker))
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	sc := echo.StartConfig{
//		Address:         "localhost:8080",
//		BeforeServeFunc: sseecho.CloseOnShutdown(broker, 10*time.Second),
//	}
//	err = sc.Start(ctx, e) // on SIGINT/SIGTERM: streams end with a reconnect hint
//
// The handler is the net/http adapter's (see package nethttp for the
// request parameters, the statuses and the options, which sseecho
// re-exports: WithCORS, WithErrorLog, WithTakeover), writing to echo's own
// Response (echo.UnwrapResponse of c.Response()), beneath the writers that
// route middleware put in front of it. So Gzip and BodyDump never see the
// stream: it goes out uncompressed (compressing it would hold a compressor
// per open stream), while the rest of the routes stay compressed. Flushes
// and write deadlines go through http.ResponseController to the server's
// writer: a writer that cannot flush gets a 500 instead of the panic of
// echo.Response.Flush, and the server's WriteTimeout does not cut the
// stream (echo.StartConfig leaves WriteTimeout unset anyway).
//
// Graceful shutdown: with echo.StartConfig, which owns its server, set
// BeforeServeFunc to CloseOnShutdown (above); with an http.Server of your
// own serving e, stop both with Shutdown(ctx, srv, broker), as with every
// other adapter.
package sseecho
