package wasmclient

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/internal/testenv"
)

// nodeEnv overrides the node binary.
const nodeEnv = "SSEKIT_NODE"

// node returns the Node.js to run the wasm with: SSEKIT_NODE, else node on
// the PATH. Without it the test fails unless SSEKIT_SKIP lists node
// (internal/testenv).
func node(t *testing.T) string {
	t.Helper()
	path := os.Getenv(nodeEnv)
	if path == "" {
		path = "node"
	}
	return testenv.Program(t, "node", "install Node.js 20 or later (its global fetch is what Go's js net/http uses), or set "+nodeEnv, path)
}

// nodeApp is the app running under Node.
type nodeApp struct {
	mu      sync.Mutex
	reports []report
	stderr  syncBuffer
	exited  chan struct{}
	waitErr error
}

func (a *nodeApp) snapshot() []report {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.reports)
}

// runNode starts the wasm app under Node with Go's runner
// (GOROOT/lib/wasm/wasm_exec_node.js), reading stream, and collects its
// reports. The process is killed at the end of the test if it is still
// running (it also ends by itself after appTimeout).
func runNode(t *testing.T, nodeBin, stream string) *nodeApp {
	t.Helper()
	runner := filepath.Join(goroot, "lib", "wasm", "wasm_exec_node.js")
	cmd := exec.Command(nodeBin, runner, appWasm)
	// Go's js net/http sends requests with the Fetch API, except when it
	// believes it runs under Node: there, to keep Go's own tests on a fake
	// network, it checks whether process.argv0 starts with "node"
	// (net/http/roundtrip_js.go, go.dev/issue/57613), and every request
	// then fails with "connect: Connection refused". A program name of
	// our own makes Node's real fetch the transport, as in a browser.
	cmd.Args[0] = "ssekit-wasm"
	cmd.Env = append(os.Environ(), "SSEKIT_WASM_URL="+stream, "SSEKIT_WASM_TIMEOUT="+appTimeout)
	a := &nodeApp{exited: make(chan struct{})}
	cmd.Stderr = &a.stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var r report
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				// Not a report: keep it with stderr for the failure message.
				_, _ = a.stderr.Write(append(sc.Bytes(), '\n'))
				continue
			}
			a.mu.Lock()
			a.reports = append(a.reports, r)
			a.mu.Unlock()
		}
		a.waitErr = cmd.Wait()
		close(a.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-a.exited:
		default:
			_ = cmd.Process.Kill()
			<-a.exited
		}
	})
	return a
}

// TestNode runs the client compiled to js/wasm under Node against the hub
// binary: it connects, receives a user push, a topic push and a broadcast
// (multi-line and non-ASCII data included), not the events meant for
// others, each exactly once and in order, with the IDs the hub assigned,
// then ends on the stop event and exits 0.
func TestNode(t *testing.T) {
	nodeBin := node(t)
	hub := startHub(t, freeAddr(t))
	user, other := uuid.NewString(), uuid.NewString()
	app := runNode(t, nodeBin, streamURL(hub.base, user))
	reports := func() []report {
		rs := app.snapshot()
		select {
		case <-app.exited:
			require.True(t, isDone(rs), "the app exited early: %v\n%s\nstderr:\n%s", app.waitErr, dump(rs), app.stderr.String())
			require.NoError(t, app.waitErr, "the app exited early: %v\n%s\nstderr:\n%s", app.waitErr, dump(rs), app.stderr.String())
		default:
		}
		return rs
	}
	waitFor(t, "the stream to open", startGuard, reports, isOpen)
	hub.waitOnline(user)

	multiLine := "first line\nsecond line: ünïcödé ✓"
	want := []event{
		{hub.publish(`{"user":"` + user + `","event":"notification","data":` + jsonString(multiLine) + `}`), "notification", multiLine},
		{hub.publish(`{"topic":"news","event":"headline","data":{"title":"hello from the hub"}}`), "headline", `{"title":"hello from the hub"}`},
	}
	// Not for this client: another user, a topic it did not subscribe to.
	hub.publish(`{"user":"` + other + `","event":"notification","data":"not for you"}`)
	hub.publish(`{"topic":"sports","event":"headline","data":"not subscribed"}`)
	want = append(want,
		event{hub.publish(`{"broadcast":true,"event":"alert","data":"maintenance at 22:00"}`), "alert", "maintenance at 22:00"},
		event{hub.publish(`{"user":"` + user + `","event":"` + stopType + `"}`), stopType, ""},
	)

	select {
	case <-app.exited:
	case <-time.After(stepGuard):
		require.FailNow(t, fmt.Sprintf("the app did not exit within %v of the stop event; it reported:\n%s\nstderr:\n%s", stepGuard, dump(app.snapshot()), app.stderr.String()))
	}
	rs := app.snapshot()
	require.NoError(t, app.waitErr, "the app failed: %v\n%s\nstderr:\n%s", app.waitErr, dump(rs), app.stderr.String())
	got := events(rs)
	require.True(t, slices.Equal(got, want), "events under Node (want each once, in order):\n got %q\nwant %q\nreports:\n%s", got, want, dump(rs))
	last := rs[len(rs)-1]
	assert.Equal(t, "done", last.Kind, "last report %+v", last)
	assert.Empty(t, last.Error, "last report %+v", last)

	for _, r := range rs {
		assert.NotEqual(t, "retry", r.Kind, "the stream was retried (%s) though the hub never dropped it", r.Error)
	}
	t.Logf("Node received %d events over fetch, each once, in order", len(want))
}
