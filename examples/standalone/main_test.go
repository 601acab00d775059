package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ssekit/ssekit/internal/leaktest"
)

// hubBin is the hub, built once for the package from ../hub.
var hubBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ssekit-standalone-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hubBin = filepath.Join(dir, "hub")
	build := exec.Command("go", "build", "-o", hubBin, "./hub")
	build.Dir = ".." // the examples module
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the hub: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, append(leaktest.Options(), goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))...)
}

// startHub runs the hub binary on a free loopback port with a publish
// secret and returns its base URL. The process is stopped with SIGTERM at
// the end of the test and must exit cleanly.
func startHub(t *testing.T, secret string) string {
	t.Helper()
	cmd := exec.Command(hubBin, "-addr", "127.0.0.1:0", "-retry", "100ms")
	cmd.Env = append(os.Environ(), "SSEKIT_PUBLISH_SECRET="+secret)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody reads the later lines
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			assert.NoError(t, err, "hub exited with %v, want a clean shutdown", err)
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			assert.Fail(t, "hub did not stop within 15s of SIGTERM")
		}
	})
	timeout := time.After(15 * time.Second)
	for {
		select {
		case line := <-lines:
			// "ssekit hub listening on http://127.0.0.1:PORT (demo page ...)"
			if _, rest, ok := strings.Cut(line, "listening on "); ok {
				url, _, _ := strings.Cut(rest, " ")
				return url
			}
		case err := <-exited:
			require.FailNow(t, fmt.Sprintf("hub exited before listening: %v", err))
		case <-timeout:
			require.FailNow(t, "hub did not report its address within 15s")
		}
	}
}

func createOrder(t *testing.T, svc *httptest.Server, customer uuid.UUID, item string) (order Order, eventID string, pushed bool) {
	t.Helper()
	status, body := post(t, svc.Client(), svc.URL+"/orders", map[string]any{"customer": customer, "item": item})
	require.Equal(t, http.StatusCreated, status, "POST /orders: %d %s", status, body)
	var out struct {
		Order
		EventID string
		Pushed  bool
	}
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	return out.Order, out.EventID, out.Pushed
}

func TestOrderServicePushesThroughTheHub(t *testing.T) {
	hubURL := startHub(t, "s3cret")
	svc := httptest.NewServer(newServer(&Hub{URL: hubURL, Secret: "s3cret"}))
	t.Cleanup(svc.Close)

	customer, someoneElse := uuid.New(), uuid.New()
	browser := subscribe(t, hubURL+"/events?user="+customer.String())
	dashboard := subscribe(t, hubURL+"/events?topic=orders")
	other := subscribe(t, hubURL+"/events?user="+someoneElse.String())

	for i, item := range []string{"book", "lamp"} {
		order, eventID, pushed := createOrder(t, svc, customer, item)
		want := Order{ID: fmt.Sprint(i + 1), Customer: customer, Item: item}
		require.Equal(t, want, order, "got %+v pushed=%v id=%q, want %+v pushed", order, pushed, eventID, want)
		require.True(t, pushed, "got %+v pushed=%v id=%q, want %+v pushed", order, pushed, eventID, want)
		require.NotEqual(t, "", eventID, "got %+v pushed=%v id=%q, want %+v pushed", order, pushed, eventID, want)
		for _, s := range []*stream{browser, dashboard} {
			ev := s.Expect("order.created", want)
			assert.Equal(t, eventID, ev.ID, "event ID %q, the hub answered %q", ev.ID, eventID)
		}
	}
	other.ExpectNone(100 * time.Millisecond)
}

func TestWrongSecretIsReported(t *testing.T) {
	hubURL := startHub(t, "s3cret")
	svc := httptest.NewServer(newServer(&Hub{URL: hubURL, Secret: "guess"}))
	t.Cleanup(svc.Close)
	customer := uuid.New()
	browser := subscribe(t, hubURL+"/events?user="+customer.String())
	_, _, pushed := createOrder(t, svc, customer, "book")
	require.False(t, pushed, "the order says pushed with a wrong secret")
	browser.ExpectNone(100 * time.Millisecond)

	_, err := (&Hub{URL: hubURL, Secret: "guess"}).Publish(context.Background(), HubEvent{Topic: "orders", Event: "x"})
	require.Error(t, err, "Publish with a wrong secret: %v, want the hub's 401", err)
	require.Contains(t, err.Error(), "401", "Publish with a wrong secret: %v, want the hub's 401", err)
}
