package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
)

// hangGuard bounds every raw-socket read of these tests: far beyond any
// answer the hub owes (which is immediate or at a 300 ms body deadline),
// so it only turns a hang into a failure, never a slow machine.
const hangGuard = 20 * time.Second

// rawRequest opens a TCP connection to the server at addr and writes head
// (a request line and headers, without the blank line) and then body.
func rawRequest(t *testing.T, addr, head, body string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := io.WriteString(conn, head+"\r\n\r\n"+body); err != nil {
		require.NoError(t, err)
	}
	return conn
}

// readAnswer reads one response from conn and reports whether the hub
// then closed the connection (it must do one or the other within
// hangGuard).
func readAnswer(t *testing.T, conn net.Conn) (res *http.Response, body string, closed bool) {
	t.Helper()
	br := bufio.NewReader(conn)
	res, body = readResponse(t, conn, br)
	_, err := br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) {
		require.False(t, ne.Timeout(), "the hub kept the connection open after its answer")
	}
	return res, body, err != nil
}

// readResponse reads one response from conn through br.
func readResponse(t *testing.T, conn net.Conn, br *bufio.Reader) (*http.Response, string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(hangGuard))
	res, err := http.ReadResponse(br, nil)
	require.NoError(t, err, "reading the answer")
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err, "reading the answer's body")
	return res, string(b)
}

func host(srvURL string) string { return strings.TrimPrefix(srvURL, "http://") }

// TestBodyTimeout: a publish whose body stops arriving is answered 408
// when -body-timeout fires, and its connection is closed.
func TestBodyTimeout(t *testing.T) {
	srv, b := newTestHub(t, core.Config{}, hubConfig{limits: limits{bodyTimeout: 300 * time.Millisecond}})
	for _, tc := range []struct{ name, head, body string }{
		{"content-length", "POST /publish HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: 100", `{"broadcast":true,`},
		{"chunked", "POST /publish HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked", "5\r\n[{\"br\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := rawRequest(t, host(srv.URL), tc.head, tc.body)
			res, body, closed := readAnswer(t, conn)
			require.Equal(t, http.StatusRequestTimeout, res.StatusCode, "got %d %s, want 408 on body", res.StatusCode, body)
			require.Equal(t, "body", decodeError(t, body).Field, "got %d %s, want 408 on body", res.StatusCode, body)
			require.True(t, closed, "the connection stayed open after the body timed out")
		})
	}
	got := b.Stats().Published
	require.Equal(t, uint64(0), got, "published %d events from bodies that never arrived", got)
}

// TestEarlyAnswersDoNotWaitForTheBody: a request answered without reading
// its body (401, 415, 503 at the cap, any GET) gets its answer at once and
// its connection closed, although the body never arrives and the body
// deadline is far away: net/http would otherwise wait for up to 256 KiB
// of it before even sending the answer.
func TestEarlyAnswersDoNotWaitForTheBody(t *testing.T) {
	far := limits{bodyTimeout: 10 * time.Minute}
	secret, _ := newTestHub(t, core.Config{}, hubConfig{publishSecret: "s3cret", limits: far})
	open, _ := newTestHub(t, core.Config{}, hubConfig{limits: far})
	const pending = "Content-Length: 200000" // under 256 KiB: what net/http drains
	for _, tc := range []struct {
		name, addr, head string
		status           int
	}{
		{"401 no secret", host(secret.URL), "POST /publish HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\n" + pending, http.StatusUnauthorized},
		{"401 chunked", host(secret.URL), "POST /publish HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked", http.StatusUnauthorized},
		{"415", host(open.URL), "POST /publish HTTP/1.1\r\nHost: hub\r\nContent-Type: text/plain\r\n" + pending, http.StatusUnsupportedMediaType},
		{"GET /healthz with a body", host(open.URL), "GET /healthz HTTP/1.1\r\nHost: hub\r\n" + pending, http.StatusOK},
		{"GET /stats with a body", host(open.URL), "GET /stats HTTP/1.1\r\nHost: hub\r\n" + pending, http.StatusOK},
		{"405", host(open.URL), "PUT /publish HTTP/1.1\r\nHost: hub\r\n" + pending, http.StatusMethodNotAllowed},
		{"page", host(open.URL), "POST / HTTP/1.1\r\nHost: hub\r\n" + pending, http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := rawRequest(t, tc.addr, tc.head, "{")
			res, body, closed := readAnswer(t, conn)
			require.Equal(t, tc.status, res.StatusCode, "got %d %s, want %d", res.StatusCode, body, tc.status)
			require.True(t, closed, "the connection stayed open with an unread body")
		})
	}
}

// TestKeepAliveSurvives: a publish whose body was read in full keeps its
// connection, so well-behaved publishers pay for no new handshakes.
func TestKeepAliveSurvives(t *testing.T) {
	srv, _ := newTestHub(t, core.Config{}, hubConfig{})
	reused := 0
	for i := range 3 {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/publish", strings.NewReader(`{"broadcast":true,"event":"e"}`))
		req.Header.Set("Content-Type", "application/json")
		req = req.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) {
				if info.Reused {
					reused++
				}
			},
		}))
		res, err := srv.Client().Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode, "publish %d: %d", i, res.StatusCode)
	}
	require.Equal(t, 2, reused, "%d of 2 later publishes reused the connection", reused)
}

// TestPublishCap: past -max-publishing requests in flight, a publish is
// answered 503 with Retry-After at once; streams and /healthz are served
// meanwhile; the slots free when the requests end.
func TestPublishCap(t *testing.T) {
	srv, b := newTestHub(t, core.Config{}, hubConfig{limits: limits{maxPublishing: 2, bodyTimeout: 10 * time.Minute}})
	body := `{"broadcast":true,"event":"e","data":"held"}`
	head := fmt.Sprintf("POST /publish HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: %d", len(body))
	held := []net.Conn{
		rawRequest(t, host(srv.URL), head, body[:5]),
		rawRequest(t, host(srv.URL), head, body[:5]),
	}

	// The held requests take their slots as soon as their handlers run;
	// poll until a third publish is refused.
	deadline := time.Now().Add(hangGuard)
	var status int
	var res *http.Response
	for {
		conn := rawRequest(t, host(srv.URL), head, body)
		br := bufio.NewReader(conn)
		var answer string
		res, answer = readResponse(t, conn, br)
		status = res.StatusCode
		if status == http.StatusServiceUnavailable {
			_, err := br.ReadByte()
			require.Error(t, err, "a refused publish kept its connection: %v", err)
			require.False(t, isTimeout(err), "a refused publish kept its connection: %v", err)
			require.NotEqual(t, "", decodeError(t, answer).Error, "503 without an error: %s", answer)
			break
		}
		require.Equal(t, http.StatusOK, status, "third publish: %d %s, want 503 once two are held", status, answer)
		require.False(t, time.Now().After(deadline), "third publish: %d %s, want 503 once two are held", status, answer)
		time.Sleep(10 * time.Millisecond)
	}
	ra := res.Header.Get("Retry-After")
	require.Equal(t, "1", ra, "Retry-After %q, want 1", ra)

	// Streams and /healthz do not depend on publish slots.
	_, stop := openStream(t, srv.Client(), srv.URL+"/events?user="+uuid.NewString())
	defer stop()
	hres, err := srv.Client().Get(srv.URL + "/healthz")
	require.NoError(t, err)
	hres.Body.Close()
	require.Equal(t, http.StatusOK, hres.StatusCode, "/healthz while publishes are held: %d", hres.StatusCode)

	// The held publishes complete and free their slots.
	var wg sync.WaitGroup
	for _, conn := range held {
		wg.Go(func() {
			if _, err := io.WriteString(conn, body[5:]); err != nil {
				assert.NoError(t, err)
				return
			}
			res, answer := readResponse(t, conn, bufio.NewReader(conn))
			assert.Equal(t, http.StatusOK, res.StatusCode, "held publish: %d %s", res.StatusCode, answer)
		})
	}
	wg.Wait()
	status, answer := post(t, srv.Client(), srv.URL, "", body)
	require.Equal(t, http.StatusOK, status, "publish after the slots freed: %s", answer)

	got := b.Stats().Published
	require.GreaterOrEqual(t, got, uint64(3), "published %d, want the two held and the last", got)
}

// TestLimitFlags: the limit flags, their environment variables, defaults
// and refusals.
func TestLimitFlags(t *testing.T) {
	o, err := parseOptions(nil, envMap(nil), io.Discard)
	require.NoError(t, err)
	require.Equal(t, (limits{bodyTimeout: defaultBodyTimeout, maxPublishing: defaultMaxPublishing}), o.hub.limits, "defaults %+v", o.hub.limits)
	o, err = parseOptions([]string{"-body-timeout", "3s", "-max-publishing", "5"}, envMap(nil), io.Discard)
	require.NoError(t, err)
	require.Equal(t, (limits{bodyTimeout: 3 * time.Second, maxPublishing: 5}), o.hub.limits, "flags %+v", o.hub.limits)
	o, err = parseOptions(nil, envMap(map[string]string{"SSEKIT_BODY_TIMEOUT": "4s", "SSEKIT_MAX_PUBLISHING": "6"}), io.Discard)
	require.NoError(t, err)
	require.Equal(t, (limits{bodyTimeout: 4 * time.Second, maxPublishing: 6}), o.hub.limits, "environment %+v", o.hub.limits)
	_, err = parseOptions([]string{"-body-timeout", "0s", "-max-publishing", "0"}, envMap(nil), io.Discard)
	var ue *usageError
	require.True(t, errors.As(err, &ue), "got %v, want a usage error", err)
	for _, w := range []string{"-body-timeout (SSEKIT_BODY_TIMEOUT)", "-max-publishing (SSEKIT_MAX_PUBLISHING)"} {
		assert.Contains(t, err.Error(), w, "error does not name %s: %v", w, err)
	}
	var help strings.Builder
	_, _ = parseOptions([]string{"-h"}, envMap(nil), &help)
	for _, w := range []string{"-body-timeout", "SSEKIT_MAX_PUBLISHING"} {
		assert.Contains(t, help.String(), w, "usage does not mention %s", w)
	}
}
