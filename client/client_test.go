package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/ssekit/ssekit/client"
	"github.com/ssekit/ssekit/core"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// plainServer answers request n (1-based) with handle, and records every
// request's headers: for answers a broker never gives.
type plainServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []http.Header
}

func newPlainServer(t *testing.T, handle func(n int, w http.ResponseWriter, r *http.Request)) *plainServer {
	t.Helper()
	s := &plainServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r.Header.Clone())
		n := len(s.reqs)
		s.mu.Unlock()
		handle(n, w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *plainServer) requests() []http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]http.Header(nil), s.reqs...)
}

// sse answers with an event stream holding body.
func sse(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/event-stream")
	_, _ = io.WriteString(w, body)
}

// fast keeps delays short for tests that do not care about them.
var fast = client.WithBackoff(client.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond})

func TestReceiveEvents(t *testing.T) {
	srv := newSSEServer(t, core.Config{RetryHint: 50 * time.Millisecond})
	rec := newRecorder()
	c := rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()))
	rec.waitOpen(t)

	id1 := srv.publish(t, "greeting", "hello")
	id2 := srv.publish(t, "data", "two\nlines")
	id3 := srv.publish(t, "json", `{"n":3}`)
	for _, want := range []core.Event{
		{ID: id1, Type: "greeting", Data: "hello"},
		{ID: id2, Type: "data", Data: "two\nlines"},
		{ID: id3, Type: "json", Data: `{"n":3}`},
	} {
		assert.Equal(t, want, rec.next(t))
	}
	assert.Equal(t, id3, c.LastEventID())
	assert.Contains(t, rec.commentLog(), "ok", "the stream's opening comment reaches WithOnComment")

	h := srv.requests()[0]
	assert.Equal(t, "text/event-stream", h.Get("Accept"))
	assert.Equal(t, "no-cache", h.Get("Cache-Control"))
	assert.Equal(t, "status", h.Get(core.RejectModeHeader))
	assert.Empty(t, h.Values("Last-Event-ID"), "a new client has no position")
}

func TestReconnectReplaysMissedEventsOnceInOrder(t *testing.T) {
	srv := newSSEServer(t, core.Config{RetryHint: 50 * time.Millisecond})
	rec := newRecorder()
	c := rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()))
	rec.waitOpen(t)
	srv.publish(t, "e", "1")
	id2 := srv.publish(t, "e", "2")
	assert.Equal(t, "1", rec.next(t).Data)
	assert.Equal(t, "2", rec.next(t).Data)

	// Cut the stream and keep the client out while events are published.
	srv.hold()
	srv.dropAll(t)
	reqs := srv.waitRequests(t, 2)
	assert.Equal(t, id2, reqs[1].Get("Last-Event-ID"))
	var missed []string
	for _, d := range []string{"3", "4", "5"} {
		missed = append(missed, srv.publish(t, "e", d))
	}
	srv.release()
	rec.waitOpen(t)
	live := []string{srv.publish(t, "e", "6"), srv.publish(t, "e", "7")}

	// Exactly the missed events then the live ones: no gap, no duplicate.
	for i, id := range append(missed, live...) {
		ev := rec.next(t)
		assert.Equal(t, core.Event{ID: id, Type: "e", Data: fmt.Sprint(i + 3)}, ev)
	}
	assert.Equal(t, live[1], c.LastEventID())
	select {
	case ev := <-rec.events:
		t.Fatalf("unexpected extra event %+v", ev)
	default:
	}
}

func TestRetryHintIsHonoured(t *testing.T) {
	srv := newSSEServer(t, core.Config{RetryHint: 150 * time.Millisecond})
	rec := newRecorder()
	// Without the server's hint the client would wait an hour.
	rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()),
		client.WithBackoff(client.Backoff{Initial: time.Hour}))
	rec.waitOpen(t)
	srv.dropAll(t)

	rt := rec.nextRetry(t)
	assert.ErrorIs(t, rt.err, io.EOF, "a stream ended by the server")
	// core sends the hint with up to 50% jitter (above MinRetryDelay).
	assert.GreaterOrEqual(t, rt.delay, 150*time.Millisecond)
	assert.LessOrEqual(t, rt.delay, 225*time.Millisecond)
	rec.waitOpen(t)
}

func TestLastEventIDCarriedAcrossConnections(t *testing.T) {
	srv := newPlainServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 1:
			sse(w, "retry: 1\nid: 5\ndata: a\n\n")
		case 2:
			// A blank line first: a decoder not seeded with the client's
			// position would forget it here, as the spec's fresh buffers do.
			sse(w, ": hi\n\ndata: b\n\n")
		default:
			sse(w, "data: c\n\n")
		}
	})
	rec := newRecorder()
	c := rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()), client.WithLastEventID("seed"),
		client.WithBackoff(client.Backoff{Initial: time.Hour}))
	assert.Equal(t, core.Event{ID: "5", Data: "a", Retry: time.Millisecond}, rec.next(t))
	assert.Equal(t, core.Event{ID: "5", Data: "b"}, rec.next(t))
	assert.Equal(t, core.Event{ID: "5", Data: "c"}, rec.next(t))
	rec.stop(t)
	assert.Equal(t, "5", c.LastEventID())

	reqs := srv.requests()
	require.GreaterOrEqual(t, len(reqs), 3)
	assert.Equal(t, "seed", reqs[0].Get("Last-Event-ID"))
	assert.Equal(t, "5", reqs[1].Get("Last-Event-ID"))
	assert.Equal(t, "5", reqs[2].Get("Last-Event-ID"))
}

func TestBackoffGrowsToItsCapThenGivesUp(t *testing.T) {
	srv := newPlainServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	})
	rec := newRecorder()
	rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()), client.WithMaxRetries(6),
		client.WithBackoff(client.Backoff{Initial: time.Millisecond, Max: 8 * time.Millisecond, Multiplier: 2, Jitter: client.NoJitter}))
	rec.wait(t)

	ms := time.Millisecond
	var delays []time.Duration
	for range 6 {
		rt := rec.nextRetry(t)
		assert.Equal(t, 503, statusCode(rt.err))
		delays = append(delays, rt.delay)
	}
	assert.Equal(t, []time.Duration{1 * ms, 2 * ms, 4 * ms, 8 * ms, 8 * ms, 8 * ms}, delays)
	assert.Empty(t, rec.retries, "no wait after the last attempt")
	assert.Len(t, srv.requests(), 7, "one attempt and six retries")

	n, err := rec.result()
	assert.Equal(t, 1, n, "the terminal error is yielded once")
	assert.ErrorIs(t, err, client.ErrGaveUp)
	assert.ErrorIs(t, err, client.ErrUnexpectedStatus)
	var se *client.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 503, se.Code)
	assert.Equal(t, "down for maintenance", se.Body)
	assert.Equal(t, []client.State{client.Connecting, client.Reconnecting, client.Closed}, rec.stateLog())
}

func TestBackoffStartsFromTheRetryHint(t *testing.T) {
	srv := newPlainServer(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			sse(w, "retry: 100\n\n")
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	})
	rec := newRecorder()
	rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()), client.WithMaxRetries(3),
		client.WithBackoff(client.Backoff{Initial: time.Hour, Max: 200 * time.Millisecond, Jitter: client.NoJitter}))
	rec.wait(t)

	ms := time.Millisecond
	var delays []time.Duration
	for range 4 {
		delays = append(delays, rec.nextRetry(t).delay)
	}
	// The stream's end waits the hint; failures then grow from it.
	assert.Equal(t, []time.Duration{100 * ms, 100 * ms, 200 * ms, 200 * ms}, delays)
	_, err := rec.result()
	assert.ErrorIs(t, err, client.ErrGaveUp)
	assert.Equal(t, 502, statusCode(err))
}

func TestGivesUpOnAnswersThatCannotSucceed(t *testing.T) {
	broker := newSSEServer(t, core.Config{
		Authenticator: core.AuthenticatorFunc(func(_ context.Context, r core.Request) (core.Identity, error) {
			if r.Header("Authorization") != "Bearer good" {
				return core.Identity{}, core.ErrUnauthenticated
			}
			return core.Identity{}, nil
		}),
		Authorizer: core.AuthorizerFunc(func(_ context.Context, _ core.Identity, topics []string) error {
			for _, topic := range topics {
				if topic == "secret" {
					return fmt.Errorf("%w: topic %s", core.ErrForbidden, topic)
				}
			}
			return nil
		}),
	})
	plain := newPlainServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/405":
			w.WriteHeader(http.StatusMethodNotAllowed)
		case "/410":
			w.WriteHeader(http.StatusGone)
		case "/html":
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<p>not a stream</p>")
		case "/none":
			w.Header()["Content-Type"] = nil // no sniffing either
			_, _ = io.WriteString(w, "data: x\n\n")
		default:
			http.NotFound(w, r)
		}
	})
	auth := client.WithHeader("Authorization", "Bearer good")
	for _, tc := range []struct {
		name   string
		srv    *httptest.Server
		path   string
		auth   bool
		status int   // expected StatusError code, or
		err    error // expected sentinel
		body   string
	}{
		{name: "401 no credentials", srv: broker.Server, path: "/", status: 401, body: "unauthenticated"},
		{name: "403 forbidden topic", srv: broker.Server, path: "/?topic=secret", auth: true, status: 403},
		{name: "400 bad topic", srv: broker.Server, path: "/?topic=a//b", auth: true, status: 400},
		{name: "204 no content", srv: plain.Server, path: "/204", status: 204},
		{name: "404 not found", srv: plain.Server, path: "/404", status: 404, body: "404 page not found"},
		{name: "405 method not allowed", srv: plain.Server, path: "/405", status: 405},
		{name: "410 gone", srv: plain.Server, path: "/410", status: 410},
		{name: "200 text/html", srv: plain.Server, path: "/html", err: client.ErrNotEventStream},
		{name: "200 no content type", srv: plain.Server, path: "/none", err: client.ErrNotEventStream},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder()
			opts := []client.Option{client.WithHTTPClient(tc.srv.Client()), fast}
			if tc.auth {
				opts = append(opts, auth)
			}
			rec.start(t, tc.srv.URL+tc.path, opts...)
			rec.wait(t)
			n, err := rec.result()
			assert.Equal(t, 1, n)
			if tc.status != 0 {
				assert.ErrorIs(t, err, client.ErrUnexpectedStatus)
				var se *client.StatusError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, tc.status, se.Code)
				if tc.body != "" {
					assert.Equal(t, tc.body, se.Body)
				}
			} else {
				assert.ErrorIs(t, err, tc.err)
			}
			assert.NotErrorIs(t, err, client.ErrGaveUp, "no retry was made")
			assert.Empty(t, rec.retries)
			assert.Equal(t, []client.State{client.Connecting, client.Closed}, rec.stateLog())
			assert.Empty(t, rec.events)
		})
	}
}

// TestRetriesAtConnectionLimits: a client sending SSEKit-Reject: status
// gets 503 (server limit) or 429 (per-user limit) with Retry-After, waits
// at least that long, and gets in once a connection is free.
func TestRetriesAtConnectionLimits(t *testing.T) {
	alice := uuid.New()
	for _, tc := range []struct {
		name   string
		cfg    core.Config
		status int
	}{
		{"503 server limit", core.Config{MaxConnections: 1}, 503},
		{"429 per-user limit", core.Config{MaxConnectionsPerUser: 1, Authenticator: core.InsecureQueryAuthenticator()}, 429},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.RetryHint = 50 * time.Millisecond // Retry-After: 1 (5 x hint, rounded up)
			srv := newSSEServer(t, tc.cfg)
			url := srv.URL + "?user=" + alice.String()
			first := newRecorder()
			first.start(t, url, client.WithHTTPClient(srv.Client()))
			first.waitOpen(t)

			second := newRecorder()
			second.start(t, url, client.WithHTTPClient(srv.Client()), fast)
			rt := second.nextRetry(t)
			var se *client.StatusError
			require.ErrorAs(t, rt.err, &se)
			assert.Equal(t, tc.status, se.Code)
			assert.Equal(t, time.Second, se.RetryAfter)
			assert.GreaterOrEqual(t, rt.delay, time.Second, "Retry-After is honoured")
			assert.LessOrEqual(t, rt.delay, 1500*time.Millisecond, "plus at most 50% jitter")

			first.stop(t)
			second.waitOpen(t)
			id := srv.publish(t, "e", "in")
			assert.Equal(t, core.Event{ID: id, Type: "e", Data: "in"}, second.next(t))
			for _, h := range srv.requests()[1:] {
				assert.Equal(t, "status", h.Get(core.RejectModeHeader))
			}
		})
	}
}

// TestLimitRejectionStreamBacksOff: without SSEKit-Reject: status, a server
// at its limit answers as it answers browsers, with a 200 stream holding a
// retry hint and an ssekit.rejected event. The client must not give up, nor
// yield that event, but wait what it says and retry.
func TestLimitRejectionStreamBacksOff(t *testing.T) {
	srv := newSSEServer(t, core.Config{MaxConnections: 1, RetryHint: 50 * time.Millisecond})
	first := newRecorder()
	first.start(t, srv.URL, client.WithHTTPClient(srv.Client()))
	first.waitOpen(t)

	second := newRecorder()
	second.start(t, srv.URL, client.WithHTTPClient(srv.Client()), client.WithRejectStatus(false), fast)
	rt := second.nextRetry(t)
	assert.ErrorIs(t, rt.err, client.ErrRejected)
	assert.ErrorContains(t, rt.err, "too_many_connections")
	// core asks for 5 x the hint with up to 50% jitter: 250ms to 375ms.
	assert.GreaterOrEqual(t, rt.delay, 250*time.Millisecond)
	assert.LessOrEqual(t, rt.delay, 375*time.Millisecond*3/2)
	assert.Empty(t, srv.requests()[1].Values(core.RejectModeHeader))

	first.stop(t)
	srv.waitConnections(t, 0)
	id := ""
	for id == "" { // retries until it gets the free connection
		select {
		case <-second.opened:
			if srv.b.Stats().Connections == 1 {
				id = srv.publish(t, "e", "in")
			}
		case <-time.After(wait):
			t.Fatal("never connected")
		}
	}
	assert.Equal(t, core.Event{ID: id, Type: "e", Data: "in"}, second.next(t), "the rejection was not yielded")
	n, _ := second.result()
	assert.Zero(t, n)
}

func TestRejectionStreamCountsAsFailure(t *testing.T) {
	srv := newPlainServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		sse(w, ": too_many_connections\nretry: 2\n\nevent: ssekit.rejected\ndata: {\"reason\":\"too_many_connections\",\"retryMs\":3}\n\n")
	})
	rec := newRecorder()
	rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()), client.WithMaxRetries(2),
		client.WithBackoff(client.Backoff{Initial: time.Millisecond, Jitter: client.NoJitter}))
	rec.wait(t)
	assert.Equal(t, 3*time.Millisecond, rec.nextRetry(t).delay, "retryMs is the floor")
	assert.Equal(t, 3*time.Millisecond, rec.nextRetry(t).delay)
	_, err := rec.result()
	assert.ErrorIs(t, err, client.ErrGaveUp)
	assert.ErrorIs(t, err, client.ErrRejected)
	assert.Empty(t, rec.events)
}

func TestCustomHeadersAndHeaderFunc(t *testing.T) {
	srv := newSSEServer(t, core.Config{RetryHint: 50 * time.Millisecond})
	var attempts atomic.Int32
	rec := newRecorder()
	rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()),
		client.WithHeader("Authorization", "Bearer static"),
		client.WithHeader("X-Client", "go"),
		client.WithHeaderFunc(func(ctx context.Context) (http.Header, error) {
			require.NoError(t, ctx.Err())
			n := attempts.Add(1)
			return http.Header{"Authorization": {fmt.Sprint("Bearer token-", n)}}, nil
		}))
	rec.waitOpen(t)
	srv.dropAll(t)
	rec.waitOpen(t)

	reqs := srv.requests()
	require.Len(t, reqs, 2)
	for i, h := range reqs {
		assert.Equal(t, fmt.Sprint("Bearer token-", i+1), h.Get("Authorization"), "the func wins and runs per attempt")
		assert.Equal(t, "go", h.Get("X-Client"))
	}
}

func TestHeaderFuncErrorEndsEvents(t *testing.T) {
	srv := newPlainServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { sse(w, "data: x\n\n") })
	boom := errors.New("token service down")
	for name, f := range map[string]func(context.Context) (http.Header, error){
		"error":        func(context.Context) (http.Header, error) { return nil, boom },
		"invalid name": func(context.Context) (http.Header, error) { return http.Header{"Bad Name": {"x"}}, nil },
		"invalid value": func(context.Context) (http.Header, error) {
			return http.Header{"X-Token": {"a\r\nInjected: 1"}}, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()), client.WithHeaderFunc(f))
			rec.wait(t)
			n, err := rec.result()
			assert.Equal(t, 1, n)
			require.Error(t, err)
			if name == "error" {
				assert.ErrorIs(t, err, boom)
			}
		})
	}
	assert.Empty(t, srv.requests(), "nothing was sent")
}

func TestContextCancelStopsPromptly(t *testing.T) {
	t.Run("reading an open stream", func(t *testing.T) {
		srv := newSSEServer(t, core.Config{})
		rec := newRecorder()
		rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()))
		rec.waitOpen(t)
		srv.publish(t, "e", "1")
		rec.next(t)
		rec.stop(t) // fails the test if the loop does not end
		n, _ := rec.result()
		assert.Zero(t, n, "cancellation is not an error")
		assert.Equal(t, []client.State{client.Connecting, client.Open, client.Closed}, rec.stateLog())
		srv.waitConnections(t, 0) // the connection was closed, not leaked
	})
	t.Run("waiting to retry", func(t *testing.T) {
		srv := newPlainServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		rec := newRecorder()
		rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()))
		assert.GreaterOrEqual(t, rec.nextRetry(t).delay, time.Hour)
		rec.stop(t)
		n, _ := rec.result()
		assert.Zero(t, n)
	})
	t.Run("waiting for response headers", func(t *testing.T) {
		arrived := make(chan struct{})
		srv := newPlainServer(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
			close(arrived)
			<-r.Context().Done()
		})
		rec := newRecorder()
		rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()))
		<-arrived
		rec.stop(t)
		n, _ := rec.result()
		assert.Zero(t, n)
		assert.Equal(t, []client.State{client.Connecting, client.Closed}, rec.stateLog())
	})
	t.Run("already done", func(t *testing.T) {
		srv := newPlainServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) { sse(w, "data: x\n\n") })
		c, err := client.New(srv.URL, client.WithHTTPClient(srv.Client()))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for ev, err := range c.Events(ctx) {
			t.Fatalf("yielded %+v, %v", ev, err)
		}
		assert.Empty(t, srv.requests())
	})
}

// TestLeavingTheLoopClosesAndResumes: breaking out of the loop closes the
// connection; ranging again resumes after the last event received.
func TestLeavingTheLoopClosesAndResumes(t *testing.T) {
	srv := newSSEServer(t, core.Config{})
	var id1 string
	c, err := client.New(srv.URL, client.WithHTTPClient(srv.Client()), client.WithOnState(func(s client.State) {
		if s == client.Open && id1 == "" { // subscribed: publish the first event
			id1 = srv.publish(t, "e", "1")
		}
	}))
	require.NoError(t, err)
	ctx := context.Background()

	for ev, err := range c.Events(ctx) {
		require.NoError(t, err)
		assert.Equal(t, "1", ev.Data)
		break
	}
	assert.Equal(t, id1, c.LastEventID())
	srv.waitConnections(t, 0)

	id2 := srv.publish(t, "e", "2") // while no loop runs
	for ev, err := range c.Events(ctx) {
		require.NoError(t, err)
		assert.Equal(t, core.Event{ID: id2, Type: "e", Data: "2"}, ev)
		break
	}
	reqs := srv.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, id1, reqs[1].Get("Last-Event-ID"))
}

func TestStateSequence(t *testing.T) {
	srv := newSSEServer(t, core.Config{RetryHint: 50 * time.Millisecond})
	rec := newRecorder()
	rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()))
	rec.waitOpen(t)
	srv.dropAll(t)
	rec.waitOpen(t)
	rec.stop(t)
	assert.Equal(t, []client.State{client.Connecting, client.Open, client.Reconnecting, client.Open, client.Closed}, rec.stateLog())
	assert.Equal(t, "reconnecting", client.Reconnecting.String())
}

func TestOneLoopAtATime(t *testing.T) {
	srv := newSSEServer(t, core.Config{})
	rec := newRecorder()
	c := rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()))
	rec.waitOpen(t)
	var errs []error
	for _, err := range c.Events(context.Background()) {
		errs = append(errs, err)
	}
	require.Len(t, errs, 1)
	assert.ErrorIs(t, errs[0], client.ErrInUse)
}

func TestIdleTimeoutReconnects(t *testing.T) {
	srv := newPlainServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		if n == 1 { // open, then silence: a half-open connection
			_ = http.NewResponseController(w).Flush()
			<-r.Context().Done()
			return
		}
		_, _ = io.WriteString(w, "data: after\n\n")
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
	rec := newRecorder()
	rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()), client.WithIdleTimeout(50*time.Millisecond), fast)
	rt := rec.nextRetry(t)
	assert.ErrorIs(t, rt.err, client.ErrIdleTimeout)
	assert.Equal(t, "after", rec.next(t).Data)
}

func TestOversizedEventEndsEvents(t *testing.T) {
	srv := newPlainServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		sse(w, "data: "+strings.Repeat("x", 2<<20)+"\n\n")
	})
	rec := newRecorder()
	rec.start(t, srv.URL, client.WithHTTPClient(srv.Client()), fast)
	rec.wait(t)
	_, err := rec.result()
	assert.ErrorIs(t, err, core.ErrEventTooLarge)
	assert.Len(t, srv.requests(), 1)
}

func TestNewRejectsBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		url  string
		opts []client.Option
	}{
		"relative URL":       {url: "/events"},
		"ftp URL":            {url: "ftp://example.com/events"},
		"unparsable URL":     {url: "http://[::1"},
		"nil HTTP client":    {opts: []client.Option{client.WithHTTPClient(nil)}},
		"negative retries":   {opts: []client.Option{client.WithMaxRetries(-1)}},
		"bad header name":    {opts: []client.Option{client.WithHeader("Bad Name", "x")}},
		"header injection":   {opts: []client.Option{client.WithHeader("X-A", "a\r\nX-B: b")}},
		"bad last event ID":  {opts: []client.Option{client.WithLastEventID("a\nb")}},
		"multiplier below 1": {opts: []client.Option{client.WithBackoff(client.Backoff{Multiplier: 0.5})}},
		"jitter above 1":     {opts: []client.Option{client.WithBackoff(client.Backoff{Jitter: 2})}},
		"negative initial":   {opts: []client.Option{client.WithBackoff(client.Backoff{Initial: -1})}},
		"negative idle":      {opts: []client.Option{client.WithIdleTimeout(-time.Second)}},
	} {
		t.Run(name, func(t *testing.T) {
			url := tc.url
			if url == "" {
				url = "http://example.com/events"
			}
			c, err := client.New(url, tc.opts...)
			assert.Error(t, err)
			assert.Nil(t, c)
		})
	}
}

func TestGivesUpOnUntrustedCertificate(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { sse(w, "data: x\n\n") }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tr := &http.Transport{} // trusts only the system roots, not srv's certificate
	t.Cleanup(tr.CloseIdleConnections)

	rec := newRecorder()
	rec.start(t, srv.URL, client.WithHTTPClient(&http.Client{Transport: tr}), fast)
	rec.wait(t)
	n, err := rec.result()
	assert.Equal(t, 1, n)
	var cert *tls.CertificateVerificationError
	assert.ErrorAs(t, err, &cert)
	assert.Empty(t, rec.retries)
}
