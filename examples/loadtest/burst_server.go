package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"syscall"
	"time"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

// burstTopic is what the readers subscribe to, and the burst is sent to,
// with -kind topic.
const burstTopic = "loadtest-burst"

// burstApp is the application a "loadtest burst-serve" process runs: the
// ssekit broker or the frame-ring reference. Each publishes from inside
// the process, as an application does, when POST /burst asks.
type burstApp interface {
	stream() http.Handler
	// sender returns one publish call of the burst and how many calls one
	// event takes (one, or one per online user for kind "user"), and the
	// kind it really publishes.
	sender(kind string) (send func(ctx context.Context, call int, data []byte) error, calls int, actual string, err error)
	// late publishes the late joiner's event.
	late(ctx context.Context, data []byte) error
	stats() any
	shutdown(ctx context.Context, srv *http.Server) error
}

// ssekitApp is ssekit as an application embeds it: core.New with the
// default Config, nethttp.Handler, and pushes from Go code.
type ssekitApp struct{ b *core.Broker }

func newSSEKitApp() (*ssekitApp, error) {
	// Config{} on purpose: the defaults are what issue 13 measures. The
	// Authenticator is identity, not tuning: SendToUser needs users, and
	// the readers name theirs in the query.
	b, err := core.New(core.Config{Authenticator: core.InsecureQueryAuthenticator()})
	if err != nil {
		return nil, err
	}
	return &ssekitApp{b: b}, nil
}

func (a *ssekitApp) stream() http.Handler { return nethttp.Handler(a.b) }

func (a *ssekitApp) sender(kind string) (func(context.Context, int, []byte) error, int, string, error) {
	switch kind {
	case "broadcast":
		return func(ctx context.Context, _ int, data []byte) error {
			return a.b.Broadcast(ctx, eventType, data)
		}, 1, kind, nil
	case "topic":
		return func(ctx context.Context, _ int, data []byte) error {
			return a.b.SendToTopic(ctx, burstTopic, eventType, data)
		}, 1, kind, nil
	case "user":
		// Every event to every user, one SendToUser each: a notification
		// fanned out by the application, user by user.
		users := a.b.OnlineUsers()
		if len(users) == 0 {
			return nil, 0, kind, errors.New("no user online")
		}
		return func(ctx context.Context, call int, data []byte) error {
			return a.b.SendToUser(ctx, users[call], eventType, data)
		}, len(users), kind, nil
	}
	return nil, 0, kind, fmt.Errorf("unknown kind %q (want broadcast, topic or user)", kind)
}

func (a *ssekitApp) late(ctx context.Context, data []byte) error {
	return a.b.SendToTopic(ctx, lateTopic, lateType, data)
}

func (a *ssekitApp) stats() any { return a.b.Stats() }

func (a *ssekitApp) shutdown(ctx context.Context, srv *http.Server) error {
	return nethttp.Shutdown(ctx, srv, a.b)
}

// ringApp serves the frame-ring reference. Every kind is published as a
// broadcast: it has no users or topics, and with every reader subscribed
// the deliveries are the same.
type ringApp struct{ r *frameRing }

func (a ringApp) stream() http.Handler { return a.r }

func (a ringApp) sender(string) (func(context.Context, int, []byte) error, int, string, error) {
	return func(_ context.Context, _ int, data []byte) error {
		a.r.publish(eventType, data)
		return nil
	}, 1, "broadcast", nil
}

func (a ringApp) late(_ context.Context, data []byte) error {
	a.r.publish(lateType, data)
	return nil
}

func (a ringApp) stats() any { return map[string]int{"connections": a.r.connections()} }

func (a ringApp) shutdown(ctx context.Context, srv *http.Server) error {
	// Hijacked streams are no longer srv's: close them, then srv.
	return errors.Join(a.r.close(ctx), srv.Shutdown(ctx))
}

// burstReply is POST /burst's answer.
type burstReply struct {
	Kind          string  `json:"kind"`
	Events        int     `json:"events"`
	Size          int     `json:"size"`
	Calls         int     `json:"calls"`
	Failed        int     `json:"failed"`
	FirstError    string  `json:"firstError,omitempty"`
	StartUnixNano int64   `json:"startUnixNano"`
	TotalSeconds  float64 `json:"totalSeconds"`
	MaxCallMs     float64 `json:"maxCallMs"`
}

// maxBurstSize bounds -size: the reader's line buffer is 64 KiB.
const maxBurstSize = 32 << 10

// burst is POST /burst?n=&size=&kind=: n events published in a row,
// each call made as soon as the previous one returned, in this process.
// Each event carries its sequence number and publish time.
func burst(app burstApp) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, err1 := strconv.Atoi(q.Get("n"))
		size, err2 := strconv.Atoi(q.Get("size"))
		if err := errors.Join(err1, err2); err != nil || n < 1 || n > 10_000_000 || size < 0 || size > maxBurstSize {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want n (1 to 10,000,000) and size (0 to 32 KiB)"})
			return
		}
		kind := q.Get("kind")
		if kind == "" {
			kind = "broadcast"
		}
		send, calls, actual, err := app.sender(kind)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		rep := burstReply{Kind: actual, Events: n, Size: size}
		buf := make([]byte, 0, size+48)
		var longest time.Duration
		start := time.Now()
		for seq := 1; seq <= n; seq++ {
			t0 := time.Now()
			buf = appendPayload(buf[:0], seq, t0.UnixNano(), size)
			for call := range calls {
				if call > 0 {
					t0 = time.Now()
				}
				err := send(r.Context(), call, buf)
				longest = max(longest, time.Since(t0))
				rep.Calls++
				if err != nil {
					rep.Failed++
					if rep.FirstError == "" {
						rep.FirstError = err.Error()
					}
				}
			}
		}
		rep.StartUnixNano = start.UnixNano()
		rep.TotalSeconds = time.Since(start).Seconds()
		rep.MaxCallMs = ms(longest)
		writeJSON(w, http.StatusOK, rep)
	}
}

// burstServeMain is "loadtest burst-serve": one burst app as its own
// process, so that its CPU and peak RSS are measured alone.
func burstServeMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest burst-serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "loopback `host:port` to listen on")
	which := fs.String("server", "ssekit", "ssekit (nethttp.Handler over core.New(core.Config{})) or ring (the frame-ring reference)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if h, _, err := net.SplitHostPort(*addr); err != nil || requireLoopback("http://"+net.JoinHostPort(h, "1")) != nil {
		fmt.Fprintf(stderr, "loadtest burst-serve: -addr %q: want a loopback host:port\n", *addr)
		return 2
	}
	// A CPU profile of the whole server run, for finding where the time
	// goes: LOADTEST_CPUPROFILE=/tmp/cpu writes /tmp/cpu.ssekit and
	// /tmp/cpu.ring.
	if path := os.Getenv("LOADTEST_CPUPROFILE"); path != "" {
		f, err := os.Create(path + "." + *which)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
	}
	// A runtime trace, for why a publish call waited: LOADTEST_TRACE=/tmp/tr
	// writes /tmp/tr.ssekit and /tmp/tr.ring (read them with go tool trace,
	// or -pprof=sched and -pprof=sync).
	if path := os.Getenv("LOADTEST_TRACE"); path != "" {
		f, err := os.Create(path + "." + *which)
		if err == nil && trace.Start(f) == nil {
			defer f.Close()
			defer trace.Stop()
		}
	}
	var app burstApp
	switch *which {
	case "ssekit":
		a, err := newSSEKitApp()
		if err != nil {
			fmt.Fprintln(stderr, "loadtest burst-serve:", err)
			return 1
		}
		app = a
	case "ring":
		app = ringApp{newFrameRing()}
	default:
		fmt.Fprintf(stderr, "loadtest burst-serve: -server %q: want ssekit or ring\n", *which)
		return 2
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest burst-serve:", err)
		return 1
	}
	mux := http.NewServeMux()
	mux.Handle("/events", app.stream())
	mux.HandleFunc("POST /burst", burst(app))
	mux.HandleFunc("POST /late", func(w http.ResponseWriter, r *http.Request) {
		if err := app.late(r.Context(), appendPayload(nil, 0, time.Now().UnixNano(), 0)); err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, app.stats()) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// An application's server: no WriteTimeout, which would cut streams.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "loadtest burst-serve %s listening on http://%s\n", *which, ln.Addr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	<-ctx.Done()
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = app.shutdown(sctx, srv)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadtest burst-serve:", err)
		return 1
	}
	return 0
}
