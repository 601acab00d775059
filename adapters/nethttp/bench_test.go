package nethttp_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

// BenchmarkFanout broadcasts 256-byte events to 100 streams over loopback
// and waits until every client has read every event: one op is one event
// delivered 100 times. The clients only count frames, so that most of the
// CPU measured is the server's. It compares the ordinary handler with
// WithTakeover.
func BenchmarkFanout(b *testing.B) {
	b.Run("Handler", func(b *testing.B) { benchFanout(b) })
	b.Run("Takeover", func(b *testing.B) { benchFanout(b, nethttp.WithTakeover()) })
}

func benchFanout(b *testing.B, opts ...nethttp.Option) {
	const streams = 100
	broker, err := core.New(core.Config{ClientBufferSize: 4096})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: nethttp.Handler(broker, opts...), ReadHeaderTimeout: time.Minute}
	go srv.Serve(ln)
	tr := &http.Transport{MaxIdleConnsPerHost: streams}
	var opened, done sync.WaitGroup
	var received atomic.Int64
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := nethttp.Shutdown(ctx, srv, broker); err != nil {
			b.Error(err)
		}
		done.Wait() // the clients' streams end at Shutdown
		tr.CloseIdleConnections()
	}()

	for range streams {
		opened.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			resp, err := (&http.Client{Transport: tr}).Get("http://" + ln.Addr().String())
			if err != nil {
				b.Error(err)
				opened.Done()
				return
			}
			defer resp.Body.Close()
			opened.Done()
			// Counting frame ends ("\n\n", which chunk framing never
			// forms) keeps the client's share of the CPU small.
			buf := make([]byte, 32<<10)
			var last byte
			for {
				n, err := resp.Body.Read(buf)
				if n > 0 {
					ends := bytes.Count(buf[:n], []byte("\n\n"))
					if last == '\n' && buf[0] == '\n' {
						ends++
					}
					last = buf[n-1]
					received.Add(int64(ends))
				}
				if err != nil {
					return
				}
			}
		}()
	}
	opened.Wait()
	for received.Load() != streams { // every preamble is in
		time.Sleep(time.Millisecond)
	}
	data := strings.Repeat("x", 256)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	catchUp := func(events int) {
		for received.Load() < int64(events+1)*streams {
			time.Sleep(50 * time.Microsecond)
		}
	}
	for i := range b.N {
		if err := broker.Broadcast(ctx, "e", data); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			catchUp(i + 1) // the queues are bounded: let the clients keep up
		}
	}
	catchUp(b.N)
	b.StopTimer()
}
