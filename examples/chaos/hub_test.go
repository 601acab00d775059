package chaos

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"

	"github.com/ssekit/ssekit/examples/internal/exampletest"
)

// hubBinary is the hub built once for the package by TestMain.
var hubBinary string

// hubBinaryEnv names a hub binary to attack instead of building one: a
// release build, or an older revision to show that a check catches what
// it is meant to catch.
const hubBinaryEnv = "SSEKIT_CHAOS_HUB"

func TestMain(m *testing.M) {
	if bin := os.Getenv(hubBinaryEnv); bin != "" {
		hubBinary = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "ssekit-chaos-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	hubBinary = filepath.Join(dir, "hub")
	// The real program, built as a user builds it: what is attacked is
	// the binary, its flags and its process, not an in-process stand-in.
	build := exec.Command(goTool(), "build", "-o", hubBinary, "github.com/ssekit/ssekit/examples/hub")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos: building the hub:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// goTool is the go command that runs these tests: go test puts its own
// GOROOT/bin first on the PATH of the test process.
func goTool() string { return "go" }

const (
	// hangGuard bounds every network wait of the suite. It is far beyond
	// anything the hub owes, so it only turns a wedged hub into a
	// failure; no check depends on it being short.
	hangGuard = 20 * time.Second
	// settleGuard bounds the wait for the hub to return to its baseline
	// after an attack.
	settleGuard = 30 * time.Second
	// healthzBudget is the answer time /healthz owes once load stops.
	healthzBudget = 100 * time.Millisecond
	// publishSecret protects the hub's /publish, so that unauthenticated
	// attackers are part of the mix.
	publishSecret = "chaos-secret"
	// bodyTimeout is the hub's -body-timeout in the suite: short, so that
	// trickling bodies end within the run.
	bodyTimeout = 2 * time.Second
	// slack is how many goroutines and descriptors above the baseline
	// still count as "back to baseline": the Go runtime and net/http may
	// keep a few (a timer, a poller) after a storm.
	slack = 5
)

// hubProc is one running hub process.
type hubProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	addr   string
	stderr *syncBuffer
	exited chan struct{}
	// waitErr is the process's exit error, set before exited closes.
	waitErr error
	probe   *http.Client
}

// syncBuffer collects the hub's stderr.
type syncBuffer = exampletest.SyncBuffer

// startHub runs the hub binary on a free loopback port with the suite's
// settings plus args, and stops it (gracefully, checking that it exits
// cleanly) when the test ends.
func startHub(t *testing.T, args ...string) *hubProc {
	t.Helper()
	args = append([]string{
		"-addr", "127.0.0.1:0",
		"-publish-secret", publishSecret,
		"-body-timeout", bodyTimeout.String(),
		"-shutdown-timeout", "5s",
	}, args...)
	cmd := exec.Command(hubBinary, args...)
	// The suite's settings only: an SSEKIT_ variable of the caller's
	// environment would change what is tested.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSEKIT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	h := &hubProc{t: t, cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = h.stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	go func() {
		h.waitErr = cmd.Wait()
		close(h.exited)
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "ssekit hub listening on http://"); ok {
				a, _, _ = strings.Cut(a, " ")
				addr <- a
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case h.addr = <-addr:
	case <-h.exited:
		require.FailNow(t, fmt.Sprintf("the hub exited at start: %v\n%s", h.waitErr, h.stderr))
	case <-time.After(hangGuard):
		_ = cmd.Process.Kill()
		require.FailNow(t, fmt.Sprintf("the hub did not start\n%s", h.stderr))
	}
	// Probes open a connection each, so that they leave nothing behind in
	// the hub's counts.
	h.probe = &http.Client{Timeout: hangGuard, Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(h.stop)
	return h
}

// stop ends the hub with SIGTERM and checks that it shuts down cleanly
// within its -shutdown-timeout (with margin); a hub that does not is
// killed and the test fails.
func (h *hubProc) stop() {
	select {
	case <-h.exited:
		assert.Fail(h.t, fmt.Sprintf("the hub had exited before the end of the test: %v\n%s", h.waitErr, tail(h.stderr.String())))
		return
	default:
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
		assert.NoError(h.t, h.waitErr, "the hub's shutdown failed: %v\n%s", h.waitErr, tail(h.stderr.String()))
	case <-time.After(hangGuard):
		_ = h.cmd.Process.Kill()
		<-h.exited
		assert.Fail(h.t, fmt.Sprintf("the hub did not shut down within %v of SIGTERM\n%s", hangGuard, tail(h.stderr.String())))
	}
}

// tail is the end of a process's output, enough for a panic's trace.
func tail(s string) string {
	if len(s) > 8000 {
		return "...\n" + s[len(s)-8000:]
	}
	return s
}

// requireAlive fails the test at once when the hub process has ended.
func (h *hubProc) requireAlive() {
	h.t.Helper()
	select {
	case <-h.exited:
		require.FailNow(h.t, fmt.Sprintf("the hub process died: %v\n%s", h.waitErr, tail(h.stderr.String())))
	default:
	}
}

// snapshot is what must return to its baseline after an attack.
type snapshot struct {
	goroutines  int
	fds         int
	connections int
}

func (s snapshot) String() string {
	return fmt.Sprintf("%d goroutines, %d descriptors, %d registered connections", s.goroutines, s.fds, s.connections)
}

// snapshot reads the hub's goroutines (go_goroutines of /metrics, which the
// hub serves without pprof), its open descriptors (/proc/<pid>/fd) and its
// registered connections (/stats).
func (h *hubProc) snapshot() (snapshot, error) {
	var s snapshot
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", h.cmd.Process.Pid))
	if err != nil {
		return s, fmt.Errorf("counting descriptors (the suite needs Linux's /proc): %w", err)
	}
	s.fds = len(ents)
	body, err := h.get("/metrics")
	if err != nil {
		return s, err
	}
	for line := range strings.SplitSeq(body, "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return s, fmt.Errorf("go_goroutines %q: %w", v, err)
			}
			s.goroutines = int(f)
		}
	}
	if s.goroutines == 0 {
		return s, errors.New("/metrics has no go_goroutines")
	}
	body, err = h.get("/stats")
	if err != nil {
		return s, err
	}
	var st core.Stats
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return s, fmt.Errorf("/stats: %w: %s", err, body)
	}
	s.connections = st.Connections
	return s, nil
}

// get fetches path from the hub with the publish secret (the hub's
// credential for its figures) and requires a 200.
func (h *hubProc) get(path string) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+publishSecret)
	res, err := h.probe.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %s", path, res.StatusCode, b)
	}
	return string(b), nil
}

// baseline warms the hub up (a stream, a publish, every probed route, so
// that whatever starts lazily has started) and returns its resting state.
func (h *hubProc) baseline() snapshot {
	h.t.Helper()
	c, _, err := openStream(h.addr, "", "")
	require.NoError(h.t, err, "warm-up stream")
	c.Close()
	h.publish(1, 16)
	var s snapshot
	deadline := time.Now().Add(settleGuard)
	for {
		s, err = h.snapshot()
		require.NoError(h.t, err)
		if s.connections == 0 {
			return s
		}
		require.False(h.t, time.Now().After(deadline), "the warm-up stream stays registered: %v", s)
		time.Sleep(50 * time.Millisecond)
	}
}

// settle waits until the hub is back to base (within slack) and then
// checks that /healthz answers within healthzBudget.
func (h *hubProc) settle(base snapshot) {
	h.t.Helper()
	deadline := time.Now().Add(settleGuard)
	var last snapshot
	for {
		h.requireAlive()
		s, err := h.snapshot()
		if err != nil {
			h.requireAlive()
			require.NoError(h.t, err, "reading the hub's state")
		}
		last = s
		if s.connections == 0 && s.goroutines <= base.goroutines+slack && s.fds <= base.fds+slack {
			break
		}
		require.False(h.t, time.Now().After(deadline), "the hub did not return to its baseline within %v:\n  baseline %v\n  now      %v", settleGuard, base, last)
		time.Sleep(100 * time.Millisecond)
	}
	h.t.Logf("baseline %v; after the attack %v", base, last)
	// Each probe opens a connection of its own, as a load balancer does.
	for i := range 3 {
		start := time.Now()
		res, err := h.probe.Get("http://" + h.addr + "/healthz")
		took := time.Since(start)
		require.NoError(h.t, err, "/healthz")
		res.Body.Close()
		require.Equal(h.t, http.StatusOK, res.StatusCode, "/healthz: %d", res.StatusCode)
		assert.LessOrEqual(h.t, took, healthzBudget, "/healthz probe %d answered in %v, want <= %v", i, took, healthzBudget)
	}
	h.requireAlive()
}

// publish publishes n broadcast events of size bytes of data in one
// batch and returns their IDs.
func (h *hubProc) publish(n, size int) []string {
	h.t.Helper()
	ids, err := publishBatch(h.addr, n, size)
	if err != nil {
		h.requireAlive()
		require.NoError(h.t, err)
	}
	return ids
}

func publishBatch(addr string, n, size int) ([]string, error) {
	data := strings.Repeat("x", size)
	var body bytes.Buffer
	body.WriteByte('[')
	for i := range n {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"broadcast":true,"event":"load","data":"%d %s"}`, i, data)
	}
	body.WriteByte(']')
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/publish", &body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+publishSecret)
	c := &http.Client{Timeout: hangGuard, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("publishing: %w", err)
	}
	defer res.Body.Close()
	var out struct {
		IDs   []string `json:"ids"`
		Error string   `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != http.StatusOK || len(out.IDs) != n {
		return nil, fmt.Errorf("publishing %d events: %d %q %v", n, res.StatusCode, out.Error, err)
	}
	return out.IDs, nil
}

// dial connects to addr with the suite's hang guard on every read and
// write.
func dial(addr string) (*net.TCPConn, error) {
	c, err := net.DialTimeout("tcp", addr, hangGuard)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(hangGuard))
	return c.(*net.TCPConn), nil
}

// reset aborts c with a TCP RST (SO_LINGER 0): the hub's next write or
// read on it fails at once, the way a crashed client or a middlebox ends
// a connection.
func reset(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

// streamRequest is a raw stream request; lastID, when set, asks for a
// replay.
func streamRequest(query, lastID string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET /events?%s HTTP/1.1\r\nHost: hub\r\nAccept: text/event-stream\r\n", query)
	if lastID != "" {
		fmt.Fprintf(&b, "Last-Event-ID: %s\r\n", lastID)
	}
	b.WriteString("\r\n")
	return b.String()
}

// openStream opens a stream and reads its response head; the stream is
// registered once the head arrives.
func openStream(addr, query, lastID string) (*net.TCPConn, *http.Response, error) {
	c, err := dial(addr)
	if err != nil {
		return nil, nil, err
	}
	if _, err := io.WriteString(c, streamRequest(query, lastID)); err != nil {
		c.Close()
		return nil, nil, err
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	if res.StatusCode != http.StatusOK {
		c.Close()
		return nil, nil, fmt.Errorf("stream: %d", res.StatusCode)
	}
	return c, res, nil
}

// parallel runs fn(i) for i in [0, n) on at most width goroutines.
func parallel(n, width int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range width {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// counter tallies outcomes of an attack by name, for the log and checks.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[key]++
}

func (c *counter) get(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.n)
}
