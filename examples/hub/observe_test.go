package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
)

// TestMetricsAndTracing serves the hub as run builds it with -trace stdout:
// /metrics shows the broker's series beside the Go and process ones, and a
// publish through POST /publish is one trace, request span first.
func TestMetricsAndTracing(t *testing.T) {
	var spans syncBuffer
	obs, err := newObservability(context.Background(), traceStdout, &spans)
	require.NoError(t, err)
	b, err := core.New(core.Config{Observer: obs.observer, Authenticator: core.InsecureQueryAuthenticator()})
	require.NoError(t, err)
	h, err := newHub(b, hubConfig{obs: obs})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	user := uuid.New()
	dec, stop := openStream(t, srv.Client(), srv.URL+"/events?user="+user.String())
	status, body := post(t, srv.Client(), srv.URL, "", `{"user":"`+user.String()+`","event":"note","data":"x"}`)
	require.Equal(t, http.StatusOK, status, "publish: %d %s", status, body)
	if _, err := dec.Next(); err != nil {
		require.NoError(t, err)
	}
	// A batch goes through the same instrumented route: one request span,
	// one publish span per event.
	item := `{"user":"` + user.String() + `","event":"note","data":"b"}`
	status, body = post(t, srv.Client(), srv.URL, "", "["+item+","+item+"]")
	require.Equal(t, http.StatusOK, status, "batch publish: %d %s", status, body)
	for range 2 {
		_, err := dec.Next()
		require.NoError(t, err)
	}
	res, err := srv.Client().Get(srv.URL + "/metrics")
	require.NoError(t, err)
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`ssekit_connections_open 1`,
		`ssekit_events_published_total{target="user"} 3`,
		`ssekit_events_sent_total 3`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		assert.Contains(t, string(page), want, "/metrics lacks %q", want)
	}
	stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, b.Close(ctx))
	require.NoError(t, obs.shutdown(ctx))
	out := strings.ReplaceAll(spans.String(), `": "`, `":"`)
	for _, want := range []string{`"Name":"POST /publish"`, `"Name":"publish user"`, `"Name":"deliver user"`, `"Name":"sse connection"`} {
		assert.Contains(t, out, want, "spans lack %s", want)
	}
	n, m := strings.Count(out, `"Name":"POST /publish"`), strings.Count(out, `"Name":"publish user"`)
	assert.Equal(t, 2, n, "request spans: one request of 1 event, one batch of 2")
	assert.Equal(t, 3, m, "publish spans: one request of 1 event, one batch of 2")

}
