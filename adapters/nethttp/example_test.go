package nethttp_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

// A server streams a topic to a client; shutting down ends the stream with
// a reconnect hint.
func Example() {
	broker, err := core.New(core.Config{})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/events", nethttp.Handler(broker))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)

	// A client subscribes to the topic "news". Once the response headers
	// are in, its stream is registered.
	client := &http.Client{Transport: &http.Transport{}}
	resp, err := client.Get("http://" + ln.Addr().String() + "/events?topic=news")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	ctx := context.Background()
	err = broker.SendToTopic(ctx, "news", "headline", map[string]string{"title": "SSE in Go"})
	if err != nil {
		log.Fatal(err)
	}
	events := core.NewDecoder(resp.Body)
	ev, err := events.Next()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s\n", ev.Type, ev.Data)

	// Shutdown ends the stream, telling the client when to come back.
	if err := nethttp.Shutdown(ctx, srv, broker); err != nil {
		log.Fatal(err)
	}
	_, err = events.Next()
	fmt.Println("stream ended:", err, "- reconnect after at least 3s:", events.Retry() >= 3*time.Second)
	client.CloseIdleConnections()
	// Output:
	// headline: {"title":"SSE in Go"}
	// stream ended: EOF - reconnect after at least 3s: true
}
