package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ssekit/ssekit/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// envMap returns a getenv reading from m.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestOptionsDefaults(t *testing.T) {
	o, err := parseOptions(nil, envMap(nil), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8080", o.addr, "addr %q", o.addr)
	want := core.Config{
		HeartbeatInterval: core.DefaultHeartbeatInterval,
		ClientTimeout:     core.DefaultClientTimeout,
		HistoryBytes:      core.DefaultHistoryBytes,
		HistoryAge:        core.DefaultHistoryAge,
		RetryHint:         core.DefaultRetryHint,
		MaxEventSize:      core.DefaultMaxEventSize,
	}
	got := o.broker
	assert.NotNil(t, got.Authenticator, "no authenticator: the demo page could not name its user")
	got.Authenticator = nil
	assert.Equal(t, want, got, "broker config")
	assert.Empty(t, o.hub.publishSecret, "publish secret set by default")
	assert.False(t, o.insecurePublish, "insecure publishing on by default")
	assert.True(t, o.hub.takeover, "takeover is off by default, want on")
	assert.Equal(t, defaultMaxBatch, o.hub.maxBatch, "max batch %d, want %d", o.hub.maxBatch, defaultMaxBatch)
}

// TestOptionsEveryField sets every Config field once by flag and once by
// environment variable.
func TestOptionsEveryField(t *testing.T) {
	want := core.Config{
		ClientBufferSize:      8,
		SlowConsumer:          core.DropOldest,
		HeartbeatInterval:     6 * time.Second,
		ClientTimeout:         20 * time.Second,
		HistorySize:           50,
		HistoryBytes:          1 << 20,
		HistoryAge:            time.Minute,
		RetryHint:             200 * time.Millisecond,
		MaxConnections:        100,
		MaxConnectionsPerUser: 3,
		MaxEventSize:          4096,
	}
	args := []string{
		"-buffer-size", "8", "-slow-consumer", "drop-oldest", "-heartbeat", "6s",
		"-client-timeout", "20s", "-history-size", "50", "-retry", "200ms",
		"-history-bytes", "1048576", "-history-age", "1m",
		"-max-connections", "100", "-max-connections-per-user", "3", "-max-event-size", "4096",
		"-publish-secret", "s3cret", "-shutdown-timeout", "3s", "-addr", "localhost:9000", "-max-batch", "50",
	}
	env := map[string]string{
		"SSEKIT_BUFFER_SIZE": "8", "SSEKIT_SLOW_CONSUMER": "drop-oldest", "SSEKIT_HEARTBEAT": "6s",
		"SSEKIT_CLIENT_TIMEOUT": "20s", "SSEKIT_HISTORY_SIZE": "50", "SSEKIT_RETRY": "200ms",
		"SSEKIT_HISTORY_BYTES": "1048576", "SSEKIT_HISTORY_AGE": "1m",
		"SSEKIT_MAX_CONNECTIONS": "100", "SSEKIT_MAX_CONNECTIONS_PER_USER": "3", "SSEKIT_MAX_EVENT_SIZE": "4096",
		"SSEKIT_PUBLISH_SECRET": "s3cret", "SSEKIT_SHUTDOWN_TIMEOUT": "3s", "SSEKIT_ADDR": "localhost:9000",
		"SSEKIT_MAX_BATCH": "50",
	}
	for name, o := range map[string]func() (options, error){
		"flags": func() (options, error) { return parseOptions(args, envMap(nil), io.Discard) },
		"env":   func() (options, error) { return parseOptions(nil, envMap(env), io.Discard) },
	} {
		t.Run(name, func(t *testing.T) {
			o, err := o()
			require.NoError(t, err)
			got := o.broker
			got.Authenticator = nil
			assert.Equal(t, want, got, "broker config")
			assert.Equal(t, "localhost:9000", o.addr, "addr")
			assert.Equal(t, "s3cret", o.hub.publishSecret, "publish secret")
			assert.Equal(t, 3*time.Second, o.shutdownTimeout, "shutdown timeout")
			assert.Equal(t, 4096, o.hub.maxEventSize, "hub max event size")
			assert.Equal(t, 50, o.hub.maxBatch, "hub max batch")
		})
	}
}

func TestOptionsFlagWinsOverEnv(t *testing.T) {
	env := envMap(map[string]string{"SSEKIT_ADDR": "127.0.0.1:1111", "SSEKIT_RETRY": "9s", "SSEKIT_BUFFER_SIZE": "x"})
	o, err := parseOptions([]string{"-addr", "127.0.0.1:2222", "-buffer-size", "5"}, env, io.Discard)
	// the bad SSEKIT_BUFFER_SIZE is never read: the flag is set
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:2222", o.addr, "addr %q: the flag must win", o.addr)
	assert.Equal(t, 9*time.Second, o.broker.RetryHint, "retry %v: the environment fills unset flags", o.broker.RetryHint)
	assert.Equal(t, 5, o.broker.ClientBufferSize, "buffer size %d", o.broker.ClientBufferSize)
}

func TestOptionsHistoryMinusOneTurnsReplayOff(t *testing.T) {
	o, err := parseOptions([]string{"-history-size", "-1"}, envMap(nil), io.Discard)
	require.NoError(t, err)
	assert.Equal(t, core.NoHistory, o.broker.HistorySize, "HistorySize %d, want core.NoHistory", o.broker.HistorySize)
}

// TestOptionsErrors checks that each bad setting is a usage error naming
// the flag and its environment variable.
func TestOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want []string
	}{
		{"buffer-size negative", []string{"-buffer-size", "-1"}, nil, []string{"-buffer-size", "SSEKIT_BUFFER_SIZE", "ClientBufferSize"}},
		{"buffer-size not a number", []string{"-buffer-size", "lots"}, nil, []string{"-buffer-size"}},
		{"slow-consumer", []string{"-slow-consumer", "ignore"}, nil, []string{"-slow-consumer", "SSEKIT_SLOW_CONSUMER", "drop-oldest"}},
		{"heartbeat too short", []string{"-heartbeat", "1s"}, nil, []string{"-heartbeat", "SSEKIT_HEARTBEAT", ">= 5s"}},
		{"client-timeout too short", []string{"-heartbeat", "10s", "-client-timeout", "15s"}, nil, []string{"-client-timeout", "SSEKIT_CLIENT_TIMEOUT"}},
		{"history-size negative", []string{"-history-size", "-2"}, nil, []string{"-history-size", "SSEKIT_HISTORY_SIZE"}},
		{"retry negative", []string{"-retry", "-1s"}, nil, []string{"-retry", "SSEKIT_RETRY", "RetryHint"}},
		{"max-connections negative", []string{"-max-connections", "-1"}, nil, []string{"-max-connections", "SSEKIT_MAX_CONNECTIONS"}},
		{"max-connections-per-user negative", []string{"-max-connections-per-user", "-1"}, nil, []string{"-max-connections-per-user", "SSEKIT_MAX_CONNECTIONS_PER_USER"}},
		{"max-event-size negative", []string{"-max-event-size", "-1"}, nil, []string{"-max-event-size", "SSEKIT_MAX_EVENT_SIZE"}},
		{"shutdown-timeout", []string{"-shutdown-timeout", "0s"}, nil, []string{"-shutdown-timeout"}},
		{"max-batch zero", []string{"-max-batch", "0"}, nil, []string{"-max-batch", "SSEKIT_MAX_BATCH", "between 1 and"}},
		{"max-batch too large", nil, map[string]string{"SSEKIT_MAX_BATCH": "1000000"}, []string{"-max-batch", "SSEKIT_MAX_BATCH"}},
		{"addr without port", []string{"-addr", "127.0.0.1"}, nil, []string{"-addr", "SSEKIT_ADDR"}},
		{"positional argument", []string{"serve"}, nil, []string{`"serve"`}},
		{"env not a duration", nil, map[string]string{"SSEKIT_HEARTBEAT": "often"}, []string{"SSEKIT_HEARTBEAT", "-heartbeat", "duration"}},
		{"env not an integer", nil, map[string]string{"SSEKIT_HISTORY_SIZE": "all"}, []string{"SSEKIT_HISTORY_SIZE", "integer"}},
		{"env not a boolean", nil, map[string]string{"SSEKIT_INSECURE_PUBLISH": "sure"}, []string{"SSEKIT_INSECURE_PUBLISH", "true or false"}},
		{"env invalid config", nil, map[string]string{"SSEKIT_HEARTBEAT": "2s"}, []string{"-heartbeat (SSEKIT_HEARTBEAT)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseOptions(tt.args, envMap(tt.env), io.Discard)
			var ue *usageError
			require.True(t, errors.As(err, &ue), "got %v, want a usage error", err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w, "error does not mention %q: %v", w, err)
			}
		})
	}
}

func TestOptionsReportsEveryProblem(t *testing.T) {
	_, err := parseOptions([]string{"-buffer-size", "-1", "-max-connections", "-1", "-slow-consumer", "x"}, envMap(nil), io.Discard)
	for _, w := range []string{"-buffer-size", "-max-connections", "-slow-consumer"} {
		assert.ErrorContains(t, err, w, "error does not mention %s", w)

	}
}

func TestOptionsHelp(t *testing.T) {
	var out strings.Builder
	_, err := parseOptions([]string{"-h"}, envMap(nil), &out)
	require.ErrorIs(t, err, flag.ErrHelp, "got")
	for _, w := range []string{"-addr", "SSEKIT_ADDR", "-publish-secret", "SSEKIT_PUBLISH_SECRET", "-max-connections-per-user", "127.0.0.1:8080"} {
		assert.Contains(t, out.String(), w, "usage does not mention %s", w)
	}
}

// TestOptionsLoopbackRefusal: an unprotected /publish is only allowed on
// loopback, unless -insecure-publish (or a secret) says otherwise.
func TestOptionsLoopbackRefusal(t *testing.T) {
	tests := []struct {
		addr   string
		extra  []string
		env    map[string]string
		refuse bool
	}{
		{"127.0.0.1:8080", nil, nil, false},
		{"127.0.0.2:0", nil, nil, false},
		{"localhost:8080", nil, nil, false},
		{"[::1]:8080", nil, nil, false},
		{":8080", nil, nil, true},
		{"0.0.0.0:8080", nil, nil, true},
		{"[::]:8080", nil, nil, true},
		{"192.0.2.10:8080", nil, nil, true},
		{"0.0.0.0:8080", []string{"-insecure-publish"}, nil, false},
		{"0.0.0.0:8080", []string{"-publish-secret", "s3cret"}, nil, false},
		{"0.0.0.0:8080", nil, map[string]string{"SSEKIT_PUBLISH_SECRET": "s3cret"}, false},
		{"0.0.0.0:8080", nil, map[string]string{"SSEKIT_INSECURE_PUBLISH": "true"}, false},
		{"0.0.0.0:8080", []string{"-insecure-publish=false"}, map[string]string{"SSEKIT_INSECURE_PUBLISH": "true"}, true},
	}
	for _, tt := range tests {
		name := tt.addr + " " + strings.Join(tt.extra, " ")
		for k, v := range tt.env {
			name += " " + k + "=" + v
		}
		t.Run(name, func(t *testing.T) {
			_, err := parseOptions(append([]string{"-addr", tt.addr}, tt.extra...), envMap(tt.env), io.Discard)
			refused := err != nil && strings.Contains(err.Error(), "refusing to listen")
			require.Equal(t, tt.refuse, refused, "refused=%v, want %v (err %v)", refused, tt.refuse, err)
			if refused {
				var ue *usageError
				assert.True(t, errors.As(err, &ue), "refusal is not a usage error (exit status 2): %v", err)
				for _, w := range []string{"-publish-secret", "-insecure-publish"} {
					assert.Contains(t, err.Error(), w, "refusal does not mention %s: %v", w, err)
				}
			} else if err != nil {
				require.NoError(t, err)
			}
		})
	}
}
