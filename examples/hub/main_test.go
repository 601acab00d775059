package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssekit/ssekit/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/examples/internal/exampletest"
)

// runMainEnv makes the test binary run main() instead of the tests, so a
// test can check the real process: exit status and stderr.
const runMainEnv = "SSEKIT_HUB_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Args = append([]string{"hub"}, strings.Fields(os.Getenv(runMainEnv+"_ARGS"))...)
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// runMain runs the test binary as the hub with args and extra environment.
func runMain(t *testing.T, args string, env ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), runMainEnv+"=1", runMainEnv+"_ARGS="+args)
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		require.NoError(t, err, "running the hub")
	}
	return code, out.String(), errb.String()
}

func TestMainExitStatus(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	tests := []struct {
		name, args string
		env        []string
		code       int
		stderr     string
	}{
		{"help", "-h", nil, 0, "SSEKIT_MAX_EVENT_SIZE"},
		{"bad flag value", "-buffer-size x", nil, 2, "-buffer-size"},
		{"unknown flag", "-nope", nil, 2, "flag provided but not defined: -nope"},
		{"invalid config", "-heartbeat 1s", nil, 2, "-heartbeat (SSEKIT_HEARTBEAT)"},
		{"bad env", "", []string{"SSEKIT_MAX_CONNECTIONS=many"}, 2, "SSEKIT_MAX_CONNECTIONS"},
		{"non-loopback refused", "-addr 0.0.0.0:0", nil, 2, "refusing to listen on 0.0.0.0:0"},
		{"bad port", "-addr 127.0.0.1:99999", nil, 2, "-addr (SSEKIT_ADDR)"},
		{"address in use", "-addr " + busy.Addr().String(), nil, 1, "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runMain(t, tt.args, tt.env...)
			assert.Equal(t, tt.code, code, "exit status %d, want %d; stderr:\n%s", code, tt.code, stderr)
			assert.Contains(t, stderr, tt.stderr, "stderr does not mention %q:\n%s", tt.stderr, stderr)
		})
	}
}

func TestExitCode(t *testing.T) {
	var stderr bytes.Buffer
	got := exitCode(nil, &stderr)
	assert.Equal(t, 0, got, "nil: %d", got)
	got = exitCode(flag.ErrHelp, &stderr)
	assert.Equal(t, 0, got, "ErrHelp: %d", got)
	got = exitCode(&usageError{err: errors.New("bad")}, &stderr)
	assert.Equal(t, 2, got, "usage error: %d", got)
	got = exitCode(fmt.Errorf("wrapped: %w", &usageError{err: errors.New("bad")}), &stderr)
	assert.Equal(t, 2, got, "wrapped usage error: %d", got)
	got = exitCode(errors.New("boom"), &stderr)
	assert.Equal(t, 1, got, "other error: %d", got)
}

// syncBuffer collects a process's output while a test reads it.
type syncBuffer = exampletest.SyncBuffer

// TestRunServesAndShutsDown runs the whole program in-process: it prints
// where it listens, serves the page, a stream and /publish, and on cancel
// ends the open stream (with a reconnect hint) and returns nil.
func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-retry", "250ms"}, func(string) string { return "" }, &stdout, &stderr)
	}()

	var base string
	deadline := time.Now().Add(10 * time.Second)
	for base == "" {
		require.False(t, time.Now().After(deadline), "no listening line; stdout:\n%s", stdout.String())
		select {
		case err := <-done:
			require.FailNow(t, fmt.Sprintf("run returned early: %v", err))
		case <-time.After(10 * time.Millisecond):
		}
		if _, rest, ok := strings.Cut(stdout.String(), "listening on "); ok {
			base, _, _ = strings.Cut(rest, " ")
		}
	}

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	for _, path := range []string{"/", "/app.js", "/style.css", "/healthz", "/stats", "/online"} {
		res, err := client.Get(base + path)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode, "GET %s: %d", path, res.StatusCode)
	}

	res, err := client.Get(base + "/events?topic=news")
	require.NoError(t, err)
	defer res.Body.Close()
	ct := res.Header.Get("Content-Type")
	require.Equal(t, "text/event-stream", ct, "stream Content-Type %q", ct)
	dec := core.NewDecoder(res.Body)
	status, body := post(t, client, base, "", `{"topic":"news","event":"headline","data":{"title":"hub up"}}`)
	require.Equal(t, http.StatusOK, status, "publish: %d %s", status, body)
	ev, err := dec.Next()
	require.NoError(t, err)
	require.Equal(t, "headline", ev.Type, "got event %+v", ev)
	require.Equal(t, `{"title":"hub up"}`, ev.Data, "got event %+v", ev)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "run")
	case <-time.After(15 * time.Second):
		require.FailNow(t, "run did not return after cancel")
	}
	// The stream ended cleanly, after a reconnect hint.
	for {
		_, err := dec.Next()
		if err != nil {
			require.ErrorIs(t, err, io.EOF, "stream ended with %v, want EOF", err)
			break
		}
	}
	assert.Greater(t, dec.Retry(), time.Duration(0), "no retry hint on the stream")
	assert.Contains(t, stdout.String(), "shutting down", "stdout:\n%s", stdout.String())
}

// TestMainSignal: the real process shuts down gracefully on SIGTERM and
// exits 0.
func TestMainSignal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), runMainEnv+"=1", runMainEnv+"_ARGS=-addr 127.0.0.1:0")
	var stdout syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	require.NoError(t, cmd.Start())
	for !strings.Contains(stdout.String(), "listening on") {
		require.NoError(t, ctx.Err(), "no listening line:\n%s", stdout.String())
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	err := cmd.Wait()
	require.NoError(t, err, "exit: %v\n%s", err, stdout.String())
	assert.Contains(t, stdout.String(), "shutting down", "output:\n%s", stdout.String())
}
