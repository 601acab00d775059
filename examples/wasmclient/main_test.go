package wasmclient

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssekit/ssekit/internal/leaktest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/examples/internal/exampletest"
)

// Built once for the package by TestMain.
var (
	hubBin  string // examples/hub, native
	appWasm string // ./app, GOOS=js GOARCH=wasm
	// baseWasm is ./baseline for js/wasm, the size test's reference.
	baseWasm string
	goroot   string // the GOROOT of the go that built appWasm: its wasm_exec.js must match
)

// Bounds of the suite's waits. They are far beyond what any step needs on
// a loaded machine, so they only turn a hang into a failure; nothing
// depends on them being short.
const (
	startGuard = 20 * time.Second // a process to start, a browser to load the page
	stepGuard  = 15 * time.Second // an event to arrive, a reconnection
	// appTimeout is the app's own deadline: it ends by itself even if the
	// test dies without stopping it.
	appTimeout = "80s"
	// stopType is the event type that ends the app (app/main.go).
	stopType = "wasmclient.stop"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ssekit-wasmclient-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasmclient:", err)
		os.Exit(1)
	}
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "wasmclient:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, append(leaktest.Options(), goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))...)
}

// build compiles the hub natively, and the app and its size reference as
// js/wasm, into dir, all at once, as a user builds them: what runs is the
// real binary, not an in-process stand-in.
func build(dir string) error {
	hubBin = filepath.Join(dir, "hub")
	appWasm = filepath.Join(dir, "app.wasm")
	baseWasm = filepath.Join(dir, "baseline.wasm")
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %w", err)
	}
	goroot = strings.TrimSpace(string(out))

	hub := exec.Command("go", "build", "-o", hubBin, "./hub")
	hub.Dir = ".." // the examples module
	app := exec.Command("go", "build", "-o", appWasm, "./wasmclient/app")
	app.Dir = ".."
	app.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	base := exec.Command("go", "build", "-o", baseWasm, "./wasmclient/baseline")
	base.Dir = ".."
	base.Env = app.Env
	cmds := []*exec.Cmd{hub, app, base}
	var wg sync.WaitGroup
	errs := make([]error, len(cmds))
	for i, cmd := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// report is one line the app writes (app/main.go).
type report struct {
	Kind  string `json:"kind"`
	State string `json:"state,omitempty"`
	ID    string `json:"id,omitempty"`
	Type  string `json:"type,omitempty"`
	Data  string `json:"data,omitempty"`
	Error string `json:"error,omitempty"`
	Delay string `json:"delay,omitempty"`
}

// event is what the client yielded, as the test compares it.
type event struct{ ID, Type, Data string }

// events picks the events out of the reports, in order.
func events(rs []report) []event {
	var evs []event
	for _, r := range rs {
		if r.Kind == "event" {
			evs = append(evs, event{r.ID, r.Type, r.Data})
		}
	}
	return evs
}

// isOpen reports whether the last state the app reported is open.
func isOpen(rs []report) bool {
	for _, r := range slices.Backward(rs) {
		if r.Kind == "state" {
			return r.State == "open"
		}
	}
	return false
}

func isDone(rs []report) bool {
	return slices.ContainsFunc(rs, func(r report) bool { return r.Kind == "done" })
}

// waitFor polls reports until cond holds, failing the test after timeout
// with what was reported so far.
func waitFor(t *testing.T, what string, timeout time.Duration, reports func() []report, cond func([]report) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rs := reports()
		if cond(rs) {
			return
		}
		require.False(t, time.Now().After(deadline), "timed out after %v waiting for %s; the app reported:\n%s", timeout, what, dump(rs))
		time.Sleep(50 * time.Millisecond)
	}
}

func dump(rs []report) string {
	var b strings.Builder
	for _, r := range rs {
		line, _ := json.Marshal(r)
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// syncBuffer collects a process's output while a test reads it.
type syncBuffer = exampletest.SyncBuffer

// hubProc is one running hub process.
type hubProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	base    string // http://127.0.0.1:PORT
	output  *syncBuffer
	exited  chan struct{}
	waitErr error // set before exited closes
	stopped bool
}

// freeAddr returns a loopback address with a port free right now. The hub
// is given it (rather than port 0) so that a restart can come back on the
// same address, as a real restart does.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startHub runs the hub binary on addr in its default in-memory mode, with
// a short retry hint so that clients come back within a second, and stops
// it when the test ends. Binding is retried for a few seconds, in case the
// previous process's socket is still being released.
func startHub(t *testing.T, addr string) *hubProc {
	t.Helper()
	deadline := time.Now().Add(startGuard)
	for {
		h, listening := tryHub(t, addr)
		if listening {
			t.Cleanup(h.stop)
			return h
		}
		require.Contains(t, h.output.String(), "address already in use", "the hub did not start on %s: %v\n%s", addr, h.waitErr, h.output)
		require.False(t, time.Now().After(deadline), "the hub did not start on %s: %v\n%s", addr, h.waitErr, h.output)
		time.Sleep(100 * time.Millisecond)
	}
}

func tryHub(t *testing.T, addr string) (*hubProc, bool) {
	cmd := exec.Command(hubBin, "-addr", addr, "-retry", "250ms", "-shutdown-timeout", "5s")
	// The suite's settings only: an SSEKIT_ variable of the caller's
	// environment (a publish secret, a history size) would change what is
	// tested.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SSEKIT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	h := &hubProc{t: t, cmd: cmd, output: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = h.output
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			_, _ = h.output.Write([]byte(line + "\n"))
			// "ssekit hub listening on http://127.0.0.1:PORT (demo page ...)"
			if a, ok := strings.CutPrefix(line, "ssekit hub listening on "); ok {
				a, _, _ = strings.Cut(a, " ")
				listening <- a
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		h.waitErr = cmd.Wait()
		close(h.exited)
	}()
	select {
	case h.base = <-listening:
		return h, true
	case <-h.exited:
		return h, false
	case <-time.After(startGuard):
		_ = cmd.Process.Kill()
		<-h.exited
		require.FailNow(t, fmt.Sprintf("the hub did not report listening within %v\n%s", startGuard, h.output))
		return nil, false
	}
}

// stop ends the hub with SIGTERM, as an orchestrator restarting it does,
// and fails the test unless it shuts down cleanly (streams ended with a
// reconnect hint) within its -shutdown-timeout, with margin. It is safe to
// call twice.
func (h *hubProc) stop() {
	if h.stopped {
		return
	}
	h.stopped = true
	select {
	case <-h.exited:
		assert.Fail(h.t, fmt.Sprintf("the hub had exited before it was stopped: %v\n%s", h.waitErr, h.output))
		return
	default:
	}
	_ = h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
		assert.NoError(h.t, h.waitErr, "the hub's shutdown failed: %v\n%s", h.waitErr, h.output)
	case <-time.After(stepGuard):
		_ = h.cmd.Process.Kill()
		<-h.exited
		assert.Fail(h.t, fmt.Sprintf("the hub did not shut down within %v of SIGTERM\n%s", stepGuard, h.output))
	}
}

// api is the test's own HTTP client for /publish, /online and /stats.
var api = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// publish POSTs one event to the hub (open on loopback: no publish secret
// is set) and returns the ID the hub assigned.
func (h *hubProc) publish(body string) string {
	h.t.Helper()
	resp, err := api.Post(h.base+"/publish", "application/json", strings.NewReader(body))
	require.NoError(h.t, err, "publish %s", body)
	defer resp.Body.Close()
	var out struct {
		ID string `json:"id"`
	}
	raw, _ := io.ReadAll(resp.Body)
	require.Equal(h.t, http.StatusOK, resp.StatusCode, "publish %s: %d %s", body, resp.StatusCode, raw)
	require.NoError(h.t, json.Unmarshal(raw, &out), "publish %s: %d %s", body, resp.StatusCode, raw)
	require.NotEmpty(h.t, out.ID, "publish %s: %d %s", body, resp.StatusCode, raw)
	return out.ID
}

// get decodes the JSON answer of GET path.
func (h *hubProc) get(path string, v any) {
	h.t.Helper()
	resp, err := api.Get(h.base + path)
	require.NoError(h.t, err, "GET %s", path)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Equal(h.t, http.StatusOK, resp.StatusCode, "GET %s: %d %s", path, resp.StatusCode, raw)
	require.NoError(h.t, json.Unmarshal(raw, v), "GET %s: body %s", path, raw)

}

// online reports whether the hub has a stream of user (default tenant).
func (h *hubProc) online(user string) bool {
	var users []string
	h.get("/online", &users)
	return slices.Contains(users, user)
}

// waitOnline waits until the hub has registered the user's stream: only
// then is a publish sure to reach it live (the app reports open once the
// response headers arrive).
func (h *hubProc) waitOnline(user string) {
	h.t.Helper()
	deadline := time.Now().Add(stepGuard)
	for !h.online(user) {
		require.False(h.t, time.Now().After(deadline), "the hub did not see user %s online within %v", user, stepGuard)
		time.Sleep(50 * time.Millisecond)
	}
}

// streamURL is the stream of user, subscribed to topic news.
func streamURL(base, user string) string {
	return base + "/events?" + url.Values{"user": {user}, "topic": {"news"}}.Encode()
}

// jsonString quotes s as a JSON string, for publish bodies.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
