package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Targets for the whole HTTP path (issue 4).
const (
	targetCPUPerMillion = 0.2 // server CPU seconds per million delivered events
	targetKiBPerConn    = 20  // server memory per idle connection
	// stallLimit is the publish call time that counts as a stall.
	stallLimit = time.Second
	// lateLimit is how soon a subscriber that joins after the burst must
	// get a new event.
	lateLimit = time.Second
)

// Result is everything one run measured; -json prints it.
type Result struct {
	Workload    string    `json:"workload"`
	About       string    `json:"about"`
	URL         string    `json:"url"`
	Spawned     string    `json:"spawned,omitempty"`
	ServerArgs  []string  `json:"serverArgs,omitempty"`
	Machine     machine   `json:"machine"`
	Subscribers int       `json:"subscribers"`
	NonReaderN  int       `json:"nonReaders"`
	Events      int       `json:"events"`
	Size        int       `json:"size"`
	Rate        float64   `json:"rate"`
	Publishers  int       `json:"publishers"`
	Batch       int       `json:"batch"`
	Started     time.Time `json:"started"`

	Connect struct {
		Opened            int     `json:"opened"`
		Seconds           float64 `json:"seconds"`
		ServerConnections int     `json:"serverConnections"`
	} `json:"connect"`
	Publish struct {
		OK         int     `json:"ok"`
		Failed     int     `json:"failed"`
		Requests   int     `json:"requests"` // publish calls; the call times are per call
		Seconds    float64 `json:"seconds"`
		PerSecond  float64 `json:"perSecond"`
		CallP50Ms  float64 `json:"callP50Ms"`
		CallP99Ms  float64 `json:"callP99Ms"`
		CallMaxMs  float64 `json:"callMaxMs"`
		FirstError string  `json:"firstError,omitempty"`
	} `json:"publish"`
	Delivery   deliveryResult   `json:"delivery"`
	Latency    latencyResult    `json:"latency"`
	NonReaders *nonReaderResult `json:"nonReaderCheck,omitempty"`
	LateJoiner *lateResult      `json:"lateJoiner,omitempty"`
	Server     *serverResult    `json:"server,omitempty"`
	Metrics    *metricsResult   `json:"metrics,omitempty"`
	// ClientCPUSeconds is this tool's own CPU during publish and delivery:
	// on a small machine it competes with the server.
	ClientCPUSeconds float64 `json:"clientCpuSeconds"`
	// PublisherCPUSeconds is the publisher process's CPU, when one ran.
	PublisherCPUSeconds float64   `json:"publisherCpuSeconds,omitempty"`
	StatsBefore         *hubStats `json:"statsBefore,omitempty"`
	StatsAfter          *hubStats `json:"statsAfter,omitempty"`
	Checks              []check   `json:"checks"`
	Targets             []check   `json:"targets"`
}

type machine struct {
	CPUs      int    `json:"cpus"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	LoadStart string `json:"loadStart"`
	LoadEnd   string `json:"loadEnd"`
}

type deliveryResult struct {
	Expected   int64 `json:"expected"`
	Delivered  int64 `json:"delivered"`
	Unique     int64 `json:"unique"`
	Loss       int64 `json:"loss"`
	Duplicates int64 `json:"duplicates"`
	// Jumps counts places where a stream skipped ahead, OutOfOrder events
	// older than one already received; -1 when not counted (several
	// publishers).
	Jumps                  int64          `json:"gaps"`
	OutOfOrder             int64          `json:"outOfOrder"`
	ServerGapEvents        int64          `json:"serverGapEvents"`
	Unexpected             int64          `json:"unexpected"`
	Reconnects             int64          `json:"reconnects"`
	SubscribersReconnected int            `json:"subscribersReconnected"`
	Complete               int            `json:"complete"`
	ClientErrors           int            `json:"clientErrors"`
	Reasons                map[string]int `json:"reasons,omitempty"`
	Seconds                float64        `json:"seconds"`
	PerSecond              float64        `json:"perSecond"`
}

type latencyResult struct {
	Samples int     `json:"samples"`
	P50Ms   float64 `json:"p50Ms"`
	P90Ms   float64 `json:"p90Ms"`
	P99Ms   float64 `json:"p99Ms"`
	MaxMs   float64 `json:"maxMs"`
}

type nonReaderResult struct {
	Count               int    `json:"count"`
	ClosedByServer      int    `json:"closedByServer"`
	StillOnline         int    `json:"stillOnline"` // -1: no /online
	DroppedSlowConsumer uint64 `json:"droppedSlowConsumer"`
	StatsAvailable      bool   `json:"statsAvailable"`
	BytesBuffered       int64  `json:"bytesBuffered"`
}

type lateResult struct {
	Got       bool    `json:"got"`
	ConnectMs float64 `json:"connectMs"`
	PublishMs float64 `json:"publishMs"`
	LatencyMs float64 `json:"latencyMs"`
	Error     string  `json:"error,omitempty"`
}

type serverResult struct {
	PID int `json:"pid"`
	// CPUSeconds is user + system CPU during publish and delivery.
	CPUSeconds    float64 `json:"cpuSeconds"`
	SystemSeconds float64 `json:"systemSeconds"` // the kernel's part of CPUSeconds
	CPUPerMillion float64 `json:"cpuPerMillion"`
	RSSBeforeMiB  float64 `json:"rssBeforeMiB"`
	RSSIdleMiB    float64 `json:"rssIdleMiB"`
	RSSAfterMiB   float64 `json:"rssAfterMiB"`
	HWMMiB        float64 `json:"hwmMiB"`
	Threads       int     `json:"threads"`
	// KiBPerConn is (idle RSS - RSS before) / connections.
	KiBPerConn float64 `json:"kibPerConn"`
	// HeapBefore and HeapIdle are the live figures of a "loadtest serve"
	// server, after a forced GC.
	HeapBefore      *memStats `json:"heapBefore,omitempty"`
	HeapIdle        *memStats `json:"heapIdle,omitempty"`
	LiveKiBPerConn  float64   `json:"liveKiBPerConn,omitempty"`
	HeapKiBPerConn  float64   `json:"heapKiBPerConn,omitempty"`
	StackKiBPerConn float64   `json:"stackKiBPerConn,omitempty"`
}

type metricsResult struct {
	CPUSeconds    float64 `json:"cpuSeconds"`
	CPUPerMillion float64 `json:"cpuPerMillion"`
	RSSMiB        float64 `json:"rssMiB"`
}

type check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func newResult(cfg Config, p preset) *Result {
	r := &Result{
		Workload: cfg.Workload, About: p.about, URL: cfg.URL, Spawned: cfg.Spawn,
		Machine: machineInfo(), Subscribers: cfg.Subscribers, NonReaderN: cfg.NonReaders,
		Events: cfg.Events, Size: cfg.Size, Rate: cfg.Rate, Publishers: cfg.Publishers, Batch: max(cfg.Batch, 1), Started: time.Now(),
	}
	if cfg.Spawn != "" {
		r.ServerArgs = append(slices.Clone(p.hubArgs), cfg.HubArgs...)
	}
	r.About = describe(cfg)
	if cfg.ServerPID > 0 {
		r.Server = &serverResult{PID: cfg.ServerPID}
	}
	return r
}

func (r *Result) setMemory(base, idle procSample, conns int) {
	s := r.Server
	s.RSSBeforeMiB, s.RSSIdleMiB = mib(base.RSS), mib(idle.RSS)
	if conns > 0 {
		s.KiBPerConn = float64(idle.RSS-base.RSS) / 1024 / float64(conns)
		if s.HeapBefore != nil && s.HeapIdle != nil {
			dh := float64(int64(s.HeapIdle.HeapInuse) - int64(s.HeapBefore.HeapInuse))
			ds := float64(int64(s.HeapIdle.StackInuse) - int64(s.HeapBefore.StackInuse))
			s.HeapKiBPerConn = dh / 1024 / float64(conns)
			s.StackKiBPerConn = ds / 1024 / float64(conns)
			s.LiveKiBPerConn = s.HeapKiBPerConn + s.StackKiBPerConn
		}
	}
}

func (r *Result) setPublish(pr publishResult) {
	p := &r.Publish
	p.OK, p.Failed, p.Requests = pr.ok, pr.failed, len(pr.calls)
	p.Seconds = pr.end.Sub(pr.start).Seconds()
	if p.Seconds > 0 {
		p.PerSecond = float64(pr.ok) / p.Seconds
	}
	p.CallP50Ms = ms(percentile(pr.calls, 50))
	p.CallP99Ms = ms(percentile(pr.calls, 99))
	if len(pr.calls) > 0 {
		p.CallMaxMs = ms(pr.calls[len(pr.calls)-1])
	}
	if pr.firstErr != nil {
		p.FirstError = pr.firstErr.Error()
	}
	r.PublisherCPUSeconds = pr.cpu.Seconds()
}

// evaluate sets the pass/fail checks and the targets.
func (r *Result) evaluate(cfg Config) {
	add := func(list *[]check, name string, ok bool, format string, a ...any) {
		*list = append(*list, check{Name: name, OK: ok, Detail: fmt.Sprintf(format, a...)})
	}
	d := r.Delivery
	add(&r.Checks, "subscribers connected", r.Connect.Opened == cfg.Subscribers,
		"%d of %d opened", r.Connect.Opened, cfg.Subscribers)
	add(&r.Checks, "every publish accepted", r.Publish.Failed == 0 && r.Publish.OK == cfg.Events,
		"%d of %d ok", r.Publish.OK, cfg.Events)
	add(&r.Checks, "no loss", d.Loss == 0,
		"%d events missing (%d of %d subscribers complete, %d server gap events)", d.Loss, d.Complete, cfg.Subscribers, d.ServerGapEvents)
	add(&r.Checks, "no duplicates", d.Duplicates == 0, "%d duplicates", d.Duplicates)
	if d.Jumps >= 0 {
		add(&r.Checks, "no gaps, in order", d.Jumps == 0 && d.OutOfOrder == 0,
			"%d gaps, %d out of order", d.Jumps, d.OutOfOrder)
	}
	if len(r.Publish.FirstError) == 0 && r.Publish.OK > 0 {
		add(&r.Checks, "publishing never stalls", r.Publish.CallMaxMs < ms(stallLimit),
			"slowest publish call %.1f ms (limit %v)", r.Publish.CallMaxMs, stallLimit)
	}
	if n := r.NonReaders; n != nil {
		ok := n.ClosedByServer == n.Count && n.StillOnline <= 0 && (!n.StatsAvailable || n.DroppedSlowConsumer > 0)
		add(&r.Checks, "every non-reader disconnected", ok,
			"%d of %d sockets ended by the server, %s, dropped[slow_consumer] %s",
			n.ClosedByServer, n.Count, onlineText(n.StillOnline), statText(n.StatsAvailable, n.DroppedSlowConsumer))
	}
	if l := r.LateJoiner; l != nil {
		add(&r.Checks, "late joiner gets a new event at once", l.Got && l.LatencyMs < ms(lateLimit),
			"%s", lateText(l))
	}

	if cfg.Rate > 0 && r.Publish.OK > 1 {
		add(&r.Targets, "publish rate held", r.Publish.PerSecond >= 0.95*cfg.Rate,
			"%.1f events/s of %g/s", r.Publish.PerSecond, cfg.Rate)
	}
	if s := r.Server; s != nil {
		if d.Delivered >= 100_000 {
			add(&r.Targets, "server CPU per million delivered events", s.CPUPerMillion <= targetCPUPerMillion,
				"%.3f s (target <= %.1f s)", s.CPUPerMillion, targetCPUPerMillion)
		}
		if conns := cfg.Subscribers + cfg.NonReaders; conns >= 1000 {
			add(&r.Targets, "server memory per idle connection", s.KiBPerConn <= targetKiBPerConn,
				"%.1f KiB RSS (target <= %d KiB)", s.KiBPerConn, targetKiBPerConn)
		}
	}
}

// Failed reports whether a check failed.
func (r *Result) Failed() bool {
	return slices.ContainsFunc(r.Checks, func(c check) bool { return !c.OK })
}

// describe says what a run does, in one line.
func describe(cfg Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s subscribers", thousands(int64(cfg.Subscribers)))
	if cfg.PauseReaders > 0 {
		fmt.Fprintf(&b, " (%d pausing after event %d)", cfg.PauseReaders, cfg.PauseAt)
	}
	if cfg.NonReaders > 0 {
		fmt.Fprintf(&b, " + %d that never read", cfg.NonReaders)
	}
	target := "broadcast"
	if cfg.Topic != "" {
		target = "topic " + cfg.Topic
	}
	events := "events"
	if cfg.Events == 1 {
		events = "event"
	}
	fmt.Fprintf(&b, ", %s %s %s", thousands(int64(cfg.Events)), target, events)
	if cfg.Size > 0 {
		fmt.Fprintf(&b, " of %s bytes", thousands(int64(cfg.Size)))
	}
	b.WriteString(rateText(cfg.Rate))
	if cfg.Batch > 1 {
		fmt.Fprintf(&b, ", %s per request", thousands(int64(cfg.Batch)))
	}
	if cfg.Publishers > 1 {
		fmt.Fprintf(&b, " (%d publishers)", cfg.Publishers)
	}
	return b.String()
}

func onlineText(n int) string {
	if n < 0 {
		return "/online not available"
	}
	return fmt.Sprintf("%d still online", n)
}

func statText(ok bool, n uint64) string {
	if !ok {
		return "n/a (no /stats)"
	}
	return fmt.Sprint(n)
}

func lateText(l *lateResult) string {
	if l.Error != "" {
		return l.Error
	}
	return fmt.Sprintf("connected in %.1f ms, event after %.2f ms (publish call %.2f ms)", l.ConnectMs, l.LatencyMs, l.PublishMs)
}

// print writes the human-readable report.
func (r *Result) print(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("")
	p("workload   %s: %s", r.Workload, r.About)
	server := r.URL
	if r.Spawned != "" {
		server += fmt.Sprintf(" (spawned %s)", strings.Join(append([]string{r.Spawned}, r.ServerArgs...), " "))
	}
	p("server     %s", server)
	p("machine    %d CPUs, Linux %s, %s, load average %s at start, %s at end",
		r.Machine.CPUs, r.Machine.Kernel, r.Machine.Go, r.Machine.LoadStart, r.Machine.LoadEnd)
	p("connect    %d/%d subscribers open in %.2fs (+%d non-readers); server counts %d connections",
		r.Connect.Opened, r.Subscribers, r.Connect.Seconds, r.NonReaderN, r.Connect.ServerConnections)
	pub := r.Publish
	p("publish    %d ok, %d failed in %.2fs (%.0f/s); batch %d: %d requests, call time p50 %.2f ms, p99 %.2f ms, max %.2f ms",
		pub.OK, pub.Failed, pub.Seconds, pub.PerSecond, r.Batch, pub.Requests, pub.CallP50Ms, pub.CallP99Ms, pub.CallMaxMs)
	if pub.FirstError != "" {
		p("           first error: %s", pub.FirstError)
	}
	d := r.Delivery
	p("delivery   %s delivered in %.2fs: %s events/s", thousands(d.Delivered), d.Seconds, thousands(int64(d.PerSecond)))
	gaps := "n/a (several publishers)"
	if d.Jumps >= 0 {
		gaps = fmt.Sprintf("%d, out of order %d", d.Jumps, d.OutOfOrder)
	}
	p("           loss %d of %s expected, duplicates %d, gaps %s, server gap events %d",
		d.Loss, thousands(d.Expected), d.Duplicates, gaps, d.ServerGapEvents)
	p("           reconnects %d (%d subscribers), complete subscribers %d/%d", d.Reconnects, d.SubscribersReconnected, d.Complete, r.Subscribers)
	if len(d.Reasons) > 0 {
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range d.Reasons {
				if !yield(k) {
					return
				}
			}
		})
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s x%d", k, d.Reasons[k]))
		}
		p("           streams ended: %s", strings.Join(parts, "; "))
	}
	if d.Unexpected > 0 {
		p("           %d events not from this run were ignored", d.Unexpected)
	}
	l := r.Latency
	p("latency    p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms (publish call start -> received, %s samples)",
		l.P50Ms, l.P90Ms, l.P99Ms, l.MaxMs, thousands(int64(l.Samples)))
	if n := r.NonReaders; n != nil {
		p("non-read   %d of %d never-reading sockets ended by the server (%s buffered before the end), %s, dropped[slow_consumer] %s",
			n.ClosedByServer, n.Count, bytesText(n.BytesBuffered), onlineText(n.StillOnline), statText(n.StatsAvailable, n.DroppedSlowConsumer))
	}
	if lj := r.LateJoiner; lj != nil {
		p("late join  %s", lateText(lj))
	}
	if s := r.Server; s != nil {
		p("server     pid %d: %.2f s CPU (%.2f s system) during publish+delivery = %.3f s per million delivered events; %d threads",
			s.PID, s.CPUSeconds, s.SystemSeconds, s.CPUPerMillion, s.Threads)
		p("           RSS %.1f MiB before connections, %.1f MiB with %d idle connections: %.1f KiB per connection; %.1f MiB at the end (peak %.1f MiB)",
			s.RSSBeforeMiB, s.RSSIdleMiB, r.Subscribers+r.NonReaderN, s.KiBPerConn, s.RSSAfterMiB, s.HWMMiB)
		if s.HeapIdle != nil {
			p("           live after GC: %.1f KiB per connection (heap %.1f + stacks %.1f); %d goroutines",
				s.LiveKiBPerConn, s.HeapKiBPerConn, s.StackKiBPerConn, s.HeapIdle.Goroutines)
		}
	}
	if m := r.Metrics; m != nil {
		p("metrics    process_cpu_seconds_total +%.2f s (%.3f s per million), process_resident_memory_bytes %.1f MiB",
			m.CPUSeconds, m.CPUPerMillion, m.RSSMiB)
	}
	pubCPU := ""
	if r.PublisherCPUSeconds > 0 {
		pubCPU = fmt.Sprintf(", its publisher process %.2f s", r.PublisherCPUSeconds)
	}
	p("client     this tool's subscribers used %.2f s CPU during publish+delivery%s (they share the machine with the server)", r.ClientCPUSeconds, pubCPU)
	if st := r.StatsAfter; st != nil {
		p("stats      connections %d, published %d, sent %d, replayed %d, gaps %d, dropped %v",
			st.Connections, st.Published, st.Sent, st.Replayed, st.Gaps, st.Dropped)
	}
	for _, c := range r.Checks {
		p("check      %-4s %s: %s", okText(c.OK, "ok", "FAIL"), c.Name, c.Detail)
	}
	for _, c := range r.Targets {
		p("target     %-6s %s: %s", okText(c.OK, "met", "MISSED"), c.Name, c.Detail)
	}
}

func okText(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// thousands formats n with comma separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
