package main

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	rpprof "runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

// server is the hub's HTTP path in this process: the same stream handler
// (nethttp over a core.Broker) and the same JSON API for the routes the
// tool uses (/publish, /stats, /online, /healthz). The tests run the
// workloads against it, and "loadtest serve" (-spawn self) runs it as a
// child process with profiling endpoints, which the hub does not have:
//
//	POST /debug/loadtest/cpu/start   start the CPU profile (-cpuprofile)
//	POST /debug/loadtest/cpu/stop    stop it and write the file
//	POST /debug/loadtest/heap        GC, return memory to the OS, write the
//	                                 heap profile (-memprofile); answers
//	                                 runtime.MemStats figures as JSON
//	POST /debug/loadtest/publish     publish the workload's events in-process
//	                                 (core.Broker.Publish, no HTTP per event);
//	                                 answers what "loadtest publish" prints
//	GET  /debug/pprof/...            net/http/pprof
type server struct {
	broker *core.Broker
	srv    *http.Server
	ln     net.Listener
	served chan error

	secret     string
	cpuProfile string
	memProfile string
	cpuMu      sync.Mutex
	cpuFile    *os.File
}

type serverConfig struct {
	addr   string
	broker core.Config
	secret string
	// sndBuf, when > 0, sets SO_SNDBUF on accepted connections: the tests
	// use it so a stalled client backs up within a small burst.
	sndBuf int
	// takeover serves HTTP/1 streams with nethttp.WithTakeover, as the
	// hub does by default.
	takeover   bool
	cpuProfile string
	memProfile string
}

func startServer(cfg serverConfig) (*server, error) {
	cfg.broker.Authenticator = core.InsecureQueryAuthenticator()
	b, err := core.New(cfg.broker)
	if err != nil {
		return nil, err
	}
	if cfg.addr == "" {
		cfg.addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		_ = b.Close(context.Background())
		return nil, err
	}
	if cfg.sndBuf > 0 {
		ln = sndBufListener{ln.(*net.TCPListener), cfg.sndBuf}
	}
	s := &server{broker: b, ln: ln, served: make(chan error, 1), secret: cfg.secret,
		cpuProfile: cfg.cpuProfile, memProfile: cfg.memProfile}
	mux := http.NewServeMux()
	var opts []nethttp.Option
	if cfg.takeover {
		opts = append(opts, nethttp.WithTakeover())
	}
	mux.Handle("/events", nethttp.Handler(b, opts...))
	mux.HandleFunc("POST /publish", s.publish)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, b.Stats()) })
	mux.HandleFunc("GET /online", s.online)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("POST /debug/loadtest/cpu/start", s.cpuStart)
	mux.HandleFunc("POST /debug/loadtest/cpu/stop", s.cpuStop)
	mux.HandleFunc("POST /debug/loadtest/heap", s.heap)
	mux.HandleFunc("POST /debug/loadtest/publish", s.publishBurst)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	// The hub's server settings, so that connections cost the same.
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	go func() { s.served <- s.srv.Serve(ln) }()
	return s, nil
}

func (s *server) url() string { return "http://" + s.ln.Addr().String() }

// close shuts down like the hub: streams end with a reconnect hint.
func (s *server) close(ctx context.Context) error {
	err := nethttp.Shutdown(ctx, s.srv, s.broker)
	if serr := <-s.served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	s.cpuMu.Lock()
	if s.cpuFile != nil {
		rpprof.StopCPUProfile()
		err = errors.Join(err, s.cpuFile.Close())
		s.cpuFile = nil
	}
	s.cpuMu.Unlock()
	return err
}

type sndBufListener struct {
	*net.TCPListener
	n int
}

func (l sndBufListener) Accept() (net.Conn, error) {
	c, err := l.AcceptTCP()
	if err != nil {
		return nil, err
	}
	_ = c.SetWriteBuffer(l.n)
	return c, nil
}

// publishBody is one event of POST /publish.
type publishBody struct {
	Tenant    string          `json:"tenant"`
	User      string          `json:"user"`
	Topic     string          `json:"topic"`
	Broadcast bool            `json:"broadcast"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
}

// message turns one decoded event into a broker message.
func (req publishBody) message() (core.Message, error) {
	m := core.Message{Target: core.Target{Tenant: req.Tenant, Broadcast: req.Broadcast}, Event: core.Event{Type: req.Event}}
	if req.User != "" {
		u, err := uuid.Parse(req.User)
		if err != nil {
			return m, fmt.Errorf("user: %w", err)
		}
		m.Target.Users = []uuid.UUID{u}
	}
	if req.Topic != "" {
		m.Target.Topics = []string{req.Topic}
	}
	if len(req.Data) > 0 && req.Data[0] == '"' {
		if err := json.Unmarshal(req.Data, &m.Event.Data); err != nil {
			return m, fmt.Errorf("data: %w", err)
		}
	} else if len(req.Data) > 0 {
		var buf bytes.Buffer
		_ = json.Compact(&buf, req.Data)
		m.Event.Data = buf.String()
	}
	return m, nil
}

// publish is the hub's POST /publish, minus the detailed error mapping:
// one JSON object, answered {"id"}, or a JSON array of them (a batch),
// answered {"ids"}. A batch is decoded whole before any of it is
// published; the broker's own checks run as each event is published, and
// an error answer carries the IDs published before it.
func (s *server) publish(w http.ResponseWriter, r *http.Request) {
	if s.secret != "" {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(token), []byte(s.secret)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong publish secret"})
			return
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 16<<20))
	if err != nil {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": err.Error()})
		return
	}
	body = bytes.TrimSpace(body)
	batch := len(body) > 0 && body[0] == '['
	var reqs []publishBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if batch {
		err = dec.Decode(&reqs)
		if err == nil && len(reqs) == 0 {
			err = errors.New("empty batch")
		}
	} else {
		reqs = make([]publishBody, 1)
		err = dec.Decode(&reqs[0])
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	msgs := make([]core.Message, len(reqs))
	for i, req := range reqs {
		if msgs[i], err = req.message(); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": err.Error(), "index": i})
			return
		}
	}
	ids := make([]string, 0, len(msgs))
	for _, m := range msgs {
		id, err := s.broker.Publish(r.Context(), m)
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, core.ErrClosed) {
				status = http.StatusServiceUnavailable
			}
			answer := map[string]any{"error": err.Error()}
			if batch {
				answer["ids"] = ids
			}
			writeJSON(w, status, answer)
			return
		}
		ids = append(ids, id)
	}
	if batch {
		writeJSON(w, http.StatusOK, map[string][]string{"ids": ids})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"id": ids[0]})
}

// publishBurst publishes ?events= events in-process, with the payload,
// batching and pacing of the HTTP publisher (?rate=, ?size=, ?batch=,
// ?publishers=, ?tenant=, ?topic=): each call publishes a batch of events
// in a row, stamped with the time the call started.
func (s *server) publishBurst(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	events, err1 := strconv.Atoi(q.Get("events"))
	size, err2 := strconv.Atoi(q.Get("size"))
	workers, err3 := strconv.Atoi(q.Get("publishers"))
	rate, err4 := strconv.ParseFloat(q.Get("rate"), 64)
	batch := 1
	var err5 error
	if v := q.Get("batch"); v != "" {
		batch, err5 = strconv.Atoi(v)
	}
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil || events < 0 || events > 10_000_000 || workers < 1 || batch < 1 || batch > maxBatch {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want events, size, publishers, rate and batch"})
		return
	}
	target := core.Target{Tenant: q.Get("tenant"), Broadcast: q.Get("topic") == ""}
	if t := q.Get("topic"); t != "" {
		target.Topics = []string{t}
	}
	pr := publishLoop(r.Context(), events, rate, workers, batch, func(ctx context.Context, buf []byte, first, count int) ([]byte, int, time.Duration, error) {
		start := time.Now()
		for i := range count {
			buf = appendPayload(buf[:0], first+i, start.UnixNano(), size)
			if _, err := s.broker.Publish(ctx, core.Message{Target: target, Event: core.Event{Type: eventType, Data: string(buf)}}); err != nil {
				return buf, i, time.Since(start), err
			}
		}
		return buf, count, time.Since(start), nil
	})
	writeJSON(w, http.StatusOK, pr.report())
}

func (s *server) online(w http.ResponseWriter, r *http.Request) {
	users := s.broker.Tenant(r.URL.Query().Get("tenant")).OnlineUsers()
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.String()
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) cpuStart(w http.ResponseWriter, _ *http.Request) {
	s.cpuMu.Lock()
	defer s.cpuMu.Unlock()
	if s.cpuProfile == "" || s.cpuFile != nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "no -cpuprofile, or already profiling"})
		return
	}
	f, err := os.Create(s.cpuProfile)
	if err == nil {
		err = rpprof.StartCPUProfile(f)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	s.cpuFile = f
	writeJSON(w, http.StatusOK, map[string]string{"profile": s.cpuProfile})
}

func (s *server) cpuStop(w http.ResponseWriter, _ *http.Request) {
	s.cpuMu.Lock()
	defer s.cpuMu.Unlock()
	if s.cpuFile == nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "not profiling"})
		return
	}
	rpprof.StopCPUProfile()
	err := s.cpuFile.Close()
	s.cpuFile = nil
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"profile": s.cpuProfile})
}

// memStats is the answer of POST /debug/loadtest/heap.
type memStats struct {
	HeapInuse  uint64 `json:"heapInuse"`
	HeapAlloc  uint64 `json:"heapAlloc"`
	StackInuse uint64 `json:"stackInuse"`
	Sys        uint64 `json:"sys"`
	Goroutines int    `json:"goroutines"`
	Profile    string `json:"profile,omitempty"`
}

func (s *server) heap(w http.ResponseWriter, r *http.Request) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out := memStats{HeapInuse: ms.HeapInuse, HeapAlloc: ms.HeapAlloc, StackInuse: ms.StackInuse,
		Sys: ms.Sys, Goroutines: runtime.NumGoroutine()}
	if s.memProfile != "" && r.URL.Query().Get("profile") == "1" {
		f, err := os.Create(s.memProfile)
		if err == nil {
			err = errors.Join(rpprof.Lookup("heap").WriteTo(f, 0), f.Close())
		}
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		out.Profile = s.memProfile
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// serveMain is "loadtest serve": the server above as a process, with the
// hub's flags for the broker settings the workloads use.
func serveMain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg          serverConfig
		historySize  int
		slowConsumer string
	)
	fs.StringVar(&cfg.addr, "addr", "127.0.0.1:0", "`host:port` to listen on")
	fs.StringVar(&cfg.secret, "publish-secret", os.Getenv("SSEKIT_PUBLISH_SECRET"), "bearer `secret` POST /publish requires")
	fs.IntVar(&cfg.broker.ClientBufferSize, "buffer-size", 0, "ClientBufferSize (0: default)")
	fs.StringVar(&slowConsumer, "slow-consumer", "disconnect", "SlowConsumer policy")
	fs.DurationVar(&cfg.broker.HeartbeatInterval, "heartbeat", 0, "HeartbeatInterval (0: default)")
	fs.DurationVar(&cfg.broker.ClientTimeout, "client-timeout", 0, "ClientTimeout (0: default)")
	// -1 leaves HistorySize zero, the broker's default, whatever the core
	// makes of it: the flag does not pin today's default.
	fs.IntVar(&historySize, "history-size", -1, "HistorySize (-1: the broker's default); 0 turns replay off")
	fs.DurationVar(&cfg.broker.RetryHint, "retry", 0, "RetryHint (0: default)")
	fs.IntVar(&cfg.broker.MaxConnections, "max-connections", 0, "MaxConnections")
	fs.IntVar(&cfg.broker.MaxEventSize, "max-event-size", 0, "MaxEventSize (0: default)")
	fs.DurationVar(&cfg.broker.FlushInterval, "flush-interval", 0, "FlushInterval (0: write at once)")
	fs.BoolVar(&cfg.takeover, "takeover", true, "serve HTTP/1 streams with nethttp.WithTakeover, as the hub does")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "CPU profile `file`, written between POST /debug/loadtest/cpu/start and /stop")
	fs.StringVar(&cfg.memProfile, "memprofile", "", "heap profile `file`, written by POST /debug/loadtest/heap?profile=1")
	memRate := fs.Int("memprofilerate", 512, "with -memprofile: runtime.MemProfileRate, bytes per heap sample (1: every allocation)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cfg.memProfile != "" && *memRate > 0 {
		runtime.MemProfileRate = *memRate
	}
	policy, err := core.ParseSlowConsumerPolicy(slowConsumer)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest serve:", err)
		return 2
	}
	cfg.broker.SlowConsumer = policy
	switch {
	case historySize == 0:
		cfg.broker.HistorySize = core.NoHistory
	case historySize > 0:
		cfg.broker.HistorySize = historySize
	}
	if h, _, err := net.SplitHostPort(cfg.addr); err != nil || requireLoopback("http://"+net.JoinHostPort(h, "1")) != nil {
		fmt.Fprintf(stderr, "loadtest serve: -addr %q: want a loopback host:port\n", cfg.addr)
		return 2
	}
	s, err := startServer(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest serve:", err)
		return 1
	}
	fmt.Fprintf(stdout, "ssekit loadtest server listening on %s (stream at /events)\n", s.url())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	<-ctx.Done()
	stop()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.close(sctx); err != nil {
		fmt.Fprintln(stderr, "loadtest serve:", err)
		return 1
	}
	return 0
}
