package nethttp_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

// TestSoak opens and closes 10,000 streams in bursts of 500 concurrent ones
// on loopback, each with a user and a topic of its own and each receiving a
// broadcast, and checks that goroutines and heap return to their baseline:
// nothing a connection leaves behind accumulates. It runs with and
// without WithTakeover, whose streams live on goroutines of their own.
func TestSoak(t *testing.T) {
	t.Run("Handler", func(t *testing.T) { soak(t) })
	t.Run("Takeover", func(t *testing.T) { soak(t, nethttp.WithTakeover()) })
}

func soak(t *testing.T, opts ...nethttp.Option) {
	const (
		bursts   = 20
		perBurst = 500
		// Tolerances. The broker's and the server's maps keep the size
		// they had at the peak of a burst (Go maps do not shrink), so the
		// heap is compared with the baseline loosely, and with its size
		// after the first burst closely: 9,500 more connections leaking
		// even 256 bytes each would exceed heapGrowth.
		goroutineSlack = 10
		heapSlack      = 8 << 20
		heapGrowth     = 2 << 20
	)
	b, err := core.New(core.Config{Authenticator: core.InsecureQueryAuthenticator()})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: nethttp.Handler(b, opts...), ReadHeaderTimeout: time.Minute}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	// Streams never go back to the pool: each burst dials anew.
	tr := &http.Transport{DisableKeepAlives: true, MaxIdleConnsPerHost: -1}
	client := &http.Client{Transport: tr}
	url := "http://" + ln.Addr().String() + "/events"
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		assert.NoError(t, nethttp.Shutdown(ctx, srv, b), "Shutdown")
		assert.ErrorIs(t, <-served, http.ErrServerClosed, "Serve")
		tr.CloseIdleConnections()
	}()

	g0, h0 := measure()
	start := time.Now()
	var peakG int
	var peakH, hWarm uint64
	for i := range bursts {
		g, h := burst(t, b, client, url, i, perBurst)
		peakG, peakH = max(peakG, g), max(peakH, h)
		if t.Failed() {
			return
		}
		if i == 0 {
			t0 := time.Now()
			_, hWarm = measure()
			start = start.Add(time.Since(t0))
		}
	}
	took := time.Since(start)

	var g1 int
	var h1 uint64
	settle := time.Now()
	for {
		g1, h1 = measure()
		if g1 <= g0+goroutineSlack && h1 <= h0+heapSlack && h1 <= hWarm+heapGrowth {
			break
		}
		if time.Since(settle) > 30*time.Second {
			assert.Fail(t, fmt.Sprintf("not back to baseline 30s after the last burst: goroutines %d -> %d, heap in use %s -> %s after the first burst -> %s", g0, g1, mib(h0), mib(hWarm), mib(h1)))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d streams in %d bursts of %d in %v (settled %v later); goroutines %d -> peak %d -> %d; heap in use %s -> peak %s -> %s after the first burst -> %s",
		bursts*perBurst, bursts, perBurst, took.Round(time.Millisecond), time.Since(settle).Round(time.Millisecond),
		g0, peakG, g1, mib(h0), mib(peakH), mib(hWarm), mib(h1))
	st := b.Stats()
	assert.False(t, st.Connections != 0 || st.Users != 0 || st.Topics != 0 || st.Sent != bursts*perBurst, "broker after the soak: %+v, want no connection, user or topic left and %d events sent", st, bursts*perBurst)
}

// burst opens n streams at once, broadcasts one event they must all get,
// closes them, and waits until the broker has unregistered them. It
// returns the goroutines and heap in use while they were open.
func burst(t *testing.T, b *core.Broker, client *http.Client, url string, id, n int) (int, uint64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var opened, received, done sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		opened.Add(1)
		received.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			err := stream(ctx, client, fmt.Sprintf("%s?user=%s&topic=t%d-%d", url, uuid.New(), id, i), opened.Done, received.Done)
			if err != nil && ctx.Err() == nil {
				errs <- err
				cancel() // fail fast: no one waits for the others
			}
		}()
	}
	fail := func(what string) {
		cancel()
		done.Wait()
		close(errs)
		assert.Fail(t, fmt.Sprintf("burst %d: %s", id, what))
		for err := range errs {
			assert.Fail(t, fmt.Sprint(err))
			break
		}
	}
	if !wait(ctx, &opened) {
		fail("streams did not open")
		return 0, 0
	}
	if c := b.Stats().Connections; c != n {
		fail(fmt.Sprintf("%d connections open, want %d", c, n))
		return 0, 0
	}
	g := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if err := b.Broadcast(ctx, "tick", id); err != nil {
		fail(err.Error())
		return 0, 0
	}
	if !wait(ctx, &received) {
		fail("the broadcast did not reach every stream")
		return 0, 0
	}
	cancel() // every client leaves at once
	done.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for b.Stats().Connections != 0 || b.Stats().Users != 0 {
		if time.Now().After(deadline) {
			assert.Fail(t, fmt.Sprintf("burst %d: %+v 30s after the clients left", id, b.Stats()))
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return g, ms.HeapInuse
}

// stream is one client: it opens a stream, reads the preamble and the
// broadcast, then holds the stream until ctx ends.
func stream(ctx context.Context, client *http.Client, url string, opened, received func()) error {
	openedOnce, receivedOnce := sync.OnceFunc(opened), sync.OnceFunc(received)
	defer openedOnce()
	defer receivedOnce()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	openedOnce()
	d := core.NewDecoder(resp.Body)
	preamble := false
	d.OnComment = func(text string) { preamble = preamble || text == "ok" }
	ev, err := d.Next()
	if err != nil {
		return err
	}
	if !preamble || ev.Type != "tick" {
		return fmt.Errorf("preamble %v, then event %q, want the preamble then tick", preamble, ev.Type)
	}
	receivedOnce()
	<-ctx.Done()
	return nil
}

// wait waits for wg, or reports false if ctx ends first or after a minute.
func wait(ctx context.Context, wg *sync.WaitGroup) bool {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
	case <-timer.C:
	}
	return false
}

// measure returns the goroutine count and the heap in use after a full
// collection.
func measure() (int, uint64) {
	runtime.GC()
	runtime.GC() // the second cycle frees what sync.Pools held through the first
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapInuse
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
