package sseecho_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	sseecho "github.com/ssekit/ssekit/adapters/echov4"
	"github.com/ssekit/ssekit/core"
)

// Shutdown stops the server and the broker together: the open stream ends
// with a reconnect hint instead of holding the shutdown up.
func ExampleShutdown() {
	broker, err := core.New(core.Config{})
	if err != nil {
		log.Fatal(err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/events", sseecho.Handler(broker))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	e.Listener = ln
	go e.Start("")

	// A client opens a stream; once the response headers are in, it is
	// registered.
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + ln.Addr().String() + "/events")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	events := core.NewDecoder(resp.Body)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sseecho.Shutdown(ctx, e, broker); err != nil {
		log.Fatal(err)
	}
	_, err = events.Next()
	fmt.Println("stream ended:", err, "- reconnect after at least 3s:", events.Retry() >= 3*time.Second)
	// Output:
	// stream ended: EOF - reconnect after at least 3s: true
}
