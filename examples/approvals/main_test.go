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

var (
	requester = uuid.New()
	approver  = uuid.New()
	outsider  = uuid.New()
	groups    = Groups{"finance": {approver}}
)

func start(t *testing.T) *httptest.Server {
	t.Helper()
	broker, err := core.New(core.Config{
		Authenticator: core.InsecureQueryAuthenticator(),
		Authorizer:    groups.Authorizer(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = broker.Close(context.Background()) })
	srv := httptest.NewServer(newServer(broker, groups))
	t.Cleanup(srv.Close)
	return srv
}

func TestRequesterAndApproversSeeTheWorkflow(t *testing.T) {
	srv := start(t)
	hc := srv.Client()
	req := subscribe(t, srv.URL+"/events?user="+requester.String())
	appr := subscribe(t, srv.URL+"/events?user="+approver.String()+"&topic=approvals/finance")
	out := subscribe(t, srv.URL+"/events?user="+outsider.String())

	status, body := post(t, hc, srv.URL+"/requests", map[string]any{"requester": requester, "group": "finance", "title": "New laptop"})
	require.Equal(t, http.StatusCreated, status, "submit: %d %s", status, body)
	pending := map[string]any{"id": "1", "requester": requester, "group": "finance", "title": "New laptop", "status": "pending"}
	a := req.Expect("approval.submitted", pending)
	b := appr.Expect("approval.submitted", pending)
	assert.Equal(t, b.ID, a.ID, "requester and approver got different event IDs %q and %q", a.ID, b.ID)

	// An outsider cannot decide, and hears nothing.
	status, _ = post(t, hc, srv.URL+"/requests/1/decision", map[string]any{"approver": outsider, "approved": true})
	require.Equal(t, http.StatusForbidden, status, "decision by a non-approver")
	status, body = post(t, hc, srv.URL+"/requests/1/decision", map[string]any{"approver": approver, "approved": true, "comment": "ok"})
	require.Equal(t, http.StatusOK, status, "decide: %d %s", status, body)
	approved := map[string]any{"id": "1", "requester": requester, "group": "finance", "title": "New laptop", "status": "approved", "approver": approver, "comment": "ok"}
	req.Expect("approval.approved", approved)
	appr.Expect("approval.approved", approved)
	status, _ = post(t, hc, srv.URL+"/requests/1/decision", map[string]any{"approver": approver, "approved": false})
	require.Equal(t, http.StatusConflict, status, "second decision")

	// A rejection reaches the requester too.
	post(t, hc, srv.URL+"/requests", map[string]any{"requester": requester, "group": "finance", "title": "Boat"})
	req.Expect("approval.submitted", nil)
	appr.Expect("approval.submitted", nil)
	post(t, hc, srv.URL+"/requests/2/decision", map[string]any{"approver": approver, "approved": false})
	rejected := map[string]any{"id": "2", "requester": requester, "group": "finance", "title": "Boat", "status": "rejected", "approver": approver}
	req.Expect("approval.rejected", rejected)
	appr.Expect("approval.rejected", rejected)

	out.ExpectNone(200 * time.Millisecond)
}

func TestNonApproverCannotSubscribeToTheGroup(t *testing.T) {
	srv := start(t)
	c, err := client.New(srv.URL + "/events?user=" + outsider.String() + "&topic=approvals/finance")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, err := range c.Events(ctx) {
		var se *client.StatusError
		require.True(t, errors.As(err, &se), "got %v, want a 403 status error", err)
		require.Equal(t, http.StatusForbidden, se.Code, "got %v, want a 403 status error", err)
		return
	}
	require.FailNow(t, "the stream ended without an error")
}
