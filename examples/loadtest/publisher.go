package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// publisher posts events to the hub's POST /publish.
type publisher struct {
	url    string
	secret string
	hc     *http.Client
	// prefix is the JSON body up to the data string's content.
	prefix []byte
	size   int
	// batch is the number of events per request: 1 sends one JSON object
	// per request, more send a JSON array of up to batch objects.
	batch int
}

func newPublisher(cfg Config) *publisher {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.Publishers + 1,
		DisableCompression:  true,
	}
	return &publisher{
		url:    cfg.PublishURL,
		secret: cfg.Secret,
		hc:     &http.Client{Transport: tr, Timeout: 30 * time.Second},
		prefix: bodyPrefix(cfg.Tenant, cfg.Topic, eventType),
		size:   cfg.Size,
		batch:  max(cfg.Batch, 1),
	}
}

func (p *publisher) close() { p.hc.CloseIdleConnections() }

// bodyPrefix is `{"tenant":..., <target>, "event":..., "data":"`. The data
// the tool sends is digits, spaces and x, which need no escaping.
func bodyPrefix(tenant, topic, typ string) []byte {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	target := `"broadcast":true`
	if topic != "" {
		target = `"topic":` + q(topic)
	}
	return fmt.Appendf(nil, `{"tenant":%s,%s,"event":%s,"data":"`, q(tenant), target, q(typ))
}

// post publishes count events, with sequence numbers first to
// first+count-1, in one request: one JSON object when the publisher's
// batch is 1, else a JSON array. Every event is stamped with the time the
// request started. It returns how many events the server accepted (on an
// error, the hub's answer lists the IDs it published before it failed)
// and how long the call took.
func (p *publisher) post(ctx context.Context, buf []byte, prefix []byte, first, count int) ([]byte, int, time.Duration, error) {
	start := time.Now()
	array := p.batch > 1
	body := buf[:0]
	if array {
		body = append(body, '[')
	}
	for i := range count {
		if i > 0 {
			body = append(body, ',')
		}
		body = appendPayload(append(body, prefix...), first+i, start.UnixNano(), p.size)
		body = append(body, `"}`...)
	}
	if array {
		body = append(body, ']')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return body, 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if p.secret != "" {
		req.Header.Set("Authorization", "Bearer "+p.secret)
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return body, 0, time.Since(start), err
	}
	var answer struct {
		ID    string   `json:"id"`
		IDs   []string `json:"ids"`
		Error string   `json:"error"`
	}
	limit := int64(64<<10 + 64*count)
	derr := json.NewDecoder(io.LimitReader(resp.Body, limit)).Decode(&answer)
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, limit))
	resp.Body.Close()
	took := time.Since(start)
	switch {
	case resp.StatusCode != http.StatusOK:
		// A batch that failed midway lists what was published.
		return body, min(len(answer.IDs), count), took, fmt.Errorf("POST %s: %s: %s", p.url, resp.Status, answer.Error)
	case derr != nil:
		return body, 0, took, fmt.Errorf("POST %s: unreadable answer: %v", p.url, derr)
	case !array && answer.ID == "":
		return body, 0, took, fmt.Errorf("POST %s: answer without an id", p.url)
	case array && (len(answer.IDs) != count || slices.Contains(answer.IDs, "")):
		return body, 0, took, fmt.Errorf("POST %s: %d ids answered for a batch of %d", p.url, len(answer.IDs), count)
	}
	return body, count, took, nil
}

// publishResult is what the publish phase did.
type publishResult struct {
	ok, failed int
	firstErr   error
	published  []bool // by sequence number - 1
	calls      []time.Duration
	start, end time.Time
	cpu        time.Duration // of a publisher process
}

// publishAll publishes events 1..n over HTTP, p.batch per request; see
// publishLoop.
func (p *publisher) publishAll(ctx context.Context, n int, rate float64, workers int) publishResult {
	return publishLoop(ctx, n, rate, workers, p.batch, func(ctx context.Context, buf []byte, first, count int) ([]byte, int, time.Duration, error) {
		return p.post(ctx, buf, p.prefix, first, count)
	})
}

// sendFunc publishes events first..first+count-1 in one call, each
// stamped with the time the call started, using buf as scratch. It
// reports how many of them were published (the first ones; all of them
// when err is nil) and how long the call took.
type sendFunc func(ctx context.Context, buf []byte, first, count int) ([]byte, int, time.Duration, error)

// publishLoop publishes events 1..n with workers loops, batch events per
// call, at rate events/s (0: as fast as possible): a batch is sent when
// its first event is due. It stops early after many failed calls in a
// row.
func publishLoop(ctx context.Context, n int, rate float64, workers, batch int, send sendFunc) publishResult {
	batch = max(batch, 1)
	res := publishResult{published: make([]bool, n), start: time.Now()}
	var (
		next, failedRun atomic.Int64
		mu              sync.Mutex
		wg              sync.WaitGroup
	)
	const maxFailedRun = 50
	for range workers {
		wg.Go(func() {
			var calls []time.Duration
			var buf []byte
			ok, failed := 0, 0
			var firstErr error
			defer func() {
				mu.Lock()
				res.calls = append(res.calls, calls...)
				res.ok += ok
				res.failed += failed
				if res.firstErr == nil {
					res.firstErr = firstErr
				}
				mu.Unlock()
			}()
			for ctx.Err() == nil && failedRun.Load() < maxFailedRun {
				first := int(next.Add(int64(batch))) - batch + 1
				if first > n {
					return
				}
				count := min(batch, n-first+1)
				if rate > 0 {
					due := res.start.Add(time.Duration(float64(first-1) * float64(time.Second) / rate))
					if !sleepUntil(ctx, due) {
						return
					}
				}
				var (
					took time.Duration
					done int
					err  error
				)
				buf, done, took, err = send(ctx, buf, first, count)
				calls = append(calls, took)
				for seq := first; seq < first+done; seq++ {
					res.published[seq-1] = true // each seq is one worker's
				}
				ok += done
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					failed += count - done
					failedRun.Add(1)
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				failedRun.Store(0)
			}
		})
	}
	wg.Wait()
	res.end = time.Now()
	if failedRun.Load() >= maxFailedRun && res.firstErr != nil {
		res.firstErr = fmt.Errorf("gave up after %d failed publishes in a row: %w", maxFailedRun, res.firstErr)
	}
	slices.Sort(res.calls)
	return res
}

// publishLate publishes the late joiner's event to its own topic.
func (p *publisher) publishLate(ctx context.Context, tenant string) (time.Duration, error) {
	_, _, took, err := p.post(ctx, nil, bodyPrefix(tenant, lateTopic, lateType), 1, 1)
	return took, err
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

var errNoStats = errors.New("no stats URL")

// publishReport is what "loadtest publish" prints: publishResult as JSON.
type publishReport struct {
	OK         int     `json:"ok"`
	Failed     int     `json:"failed"`
	FirstError string  `json:"firstError,omitempty"`
	Published  []bool  `json:"published"`
	CallsNs    []int64 `json:"callsNs"`
	StartNs    int64   `json:"startNs"`
	EndNs      int64   `json:"endNs"`
}

// publishMain is "loadtest publish": the publish phase in a process of its
// own. On a small machine the tool's thousand reading goroutines would
// otherwise delay the publisher's every response, and the publish rate
// would measure the tool, not the server.
func publishMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg     Config
		events  int
		timeout time.Duration
	)
	fs.StringVar(&cfg.PublishURL, "url", "", "POST /publish `URL`")
	fs.StringVar(&cfg.Tenant, "tenant", "", "tenant")
	fs.StringVar(&cfg.Topic, "topic", "", "topic (default: broadcast)")
	fs.IntVar(&events, "events", 0, "events to publish")
	fs.Float64Var(&cfg.Rate, "rate", 0, "events per second (0: as fast as possible)")
	fs.IntVar(&cfg.Size, "size", 0, "data bytes")
	fs.IntVar(&cfg.Publishers, "publishers", 1, "concurrent publish loops")
	fs.IntVar(&cfg.Batch, "batch", 1, "events per request (>1: a JSON array)")
	fs.DurationVar(&timeout, "timeout", 15*time.Minute, "bound on the whole phase")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow a non-loopback URL")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cfg.Secret = getenv("SSEKIT_PUBLISH_SECRET")
	if events < 0 || events > 10_000_000 || cfg.Publishers < 1 || cfg.Batch < 1 || cfg.Batch > maxBatch || cfg.PublishURL == "" {
		fmt.Fprintf(stderr, "loadtest publish: want -url, 0 <= -events <= 10,000,000, -publishers >= 1 and 1 <= -batch <= %d\n", maxBatch)
		return 2
	}
	if !cfg.AllowRemote {
		if err := requireLoopback(cfg.PublishURL); err != nil {
			fmt.Fprintln(stderr, "loadtest publish:", err)
			return 2
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	p := newPublisher(cfg)
	defer p.close()
	pr := p.publishAll(ctx, events, cfg.Rate, cfg.Publishers)
	if err := json.NewEncoder(stdout).Encode(pr.report()); err != nil {
		fmt.Fprintln(stderr, "loadtest publish:", err)
		return 1
	}
	return 0
}

// publishInChild runs the publish phase as "loadtest publish" in a
// process of its own and reads its report.
func publishInChild(ctx context.Context, cfg Config) (publishResult, error) {
	exe, err := os.Executable()
	if err != nil {
		return publishResult{}, err
	}
	args := []string{"publish", "-url", cfg.PublishURL, "-events", strconv.Itoa(cfg.Events),
		"-rate", strconv.FormatFloat(cfg.Rate, 'g', -1, 64), "-size", strconv.Itoa(cfg.Size),
		"-publishers", strconv.Itoa(cfg.Publishers), "-batch", strconv.Itoa(max(cfg.Batch, 1)), "-timeout", cfg.Timeout.String()}
	if cfg.Tenant != "" {
		args = append(args, "-tenant", cfg.Tenant)
	}
	if cfg.Topic != "" {
		args = append(args, "-topic", cfg.Topic)
	}
	if cfg.AllowRemote {
		args = append(args, "-allow-remote")
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	// The secret travels in the environment, not in ps.
	cmd.Env = append(os.Environ(), "SSEKIT_PUBLISH_SECRET="+cfg.Secret)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	dieWithParent(cmd)
	if err := cmd.Run(); err != nil {
		return publishResult{}, fmt.Errorf("publisher process: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	var rep publishReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return publishResult{}, fmt.Errorf("publisher process: %w", err)
	}
	pr, err := rep.result(cfg.Events)
	pr.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return pr, err
}

func (pr publishResult) report() publishReport {
	rep := publishReport{OK: pr.ok, Failed: pr.failed, Published: pr.published,
		StartNs: pr.start.UnixNano(), EndNs: pr.end.UnixNano(), CallsNs: make([]int64, len(pr.calls))}
	for i, d := range pr.calls {
		rep.CallsNs[i] = int64(d)
	}
	if pr.firstErr != nil {
		rep.FirstError = pr.firstErr.Error()
	}
	return rep
}

func (rep publishReport) result(events int) (publishResult, error) {
	pr := publishResult{ok: rep.OK, failed: rep.Failed, published: rep.Published,
		start: time.Unix(0, rep.StartNs), end: time.Unix(0, rep.EndNs), calls: make([]time.Duration, len(rep.CallsNs))}
	for i, ns := range rep.CallsNs {
		pr.calls[i] = time.Duration(ns)
	}
	if rep.FirstError != "" {
		pr.firstErr = errors.New(rep.FirstError)
	}
	if len(pr.published) != events {
		return pr, fmt.Errorf("the publisher reported %d events, want %d", len(pr.published), events)
	}
	return pr, nil
}

// publishInServer has a "loadtest serve" server publish the events
// itself, through core.Broker.Publish: the fan-out path without the cost
// of one HTTP request per event.
func publishInServer(ctx context.Context, cfg Config) (publishResult, error) {
	q := url.Values{}
	q.Set("events", strconv.Itoa(cfg.Events))
	q.Set("rate", strconv.FormatFloat(cfg.Rate, 'g', -1, 64))
	q.Set("size", strconv.Itoa(cfg.Size))
	q.Set("publishers", strconv.Itoa(cfg.Publishers))
	q.Set("batch", strconv.Itoa(max(cfg.Batch, 1)))
	q.Set("tenant", cfg.Tenant)
	q.Set("topic", cfg.Topic)
	u, err := url.Parse(cfg.PublishURL)
	if err != nil {
		return publishResult{}, err
	}
	u.Path, u.RawQuery = "/debug/loadtest/publish", q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), nil)
	if err != nil {
		return publishResult{}, err
	}
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return publishResult{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return publishResult{}, errors.New("-publisher server needs a \"loadtest serve\" server (-spawn self): the hub publishes only through POST /publish")
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return publishResult{}, fmt.Errorf("in-server publish: %s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var rep publishReport
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<30)).Decode(&rep); err != nil {
		return publishResult{}, err
	}
	return rep.result(cfg.Events)
}
