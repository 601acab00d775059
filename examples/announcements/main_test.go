package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/client"
	"github.com/ssekit/ssekit/core"
)

const operator = "operator-secret"

var tenants = []string{"", "acme", "globex"}

func start(t *testing.T) *httptest.Server {
	t.Helper()
	broker, err := core.New(core.Config{Authenticator: knownTenants(core.InsecureQueryAuthenticator(), tenants)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = broker.Close(context.Background()) })
	srv := httptest.NewServer(newServer(broker, tenants, operator))
	t.Cleanup(srv.Close)
	return srv
}

func announce(t *testing.T, srv *httptest.Server, body map[string]any, token string) int {
	t.Helper()
	status, _ := post(t, srv.Client(), srv.URL+"/announce", body, "Authorization", "Bearer "+token)
	return status
}

func TestAnnouncements(t *testing.T) {
	srv := start(t)
	acme1 := subscribe(t, srv.URL+"/events?tenant=acme&user="+uuid.NewString())
	acme2 := subscribe(t, srv.URL+"/events?tenant=acme&user="+uuid.NewString())
	acmeAnon := subscribe(t, srv.URL+"/events?tenant=acme")
	globex := subscribe(t, srv.URL+"/events?tenant=globex&user="+uuid.NewString())
	def := subscribe(t, srv.URL+"/events?user="+uuid.NewString())

	status := announce(t, srv, map[string]any{"tenant": "acme", "text": "Invoices are late"}, operator)
	require.Equal(t, http.StatusOK, status, "tenant announcement: %d", status)
	for _, s := range []*stream{acme1, acme2, acmeAnon} {
		s.Expect("announcement", Announcement{Text: "Invoices are late", Scope: "tenant"})
	}
	globex.ExpectNone(100 * time.Millisecond)
	def.ExpectNone(0)

	status = announce(t, srv, map[string]any{"all": true, "text": "Maintenance at 22:00"}, operator)
	require.Equal(t, http.StatusOK, status, "announcement to all: %d", status)
	for _, s := range []*stream{acme1, acme2, acmeAnon, globex, def} {
		s.Expect("announcement", Announcement{Text: "Maintenance at 22:00", Scope: "all"})
	}
	for _, s := range []*stream{acme1, globex, def} {
		s.ExpectNone(50 * time.Millisecond) // each got it exactly once
	}
}

func TestAnnounceRefusals(t *testing.T) {
	srv := start(t)
	status := announce(t, srv, map[string]any{"all": true, "text": "x"}, "wrong")
	assert.Equal(t, http.StatusUnauthorized, status, "wrong operator token: %d, want 401", status)
	status = announce(t, srv, map[string]any{"tenant": "initech", "text": "x"}, operator)
	assert.Equal(t, http.StatusNotFound, status, "unknown tenant: %d, want 404", status)
	status = announce(t, srv, map[string]any{"all": true}, operator)
	assert.Equal(t, http.StatusBadRequest, status, "no text: %d, want 400", status)
	// A stream in a tenant the service does not know is refused, so "all"
	// really is everyone.
	c, err := client.New(srv.URL + "/events?tenant=initech")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, err := range c.Events(ctx) {
		var se *client.StatusError
		require.True(t, errors.As(err, &se), "got %v, want 403", err)
		require.Equal(t, http.StatusForbidden, se.Code, "got %v, want 403", err)
	}
}
