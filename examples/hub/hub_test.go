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

// newTestHub serves a hub over a fresh broker with httptest; streams name
// their user in the query unless cfg has an Authenticator.
func newTestHub(t *testing.T, cfg core.Config, hc hubConfig) (*httptest.Server, *core.Broker) {
	t.Helper()
	if cfg.Authenticator == nil {
		cfg.Authenticator = core.InsecureQueryAuthenticator()
	}
	b, err := core.New(cfg)
	require.NoError(t, err)
	h, err := newHub(b, hc)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
		srv.Close()
	})
	return srv, b
}

// post sends body to /publish with the JSON content type and, when secret
// is not empty, the bearer secret.
func post(t *testing.T, c *http.Client, base, secret, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/publish", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func decodeError(t *testing.T, body string) apiError {
	t.Helper()
	var e apiError
	err := json.Unmarshal([]byte(body), &e)
	require.NoError(t, err, "error body is not JSON: %q", body)
	return e
}

// TestPublishValidation: every bad field is a 400 whose JSON names it.
func TestPublishValidation(t *testing.T) {
	srv, _ := newTestHub(t, core.Config{MaxEventSize: 1024}, hubConfig{maxEventSize: 1024})
	user := uuid.NewString()
	big := strings.Repeat("x", 2000)
	tests := []struct {
		name, body string
		status     int
		field      string
	}{
		{"bad JSON", `{"event":`, 400, "body"},
		{"not JSON", `hello`, 400, "body"},
		{"empty body", ``, 400, "body"},
		{"not an object", `"event"`, 400, "body"},
		{"array of non-objects", `["event"]`, 400, "[0]"},
		{"two objects", `{"broadcast":true,"event":"a"} {}`, 400, "body"},
		{"unknown field", `{"broadcast":true,"event":"a","users":["x"]}`, 400, "users"},
		{"wrong type", `{"broadcast":"yes","event":"a"}`, 400, "broadcast"},
		{"user not a string", `{"user":42,"event":"a"}`, 400, "user"},
		{"missing event", `{"broadcast":true,"data":"x"}`, 400, "event"},
		{"event with newline", `{"broadcast":true,"event":"a\nid: 1"}`, 400, "event"},
		{"user not a UUID", `{"user":"alice","event":"a"}`, 400, "user"},
		{"nil user", `{"user":"00000000-0000-0000-0000-000000000000","event":"a"}`, 400, "user"},
		{"no target", `{"event":"a","data":"x"}`, 400, "target"},
		{"id present", `{"broadcast":true,"event":"a","id":"42"}`, 400, "id"},
		{"id null", `{"broadcast":true,"event":"a","id":null}`, 400, "id"},
		{"bad topic", `{"topic":"no spaces","event":"a"}`, 400, "topic"},
		{"bad tenant", `{"tenant":"a/b","broadcast":true,"event":"a"}`, 400, "tenant"},
		{"oversize event", `{"user":"` + user + `","event":"a","data":"` + big + `"}`, 400, "data"},
		{"oversize body", `{"broadcast":true,"event":"a","data":"` + strings.Repeat(big, 4) + `"}`, 413, "data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(t, srv.Client(), srv.URL, "", tt.body)
			require.Equal(t, tt.status, status, "status %d, want %d: %s", status, tt.status, body)
			e := decodeError(t, body)
			assert.Equal(t, tt.field, e.Field, "got %+v", e)
			assert.NotEmpty(t, e.Error, "got %+v", e)
		})
	}
}

func TestPublishNeedsJSONContentType(t *testing.T) {
	srv, _ := newTestHub(t, core.Config{}, hubConfig{})
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/publish", strings.NewReader(`{"broadcast":true,"event":"a"}`))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		res, err := srv.Client().Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		assert.Equal(t, http.StatusUnsupportedMediaType, res.StatusCode, "Content-Type %q: status %d, want 415", ct, res.StatusCode)
	}
	status, body := post(t, srv.Client(), srv.URL, "", `{"broadcast":true,"event":"a"}`)
	require.Equal(t, http.StatusOK, status, "application/json: %d %s", status, body)
}

func TestPublishSecret(t *testing.T) {
	srv, _ := newTestHub(t, core.Config{}, hubConfig{publishSecret: "s3cret"})
	body := `{"broadcast":true,"event":"a"}`
	for _, auth := range []string{"", "Bearer", "Bearer wrong", "Bearer s3cret-and-more", "Basic czNjcmV0", "s3cret"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/publish", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := srv.Client().Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "Authorization %q: status %d, want 401", auth, res.StatusCode)
		assert.NotEqual(t, "", res.Header.Get("WWW-Authenticate"), "Authorization %q: no WWW-Authenticate", auth)
		decodeError(t, string(b))
	}
	status, b := post(t, srv.Client(), srv.URL, "s3cret", body)
	require.Equal(t, http.StatusOK, status, "right secret: %d %s", status, b)
}

// openStream opens a stream and returns its decoder and a function that
// closes it; the connection is registered when openStream returns (the
// response headers are written after the broker subscribed it).
func openStream(t *testing.T, c *http.Client, url string) (*core.Decoder, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := c.Do(req)
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	if res.StatusCode != http.StatusOK {
		cancel()
		require.FailNow(t, fmt.Sprintf("stream %s: %d", url, res.StatusCode))
	}
	return core.NewDecoder(res.Body), func() { cancel(); _ = res.Body.Close() }
}

// TestPublishDelivers: the three kinds of target, data as string or JSON,
// the assigned ID returned and carried by the event.
func TestPublishDelivers(t *testing.T) {
	srv, b := newTestHub(t, core.Config{}, hubConfig{})
	user := uuid.New()
	dec, stop := openStream(t, srv.Client(), srv.URL+"/events?user="+user.String()+"&topic=news&tenant=acme")
	defer stop()

	tests := []struct {
		body, typ, data string
	}{
		{`{"tenant":"acme","user":"` + user.String() + `","event":"note","data":"plain text"}`, "note", "plain text"},
		{`{"tenant":"acme","topic":"news","event":"headline","data":{"a": [1, 2],  "b": "c"}}`, "headline", `{"a":[1,2],"b":"c"}`},
		{`{"tenant":"acme","broadcast":true,"event":"all","data":42}`, "all", "42"},
		{`{"tenant":"acme","broadcast":true,"event":"empty"}`, "empty", ""},
		{`{"tenant":"acme","broadcast":true,"event":"lines","data":"a\nb"}`, "lines", "a\nb"},
		{`{"tenant":"acme","broadcast":true,"event":"inject","data":"x\n\nevent: evil\ndata: y"}`, "inject", "x\n\nevent: evil\ndata: y"},
	}
	for _, tt := range tests {
		status, body := post(t, srv.Client(), srv.URL, "", tt.body)
		require.Equal(t, http.StatusOK, status, "%s: %d %s", tt.body, status, body)
		var out struct{ ID string }
		require.NoError(t, json.Unmarshal([]byte(body), &out), "response %q", body)
		require.NotEmpty(t, out.ID, "response %q", body)
		ev, err := dec.Next()
		require.NoError(t, err)
		assert.Equal(t, out.ID, ev.ID, "event id")
		assert.Equal(t, tt.typ, ev.Type, "event type")
		assert.Equal(t, tt.data, ev.Data, "event data")
	}
	// Other tenants see nothing of acme's.
	got := b.Tenant("").OnlineUsers()
	assert.Empty(t, got, "default tenant online: %v", got)
}

func TestStatsOnlineHealthz(t *testing.T) {
	srv, _ := newTestHub(t, core.Config{}, hubConfig{})
	user := uuid.New()
	_, stop := openStream(t, srv.Client(), srv.URL+"/events?user="+user.String()+"&tenant=acme")
	defer stop()

	get := func(path string) (int, string) {
		res, err := srv.Client().Get(srv.URL + path)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		ct := res.Header.Get("Content-Type")
		assert.True(t, strings.HasPrefix(ct, "application/json"), "%s: Content-Type %q", path, ct)
		return res.StatusCode, string(b)
	}

	status, body := get("/online?tenant=acme")
	var users []string
	err := json.Unmarshal([]byte(body), &users)
	assert.Equal(t, http.StatusOK, status, "/online?tenant=acme: %s", body)
	if assert.NoError(t, err, "/online?tenant=acme: %s", body) {
		assert.Equal(t, []string{user.String()}, users, "/online?tenant=acme")
	}
	status, body = get("/online")
	assert.Equal(t, http.StatusOK, status, "/online: %s", body)
	assert.Equal(t, "[]", strings.TrimSpace(body), "/online: want an empty list, not null")
	status, body = get("/online?tenant=a%2Fb")
	if assert.Equal(t, http.StatusBadRequest, status, "/online bad tenant: %s", body) {
		assert.Equal(t, "tenant", decodeError(t, body).Field, "/online bad tenant: %s", body)
	}

	status, body = get("/stats")
	var st core.Stats
	err = json.Unmarshal([]byte(body), &st)
	assert.Equal(t, http.StatusOK, status, "/stats: %s", body)
	if assert.NoError(t, err, "/stats: %s", body) {
		assert.Equal(t, 1, st.Connections, "/stats connections")
		assert.Equal(t, 1, st.Users, "/stats users")
	}
	status, body = get("/healthz")
	assert.Equal(t, http.StatusOK, status, "/healthz: %s", body)
	assert.Contains(t, body, "ok", "/healthz")
}

func TestStreamRejectsBadUser(t *testing.T) {
	srv, _ := newTestHub(t, core.Config{}, hubConfig{})
	res, err := srv.Client().Get(srv.URL + "/events?user=alice")
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, "status %d, want 400", res.StatusCode)
}

func TestPageServed(t *testing.T) {
	srv, _ := newTestHub(t, core.Config{}, hubConfig{})
	for path, want := range map[string]string{
		"/":          "<title>ssekit hub",
		"/app.js":    "new EventSource(",
		"/style.css": "--accent",
	} {
		res, err := srv.Client().Get(srv.URL + path)
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode, path)
		assert.Contains(t, string(b), want, path)

		csp := res.Header.Get("Content-Security-Policy")
		assert.Contains(t, csp, "default-src 'self'", "%s: CSP %q", path, csp)
	}
	res, err := srv.Client().Get(srv.URL + "/nope")
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusNotFound, res.StatusCode, "/nope: %d", res.StatusCode)
	res, err = srv.Client().Get(srv.URL + "/publish")
	require.NoError(t, err)
	_ = res.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, "GET /publish: %d, want 405", res.StatusCode)
}

func TestPublishWhileClosing(t *testing.T) {
	srv, b := newTestHub(t, core.Config{}, hubConfig{})
	require.NoError(t, b.Close(context.Background()))
	status, body := post(t, srv.Client(), srv.URL, "", `{"broadcast":true,"event":"a"}`)
	assert.Equal(t, http.StatusServiceUnavailable, status, "status %d: %s", status, body)
}
