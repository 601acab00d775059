package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

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
	if err != nil {
		t.Fatal(err)
	}
	h, err := newHub(b, hc)
	if err != nil {
		t.Fatal(err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func decodeError(t *testing.T, body string) apiError {
	t.Helper()
	var e apiError
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body is not JSON: %q", body)
	}
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
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, body)
			}
			e := decodeError(t, body)
			if e.Field != tt.field || e.Error == "" {
				t.Errorf("got %+v, want field %q", e, tt.field)
			}
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
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q: status %d, want 415", ct, res.StatusCode)
		}
	}
	status, body := post(t, srv.Client(), srv.URL, "", `{"broadcast":true,"event":"a"}`)
	if status != http.StatusOK {
		t.Fatalf("application/json: %d %s", status, body)
	}
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
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", auth, res.StatusCode)
		}
		if res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: no WWW-Authenticate", auth)
		}
		decodeError(t, string(b))
	}
	if status, b := post(t, srv.Client(), srv.URL, "s3cret", body); status != http.StatusOK {
		t.Fatalf("right secret: %d %s", status, b)
	}
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
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("stream %s: %d", url, res.StatusCode)
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
		if status != http.StatusOK {
			t.Fatalf("%s: %d %s", tt.body, status, body)
		}
		var out struct{ ID string }
		if err := json.Unmarshal([]byte(body), &out); err != nil || out.ID == "" {
			t.Fatalf("response %q: %v", body, err)
		}
		ev, err := dec.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.ID != out.ID || ev.Type != tt.typ || ev.Data != tt.data {
			t.Errorf("got {id %q type %q data %q}, want {id %q type %q data %q}", ev.ID, ev.Type, ev.Data, out.ID, tt.typ, tt.data)
		}
	}
	// Other tenants see nothing of acme's.
	if got := b.Tenant("").OnlineUsers(); len(got) != 0 {
		t.Errorf("default tenant online: %v", got)
	}
}

func TestStatsOnlineHealthz(t *testing.T) {
	srv, _ := newTestHub(t, core.Config{}, hubConfig{})
	user := uuid.New()
	_, stop := openStream(t, srv.Client(), srv.URL+"/events?user="+user.String()+"&tenant=acme")
	defer stop()

	get := func(path string) (int, string) {
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s: Content-Type %q", path, ct)
		}
		return res.StatusCode, string(b)
	}

	status, body := get("/online?tenant=acme")
	var users []string
	if err := json.Unmarshal([]byte(body), &users); status != 200 || err != nil || len(users) != 1 || users[0] != user.String() {
		t.Errorf("/online?tenant=acme: %d %s", status, body)
	}
	if status, body := get("/online"); status != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("/online: %d %s (want an empty list, not null)", status, body)
	}
	if status, body := get("/online?tenant=a%2Fb"); status != 400 || decodeError(t, body).Field != "tenant" {
		t.Errorf("/online bad tenant: %d %s", status, body)
	}

	status, body = get("/stats")
	var st core.Stats
	if err := json.Unmarshal([]byte(body), &st); status != 200 || err != nil || st.Connections != 1 || st.Users != 1 {
		t.Errorf("/stats: %d %s", status, body)
	}
	if status, body := get("/healthz"); status != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz: %d %s", status, body)
	}
}

func TestStreamRejectsBadUser(t *testing.T) {
	srv, _ := newTestHub(t, core.Config{}, hubConfig{})
	res, err := srv.Client().Get(srv.URL + "/events?user=alice")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", res.StatusCode)
	}
}

func TestPageServed(t *testing.T) {
	srv, _ := newTestHub(t, core.Config{}, hubConfig{})
	for path, want := range map[string]string{
		"/":          "<title>ssekit hub",
		"/app.js":    "new EventSource(",
		"/style.css": "--accent",
	} {
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("%s: %d, body lacks %q", path, res.StatusCode, want)
		}
		if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
	}
	res, err := srv.Client().Get(srv.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("/nope: %d", res.StatusCode)
	}
	res, err = srv.Client().Get(srv.URL + "/publish")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /publish: %d, want 405", res.StatusCode)
	}
}

func TestPublishWhileClosing(t *testing.T) {
	srv, b := newTestHub(t, core.Config{}, hubConfig{})
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	status, body := post(t, srv.Client(), srv.URL, "", `{"broadcast":true,"event":"a"}`)
	if status != http.StatusServiceUnavailable {
		t.Errorf("status %d: %s", status, body)
	}
}
