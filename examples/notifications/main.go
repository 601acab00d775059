// Command notifications pushes a user's notifications to every tab and
// device the user has open, together with the user's unread count.
//
//	go run ./examples/notifications             # http://127.0.0.1:8081
//
//	U=4f1c2a8e-0d7b-4c55-9a53-2f1e7f0c9b11
//	curl -N "http://127.0.0.1:8081/events?user=$U"       # once per "tab"
//	curl -H 'Content-Type: application/json' -d "{\"user\":\"$U\",\"text\":\"Your order shipped\"}" \
//	  http://127.0.0.1:8081/notify                        # every tab gets it
//	curl -H 'Content-Type: application/json' -d '{"id":"1"}' "http://127.0.0.1:8081/read?user=$U"
//	curl "http://127.0.0.1:8081/notifications?user=$U"    # the user's notifications, read or not
//
// Every open stream of the user receives two event types:
//
//	notification  {"id": "1", "text": "Your order shipped"}
//	unread        {"count": 3}   after every notification and every read
//
// Demo only: the user is named in the query string
// (core.InsecureQueryAuthenticator); a real service takes it from its
// session or token (see examples/jwt).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/google/uuid"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/examples/internal/httpserve"
)

// Notification is one entry of a user's inbox.
type Notification struct {
	ID   string `json:"id"`
	Text string `json:"text"`
	Read bool   `json:"read"`
}

// inbox is the notification store; a real service keeps it in its database.
type inbox struct {
	broker *core.Broker
	mu     sync.Mutex
	next   int
	byUser map[uuid.UUID][]*Notification
}

// newServer returns the service's routes around broker, whose
// Authenticator must name the user (core.InsecureQueryAuthenticator here).
func newServer(broker *core.Broker) http.Handler {
	in := &inbox{broker: broker, byUser: map[uuid.UUID][]*Notification{}}
	mux := http.NewServeMux()
	mux.Handle("/events", nethttp.Handler(broker))
	mux.HandleFunc("POST /notify", in.notify)
	mux.HandleFunc("POST /read", in.read)
	mux.HandleFunc("GET /notifications", in.list)
	return mux
}

// notify stores a notification for a user and pushes it, then the new
// unread count, to all of that user's connections.
func (in *inbox) notify(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User uuid.UUID `json:"user"`
		Text string    `json:"text"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil || req.User == uuid.Nil || req.Text == "" {
		http.Error(w, `want {"user": UUID, "text": "..."}`, http.StatusBadRequest)
		return
	}
	in.mu.Lock()
	in.next++
	n := &Notification{ID: strconv.Itoa(in.next), Text: req.Text}
	in.byUser[req.User] = append(in.byUser[req.User], n)
	unread := in.unreadLocked(req.User)
	in.mu.Unlock()

	// Both pushes reach every tab and device of the user, in this order.
	if err := in.broker.SendToUser(r.Context(), req.User, "notification", n); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if err := in.pushUnread(r.Context(), req.User, unread); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, n)
}

// read marks one notification ({"id": "1"}) or all of them ({}) read for
// the user in the query, and pushes the new unread count to every one of
// the user's connections, so the badge changes in every tab at once.
func (in *inbox) read(w http.ResponseWriter, r *http.Request) {
	user, err := uuid.Parse(r.URL.Query().Get("user"))
	if err != nil || user == uuid.Nil {
		http.Error(w, "user must be a UUID", http.StatusBadRequest)
		return
	}
	var req struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		http.Error(w, `want {"id": "..."} or {} for all`, http.StatusBadRequest)
		return
	}
	in.mu.Lock()
	found := req.ID == ""
	for _, n := range in.byUser[user] {
		if req.ID == "" || n.ID == req.ID {
			n.Read, found = true, true
		}
	}
	unread := in.unreadLocked(user)
	in.mu.Unlock()
	if !found {
		http.Error(w, "no such notification", http.StatusNotFound)
		return
	}
	if err := in.pushUnread(r.Context(), user, unread); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, map[string]int{"count": unread})
}

// list returns the user's inbox: what a page loads first, and again when
// it receives ssekit.gap (events it missed are no longer replayable).
func (in *inbox) list(w http.ResponseWriter, r *http.Request) {
	user, err := uuid.Parse(r.URL.Query().Get("user"))
	if err != nil {
		http.Error(w, "user must be a UUID", http.StatusBadRequest)
		return
	}
	in.mu.Lock()
	list := make([]Notification, 0, len(in.byUser[user]))
	for _, n := range in.byUser[user] {
		list = append(list, *n)
	}
	in.mu.Unlock()
	writeJSON(w, list)
}

func (in *inbox) unreadLocked(user uuid.UUID) int {
	count := 0
	for _, n := range in.byUser[user] {
		if !n.Read {
			count++
		}
	}
	return count
}

func (in *inbox) pushUnread(ctx context.Context, user uuid.UUID, count int) error {
	return in.broker.SendToUser(ctx, user, "unread", map[string]int{"count": count})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	flag.Parse()
	broker, err := core.New(core.Config{Authenticator: core.InsecureQueryAuthenticator()})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := httpserve.Run(ctx, *addr, newServer(broker), broker); err != nil {
		log.Fatal(err)
	}
}
