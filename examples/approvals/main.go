// Command approvals is an approval workflow that pushes every status
// change to the person who asked and to the group that approves.
//
//	go run ./examples/approvals             # http://127.0.0.1:8082
//
// The requester's streams receive their request's changes (a user push);
// the approvers of a group subscribe to its topic, "approvals/<group>",
// which only members may do (core.Config.Authorizer):
//
//	GET  /events?user=UUID[&topic=approvals/finance]
//	POST /requests                {"requester": UUID, "group": "finance", "title": "..."}
//	POST /requests/{id}/decision  {"approver": UUID, "approved": true, "comment": "..."}
//
// Events: approval.submitted (to the requester and the group's topic),
// approval.approved / approval.rejected (to the requester and the topic),
// each carrying the whole Request.
//
// Demo only: users are named in the query string and the request body; a
// real service takes them from its session or token (see examples/jwt).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/google/uuid"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/examples/internal/httpserve"
)

// Request is one approval request.
type Request struct {
	ID        string    `json:"id"`
	Requester uuid.UUID `json:"requester"`
	Group     string    `json:"group"`
	Title     string    `json:"title"`
	Status    string    `json:"status"` // pending, approved, rejected
	Approver  uuid.UUID `json:"approver,omitzero"`
	Comment   string    `json:"comment,omitempty"`
}

// Groups maps an approvers' group to its members.
type Groups map[string][]uuid.UUID

func (g Groups) isMember(group string, user uuid.UUID) bool {
	for _, m := range g[group] {
		if m == user && user != uuid.Nil {
			return true
		}
	}
	return false
}

// topic is where a group's approvers hear about requests.
func topic(group string) string { return "approvals/" + group }

// Authorizer lets only a group's members subscribe to "approvals/<group>".
func (g Groups) Authorizer() core.Authorizer {
	return core.AuthorizerFunc(func(_ context.Context, id core.Identity, topics []string) error {
		for _, t := range topics {
			group, ok := strings.CutPrefix(t, "approvals/")
			if !ok || !g.isMember(group, id.User) {
				return fmt.Errorf("%w: %s is for the group's approvers", core.ErrForbidden, t)
			}
		}
		return nil
	})
}

type workflow struct {
	broker   *core.Broker
	groups   Groups
	mu       sync.Mutex
	next     int
	requests map[string]*Request
}

// newServer returns the workflow's routes. The broker must use
// groups.Authorizer() so that only approvers hear their group's topic.
func newServer(broker *core.Broker, groups Groups) http.Handler {
	wf := &workflow{broker: broker, groups: groups, requests: map[string]*Request{}}
	mux := http.NewServeMux()
	mux.Handle("/events", nethttp.Handler(broker))
	mux.HandleFunc("POST /requests", wf.submit)
	mux.HandleFunc("POST /requests/{id}/decision", wf.decide)
	return mux
}

func (wf *workflow) submit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Requester uuid.UUID `json:"requester"`
		Group     string    `json:"group"`
		Title     string    `json:"title"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil || req.Requester == uuid.Nil || req.Title == "" {
		http.Error(w, `want {"requester": UUID, "group": "...", "title": "..."}`, http.StatusBadRequest)
		return
	}
	if _, ok := wf.groups[req.Group]; !ok {
		http.Error(w, "unknown group", http.StatusBadRequest)
		return
	}
	wf.mu.Lock()
	wf.next++
	rq := &Request{ID: strconv.Itoa(wf.next), Requester: req.Requester, Group: req.Group, Title: req.Title, Status: "pending"}
	wf.requests[rq.ID] = rq
	snapshot := *rq
	wf.mu.Unlock()
	if err := wf.push(r.Context(), "approval.submitted", snapshot); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusCreated, snapshot)
}

func (wf *workflow) decide(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Approver uuid.UUID `json:"approver"`
		Approved bool      `json:"approved"`
		Comment  string    `json:"comment"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil {
		http.Error(w, `want {"approver": UUID, "approved": bool, "comment": "..."}`, http.StatusBadRequest)
		return
	}
	wf.mu.Lock()
	rq, ok := wf.requests[r.PathValue("id")]
	var status int
	switch {
	case !ok:
		status = http.StatusNotFound
	case !wf.groups.isMember(rq.Group, req.Approver):
		status = http.StatusForbidden
	case req.Approver == rq.Requester:
		status = http.StatusForbidden // nobody approves their own request
	case rq.Status != "pending":
		status = http.StatusConflict
	}
	if status != 0 {
		wf.mu.Unlock()
		http.Error(w, http.StatusText(status), status)
		return
	}
	rq.Status, rq.Approver, rq.Comment = "rejected", req.Approver, req.Comment
	if req.Approved {
		rq.Status = "approved"
	}
	snapshot := *rq
	wf.mu.Unlock()
	if err := wf.push(r.Context(), "approval."+snapshot.Status, snapshot); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, http.StatusOK, snapshot)
}

// push sends one event to the requester (all devices) and the group's
// topic at once: one Publish with both targets, so an approver who is
// also the requester gets it once, and both share one event ID.
func (wf *workflow) push(ctx context.Context, eventType string, rq Request) error {
	data, err := json.Marshal(rq)
	if err != nil {
		return err
	}
	_, err = wf.broker.Publish(ctx, core.Message{
		Target: core.Target{Users: []uuid.UUID{rq.Requester}, Topics: []string{topic(rq.Group)}},
		Event:  core.Event{Type: eventType, Data: string(data)},
	})
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// demoGroups is the membership the demo starts with.
var demoGroups = Groups{
	"finance": {uuid.MustParse("0b0f5f3e-5a8e-4f8c-9a51-6f4f4f7d2a01"), uuid.MustParse("0b0f5f3e-5a8e-4f8c-9a51-6f4f4f7d2a02")},
	"legal":   {uuid.MustParse("0b0f5f3e-5a8e-4f8c-9a51-6f4f4f7d2a03")},
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8082", "listen address")
	flag.Parse()
	broker, err := core.New(core.Config{
		Authenticator: core.InsecureQueryAuthenticator(),
		Authorizer:    demoGroups.Authorizer(),
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := httpserve.Run(ctx, *addr, newServer(broker, demoGroups), broker); err != nil {
		log.Fatal(err)
	}
}
