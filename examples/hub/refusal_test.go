package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// logBuffer is a log the tests read while the hub writes it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// requestIDKey marks a request's context, so a test can tell that a log
// line was written with that context.
type requestIDKey struct{}

// ctxHandler adds the request ID found in the context to each record, as
// a handler adding trace IDs would.
type ctxHandler struct{ slog.Handler }

func (h ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		r.AddAttrs(slog.String("request", id))
	}
	return h.Handler.Handle(ctx, r)
}

func newTestLog() (*slog.Logger, *logBuffer) {
	var buf logBuffer
	return slog.New(ctxHandler{slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})}), &buf
}

// authHub serves a hub in auth mode that logs to the returned buffer, and
// mints tokens for it.
func authHub(t *testing.T, cfg func(*options)) (*httptest.Server, *logBuffer, func(auth.Grant) string) {
	t.Helper()
	secret := auth.NewSecret()
	o, err := parseOptions([]string{"-jwt-secret", string(secret)}, envMap(nil), &strings.Builder{})
	require.NoError(t, err)
	log, buf := newTestLog()
	o.hub.log = log
	signer := o.hub.jwt // cfg may replace the verifier
	mint := func(g auth.Grant) string {
		t.Helper()
		tok, err := signer.MintAdmin(secret, g)
		require.NoError(t, err)
		return tok
	}
	if cfg != nil {
		cfg(&o)
	}
	srv, _ := newTestHub(t, o.broker, o.hub)
	return srv, buf, mint
}

// TestPublishRefusalHidesReason: a token whose publish claim does not
// allow the target gets a fixed text per class; the error, which names
// the grant and the topic, goes to the log with the request's context.
func TestPublishRefusalHidesReason(t *testing.T) {
	srv, log, mint := authHub(t, nil)
	writer := mint(auth.Grant{User: uuid.New(), Tenant: "acme", Publish: []string{"news"}})
	for _, tc := range []struct {
		name, body, field, want string
	}{
		{"topic outside the claim", `{"topic":"billing-secret","event":"e"}`, "target", "does not allow this target"},
		{"broadcast not granted", `{"broadcast":true,"event":"e"}`, "target", "does not allow this target"},
		{"users not granted", `{"user":"` + uuid.NewString() + `","event":"e"}`, "target", "does not allow this target"},
	} {
		status, body := post(t, srv.Client(), srv.URL, writer, tc.body)
		if !assert.Equal(t, http.StatusForbidden, status, "%s: body %s", tc.name, body) {
			continue
		}
		e := decodeError(t, body)
		assert.Equal(t, tc.field, e.Field, "%s: got %+v", tc.name, e)
		assert.Contains(t, e.Error, tc.want, "%s: got %+v", tc.name, e)
		for _, leak := range []string{"billing-secret", "ssekit", "needs", "publish not allowed"} {
			assert.NotContains(t, body, leak, "%s: the answer %s echoes the error (%q)", tc.name, body, leak)
		}
	}
	got := log.String()
	assert.Contains(t, got, "publish refused", "the log lacks the refusals")
	assert.Contains(t, got, "billing-secret", "the log lacks the refusals' reasons")
}

// downKeys is a JWT verifier whose key source is down, as a JWKS
// endpoint can be: every token is unverifiable for now.
func downKeys(t *testing.T) *auth.JWT {
	t.Helper()
	j, err := auth.New(auth.Config{
		Algorithms: []string{"HS256"},
		Keyfunc: func(*jwt.Token) (any, error) {
			return nil, fmt.Errorf("%w: jwks: dial tcp 10.0.0.5:443: connection refused", core.ErrUnavailable)
		},
	})
	require.NoError(t, err)
	return j
}

// TestVerifyUnavailableIs503: when the keys that check tokens are
// unavailable, /publish and the admin routes answer 503 with Retry-After
// (a 401 would tell the caller its token is bad, and it would stop), and
// the cause stays in the log.
func TestVerifyUnavailableIs503(t *testing.T) {
	srv, log, mint := authHub(t, func(o *options) { o.hub.jwt = downKeys(t) })
	token := mint(auth.Grant{User: uuid.New(), Tenant: "acme", Publish: []string{"news"}})
	check := func(what string, status int, hdr http.Header, body string) {
		t.Helper()
		assert.Equal(t, http.StatusServiceUnavailable, status, "%s: body %s", what, body)
		assert.NotEmpty(t, hdr.Get("Retry-After"), "%s: no Retry-After", what)
		assert.NotContains(t, body, "10.0.0.5", "%s: the answer echoes the error", what)
		assert.NotContains(t, body, "jwks", "%s: the answer echoes the error", what)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/publish", strings.NewReader(`{"topic":"news","event":"e"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	status, hdr, body := do(t, srv, req)
	check("POST /publish", status, hdr, body)
	for _, path := range []string{"/stats", "/online", "/metrics"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		status, hdr, body := do(t, srv, req)
		if path == "/metrics" && status == http.StatusNotFound {
			continue // served only with observability
		}
		check("GET "+path, status, hdr, body)
	}
	got := log.String()
	assert.Contains(t, got, "10.0.0.5", "the log lacks the cause:\n%s", got)

	// A token that does not verify is still a 401.
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/stats", nil)
	req.Header.Set("Authorization", "Bearer not-a-jwt")
	status, _, body = do(t, srv, req)
	assert.Equal(t, http.StatusUnauthorized, status, "malformed token: body %s", body)
}

func do(t *testing.T, srv *httptest.Server, req *http.Request) (int, http.Header, string) {
	t.Helper()
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

// outageBus fails every publish the way a Redis Bus does during an outage.
type outageBus struct{ core.History }

func (b *outageBus) Publish(context.Context, *core.Message) error {
	return fmt.Errorf("redis: %w: dial tcp 10.0.0.7:6379: i/o timeout", core.ErrUnavailable)
}

func (b *outageBus) Attach(func(*core.Message)) (func(), error) { return func() {}, nil }

// TestPublishFailureHidesCause: a Bus outage is a 503 with Retry-After,
// any other failure a 500, both with a fixed text; the error is logged.
func TestPublishFailureHidesCause(t *testing.T) {
	log, buf := newTestLog()
	hist := core.NewMemoryHistory(core.HistoryLimits{})
	srv, _ := newTestHub(t, core.Config{Backend: &outageBus{hist}}, hubConfig{log: log})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/publish", strings.NewReader(`{"broadcast":true,"event":"e"}`))
	req.Header.Set("Content-Type", "application/json")
	status, hdr, body := do(t, srv, req)
	assert.Equal(t, http.StatusServiceUnavailable, status, "body %s", body)
	assert.Equal(t, "15", hdr.Get("Retry-After"), "want Retry-After 15 (5 x RetryHint)")
	assert.NotContains(t, body, "10.0.0.7", "the answer echoes the error")
	assert.NotContains(t, body, "redis", "the answer echoes the error")
	got := buf.String()
	assert.Contains(t, got, "10.0.0.7", "the log lacks the cause:\n%s", got)
}

// TestStreamRefusalLogged: a refused stream is logged with its reason,
// its error and the request's context (here a request ID a middleware
// put there, as tracing puts a span).
func TestStreamRefusalLogged(t *testing.T) {
	obs, err := newObservability(context.Background(), traceOff, io.Discard)
	require.NoError(t, err)
	log, buf := newTestLog()
	obs.log = log
	b, err := core.New(core.Config{
		Observer: obs.observer,
		Authenticator: core.AuthenticatorFunc(func(context.Context, core.Request) (core.Identity, error) {
			return core.Identity{}, fmt.Errorf("%w: session store: dial tcp 10.0.0.9:5432", core.ErrUnavailable)
		}),
	})
	require.NoError(t, err)
	defer b.Close(context.Background())
	h, err := newHub(b, hubConfig{obs: obs})
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, "req-42")))
	}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/events", nil)
	req.Header.Set(core.RejectModeHeader, "status")
	status, _, body := do(t, srv, req)
	assert.Equal(t, http.StatusServiceUnavailable, status, "body %s", body)
	assert.NotContains(t, body, "10.0.0.9", "the answer echoes the error")

	got := buf.String()
	for _, want := range []string{"stream refused", "reason=unavailable", "10.0.0.9", "request=req-42", "level=WARN"} {
		assert.Contains(t, got, want, "the log lacks %q:\n%s", want, got)
	}
}

// TestMetricsTrackBroker: /metrics serves the series read from the
// broker's Stats (history held bytes and age, events delivered), once per
// broker even when several hubs serve it.
func TestMetricsTrackBroker(t *testing.T) {
	obs, err := newObservability(context.Background(), traceOff, io.Discard)
	require.NoError(t, err)
	b, err := core.New(core.Config{Observer: obs.observer, Authenticator: core.InsecureQueryAuthenticator()})
	require.NoError(t, err)
	defer b.Close(context.Background())
	if _, err := newHub(b, hubConfig{obs: obs}); err != nil { // a first server
		require.NoError(t, err)
	}
	h, err := newHub(b, hubConfig{obs: obs})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()
	for range 3 {
		status, body := post(t, srv.Client(), srv.URL, "", `{"broadcast":true,"event":"e","data":"x"}`)
		require.Equal(t, http.StatusOK, status, "publish: %d %s", status, body)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
	_, _, page := do(t, srv, req)
	st := b.Stats()
	for _, want := range []string{
		fmt.Sprintf("ssekit_history_held_bytes %d\n", st.HeldBytes),
		"ssekit_history_oldest_age_seconds ",
		"ssekit_events_delivered_total 3\n",
	} {
		assert.Contains(t, page, want, "/metrics lacks %q", want)
	}
	assert.Greater(t, st.HeldBytes, int64(0), "held bytes %d: the broker holds the 3 events", st.HeldBytes)
}
