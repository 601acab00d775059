package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// The burst mode (-workload burst-*) measures what issue 13 is about: an
// application that publishes a burst from inside its own process, with
// the default core.Config, to plain HTTP/1.1 streams that reconnect with
// Last-Event-ID. Each run measures ssekit and the frame-ring reference
// (ring.go) one after the other with the same parameters, each in a
// "loadtest burst-serve" process of its own, so that CPU and peak RSS are
// the server's alone, and prints every figure beside the reference's.

// burstConfig is one burst run.
type burstConfig struct {
	Workload string  `json:"workload"`
	Readers  int     `json:"readers"`
	Slow     int     `json:"slow"`
	SlowRate float64 `json:"slowRate"` // bytes/s
	Never    int     `json:"never"`
	Events   int     `json:"events"`
	Size     int     `json:"size"`
	// Kind is how ssekit publishes: broadcast, topic or user (one
	// SendToUser per user per event). The reference always broadcasts.
	Kind    string   `json:"kind"`
	Servers []string `json:"servers"`
	Late    bool     `json:"lateJoiner"`
	// Warmup runs the burst once, unmeasured, against the last server
	// before the measured runs: the first run of a process otherwise pays
	// for growing this tool's heap and faulting in its clients' buffers,
	// which on two cores cost the first server measured 25-40 % of its
	// throughput against the second.
	Warmup bool `json:"warmup"`
	// Wait bounds the wait for deliveries after the burst; Quiet ends it
	// early once nothing arrived for that long and no client is about to
	// reconnect (a client that got a gap event will never be complete).
	Wait               time.Duration `json:"wait"`
	Quiet              time.Duration `json:"quiet"`
	ConnectConcurrency int           `json:"-"`
	ConnectTimeout     time.Duration `json:"-"`
}

type burstPreset struct {
	about                string
	readers, slow, never int
	events, size         int
}

var burstPresets = map[string]burstPreset{
	"burst-fanout": {about: "1,000 readers, a burst of 2,000 x 128 B", readers: 1000, events: 2000, size: 128},
	"burst-mixed": {about: "200 readers + 5 slow readers (1 MiB/s) + 5 never-readers, a burst of 20,000 x 1 KiB",
		readers: 200, slow: 5, never: 5, events: 20000, size: 1024},
	"burst-custom": {about: "what the flags say (20 readers, 200 x 128 B unless told)", readers: 20, events: 200, size: 128},
}

// burstServers are the servers a run can measure, in the order it does.
var burstServers = []string{"ssekit", "ring"}

// isBurstWorkload reports whether args ask for a burst workload: those
// have their own flags (burstMain).
func isBurstWorkload(args []string) bool {
	for i, a := range args {
		if a == "--" {
			return false
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "workload" {
			continue
		}
		if !hasValue && i+1 < len(args) {
			value = args[i+1]
		}
		return strings.HasPrefix(value, "burst-")
	}
	return false
}

func parseBurstFlags(args []string, stderr io.Writer) (burstConfig, bool, error) {
	var (
		c       burstConfig
		servers string
		asJSON  bool
		noLate  bool
	)
	fs := flag.NewFlagSet("loadtest (burst)", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Workload, "workload", "burst-fanout", "burst-fanout, burst-mixed or burst-custom")
	fs.IntVar(&c.Readers, "readers", -1, "readers: clients that read as fast as they can (preset)")
	fs.IntVar(&c.Slow, "slow", -1, "slow readers, throttled to -slow-rate (preset)")
	fs.Float64Var(&c.SlowRate, "slow-rate", 1<<20, "slow readers' `bytes/s`")
	fs.IntVar(&c.Never, "never", -1, "never-readers: send the request, never read (preset)")
	fs.IntVar(&c.Events, "events", 0, "events in the burst (preset)")
	fs.IntVar(&c.Size, "size", 0, "event data `bytes` (preset)")
	fs.StringVar(&c.Kind, "kind", "broadcast", "how ssekit publishes: broadcast, topic (SendToTopic) or user (SendToUser to each user); the reference broadcasts")
	fs.StringVar(&servers, "servers", strings.Join(burstServers, ","), "servers to measure, in order: ssekit, ring")
	fs.BoolVar(&noLate, "no-late-joiner", false, "skip the late joiner")
	fs.BoolVar(&c.Warmup, "warmup", true, "run the burst once, unmeasured, against the last server first (the first run of the tool is otherwise slower)")
	fs.DurationVar(&c.Wait, "wait", time.Minute, "bound on the wait for deliveries after the burst")
	fs.DurationVar(&c.Quiet, "quiet", 10*time.Second, "end the wait once nothing arrived for this long and no client is reconnecting")
	fs.IntVar(&c.ConnectConcurrency, "connect-concurrency", 64, "connection attempts in flight")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 2*time.Minute, "bound on the connection phase")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return c, false, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadtest: unexpected argument %q\n", fs.Arg(0))
		return c, false, errors.New("usage")
	}
	c.Servers = strings.Split(servers, ",")
	c.Late = !noLate
	c, err := c.withDefaults()
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", strings.ReplaceAll(err.Error(), "\n", "\nloadtest: "))
	}
	return c, asJSON, err
}

// withDefaults fills what is unset (negative counts, zero events or size)
// from the preset and checks the rest.
func (c burstConfig) withDefaults() (burstConfig, error) {
	p, ok := burstPresets[c.Workload]
	if !ok {
		return c, fmt.Errorf("unknown burst workload %q (want burst-fanout, burst-mixed or burst-custom)", c.Workload)
	}
	if c.Readers < 0 {
		c.Readers = p.readers
	}
	if c.Slow < 0 {
		c.Slow = p.slow
	}
	if c.Never < 0 {
		c.Never = p.never
	}
	if c.Events == 0 {
		c.Events = p.events
	}
	if c.Size == 0 {
		c.Size = p.size
	}
	if c.Kind == "" {
		c.Kind = "broadcast"
	}
	if len(c.Servers) == 0 {
		c.Servers = burstServers
	}
	if c.Wait == 0 {
		c.Wait = time.Minute
	}
	if c.Quiet == 0 {
		c.Quiet = 10 * time.Second
	}
	if c.ConnectConcurrency == 0 {
		c.ConnectConcurrency = 64
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 2 * time.Minute
	}
	var errs []error
	if c.Readers+c.Slow < 1 || c.Never < 0 {
		errs = append(errs, errors.New("want at least one reader or slow reader, and -never >= 0"))
	}
	if c.Events < 1 || c.Events > 10_000_000 {
		errs = append(errs, fmt.Errorf("-events must be between 1 and 10,000,000, got %d", c.Events))
	}
	if c.Size < 0 || c.Size > maxBurstSize {
		errs = append(errs, fmt.Errorf("-size must be between 0 and %d, got %d", maxBurstSize, c.Size))
	}
	if c.Slow > 0 && c.SlowRate <= 0 {
		errs = append(errs, errors.New("-slow-rate must be > 0"))
	}
	switch c.Kind {
	case "broadcast", "topic", "user":
	default:
		errs = append(errs, fmt.Errorf("-kind must be broadcast, topic or user, got %q", c.Kind))
	}
	for _, s := range c.Servers {
		if !slices.Contains(burstServers, s) {
			errs = append(errs, fmt.Errorf("-servers: unknown server %q (want ssekit, ring)", s))
		}
	}
	if c.Wait < 0 || c.Quiet < 0 || c.ConnectTimeout < 0 || c.ConnectConcurrency < 1 {
		errs = append(errs, errors.New("timeouts must be > 0, -connect-concurrency >= 1"))
	}
	return c, errors.Join(errs...)
}

// burstMain is the program for a burst workload.
func burstMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, asJSON, err := parseBurstFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	rep, err := runBurst(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		rep.print(stdout)
	}
	if rep.Failed() {
		return 1
	}
	return 0
}

// burstReport is a whole burst run: one burstRun per server.
type burstReport struct {
	Config  burstConfig `json:"config"`
	About   string      `json:"about"`
	Machine machine     `json:"machine"`
	Runs    []*burstRun `json:"runs"`
	// ThroughputRatio is ssekit's delivered events/s over the
	// reference's, when both ran.
	ThroughputRatio float64 `json:"throughputRatio,omitempty"`
	// Checks are ssekit's correctness (a miss fails the run), Targets its
	// performance figures from issue 13 (reported).
	Checks  []check `json:"checks,omitempty"`
	Targets []check `json:"targets,omitempty"`
}

// burstRun is what one server did with the burst.
type burstRun struct {
	Server string     `json:"server"`
	PID    int        `json:"pid"`
	Burst  burstReply `json:"burst"`
	// Readers and Slow count per class; Late is the late joiner.
	Readers classResult     `json:"readers"`
	Slow    classResult     `json:"slow"`
	Late    *lateJoinResult `json:"lateJoiner,omitempty"`
	Never   *neverResult    `json:"neverReaders,omitempty"`
	// DeliveredPerSec is the readers' deliveries (the slow readers' when
	// there are no readers) over the time from the burst's start to the
	// last of them.
	DeliveredPerSec float64 `json:"deliveredPerSec"`
	DeliverySeconds float64 `json:"deliverySeconds"`
	// The server's CPU from just before the burst to the end of the wait,
	// per million events delivered to readers and slow readers.
	CPUSeconds    float64 `json:"cpuSeconds"`
	SystemSeconds float64 `json:"systemSeconds"`
	CPUPerMillion float64 `json:"cpuPerMillion"`
	PeakRSSMiB    float64 `json:"peakRssMiB"`
	// WaitEnded says why the wait for deliveries ended: complete, quiet
	// or timeout.
	WaitEnded        string          `json:"waitEnded"`
	WaitSeconds      float64         `json:"waitSeconds"`
	ClientCPUSeconds float64         `json:"clientCpuSeconds"`
	Stats            json.RawMessage `json:"serverStats,omitempty"`
}

// classResult counts one class of clients.
type classResult struct {
	Clients   int   `json:"clients"`
	Expected  int64 `json:"expected"`  // events x clients
	Received  int64 `json:"received"`  // distinct events received
	Delivered int64 `json:"delivered"` // received + duplicates
	Lost      int64 `json:"lost"`      // expected - received
	Dups      int64 `json:"duplicates"`
	GapEvents int64 `json:"gapEvents"` // ssekit.gap: loss the server owned up to
	Skips     int64 `json:"skips"`     // the stream jumped ahead
	OutOfOrd  int64 `json:"outOfOrder"`
	Unexpect  int64 `json:"unexpected"`
	Complete  int   `json:"complete"` // clients with every event
	Reconn    int64 `json:"reconnects"`
	// Reasons says why streams ended, summed over the clients.
	Reasons map[string]int `json:"reasons,omitempty"`
	last    int64          // unix nanos of the class's last new event
}

type lateJoinResult struct {
	ConnectMs   float64 `json:"connectMs"`
	Got         bool    `json:"got"`
	LatencyMs   float64 `json:"latencyMs"`
	BurstEvents int64   `json:"burstEvents"` // burst events it received (it joined after: 0)
	Error       string  `json:"error,omitempty"`
}

type neverResult struct {
	Count int `json:"count"`
	// CutByServer is how many streams the server had closed by the end:
	// their sockets, drained, ended in EOF or reset.
	CutByServer int   `json:"cutByServer"`
	BytesQueued int64 `json:"bytesQueued"` // what the kernel held for them
}

// runBurst measures each server in cfg.Servers with the same burst.
func runBurst(ctx context.Context, cfg burstConfig, log io.Writer) (*burstReport, error) {
	conns := cfg.Readers + cfg.Slow + cfg.Never + 1
	if _, err := raiseFDLimit(conns + 64); err != nil {
		return nil, err
	}
	bin, err := os.Executable()
	if err != nil {
		return nil, err
	}
	rep := &burstReport{Config: cfg, About: burstPresets[cfg.Workload].about, Machine: machineInfo()}
	if cfg.Warmup && len(cfg.Servers) > 0 {
		name := cfg.Servers[len(cfg.Servers)-1]
		fmt.Fprintf(log, "warm-up: %s, unmeasured ...\n", name)
		if _, err := runBurstServer(ctx, cfg, bin, name, log); err != nil {
			return nil, fmt.Errorf("warm-up %s: %w", name, err)
		}
	}
	for _, name := range cfg.Servers {
		r, err := runBurstServer(ctx, cfg, bin, name, log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		rep.Runs = append(rep.Runs, r)
	}
	rep.Machine.LoadEnd = loadAvg()
	if s, ref := rep.run("ssekit"), rep.run("ring"); s != nil && ref != nil && ref.DeliveredPerSec > 0 {
		rep.ThroughputRatio = s.DeliveredPerSec / ref.DeliveredPerSec
	}
	rep.evaluate()
	return rep, nil
}

func (rep *burstReport) run(server string) *burstRun {
	for _, r := range rep.Runs {
		if r.Server == server {
			return r
		}
	}
	return nil
}

// runBurstServer spawns one burst server and runs the burst against it.
func runBurstServer(ctx context.Context, cfg burstConfig, bin, name string, log io.Writer) (*burstRun, error) {
	srv, err := startChild(ctx, bin, []string{"burst-serve", "-server", name, "-addr", "127.0.0.1:0"}, os.Environ(), "", false, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := srv.stop(); err != nil {
			fmt.Fprintf(log, "%s exit: %v\n%s", name, err, srv.output.String())
		}
	}()
	run := &burstRun{Server: name, PID: srv.pid}
	api := &apiClient{hc: &http.Client{Timeout: 10 * time.Second}, statsURL: srv.url + "/stats"}
	defer api.close()
	stream := srv.url + "/events"

	// Every client runs until the end of this server's run.
	cctx, stopClients := context.WithCancel(ctx)
	var clients []*streamClient
	var lc *streamClient // the late joiner
	defer func() {
		stopClients()
		for _, c := range clients {
			<-c.done
		}
		if lc != nil {
			<-lc.done
		}
	}()
	query := func(topic string) url.Values {
		q := url.Values{"user": {uuid.NewString()}}
		if topic != "" {
			q.Set("topic", topic)
		}
		return q
	}
	topic := ""
	if cfg.Kind == "topic" {
		topic = burstTopic
	}
	fmt.Fprintf(log, "%s: connecting %d readers and %d slow readers to %s ...\n", name, cfg.Readers, cfg.Slow, stream)
	sem := make(chan struct{}, cfg.ConnectConcurrency)
	for i := range cfg.Readers + cfg.Slow {
		class, rate := "reader", 0.0
		if i >= cfg.Readers {
			class, rate = "slow", cfg.SlowRate
		}
		c, err := newStreamClient(class, stream, query(topic), cfg.Events, rate)
		if err != nil {
			return nil, err
		}
		clients = append(clients, c)
		go c.run(cctx, sem)
	}
	t := time.NewTimer(cfg.ConnectTimeout)
	defer t.Stop()
	for _, c := range clients {
		select {
		case <-c.opened:
		case <-t.C:
			return nil, fmt.Errorf("not every stream opened within %v", cfg.ConnectTimeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	var nrs []*nonReader
	defer func() {
		for _, n := range nrs {
			n.close()
		}
	}()
	for range cfg.Never {
		n, err := dialNonReader(ctx, stream, "", topic, 0)
		if err != nil {
			return nil, fmt.Errorf("never-reader: %w", err)
		}
		nrs = append(nrs, n)
	}
	// An opened stream is registered, but a never-reader's response is
	// never read: wait until the server counts it.
	if st, ok := api.waitConnections(ctx, len(clients)+len(nrs), false, 10*time.Second); !ok {
		return nil, fmt.Errorf("the server counts %+v connections, want %d", st, len(clients)+len(nrs))
	}

	cpu0, err := readProc(srv.pid)
	if err != nil {
		return nil, err
	}
	self0, _ := readProc(0)
	fmt.Fprintf(log, "%s: burst of %d x %d B (%s) ...\n", name, cfg.Events, cfg.Size, cfg.Kind)
	if err := postJSON(ctx, fmt.Sprintf("%s/burst?n=%d&size=%d&kind=%s", srv.url, cfg.Events, cfg.Size, cfg.Kind), &run.Burst); err != nil {
		return nil, err
	}
	burstEnd := time.Now()
	fmt.Fprintf(log, "%s: published in %.3fs (%d calls, longest %.2f ms)\n", name, run.Burst.TotalSeconds, run.Burst.Calls, run.Burst.MaxCallMs)

	// The late joiner comes while the server is still busy delivering.
	var late sync.WaitGroup
	if cfg.Late {
		run.Late = &lateJoinResult{}
		c, err := newStreamClient("late", stream, query(lateTopic), cfg.Events, 0)
		if err != nil {
			return nil, err
		}
		lc = c
		late.Go(func() { burstLateJoin(cctx, srv.url, c, run.Late) })
	}

	// Wait until every reader has every event, or it is quiet, or Wait.
	deadline := burstEnd.Add(cfg.Wait)
	want := int64(cfg.Events)
	for {
		complete, pending := true, false
		last := burstEnd.UnixNano()
		for _, c := range clients {
			if c.unique.Load() < want {
				complete = false
			}
			pending = pending || c.between.Load()
			last = max(last, c.lastRecv.Load())
		}
		now := time.Now()
		switch {
		case complete:
			run.WaitEnded = "complete"
		case !pending && now.Sub(time.Unix(0, last)) > cfg.Quiet:
			run.WaitEnded = "quiet"
		case now.After(deadline):
			run.WaitEnded = "timeout"
		}
		if run.WaitEnded != "" || !sleepFor(ctx, 20*time.Millisecond) {
			break
		}
	}
	run.WaitSeconds = time.Since(burstEnd).Seconds()
	late.Wait()
	cpu1, err := readProc(srv.pid)
	if err != nil {
		return nil, err
	}
	self1, _ := readProc(0)
	run.CPUSeconds = (cpu1.CPU - cpu0.CPU).Seconds()
	run.SystemSeconds = (cpu1.System - cpu0.System).Seconds()
	run.PeakRSSMiB = mib(cpu1.HWM)
	run.ClientCPUSeconds = (self1.CPU - self0.CPU).Seconds()
	if st, err := getRaw(ctx, api.hc, api.statsURL); err == nil {
		run.Stats = st
	}
	if len(nrs) > 0 {
		run.Never = drainNeverReaders(nrs)
	}

	stopClients()
	for _, c := range clients {
		<-c.done
	}
	if lc != nil {
		<-lc.done
		run.Late.BurstEvents = lc.unique.Load()
	}
	run.tally(clients, cfg.Events, run.Burst.StartUnixNano)
	fmt.Fprintf(log, "%s: wait ended (%s) after %.1fs\n", name, run.WaitEnded, run.WaitSeconds)
	return run, nil
}

// burstLateJoin connects c after the burst, asks the server for a new event,
// and times it. (lateJoin is the HTTP-publishing mode's.)
func burstLateJoin(ctx context.Context, base string, c *streamClient, lr *lateJoinResult) {
	start := time.Now()
	go c.run(ctx, make(chan struct{}, 1))
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-c.opened:
		lr.ConnectMs = ms(time.Since(start))
	case <-t.C:
		lr.Error = "its stream did not open within 30s"
		return
	case <-ctx.Done():
		return
	}
	if err := postJSON(ctx, base+"/late", nil); err != nil {
		lr.Error = err.Error()
		return
	}
	t.Reset(30 * time.Second)
	select {
	case d := <-c.lateAt:
		lr.Got, lr.LatencyMs = true, ms(d)
	case <-t.C:
		lr.Error = "no new event within 30s"
	case <-ctx.Done():
	}
}

// drainNeverReaders reads what the kernel held for each never-reader and
// whether the server had closed its stream.
func drainNeverReaders(nrs []*nonReader) *neverResult {
	nr := &neverResult{Count: len(nrs)}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range nrs {
		wg.Go(func() {
			// A stream still open runs into the deadline; one the server
			// cut ends once its last bytes are read.
			closed, read, _ := n.drain(2 * time.Second)
			mu.Lock()
			defer mu.Unlock()
			if closed {
				nr.CutByServer++
			}
			nr.BytesQueued += read
		})
	}
	wg.Wait()
	return nr
}

// tally totals the clients by class.
func (r *burstRun) tally(clients []*streamClient, events int, start int64) {
	for _, c := range clients {
		cr := &r.Readers
		if c.class == "slow" {
			cr = &r.Slow
		}
		cr.add(c, events)
	}
	main := r.Readers
	if main.Clients == 0 {
		main = r.Slow
	}
	if main.last > start {
		r.DeliverySeconds = float64(main.last-start) / 1e9
		r.DeliveredPerSec = float64(main.Delivered) / r.DeliverySeconds
	}
	if d := r.Readers.Delivered + r.Slow.Delivered; d > 0 {
		r.CPUPerMillion = r.CPUSeconds / float64(d) * 1e6
	}
}

func (cr *classResult) add(c *streamClient, events int) {
	u := c.unique.Load()
	cr.Clients++
	cr.Expected += int64(events)
	cr.Received += u
	cr.Delivered += u + c.dups
	cr.Lost += int64(events) - u
	cr.Dups += c.dups
	cr.GapEvents += c.gapEvents
	cr.Skips += c.skips
	cr.OutOfOrd += c.outOfOrder
	cr.Unexpect += c.unexpected
	cr.Reconn += c.reconnects.Load()
	if u == int64(events) {
		cr.Complete++
	}
	for k, v := range c.reasons {
		if cr.Reasons == nil {
			cr.Reasons = map[string]int{}
		}
		cr.Reasons[k] += v
	}
	cr.last = max(cr.last, c.lastRecv.Load())
}

// exact reports whether the class got every event exactly once, in order.
func (cr classResult) exact() bool {
	return cr.Lost == 0 && cr.Dups == 0 && cr.GapEvents == 0 && cr.Skips == 0 && cr.OutOfOrd == 0 && cr.Unexpect == 0
}

func postJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	// A burst of millions of calls takes a while; the run's ctx bounds it.
	hc := &http.Client{Timeout: 10 * time.Minute}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("POST %s: %s %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	if v == nil {
		return nil
	}
	return jsonDecode(resp.Body, v)
}

func getRaw(ctx context.Context, hc *http.Client, u string) (json.RawMessage, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	return raw, jsonDecode(resp.Body, &raw)
}
