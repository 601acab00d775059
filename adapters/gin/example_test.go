package ssegin_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	ssegin "github.com/ssekit/ssekit/adapters/gin"
	"github.com/ssekit/ssekit/core"
)

// Shutdown stops the server and the broker together: the open stream ends
// with a reconnect hint instead of holding the shutdown up.
func ExampleShutdown() {
	broker, err := core.New(core.Config{})
	if err != nil {
		log.Fatal(err)
	}
	r := gin.New()
	r.GET("/events", ssegin.Handler(broker))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)

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
	if err := ssegin.Shutdown(ctx, srv, broker); err != nil {
		log.Fatal(err)
	}
	_, err = events.Next()
	fmt.Println("stream ended:", err, "- reconnect after at least 3s:", events.Retry() >= 3*time.Second)
	// Output:
	// stream ended: EOF - reconnect after at least 3s: true
}
