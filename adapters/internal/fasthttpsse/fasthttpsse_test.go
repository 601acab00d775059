package fasthttpsse_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/valyala/fasthttp"

	"github.com/ssekit/ssekit/adapters/internal/cors"
	"github.com/ssekit/ssekit/adapters/internal/fasthttpsse"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func newCtx(method, uri string, header map[string]string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(uri)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rc := &fasthttp.RequestCtx{}
	rc.Init(&req, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1234}, nil)
	return rc
}

// TestRequestCopies: the view holds copies, so it reads the same once the
// context is reset for another request.
func TestRequestCopies(t *testing.T) {
	rc := newCtx("GET", "/events?topic=a&topic=b%20c&user=u", map[string]string{
		"last-event-id": "7", "Cookie": "session=s1; theme=dark", "X-Multi": "first",
	})
	rc.Request.Header.Add("X-Multi", "second")
	r := fasthttpsse.NewRequest(rc)
	rc.Request.Reset()
	rc.Request.SetRequestURI("/other?topic=x")
	rc.Request.Header.Set("Last-Event-ID", "intruder")
	for _, tc := range []struct{ got, want any }{
		{r.Header("Last-Event-ID"), "7"},
		{r.Header("LAST-EVENT-ID"), "7"},
		{r.Header("X-Multi"), "first"},
		{r.Header("Missing"), ""},
		{r.Query("topic"), []string{"a", "b c"}},
		{r.Query("user"), []string{"u"}},
		{r.Query("missing"), []string(nil)},
		{r.Cookie("session"), "s1"},
		{r.Cookie("theme"), "dark"},
		{r.Cookie("missing"), ""},
		{r.RemoteAddr(), "192.0.2.1:1234"},
	} {
		assert.Equal(t, tc.want, tc.got, "got %q, want %q", tc.got, tc.want)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	b, err := core.New(core.Config{})
	require.NoError(t, err)
	defer b.Close(context.Background())
	rc := newCtx("POST", "/events", nil)
	fasthttpsse.Serve(rc, context.Background(), b, fasthttpsse.Config{})
	assert.False(t, rc.Response.StatusCode() != 405 || string(rc.Response.Header.Peek("Allow")) != "GET", "POST: %d, Allow %q; want 405, GET", rc.Response.StatusCode(), rc.Response.Header.Peek("Allow"))
	n := b.Stats().Connections
	assert.Equal(t, 0, n, "%d connections", n)
}

func TestRejection(t *testing.T) {
	b, err := core.New(core.Config{MaxConnections: 1})
	require.NoError(t, err)
	defer b.Close(context.Background())
	held, err := b.Subscribe(context.Background(), core.SubscribeRequest{})
	require.NoError(t, err)
	defer held.Close()
	rc := newCtx("GET", "/events", map[string]string{core.RejectModeHeader: "status"})
	fasthttpsse.Serve(rc, context.Background(), b, fasthttpsse.Config{})
	h := &rc.Response.Header
	assert.False(t, rc.Response.StatusCode() != 503 || string(h.Peek("Retry-After")) == "" || string(h.Peek("Cache-Control")) != "no-store", "at the limit: %d, Retry-After %q, Cache-Control %q; want 503, seconds, no-store", rc.Response.StatusCode(), h.Peek("Retry-After"), h.Peek("Cache-Control"))
}

// TestCORS: the CORS answers that need no stream, and the headers on the
// answers that reset the response (405).
func TestCORS(t *testing.T) {
	b, err := core.New(core.Config{})
	require.NoError(t, err)
	defer b.Close(context.Background())
	const app = "https://app.example.com"
	cfg := fasthttpsse.Config{CORS: &cors.Policy{AllowedOrigins: []string{app}, AllowCredentials: true, MaxAge: time.Minute}}
	for _, tc := range []struct {
		method, origin string
		status         int
		acao, maxAge   string
	}{
		{"GET", "https://evil.example.com", 403, "", ""},
		{"OPTIONS", app, 204, app, "60"},
		{"POST", app, 405, app, ""},
	} {
		rc := newCtx(tc.method, "/events", map[string]string{"Origin": tc.origin})
		fasthttpsse.Serve(rc, context.Background(), b, cfg)
		h := &rc.Response.Header
		assert.False(t, rc.Response.StatusCode() != tc.status || string(h.Peek("Access-Control-Allow-Origin")) != tc.acao ||
			string(h.Peek("Access-Control-Max-Age")) != tc.maxAge || string(h.Peek("Vary")) != "Origin", "%s from %s: %d, ACAO %q, Max-Age %q, Vary %q; want %d, %q, %q, Origin", tc.method, tc.origin, rc.Response.StatusCode(), h.Peek("Access-Control-Allow-Origin"), h.Peek("Access-Control-Max-Age"), h.Peek("Vary"), tc.status, tc.acao, tc.maxAge)
	}
	n := b.Stats().Connections
	assert.Equal(t, 0, n, "%d connections", n)
}
