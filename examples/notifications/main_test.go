package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
)

// start serves the example in-process on a loopback port.
func start(t *testing.T) *httptest.Server {
	t.Helper()
	broker, err := core.New(core.Config{Authenticator: core.InsecureQueryAuthenticator()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = broker.Close(context.Background()) })
	srv := httptest.NewServer(newServer(broker))
	t.Cleanup(srv.Close)
	return srv
}

func TestEveryTabGetsNotificationsAndUnreadCount(t *testing.T) {
	srv := start(t)
	alice, bob := uuid.New(), uuid.New()
	laptop := subscribe(t, srv.URL+"/events?user="+alice.String())
	phone := subscribe(t, srv.URL+"/events?user="+alice.String())
	other := subscribe(t, srv.URL+"/events?user="+bob.String())
	hc := srv.Client()

	for i, text := range []string{"Your order shipped", "New comment on your post"} {
		status, body := post(t, hc, srv.URL+"/notify", map[string]any{"user": alice, "text": text})
		require.Equal(t, http.StatusOK, status, "notify: %d %s", status, body)
		id := []string{"1", "2"}[i]
		for _, tab := range []*stream{laptop, phone} {
			tab.Expect("notification", map[string]any{"id": id, "text": text, "read": false})
			tab.Expect("unread", map[string]int{"count": i + 1})
		}
	}

	// Reading on one device updates the badge on all of them.
	status, body := post(t, hc, srv.URL+"/read?user="+alice.String(), map[string]string{"id": "1"})
	require.Equal(t, http.StatusOK, status, "read: %d %s", status, body)
	for _, tab := range []*stream{laptop, phone} {
		tab.Expect("unread", map[string]int{"count": 1})
	}
	status, body = post(t, hc, srv.URL+"/read?user="+alice.String(), map[string]string{})
	require.Equal(t, http.StatusOK, status, "read all: %d %s", status, body)
	for _, tab := range []*stream{laptop, phone} {
		tab.Expect("unread", map[string]int{"count": 0})
	}

	// Bob saw none of it.
	other.ExpectNone(200 * time.Millisecond)
}

func TestNotifyAndReadErrors(t *testing.T) {
	srv := start(t)
	hc := srv.Client()
	user := uuid.New().String()
	status, _ := post(t, hc, srv.URL+"/notify", map[string]any{"user": "alice", "text": "x"})
	assert.Equal(t, http.StatusBadRequest, status, "notify with a bad user: %d, want 400", status)
	status, _ = post(t, hc, srv.URL+"/notify", map[string]any{"user": user})
	assert.Equal(t, http.StatusBadRequest, status, "notify without text: %d, want 400", status)
	status, _ = post(t, hc, srv.URL+"/read?user="+user, map[string]string{"id": "42"})
	assert.Equal(t, http.StatusNotFound, status, "read of an unknown notification: %d, want 404", status)
}
