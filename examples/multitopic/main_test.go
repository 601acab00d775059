package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
)

func start(t *testing.T) *httptest.Server {
	t.Helper()
	conns := newConnections()
	broker, err := core.New(core.Config{
		AnnounceConnection: true,
		Authenticator:      core.InsecureQueryAuthenticator(),
		Observer:           conns.Observer(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = broker.Close(context.Background()) })
	srv := httptest.NewServer(newServer(broker, conns))
	t.Cleanup(srv.Close)
	return srv
}

// connectionID reads the ssekit.connected event a stream opens with.
func connectionID(t *testing.T, s *stream) string {
	t.Helper()
	ev := s.Expect(core.ConnectedEventType, nil)
	var d struct{ ConnectionID string }
	err := json.Unmarshal([]byte(ev.Data), &d)
	require.NoError(t, err, "bad %s data %s", ev.Type, ev.Data)
	require.NotEqual(t, "", d.ConnectionID, "bad %s data %s", ev.Type, ev.Data)
	return d.ConnectionID
}

func TestAddAndRemoveTopicsWhileConnected(t *testing.T) {
	srv := start(t)
	hc := srv.Client()
	user := uuid.New()
	s := subscribe(t, srv.URL+"/events?user="+user.String()+"&topic=news&topic=sports")
	conn := connectionID(t, s)

	send := func(topic string) {
		t.Helper()
		status, body := post(t, hc, srv.URL+"/publish", map[string]string{"topic": topic, "text": "on " + topic})
		require.Equal(t, http.StatusNoContent, status, "publish: %d %s", status, body)
	}
	change := func(add, remove []string) {
		t.Helper()
		body := map[string]any{"connectionId": conn, "add": add, "remove": remove}
		status, out := post(t, hc, srv.URL+"/topics?user="+user.String(), body)
		require.Equal(t, http.StatusNoContent, status, "topics: %d %s", status, out)
	}
	post := func(topic string) map[string]string { return map[string]string{"topic": topic, "text": "on " + topic} }

	// Both topics of the URL are delivered; weather is not subscribed.
	send("news")
	send("weather")
	send("sports")
	s.Expect("post", post("news"))
	s.Expect("post", post("sports"))

	change([]string{"weather"}, nil)
	send("weather")
	s.Expect("post", post("weather"))

	change(nil, []string{"news"})
	send("news")
	send("sports")
	s.Expect("post", post("sports")) // news no longer arrives
	s.ExpectNone(100 * time.Millisecond)
}

func TestOnlyTheOwnerChangesAConnection(t *testing.T) {
	srv := start(t)
	hc := srv.Client()
	owner := uuid.New()
	s := subscribe(t, srv.URL+"/events?user="+owner.String()+"&topic=news")
	conn := connectionID(t, s)
	anon := subscribe(t, srv.URL+"/events?topic=news")
	anonConn := connectionID(t, anon)

	for name, tc := range map[string]struct {
		user, conn string
		topics     []string
		want       int
	}{
		"another user":       {uuid.NewString(), conn, []string{"weather"}, http.StatusForbidden},
		"no user":            {"", conn, []string{"weather"}, http.StatusForbidden},
		"anonymous conn":     {owner.String(), anonConn, []string{"weather"}, http.StatusForbidden},
		"unknown conn":       {owner.String(), "nope", []string{"weather"}, http.StatusForbidden},
		"bad user":           {"alice", conn, []string{"weather"}, http.StatusBadRequest},
		"invalid topic":      {owner.String(), conn, []string{"a//b"}, http.StatusBadRequest},
		"owner, valid topic": {owner.String(), conn, []string{"weather"}, http.StatusNoContent},
	} {
		body := map[string]any{"connectionId": tc.conn, "add": tc.topics}
		status, out := post(t, hc, srv.URL+"/topics?user="+tc.user, body)
		assert.Equal(t, tc.want, status, "%s: %d %s, want %d", name, status, out, tc.want)
	}

	// After the stream ends, its ID is forgotten.
	s.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		status, _ := post(t, hc, srv.URL+"/topics?user="+owner.String(), map[string]any{"connectionId": conn, "add": []string{"x"}})
		if status == http.StatusForbidden {
			break
		}
		require.False(t, time.Now().After(deadline), "closed connection still changeable: %d", status)
		time.Sleep(10 * time.Millisecond)
	}
}
