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

	"github.com/ssekit/ssekit/core"
)

// TestMetricsAndTracing serves the hub as run builds it with -trace stdout:
// /metrics shows the broker's series beside the Go and process ones, and a
// publish through POST /publish is one trace, request span first.
func TestMetricsAndTracing(t *testing.T) {
	var spans syncBuffer
	obs, err := newObservability(context.Background(), traceStdout, &spans)
	if err != nil {
		t.Fatal(err)
	}
	b, err := core.New(core.Config{Observer: obs.observer, Authenticator: core.InsecureQueryAuthenticator()})
	if err != nil {
		t.Fatal(err)
	}
	h, err := newHub(b, hubConfig{obs: obs})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	user := uuid.New()
	dec, stop := openStream(t, srv.Client(), srv.URL+"/events?user="+user.String())
	if status, body := post(t, srv.Client(), srv.URL, "", `{"user":"`+user.String()+`","event":"note","data":"x"}`); status != http.StatusOK {
		t.Fatalf("publish: %d %s", status, body)
	}
	if _, err := dec.Next(); err != nil {
		t.Fatal(err)
	}
	// A batch goes through the same instrumented route: one request span,
	// one publish span per event.
	item := `{"user":"` + user.String() + `","event":"note","data":"b"}`
	if status, body := post(t, srv.Client(), srv.URL, "", "["+item+","+item+"]"); status != http.StatusOK {
		t.Fatalf("batch publish: %d %s", status, body)
	}
	for range 2 {
		if _, err := dec.Next(); err != nil {
			t.Fatal(err)
		}
	}
	res, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{
		`ssekit_connections_open 1`,
		`ssekit_events_published_total{target="user"} 3`,
		`ssekit_events_sent_total 3`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := obs.shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	out := strings.ReplaceAll(spans.String(), `": "`, `":"`)
	for _, want := range []string{`"Name":"POST /publish"`, `"Name":"publish user"`, `"Name":"deliver"`, `"Name":"sse connection"`} {
		if !strings.Contains(out, want) {
			t.Errorf("spans lack %s", want)
		}
	}
	if n, m := strings.Count(out, `"Name":"POST /publish"`), strings.Count(out, `"Name":"publish user"`); n != 2 || m != 3 {
		t.Errorf("%d request spans and %d publish spans, want 2 and 3 (one request of 1 event, one batch of 2)", n, m)
	}
}
