package main

import (
	"context"
	"encoding/json"
	"fmt"
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

func start(t *testing.T, rowDelay time.Duration) (*httptest.Server, *app) {
	t.Helper()
	broker, err := core.New(core.Config{Authenticator: core.InsecureQueryAuthenticator()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = broker.Close(context.Background()) })
	a := newServer(broker, rowDelay)
	t.Cleanup(a.Close)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv, a
}

func csv(n int, broken int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		if i == broken {
			b.WriteString("broken,x\n")
			continue
		}
		fmt.Fprintf(&b, "customer-%d,%d\n", i, i)
	}
	return b.String()
}

func startImport(t *testing.T, srv *httptest.Server, user uuid.UUID, body string) string {
	t.Helper()
	resp, err := srv.Client().Post(srv.URL+"/imports?user="+user.String(), "text/csv", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct{ Job string }
	require.Equal(t, http.StatusAccepted, resp.StatusCode, "POST /imports: %s", resp.Status)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out), "POST /imports: %s", resp.Status)
	return out.Job
}

// progress reads progress events until the first other event, checking
// that percentages go 0..100 in order.
func progress(t *testing.T, s *stream, job string) (percents []int, end core.Event) {
	t.Helper()
	for {
		ev := s.Next()
		if ev.Type != "progress" {
			return percents, ev
		}
		var p Progress
		err := json.Unmarshal([]byte(ev.Data), &p)
		require.NoError(t, err, "bad progress event %s", ev.Data)
		require.Equal(t, job, p.Job, "bad progress event %s", ev.Data)
		if len(percents) > 0 {
			require.Greater(t, p.Percent, percents[len(percents)-1], "progress went from %d%% to %d%%", percents[len(percents)-1], p.Percent)
		}
		percents = append(percents, p.Percent)
	}
}

func TestImportReportsEveryPercentThenDone(t *testing.T) {
	srv, _ := start(t, 100*time.Microsecond)
	user, other := uuid.New(), uuid.New()
	s := subscribe(t, srv.URL+"/events?user="+user.String())
	o := subscribe(t, srv.URL+"/events?user="+other.String())

	job := startImport(t, srv, user, csv(200, 0))
	percents, end := progress(t, s, job)
	require.Len(t, percents, 101, "got percentages %v, want 0..100", percents)
	require.Equal(t, 0, percents[0], "got percentages %v, want 0..100", percents)
	require.Equal(t, 100, percents[100], "got percentages %v, want 0..100", percents)
	require.Equal(t, "done", end.Type, "got %q %s, want done", end.Type, end.Data)
	require.True(t, jsonEqual(end.Data, fmt.Sprintf(`{"job":%q,"rows":200,"sum":20100}`, job)), "got %q %s, want done", end.Type, end.Data)
	o.ExpectNone(100 * time.Millisecond)
}

func TestImportFailsAtABadRow(t *testing.T) {
	srv, _ := start(t, 0)
	user := uuid.New()
	s := subscribe(t, srv.URL+"/events?user="+user.String())

	job := startImport(t, srv, user, csv(10, 7))
	percents, end := progress(t, s, job)
	want := []int{0, 10, 20, 30, 40, 50, 60}
	require.Equal(t, fmt.Sprint(want), fmt.Sprint(percents), "got percentages %v, want %v", percents, want)
	require.Equal(t, "failed", end.Type, "got %q %s, want failed at row 7", end.Type, end.Data)
	require.True(t, jsonEqual(end.Data, fmt.Sprintf(`{"job":%q,"row":7,"error":"amount \"x\" is not a number"}`, job)), "got %q %s, want failed at row 7", end.Type, end.Data)
}

func TestShutdownFailsRunningJobs(t *testing.T) {
	srv, a := start(t, time.Hour)
	user := uuid.New()
	s := subscribe(t, srv.URL+"/events?user="+user.String())
	job := startImport(t, srv, user, csv(3, 0))
	s.Expect("progress", Progress{Job: job, Percent: 0, Rows: 0, Total: 3})
	a.Close() // returns only once the job has ended
	s.Expect("failed", Failed{Job: job, Error: "import cancelled: server shutting down"})
}

func TestBadUploads(t *testing.T) {
	srv, _ := start(t, 0)
	for name, url := range map[string]string{
		"no user": "/imports",
		"empty":   "/imports?user=" + uuid.NewString(),
	} {
		resp, err := srv.Client().Post(srv.URL+url, "text/csv", strings.NewReader(""))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s, want 400", name, resp.Status)
	}
}

func TestPageIsServed(t *testing.T) {
	srv, _ := start(t, 0)
	for path, want := range map[string]string{"/": "<script src=\"app.js\">", "/app.js": "addEventListener('progress'"} {
		resp, err := srv.Client().Get(srv.URL + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.False(t, resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want), "GET %s: %s, body lacks %q", path, resp.Status, want)
	}
}
