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

// With WithTakeover, an HTTP/1.1 stream runs on a connection taken over
// from net/http: the handler returns, and ssekit writes the body to the
// socket itself. http.Server.Shutdown no longer sees such streams: shut down with
// nethttp.Shutdown, which ends them with a reconnect hint and waits until
// their connections are closed.
func ExampleWithTakeover() {
	broker, err := core.New(core.Config{})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/events", nethttp.Handler(broker, nethttp.WithTakeover()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	// The server's timeouts do not apply to taken-over streams.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	go srv.Serve(ln)

	client := &http.Client{Transport: &http.Transport{}}
	resp, err := client.Get("http://" + ln.Addr().String() + "/events?topic=news")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	// The connection ends with the stream: the head says so.
	fmt.Println(resp.Proto, resp.TransferEncoding, "close:", resp.Close)
	ctx := context.Background()
	if err := broker.SendToTopic(ctx, "news", "headline", "taken over"); err != nil {
		log.Fatal(err)
	}
	events := core.NewDecoder(resp.Body)
	ev, err := events.Next()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s\n", ev.Type, ev.Data)

	if err := nethttp.Shutdown(ctx, srv, broker); err != nil {
		log.Fatal(err)
	}
	_, err = events.Next()
	fmt.Println("stream ended:", err)
	client.CloseIdleConnections()
	// Output:
	// HTTP/1.1 [] close: true
	// headline: taken over
	// stream ended: EOF
}
