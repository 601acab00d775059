package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// procSample is a process's resource use at one moment, from /proc.
type procSample struct {
	At      time.Time
	CPU     time.Duration // user + system, every thread
	System  time.Duration // system (kernel) part of CPU
	RSS     int64         // bytes (VmRSS)
	HWM     int64         // peak RSS, bytes (VmHWM)
	Threads int
}

// clockTicks is the unit of utime and stime in /proc/<pid>/stat.
var clockTicks = readClockTicks()

// readClockTicks reads AT_CLKTCK from the auxiliary vector (what
// sysconf(_SC_CLK_TCK) returns), without cgo; 100 is the Linux value.
func readClockTicks() int64 {
	const atClkTck = 17
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	for i := 0; i+16 <= len(b); i += 16 {
		key := binary.NativeEndian.Uint64(b[i:])
		if key == atClkTck {
			if v := int64(binary.NativeEndian.Uint64(b[i+8:])); v > 0 {
				return v
			}
		}
		if key == 0 {
			break
		}
	}
	return 100
}

// readProc samples process pid (0: this process).
func readProc(pid int) (procSample, error) {
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	s := procSample{At: time.Now()}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, err
	}
	// The command name, in parentheses, may hold spaces: fields count from
	// the last ')'. utime and stime are fields 14 and 15 of the line.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("%s/stat: unexpected format", dir)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("%s/stat: too few fields", dir)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("%s/stat: bad utime/stime", dir)
	}
	s.CPU = time.Duration(utime+stime) * time.Second / time.Duration(clockTicks)
	s.System = time.Duration(stime) * time.Second / time.Duration(clockTicks)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		kb := func() int64 {
			n, _ := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
			return n << 10
		}
		switch k {
		case "VmRSS":
			s.RSS = kb()
		case "VmHWM":
			s.HWM = kb()
		case "Threads":
			s.Threads, _ = strconv.Atoi(v)
		}
	}
	return s, nil
}

// stableRSS waits settle, then samples pid every half second until two
// readings in a row agree within 1% (or a while passed): the
// reading once the allocator and GC have settled after the connections
// opened.
func stableRSS(ctx context.Context, pid int, settle time.Duration) (procSample, error) {
	if !sleepFor(ctx, settle) {
		return procSample{}, ctx.Err()
	}
	prev, err := readProc(pid)
	if err != nil {
		return prev, err
	}
	// Keep reading for up to four settle periods (1s to 20s).
	deadline := time.Now().Add(min(max(4*settle, time.Second), 20*time.Second))
	for time.Now().Before(deadline) {
		if !sleepFor(ctx, 500*time.Millisecond) {
			return prev, ctx.Err()
		}
		cur, err := readProc(pid)
		if err != nil {
			return prev, err
		}
		d := cur.RSS - prev.RSS
		if d < 0 {
			d = -d
		}
		prev = cur
		if d*100 <= cur.RSS {
			break
		}
	}
	return prev, nil
}

func sleepFor(ctx context.Context, d time.Duration) bool {
	return sleepUntil(ctx, time.Now().Add(d))
}

// hubStats is the hub's GET /stats (core.Broker.Stats).
type hubStats struct {
	Connections int               `json:"connections"`
	Users       int               `json:"users"`
	Topics      int               `json:"topics"`
	Tenants     int               `json:"tenants"`
	Published   uint64            `json:"published"`
	Sent        uint64            `json:"sent"`
	Replayed    uint64            `json:"replayed"`
	Gaps        uint64            `json:"gaps"`
	Dropped     map[string]uint64 `json:"dropped"`
}

// apiClient reads the hub's JSON routes and /metrics.
type apiClient struct {
	hc                              *http.Client
	statsURL, onlineURL, metricsURL string
	tenant                          string
}

func newAPIClient(cfg Config) *apiClient {
	return &apiClient{
		hc:         &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second},
		statsURL:   cfg.StatsURL,
		onlineURL:  cfg.OnlineURL,
		metricsURL: cfg.MetricsURL,
		tenant:     cfg.Tenant,
	}
}

func (a *apiClient) close() { a.hc.CloseIdleConnections() }

func (a *apiClient) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(v)
}

func (a *apiClient) stats(ctx context.Context) (*hubStats, error) {
	if a.statsURL == "" {
		return nil, errNoStats
	}
	var st hubStats
	if err := a.getJSON(ctx, a.statsURL, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// online returns the users connected in the tenant, or nil when the
// server has no /online.
func (a *apiClient) online(ctx context.Context) (map[string]bool, error) {
	if a.onlineURL == "" {
		return nil, errNoStats
	}
	u := a.onlineURL
	if a.tenant != "" {
		u += "?tenant=" + a.tenant
	}
	var users []string
	if err := a.getJSON(ctx, u, &users); err != nil {
		return nil, err
	}
	set := make(map[string]bool, len(users))
	for _, id := range users {
		set[id] = true
	}
	return set, nil
}

// waitConnections polls /stats until the server counts want connections
// (or fewer, with atMost), for at most d.
func (a *apiClient) waitConnections(ctx context.Context, want int, atMost bool, d time.Duration) (*hubStats, bool) {
	deadline := time.Now().Add(d)
	var last *hubStats
	for {
		st, err := a.stats(ctx)
		if err == nil {
			last = st
			if st.Connections == want || atMost && st.Connections < want {
				return st, true
			}
		}
		if time.Now().After(deadline) || !sleepFor(ctx, 100*time.Millisecond) {
			return last, false
		}
	}
}

// metricsSample is what a Prometheus /metrics page says about the process.
type metricsSample struct {
	CPUSeconds float64
	RSS        float64
}

// scrapeMetrics reads process_cpu_seconds_total and
// process_resident_memory_bytes from a Prometheus text page.
func (a *apiClient) scrapeMetrics(ctx context.Context) (*metricsSample, error) {
	if a.metricsURL == "" {
		return nil, errNoStats
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", a.metricsURL, resp.Status)
	}
	var m metricsSample
	found := 0
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for name, dst := range map[string]*float64{
			"process_cpu_seconds_total":     &m.CPUSeconds,
			"process_resident_memory_bytes": &m.RSS,
		} {
			if rest, ok := strings.CutPrefix(line, name+" "); ok {
				if v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64); err == nil {
					*dst = v
					found++
				}
			}
		}
	}
	if found == 0 {
		return nil, fmt.Errorf("%s: no process_cpu_seconds_total or process_resident_memory_bytes", a.metricsURL)
	}
	return &m, sc.Err()
}

// loadAvg returns /proc/loadavg's first three fields.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
