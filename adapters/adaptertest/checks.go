package adaptertest

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/core/sse"
)

// checks is the conformance bar, in the order they are reported.
var checks = []struct {
	name string
	run  func(t *testing.T, s *suite)
}{
	{"Headers", checkHeaders},
	{"PreambleBeforeAnyPublish", checkPreamble},
	{"Delivery", checkDelivery},
	{"TenantIsolation", checkTenantIsolation},
	{"ReplayLastEventIDHeader", func(t *testing.T, s *suite) { checkReplay(t, s, false) }},
	{"ReplayLastEventIDQuery", func(t *testing.T, s *suite) { checkReplay(t, s, true) }},
	{"GapEvent", checkGap},
	{"Heartbeat", checkHeartbeat},
	{"ClientDisconnect", checkDisconnect},
	{"SlowReader", checkSlowReader},
	{"RejectStatuses", checkRejectStatuses},
	{"RejectAuthFailures", checkRejectAuthFailures},
	{"MaxConnections", checkMaxConnections},
	{"MaxConnectionsPerUser", checkMaxConnectionsPerUser},
	{"BrokerClose", checkBrokerClose},
	{"WriteTimeout", checkWriteTimeout},
	{"AbortedReplay", checkAbortedReplay},
	{"PanickingHook", checkPanickingHook},
}

var (
	// browser is what an EventSource sends (Dial adds it too).
	browser = http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
	// statusMode asks for plain HTTP statuses at a limit.
	statusMode = http.Header{core.RejectModeHeader: {"status"}}
)

var bcast = core.Target{Broadcast: true}

func checkHeaders(t *testing.T, s *suite) {
	e := s.start(t, core.Config{}, startOptions{})
	c := e.dial(t, "", nil)
	h := c.Resp.Header
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err != nil || mt != "text/event-stream" {
		t.Errorf("Content-Type = %q, want text/event-stream", h.Get("Content-Type"))
	}
	if !hasToken(h.Values("Cache-Control"), "no-cache") {
		t.Errorf("Cache-Control = %q, want no-cache", h.Values("Cache-Control"))
	}
	if got := h.Get("X-Accel-Buffering"); got != "no" {
		t.Errorf("X-Accel-Buffering = %q, want no (nginx would buffer the stream)", got)
	}
	if c.Resp.ContentLength != -1 {
		t.Errorf("ContentLength = %d: a stream has no length", c.Resp.ContentLength)
	}
	if c.Resp.Uncompressed || h.Get("Content-Encoding") != "" {
		t.Errorf("stream is compressed (Content-Encoding %q): compression buffers events", h.Get("Content-Encoding"))
	}
	if e.proto == 2 && len(h.Values("Connection")) > 0 {
		t.Errorf("Connection header %q on HTTP/2, where it is forbidden", h.Values("Connection"))
	}
	c.Opened(t)
}

func hasToken(values []string, token string) bool {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// checkPreamble: with nothing published (and no heartbeat due for 30s),
// the opening frame must reach the client at once, with the position a
// client that is cut before its first event reconnects from.
func checkPreamble(t *testing.T, s *suite) {
	h := core.NewMemoryBackend(core.HistoryLimits{Events: 16})
	hint := 2 * time.Second
	e := s.start(t, core.Config{Backend: h, RetryHint: hint}, startOptions{})
	c := e.dial(t, "", nil)
	c.Opened(t)
	id, retry := c.Position(t)
	if id != h.Origin() {
		t.Errorf("position after the preamble = %q, want the history's origin %q", id, h.Origin())
	}
	if retry < hint || retry > hint*3/2 {
		t.Errorf("retry after the preamble = %v, want %v plus up to 50%% jitter", retry, hint)
	}
	if n := e.b.Stats().Published; n != 0 {
		t.Fatalf("published %d events; the check needs none", n)
	}
}

type got struct{ id, typ, data string }

func (g got) String() string { return fmt.Sprintf("%s:%q", g.typ, g.data) }

// until reads events up to and including one of type "end".
func until(t *testing.T, c *Conn) []got {
	t.Helper()
	var out []got
	for {
		ev := c.Event(t)
		out = append(out, got{ev.ID, ev.Type, ev.Data})
		if ev.Type == "end" {
			return out
		}
	}
}

// expect compares what a stream received (types, data and IDs) with want.
func expect(t *testing.T, who string, have, want []got) {
	t.Helper()
	if !slices.Equal(have, want) {
		t.Errorf("%s received\n  %v\nwant\n  %v", who, have, want)
		return
	}
	for _, g := range have {
		if g.id == "" {
			t.Errorf("%s: event %v has no id", who, g)
		}
	}
}

func checkDelivery(t *testing.T, s *suite) {
	e := s.start(t, core.Config{Authenticator: core.InsecureQueryAuthenticator()}, startOptions{})
	u1, u2 := uuid.New(), uuid.New()
	a := e.dial(t, query("user", u1.String(), "topic", "a", "topic", "b"), nil)
	phone := e.dial(t, query("user", u1.String()), nil) // the same user's second device
	c := e.dial(t, query("user", u2.String(), "topic", "b"), nil)
	anon := e.dial(t, query("topic", "a"), nil)
	for _, conn := range []*Conn{a, phone, c, anon} {
		conn.Opened(t)
	}
	if !e.b.IsUserOnline(u1) || e.b.UserConnections(u1) != 2 || !e.b.IsUserOnline(u2) {
		t.Errorf("presence: u1 online %v with %d connections, u2 online %v; want true, 2, true",
			e.b.IsUserOnline(u1), e.b.UserConnections(u1), e.b.IsUserOnline(u2))
	}
	pub := func(tg core.Target, typ, data string) got { return got{publish(t, e.b, tg, typ, data), typ, data} }
	user := pub(core.Target{Users: []uuid.UUID{u1}}, "user", "1")
	topicA := pub(core.Target{Topics: []string{"a"}}, "topic", "2")
	topicB := pub(core.Target{Topics: []string{"b"}}, "topic", "3")
	// a matches twice and receives it once.
	multi := pub(core.Target{Users: []uuid.UUID{u1}, Topics: []string{"a"}}, "multi", "4")
	all := pub(bcast, "all", "5")
	other := pub(core.Target{Users: []uuid.UUID{u2}}, "json", `{"n":6}`)
	// Line breaks in data stay data: they cannot inject fields or events.
	lines := pub(core.Target{Topics: []string{"a"}}, "lines", "7\n\nevent: injected\ndata: x\r\nid: 1")
	pub(core.Target{Topics: []string{"nobody"}}, "lost", "8")
	end := pub(bcast, "end", "")
	lines.data = "7\n\nevent: injected\ndata: x\nid: 1" // CRLF is one line break; the client joins lines with LF

	expect(t, "user u1 on topics a, b", until(t, a), []got{user, topicA, topicB, multi, all, lines, end})
	expect(t, "user u1's second device", until(t, phone), []got{user, multi, all, end})
	expect(t, "user u2 on topic b", until(t, c), []got{topicB, all, other, end})
	expect(t, "anonymous on topic a", until(t, anon), []got{topicA, multi, all, lines, end})
}

func checkTenantIsolation(t *testing.T, s *suite) {
	e := s.start(t, core.Config{Authenticator: core.InsecureQueryAuthenticator()}, startOptions{})
	u := uuid.New()
	// The same user and topic in three tenants.
	t1 := e.dial(t, query("user", u.String(), "tenant", "t1", "topic", "news"), nil)
	t2 := e.dial(t, query("user", u.String(), "tenant", "t2", "topic", "news"), nil)
	def := e.dial(t, query("user", u.String(), "topic", "news"), nil)
	for _, c := range []*Conn{t1, t2, def} {
		c.Opened(t)
	}
	for _, tenant := range []string{"t1", "t2", ""} {
		if n := e.b.Tenant(tenant).UserConnections(u); n != 1 {
			t.Errorf("tenant %q: user has %d connections, want 1", tenant, n)
		}
	}
	if e.b.Tenant("t3").IsUserOnline(u) {
		t.Error("user online in tenant t3, where it never connected")
	}
	pub := func(tenant string, tg core.Target, typ string) got {
		tg.Tenant = tenant
		return got{publish(t, e.b, tg, typ, tenant), typ, tenant}
	}
	toUser := pub("t1", core.Target{Users: []uuid.UUID{u}}, "user")
	toTopic := pub("t2", core.Target{Topics: []string{"news"}}, "topic")
	toAll := pub("", bcast, "all")
	pub("t3", bcast, "all")
	ends := map[string]got{}
	for _, tenant := range []string{"t1", "t2", ""} {
		ends[tenant] = pub(tenant, bcast, "end")
	}
	expect(t, "tenant t1", until(t, t1), []got{toUser, ends["t1"]})
	expect(t, "tenant t2", until(t, t2), []got{toTopic, ends["t2"]})
	expect(t, "default tenant", until(t, def), []got{toAll, ends[""]})
}

// checkReplay: a client that reconnects with the ID of the last event it
// got receives exactly what it missed and is entitled to, in order, then
// the live events, with nothing twice.
func checkReplay(t *testing.T, s *suite, viaQuery bool) {
	e := s.start(t, core.Config{Authenticator: core.InsecureQueryAuthenticator()}, startOptions{})
	u, v := uuid.New(), uuid.New()
	q := query("user", u.String(), "topic", "t")
	first := e.dial(t, q, nil)
	first.Opened(t)
	id1 := publish(t, e.b, core.Target{Users: []uuid.UUID{u}}, "e", "1")
	if ev := first.Event(t); ev.ID != id1 || ev.Data != "1" {
		t.Fatalf("first stream: got event %q %q, want %q %q", ev.ID, ev.Data, id1, "1")
	}
	first.Close()
	waitFor(t, "the closed stream is unregistered", func() bool { return e.b.Stats().Connections == 0 })

	var missed []got
	pub := func(tg core.Target, data string, entitled bool) {
		id := publish(t, e.b, tg, "e", data)
		if entitled {
			missed = append(missed, got{id, "e", data})
		}
	}
	pub(core.Target{Users: []uuid.UUID{u}}, "2", true)
	pub(core.Target{Topics: []string{"t"}}, "3", true)
	pub(core.Target{Users: []uuid.UUID{v}}, "other user", false)
	pub(core.Target{Topics: []string{"other"}}, "other topic", false)
	pub(core.Target{Tenant: "elsewhere", Broadcast: true}, "other tenant", false)
	pub(bcast, "6", true)

	var again *Conn
	if viaQuery {
		again = e.dial(t, q+"&lastEventId="+id1, nil)
	} else {
		again = e.dial(t, q, http.Header{"Last-Event-Id": {id1}})
	}
	again.Opened(t)
	var have []got
	for range missed {
		ev := again.Event(t)
		have = append(have, got{ev.ID, ev.Type, ev.Data})
	}
	expect(t, "the replay", have, missed)
	live := publish(t, e.b, core.Target{Users: []uuid.UUID{u}}, "e", "live")
	if ev := again.Event(t); ev.ID != live || ev.Data != "live" {
		t.Errorf("after the replay: got event %q %q, want the live event %q", ev.ID, ev.Data, live)
	}
	if st := e.b.Stats(); st.Replayed != uint64(len(missed)) || st.Gaps != 0 {
		t.Errorf("stats: replayed %d with %d gaps, want %d and 0", st.Replayed, st.Gaps, len(missed))
	}
}

// checkGap: a Last-Event-ID older than the history, or unknown to it, gets
// the documented gap event positioned at the newest event, then live ones.
func checkGap(t *testing.T, s *suite) {
	e := s.start(t, core.Config{HistorySize: 2}, startOptions{})
	var ids []string
	for i := range 4 {
		ids = append(ids, publish(t, e.b, bcast, "e", strconv.Itoa(i)))
	}
	gap := func(c *Conn, lastID, reason, at string) {
		t.Helper()
		ev := c.Event(t)
		if ev.Type != core.GapEventType || ev.ID != at {
			t.Fatalf("want the %s event with id %q, got type %q id %q data %q", core.GapEventType, at, ev.Type, ev.ID, ev.Data)
		}
		var data struct {
			LastEventID string `json:"lastEventId"`
			Reason      string `json:"reason"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &data); err != nil || data.LastEventID != lastID || data.Reason != reason {
			t.Errorf("gap data %q (%v), want lastEventId %q and reason %q", ev.Data, err, lastID, reason)
		}
	}

	expired := e.dial(t, "", http.Header{"Last-Event-Id": {ids[0]}})
	expired.Opened(t)
	gap(expired, ids[0], "expired", ids[3])
	live := publish(t, e.b, bcast, "e", "live")
	if ev := expired.Event(t); ev.ID != live {
		t.Errorf("after the gap event: got %q %q, want the live event %q", ev.ID, ev.Data, live)
	}

	unknown := e.dial(t, query("lastEventId", "0badc0de-7"), nil)
	unknown.Opened(t)
	gap(unknown, "0badc0de-7", "unknown", live)
	if n := e.b.Stats().Gaps; n != 2 {
		t.Errorf("stats: %d gaps, want 2", n)
	}
}

func checkHeartbeat(t *testing.T, s *suite) {
	interval := core.MinHeartbeatInterval
	e := s.start(t, core.Config{HeartbeatInterval: interval}, startOptions{})
	c := e.dial(t, "", nil)
	c.Opened(t)
	start := time.Now()
	c.Comment(t, "") // ":\n\n"
	if took := time.Since(start); took < interval*4/5 {
		t.Errorf("heartbeat after %v on an idle stream, want about %v", took, interval)
	}
	id := publish(t, e.b, bcast, "e", "after the heartbeat")
	if ev := c.Event(t); ev.ID != id {
		t.Errorf("after the heartbeat: got event %q, want %q", ev.ID, id)
	}
}

func checkDisconnect(t *testing.T, s *suite) {
	e := s.start(t, core.Config{Authenticator: core.InsecureQueryAuthenticator()}, startOptions{})
	u := uuid.New()
	c := e.dial(t, query("user", u.String(), "topic", "room"), nil)
	c.Opened(t)
	if st := e.b.Stats(); st.Connections != 1 || st.Users != 1 || st.Topics != 1 || !e.b.IsUserOnline(u) {
		t.Fatalf("while connected: %+v, user online %v; want 1 connection, user and topic", st, e.b.IsUserOnline(u))
	}
	c.Close() // the tab closes: the request is cancelled
	waitFor(t, "the subscription and the user's presence are removed after the client left", func() bool {
		st := e.b.Stats()
		return st.Connections == 0 && st.Users == 0 && st.Topics == 0 && !e.b.IsUserOnline(u)
	})
	publish(t, e.b, core.Target{Users: []uuid.UUID{u}}, "e", "to nobody")
}

// checkSlowReader: one client never reads its stream while a fast one
// takes 1 KiB events as they come. Publishing never blocks, the fast
// client gets every event in order, and the slow one is cut.
func checkSlowReader(t *testing.T, s *suite) {
	const (
		queue     = 64
		batch     = 16 // the fast client catches up after each batch, so its queue never fills
		minEvents = 2000
		maxEvents = 64 << 10 // 64 MiB: more than any socket and flow-control buffers hold
	)
	e := s.start(t, core.Config{ClientBufferSize: queue}, startOptions{smallBuffers: true})
	fast := e.dial(t, "?topic=load", nil)
	fast.Opened(t)
	slow := e.dialWith(t, e.slowClient(), "?topic=load", nil, true)

	payload := strings.Repeat("x", 1<<10)
	var ids []string
	var slowest time.Duration
	cut := func() bool { return e.b.Stats().Dropped[core.DropDisconnected] > 0 }
	for len(ids) < minEvents || !cut() {
		if len(ids) >= maxEvents {
			t.Fatalf("the client that does not read was not disconnected after %d events of 1 KiB (stats %+v)", len(ids), e.b.Stats())
		}
		for range batch {
			start := time.Now()
			ids = append(ids, publish(t, e.b, core.Target{Topics: []string{"load"}}, "load", strconv.Itoa(len(ids))+" "+payload))
			slowest = max(slowest, time.Since(start))
		}
		for _, id := range ids[len(ids)-batch:] {
			if ev := fast.Event(t); ev.ID != id {
				t.Fatalf("fast client: got event %q, want %q", ev.ID, id)
			}
		}
	}
	t.Logf("%d events published, slowest Publish %v, the reader that stalled was cut", len(ids), slowest)
	if slowest > 2*time.Second {
		t.Errorf("a Publish took %v: publishing must not wait for a slow client", slowest)
	}
	waitFor(t, "the slow client's connection is released", func() bool { return e.b.Stats().Connections == 1 })

	// What the slow client did get is a prefix of the events, then its
	// stream ends.
	slow.resume()
	events, err := slow.Drain(t)
	for i, ev := range events {
		if i >= len(ids) || ev.ID != ids[i] {
			t.Fatalf("slow client's event %d is %q, want %q", i, ev.ID, ids[i])
		}
	}
	t.Logf("the slow client got %d events before its stream ended (%v)", len(events), err)

	// The fast one goes on.
	id := publish(t, e.b, core.Target{Topics: []string{"load"}}, "load", "after")
	if ev := fast.Event(t); ev.ID != id {
		t.Errorf("fast client after the cut: got %q, want %q", ev.ID, id)
	}
}

func checkRejectStatuses(t *testing.T, s *suite) {
	auth := core.AuthenticatorFunc(func(ctx context.Context, r core.Request) (core.Identity, error) {
		if q := r.Query("token"); len(q) == 0 || q[0] != "good" {
			return core.Identity{}, fmt.Errorf("%w: bad token", core.ErrUnauthenticated)
		}
		return core.InsecureQueryAuthenticator().Authenticate(ctx, r)
	})
	authz := core.AuthorizerFunc(func(_ context.Context, _ core.Identity, topics []string) error {
		if slices.Contains(topics, "secret") {
			return fmt.Errorf("%w: topic secret", core.ErrForbidden)
		}
		return nil
	})
	e := s.start(t, core.Config{Authenticator: auth, Authorizer: authz}, startOptions{})
	for _, tc := range []struct {
		q    string
		want int
	}{
		{query("token", "good", "topic", "a//b"), http.StatusBadRequest},
		{query("token", "good", "user", "not-a-uuid"), http.StatusBadRequest},
		{query("token", "good", "tenant", "no spaces"), http.StatusBadRequest},
		{query("token", "good", "lastEventId", "1\x002"), http.StatusBadRequest},
		{"", http.StatusUnauthorized},
		{query("token", "bad", "topic", "a"), http.StatusUnauthorized},
		{query("token", "good", "topic", "secret"), http.StatusForbidden},
		{query("token", "good", "topic", "a", "topic", "secret"), http.StatusForbidden},
	} {
		for _, h := range []http.Header{browser, statusMode} {
			r := e.get(t, tc.q, h)
			if r.status != tc.want {
				t.Errorf("GET %s (%v): status %d %q, want %d", tc.q, h, r.status, r.body, tc.want)
			}
			if mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); mt == "text/event-stream" {
				t.Errorf("GET %s: a %d answer is not an event stream", tc.q, r.status)
			}
		}
	}
	if n := e.b.Stats().Connections; n != 0 {
		t.Errorf("%d connections registered by refused requests", n)
	}
	ok := e.dial(t, query("token", "good", "topic", "a"), nil)
	ok.Opened(t)
}

// rejected checks the 200 answer a browser gets at a limit: an event
// stream that holds a retry hint and a ssekit.rejected event, and ends.
func rejected(t *testing.T, r response, reason string, hint time.Duration) {
	t.Helper()
	if mt, _, _ := mime.ParseMediaType(r.header.Get("Content-Type")); r.status != http.StatusOK || mt != "text/event-stream" {
		t.Fatalf("browser at a limit (%s): got %d %q %q, want a 200 event stream", reason, r.status, r.header.Get("Content-Type"), r.body)
	}
	d := sse.NewDecoder(strings.NewReader(string(r.body)))
	ev, err := d.Next()
	if err != nil || ev.Type != core.RejectedEventType {
		t.Fatalf("browser at a limit (%s): want a %s event, got %+v, %v in %q", reason, core.RejectedEventType, ev, err, r.body)
	}
	var data struct {
		Reason  string `json:"reason"`
		RetryMs int64  `json:"retryMs"`
	}
	if err := json.Unmarshal([]byte(ev.Data), &data); err != nil || data.Reason != reason || data.RetryMs < hint.Milliseconds() {
		t.Errorf("%s data %q (%v), want reason %q and retryMs >= %d", core.RejectedEventType, ev.Data, err, reason, hint.Milliseconds())
	}
	if d.Retry() < hint {
		t.Errorf("retry hint %v at a limit, want at least %v", d.Retry(), hint)
	}
	if _, err := d.Next(); err == nil {
		t.Errorf("more than one event in the rejection %q", r.body)
	}
}

// statusRejected checks the answer a client sending SSEKit-Reject: status
// gets at a limit.
func statusRejected(t *testing.T, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("SSEKit-Reject: status at a limit: got %d %q, want %d", r.status, r.body, want)
	}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After = %q on a %d, want whole seconds >= 1", r.header.Get("Retry-After"), want)
	}
}

func checkMaxConnections(t *testing.T, s *suite) {
	hint := time.Second
	e := s.start(t, core.Config{MaxConnections: 1, RetryHint: hint}, startOptions{})
	held := e.dial(t, "", nil)
	held.Opened(t)
	rejected(t, e.get(t, "", browser), "too_many_connections", hint)
	statusRejected(t, e.get(t, "", statusMode), http.StatusServiceUnavailable)
	if n := e.b.Stats().Connections; n != 1 {
		t.Errorf("%d connections, want the 1 held", n)
	}
	held.Close()
	waitFor(t, "the held connection is released", func() bool { return e.b.Stats().Connections == 0 })
	again := e.dial(t, "", nil)
	again.Opened(t)
}

func checkMaxConnectionsPerUser(t *testing.T, s *suite) {
	hint := time.Second
	e := s.start(t, core.Config{Authenticator: core.InsecureQueryAuthenticator(), MaxConnectionsPerUser: 1, RetryHint: hint}, startOptions{})
	u := uuid.New()
	held := e.dial(t, query("user", u.String()), nil)
	held.Opened(t)
	statusRejected(t, e.get(t, query("user", u.String()), statusMode), http.StatusTooManyRequests)
	rejected(t, e.get(t, query("user", u.String()), browser), "too_many_user_connections", hint)
	// Others, and the same user in another tenant, are not limited by it.
	for _, q := range []string{query("user", uuid.NewString()), "", query("user", u.String(), "tenant", "t2")} {
		e.dial(t, q, nil).Opened(t)
	}
}

// checkBrokerClose: Close flushes what is queued, ends every stream with a
// reconnect hint, and refuses new streams so that clients back off.
func checkBrokerClose(t *testing.T, s *suite) {
	hint := 2 * time.Second
	e := s.start(t, core.Config{Authenticator: core.InsecureQueryAuthenticator(), RetryHint: hint}, startOptions{})
	conns := []*Conn{e.dial(t, query("user", uuid.NewString()), nil), e.dial(t, "", nil)}
	// An event with a 1ms retry sets a position the shutdown frame must
	// move: the retry read at the end is then the one Close sent.
	marker, err := e.b.Publish(context.Background(), core.Message{Target: bcast, Event: core.Event{Type: "marker", Data: "m", Retry: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range conns {
		c.Opened(t)
		if ev := c.Event(t); ev.ID != marker || ev.Retry != time.Millisecond {
			t.Fatalf("got %+v, want the marker event %q with retry 1ms", ev, marker)
		}
	}
	var queued []string
	for i := range 3 {
		queued = append(queued, publish(t, e.b, bcast, "e", strconv.Itoa(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	start := time.Now()
	if err := e.b.Close(ctx); err != nil {
		t.Fatalf("Close: %v after %v", err, time.Since(start))
	}
	for i, c := range conns {
		for _, id := range queued {
			if ev := c.Event(t); ev.ID != id {
				t.Errorf("stream %d: event %q, want %q queued before Close", i, ev.ID, id)
			}
		}
		c.Comment(t, string(core.ReasonShutdown))
		lastID, retry, err := c.End(t)
		if !isEOF(err) {
			t.Errorf("stream %d ended with %v, want a clean end (EOF)", i, err)
		}
		if retry < hint || retry > hint*3/2 {
			t.Errorf("stream %d: retry %v at shutdown, want %v plus up to 50%% jitter", i, retry, hint)
		}
		if lastID != queued[len(queued)-1] {
			t.Errorf("stream %d: reconnects from %q, want %q", i, lastID, queued[len(queued)-1])
		}
	}
	statusRejected(t, e.get(t, "", statusMode), http.StatusServiceUnavailable)
	rejected(t, e.get(t, "", browser), "shutting_down", hint)
}

// checkWriteTimeout: a stream outlives the server's WriteTimeout.
func checkWriteTimeout(t *testing.T, s *suite) {
	e := s.start(t, core.Config{}, startOptions{})
	c := e.dial(t, "", nil)
	c.Opened(t)
	c.Quiet(t, 3*max(e.writeTimeout, time.Second))
	id := publish(t, e.b, bcast, "e", "late")
	if ev := c.Event(t); ev.ID != id {
		t.Errorf("got event %q, want %q", ev.ID, id)
	}
}
