package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// run performs one load run as cfg says (cfg has its defaults) and
// returns what it measured. Progress goes to log. It returns an error
// only when the run could not be made; what went wrong in the run (loss,
// duplicates, a subscriber that was not cut) is in Result.Checks.
func run(ctx context.Context, cfg Config, log io.Writer) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	p := presets[cfg.Workload]

	conns := cfg.Subscribers + cfg.NonReaders + 1
	if _, err := raiseFDLimit(conns + 64); err != nil {
		return nil, err
	}

	var srv *child
	if cfg.Spawn != "" {
		var err error
		if srv, err = spawn(ctx, cfg, p.hubArgs, log); err != nil {
			return nil, err
		}
		defer func() {
			if err := srv.stop(); err != nil {
				fmt.Fprintf(log, "server exit: %v\n%s", err, srv.output.String())
			}
		}()
		cfg.URL = srv.url + "/events"
		cfg.ServerPID = srv.pid
	}
	if err := cfg.deriveURLs(); err != nil {
		return nil, err
	}

	res := newResult(cfg, p)
	api := newAPIClient(cfg)
	defer api.close()

	// Baseline, before any stream.
	var base procSample
	if cfg.ServerPID > 0 {
		var err error
		if base, err = serverMemory(ctx, srv, cfg.ServerPID, time.Second, &res.Server.HeapBefore); err != nil {
			return nil, fmt.Errorf("reading server process %d: %w", cfg.ServerPID, err)
		}
	}
	if st, err := api.stats(ctx); err == nil {
		res.StatsBefore = st
	} else if !errors.Is(err, errNoStats) {
		fmt.Fprintf(log, "warning: %v (stats checks skipped)\n", err)
		api.statsURL = ""
	}

	// Connect.
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: -1}
	if cfg.ReaderRcvBuf > 0 {
		dialer.Control = setRcvBuf(cfg.ReaderRcvBuf)
	}
	tr := &http.Transport{DialContext: dialer.DialContext, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	subCtx, stopSubs := context.WithCancel(ctx)
	var subs []*subscriber
	defer func() {
		stopSubs()
		for _, s := range subs {
			<-s.done
		}
	}()
	var topics []string
	if cfg.Topic != "" {
		topics = []string{cfg.Topic}
	}
	fmt.Fprintf(log, "connecting %d subscribers to %s ...\n", cfg.Subscribers, cfg.URL)
	sem := make(chan struct{}, cfg.ConnectConcurrency)
	connectStart := time.Now()
	pause := make(chan struct{})
	unpause := sync.OnceFunc(func() { close(pause) })
	defer unpause()
	for i := range cfg.Subscribers {
		s, err := newSubscriber(cfg.URL, cfg.Tenant, topics, cfg.Events)
		if err != nil {
			return nil, err
		}
		if i < cfg.PauseReaders {
			s.pause, s.pauseAt = pause, cfg.PauseAt
		}
		subs = append(subs, s)
		go s.run(subCtx, hc, sem)
	}
	opened := waitOpened(ctx, subs, cfg.ConnectTimeout)
	res.Connect.Opened, res.Connect.Seconds = opened, time.Since(connectStart).Seconds()
	fmt.Fprintf(log, "%d/%d subscribers open in %.1fs\n", opened, cfg.Subscribers, res.Connect.Seconds)
	if opened == 0 && cfg.Subscribers > 0 {
		return nil, fmt.Errorf("no subscriber could open a stream at %s within %v", cfg.URL, cfg.ConnectTimeout)
	}
	var nrs []*nonReader
	defer func() {
		for _, n := range nrs {
			n.close()
		}
	}()
	for range cfg.NonReaders {
		n, err := dialNonReader(ctx, cfg.URL, cfg.Tenant, cfg.Topic, cfg.NonReaderRcvBuf)
		if err != nil {
			return nil, fmt.Errorf("non-reader: %w", err)
		}
		nrs = append(nrs, n)
	}
	if st, ok := api.waitConnections(ctx, cfg.Subscribers+cfg.NonReaders, false, 10*time.Second); st != nil {
		res.Connect.ServerConnections = st.Connections
		if !ok {
			fmt.Fprintf(log, "warning: the server counts %d connections, want %d\n", st.Connections, cfg.Subscribers+cfg.NonReaders)
		}
	}

	// Memory with every connection open and idle.
	if cfg.ServerPID > 0 {
		fmt.Fprintf(log, "letting the server settle %v before reading its memory ...\n", cfg.Settle)
		idle, err := serverMemory(ctx, srv, cfg.ServerPID, cfg.Settle, &res.Server.HeapIdle)
		if err != nil {
			return nil, err
		}
		res.setMemory(base, idle, cfg.Subscribers+cfg.NonReaders)
		if srv != nil && cfg.MemProfile != "" && cfg.Spawn == "self" {
			if err := srv.post(ctx, "/debug/loadtest/heap?profile=1", nil); err != nil {
				fmt.Fprintf(log, "warning: heap profile: %v\n", err)
			}
		}
	}

	// Publish, and wait for every delivery.
	var cpu0, self0 procSample
	if cfg.ServerPID > 0 {
		cpu0, _ = readProc(cfg.ServerPID)
	}
	self0, _ = readProc(0)
	met0, _ := api.scrapeMetrics(ctx)
	if cfg.CPUProfile != "" {
		if err := srv.post(ctx, "/debug/loadtest/cpu/start", nil); err != nil {
			return nil, err
		}
	}
	pub := newPublisher(cfg)
	defer pub.close()
	fmt.Fprintf(log, "publishing %d events%s ...\n", cfg.Events, rateText(cfg.Rate))
	var pr publishResult
	switch {
	case cfg.Publisher == "inline" || cfg.Events == 0:
		pr = pub.publishAll(ctx, cfg.Events, cfg.Rate, cfg.Publishers)
	case cfg.Publisher == "server":
		var err error
		if pr, err = publishInServer(ctx, cfg); err != nil {
			return nil, err
		}
	default:
		var err error
		if pr, err = publishInChild(ctx, cfg); err != nil {
			return nil, err
		}
	}
	res.setPublish(pr)
	unpause()
	fmt.Fprintf(log, "published %d (%d failed) in %.2fs\n", pr.ok, pr.failed, pr.end.Sub(pr.start).Seconds())

	if cfg.LateJoiner {
		res.LateJoiner = lateJoin(ctx, cfg, hc, pub)
	}

	want := int64(pr.ok)
	deadline := time.Now().Add(cfg.DrainTimeout)
	for {
		var got int64
		for _, s := range subs {
			got += min(s.unique.Load(), want)
		}
		if got >= want*int64(len(subs)) || time.Now().After(deadline) || !sleepFor(ctx, 20*time.Millisecond) {
			break
		}
	}
	if cfg.ServerPID > 0 {
		cpu1, _ := readProc(cfg.ServerPID)
		res.Server.CPUSeconds = (cpu1.CPU - cpu0.CPU).Seconds()
		res.Server.SystemSeconds = (cpu1.System - cpu0.System).Seconds()
		res.Server.RSSAfterMiB = mib(cpu1.RSS)
		res.Server.HWMMiB = mib(cpu1.HWM)
		res.Server.Threads = cpu1.Threads
	}
	self1, _ := readProc(0)
	res.ClientCPUSeconds = (self1.CPU - self0.CPU).Seconds()
	if met1, err := api.scrapeMetrics(ctx); err == nil && met0 != nil {
		res.Metrics = &metricsResult{CPUSeconds: met1.CPUSeconds - met0.CPUSeconds, RSSMiB: met1.RSS / (1 << 20)}
	}
	if cfg.CPUProfile != "" {
		if err := srv.post(ctx, "/debug/loadtest/cpu/stop", nil); err != nil {
			fmt.Fprintf(log, "warning: %v\n", err)
		}
	}
	if st, err := api.stats(ctx); err == nil {
		res.StatsAfter = st
	}

	if len(nrs) > 0 {
		res.NonReaders = checkNonReaders(ctx, api, nrs, log)
	}

	stopSubs()
	for _, s := range subs {
		<-s.done
	}
	res.setDelivery(subs, pr, cfg.Publishers)
	res.Machine.LoadEnd = loadAvg()
	res.evaluate(cfg)
	return res, nil
}

func rateText(rate float64) string {
	if rate > 0 {
		return fmt.Sprintf(" at %g/s", rate)
	}
	return " as fast as possible"
}

// waitOpened waits until every subscriber's first stream opened, or d.
func waitOpened(ctx context.Context, subs []*subscriber, d time.Duration) int {
	t := time.NewTimer(d)
	defer t.Stop()
	n := 0
	for _, s := range subs {
		select {
		case <-s.opened:
			n++
		case <-t.C:
			return n + countOpened(subs[n+1:])
		case <-ctx.Done():
			return n
		}
	}
	return n
}

func countOpened(subs []*subscriber) int {
	n := 0
	for _, s := range subs {
		select {
		case <-s.opened:
			n++
		default:
		}
	}
	return n
}

// serverMemory reads the server's memory once it is stable. A "loadtest
// serve" child is asked to collect garbage and return it to the OS first,
// and reports its live heap; the hub is read after a settle period.
func serverMemory(ctx context.Context, srv *child, pid int, settle time.Duration, heap **memStats) (procSample, error) {
	if srv != nil && srv.self {
		if !sleepFor(ctx, settle) {
			return procSample{}, ctx.Err()
		}
		var ms memStats
		if err := srv.post(ctx, "/debug/loadtest/heap", &ms); err != nil {
			return procSample{}, err
		}
		*heap = &ms
		return readProc(pid)
	}
	return stableRSS(ctx, pid, settle)
}

// lateJoin connects a new subscriber after the burst and measures how
// long an event published then takes to reach it.
func lateJoin(ctx context.Context, cfg Config, hc *http.Client, pub *publisher) *lateResult {
	lr := &lateResult{}
	s, err := newSubscriber(cfg.URL, cfg.Tenant, []string{lateTopic}, 0)
	if err != nil {
		lr.Error = err.Error()
		return lr
	}
	lctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		<-s.done
	}()
	start := time.Now()
	go s.run(lctx, hc, make(chan struct{}, 1))
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-s.opened:
		lr.ConnectMs = ms(time.Since(start))
	case <-t.C:
		lr.Error = "the late joiner's stream did not open within 30s"
		return lr
	case <-ctx.Done():
		return lr
	}
	took, err := pub.publishLate(ctx, cfg.Tenant)
	lr.PublishMs = ms(took)
	if err != nil {
		lr.Error = err.Error()
		return lr
	}
	t.Reset(30 * time.Second)
	select {
	case d := <-s.lateAt:
		lr.Got, lr.LatencyMs = true, ms(d)
	case <-t.C:
		lr.Error = "the late joiner got nothing within 30s"
	case <-ctx.Done():
	}
	return lr
}

// checkNonReaders verifies that the server cut every subscriber that
// never read: it is no longer online, and its socket ends (EOF or reset)
// once drained.
func checkNonReaders(ctx context.Context, api *apiClient, nrs []*nonReader, log io.Writer) *nonReaderResult {
	nr := &nonReaderResult{Count: len(nrs), StillOnline: -1}
	// The server cuts them when their queue overflows; give it a moment
	// in case the burst just ended.
	deadline := time.Now().Add(15 * time.Second)
	for {
		online, err := api.online(ctx)
		if err != nil {
			break
		}
		nr.StillOnline = 0
		for _, n := range nrs {
			if online[n.user] {
				nr.StillOnline++
			}
		}
		if nr.StillOnline == 0 || time.Now().After(deadline) || !sleepFor(ctx, 200*time.Millisecond) {
			break
		}
	}
	if st, err := api.stats(ctx); err == nil {
		nr.DroppedSlowConsumer = st.Dropped["slow_consumer"]
		nr.StatsAvailable = true
	}
	for _, n := range nrs {
		closed, read, err := n.drain(10 * time.Second)
		if closed {
			nr.ClosedByServer++
		}
		nr.BytesBuffered += read
		if err != nil {
			fmt.Fprintf(log, "non-reader: %v\n", err)
		}
	}
	return nr
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// percentile returns the p-th percentile (0-100) of sorted values.
func percentile[T int64 | time.Duration](sorted []T, p float64) T {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func machineInfo() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(v) }

// setDelivery totals what the subscribers received.
func (r *Result) setDelivery(subs []*subscriber, pr publishResult, publishers int) {
	d := &r.Delivery
	d.Expected = int64(pr.ok) * int64(len(subs))
	var lat []int64
	n := 0
	for _, s := range subs {
		n += len(s.lat)
	}
	lat = make([]int64, 0, n)
	var last int64
	reasons := map[string]int{}
	for _, s := range subs {
		u := s.unique.Load()
		d.Unique += u
		d.Duplicates += s.dups
		d.Jumps += s.jumps
		d.OutOfOrder += s.outOfOrder
		d.ServerGapEvents += s.serverGaps
		d.Unexpected += s.unexpected
		rc := s.reconnects.Load()
		d.Reconnects += rc
		if rc > 0 {
			d.SubscribersReconnected++
		}
		if s.err != nil {
			d.ClientErrors++
			reasons["gave up: "+reason(s.err)]++
		}
		for k, v := range s.reasons {
			reasons[k] += v
		}
		missing := int64(0)
		for seq := 1; seq <= len(pr.published); seq++ {
			if pr.published[seq-1] && !s.has(seq) {
				missing++
			}
		}
		d.Loss += missing
		if missing == 0 {
			d.Complete++
		}
		last = max(last, s.lastRecv.Load())
		lat = append(lat, s.lat...)
	}
	d.Delivered = d.Unique + d.Duplicates
	if publishers > 1 {
		d.Jumps, d.OutOfOrder = -1, -1
	}
	if len(reasons) > 0 {
		d.Reasons = reasons
	}
	if last > 0 {
		d.Seconds = time.Unix(0, last).Sub(pr.start).Seconds()
		if d.Seconds > 0 {
			d.PerSecond = float64(d.Delivered) / d.Seconds
		}
	}
	slices.Sort(lat)
	r.Latency = latencyResult{
		Samples: len(lat),
		P50Ms:   ms(time.Duration(percentile(lat, 50))),
		P90Ms:   ms(time.Duration(percentile(lat, 90))),
		P99Ms:   ms(time.Duration(percentile(lat, 99))),
	}
	if len(lat) > 0 {
		r.Latency.MaxMs = ms(time.Duration(lat[len(lat)-1]))
	}
	if r.Server != nil && r.Server.CPUSeconds > 0 && d.Delivered > 0 {
		r.Server.CPUPerMillion = r.Server.CPUSeconds / float64(d.Delivered) * 1e6
	}
	if r.Metrics != nil && d.Delivered > 0 {
		r.Metrics.CPUPerMillion = r.Metrics.CPUSeconds / float64(d.Delivered) * 1e6
	}
}
