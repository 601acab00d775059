package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// TestAuthModeProviderSubject: in auth mode a token whose sub is not a
// UUID (here Auth0's shape) opens a stream as core.UserFromSubject(sub),
// and a push to that UUID through POST /publish reaches it.
func TestAuthModeProviderSubject(t *testing.T) {
	srv, b, mint := startAuthHub(t)
	const sub = "auth0|5f7c8ec7c33c6c004bbafe82"
	user := core.UserFromSubject(sub)
	reader := mint(auth.Grant{Subject: sub, Tenant: "acme"})
	writer := mint(auth.Grant{User: uuid.New(), Tenant: "acme", Publish: []string{auth.GrantUsers}})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: "ssekit_token", Value: reader})
	res, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.True(t, b.Tenant("acme").IsUserOnline(user), "the stream belongs to core.UserFromSubject(sub)")

	status, body := post(t, srv.Client(), srv.URL, writer, `{"user":"`+user.String()+`","event":"dm","data":"hi"}`)
	require.Equal(t, http.StatusOK, status, body)
	ev, err := core.NewDecoder(res.Body).Next()
	require.NoError(t, err)
	require.Equal(t, "hi", ev.Data)
}
