package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ssekit/ssekit/core"
)

// start serves the example in-process on a loopback port.
func start(t *testing.T) *httptest.Server {
	t.Helper()
	broker, err := core.New(core.Config{Authenticator: core.InsecureQueryAuthenticator()})
	if err != nil {
		t.Fatal(err)
	}
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
		if status != http.StatusOK {
			t.Fatalf("notify: %d %s", status, body)
		}
		id := []string{"1", "2"}[i]
		for _, tab := range []*stream{laptop, phone} {
			tab.Expect("notification", map[string]any{"id": id, "text": text, "read": false})
			tab.Expect("unread", map[string]int{"count": i + 1})
		}
	}

	// Reading on one device updates the badge on all of them.
	if status, body := post(t, hc, srv.URL+"/read?user="+alice.String(), map[string]string{"id": "1"}); status != http.StatusOK {
		t.Fatalf("read: %d %s", status, body)
	}
	for _, tab := range []*stream{laptop, phone} {
		tab.Expect("unread", map[string]int{"count": 1})
	}
	if status, body := post(t, hc, srv.URL+"/read?user="+alice.String(), map[string]string{}); status != http.StatusOK {
		t.Fatalf("read all: %d %s", status, body)
	}
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
	if status, _ := post(t, hc, srv.URL+"/notify", map[string]any{"user": "alice", "text": "x"}); status != http.StatusBadRequest {
		t.Errorf("notify with a bad user: %d, want 400", status)
	}
	if status, _ := post(t, hc, srv.URL+"/notify", map[string]any{"user": user}); status != http.StatusBadRequest {
		t.Errorf("notify without text: %d, want 400", status)
	}
	if status, _ := post(t, hc, srv.URL+"/read?user="+user, map[string]string{"id": "42"}); status != http.StatusNotFound {
		t.Errorf("read of an unknown notification: %d, want 404", status)
	}
}
