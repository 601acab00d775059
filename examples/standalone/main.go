// Command standalone is an order service that pushes to its users through
// the ssekit hub (examples/hub) running as a separate process: the service
// publishes with an HTTP POST to the hub's /publish, browsers hold their
// streams open to the hub. Nothing of ssekit runs inside the service, so
// any language can do the same.
//
//	SSEKIT_PUBLISH_SECRET=s3cret go run ./examples/hub            # terminal 1: the hub on :8080
//	SSEKIT_PUBLISH_SECRET=s3cret go run ./examples/standalone     # terminal 2: this service on :8087
//
//	C=4f1c2a8e-0d7b-4c55-9a53-2f1e7f0c9b11
//	curl -N "http://127.0.0.1:8080/events?user=$C"                # the customer's browser
//	curl -N "http://127.0.0.1:8080/events?topic=orders"           # the staff dashboard
//	curl -H 'Content-Type: application/json' -d "{\"customer\":\"$C\",\"item\":\"book\"}" http://127.0.0.1:8087/orders
//
// Each new order is pushed once, as event "order.created" with the order
// as data, to the customer (all devices) and to the topic "orders".
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
)

// Hub publishes to an ssekit hub over HTTP.
type Hub struct {
	URL    string       // the hub's base URL, such as http://127.0.0.1:8080
	Secret string       // the hub's publish secret (SSEKIT_PUBLISH_SECRET)
	HTTP   *http.Client // nil: a client with a 5s timeout
}

// HubEvent is the body of the hub's POST /publish.
type HubEvent struct {
	Tenant    string    `json:"tenant,omitempty"`
	User      uuid.UUID `json:"user,omitzero"`
	Topic     string    `json:"topic,omitempty"`
	Broadcast bool      `json:"broadcast,omitempty"`
	Event     string    `json:"event"`
	Data      any       `json:"data,omitempty"`
}

// Publish sends ev to the hub and returns the event ID the hub assigned.
func (h *Hub) Publish(ctx context.Context, ev HubEvent) (string, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL+"/publish", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if h.Secret != "" {
		req.Header.Set("Authorization", "Bearer "+h.Secret)
	}
	hc := h.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil {
		return "", fmt.Errorf("hub answered %s: %w", resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("hub answered %s: %s", resp.Status, out.Error)
	}
	return out.ID, nil
}

// Order is what the service sells.
type Order struct {
	ID       string    `json:"id"`
	Customer uuid.UUID `json:"customer"`
	Item     string    `json:"item"`
}

type orders struct {
	hub  *Hub
	mu   sync.Mutex
	next int
}

// newServer returns the order service's routes.
func newServer(hub *Hub) http.Handler {
	o := &orders{hub: hub}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", o.create)
	return mux
}

// create stores an order (here: numbers it) and tells the customer and
// the staff dashboards through the hub. The push is best effort: a hub
// that is down does not fail the order; the answer says whether it went out.
func (o *orders) create(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Customer uuid.UUID `json:"customer"`
		Item     string    `json:"item"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil || req.Customer == uuid.Nil || req.Item == "" {
		http.Error(w, `want {"customer": UUID, "item": "..."}`, http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	o.next++
	order := Order{ID: strconv.Itoa(o.next), Customer: req.Customer, Item: req.Item}
	o.mu.Unlock()

	// One publish with two targets: the customer and the topic each get
	// the event once, under one event ID.
	eventID, err := o.hub.Publish(r.Context(), HubEvent{User: order.Customer, Topic: "orders", Event: "order.created", Data: order})
	if err != nil {
		log.Printf("order %s: push failed: %v", order.ID, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(struct {
		Order
		EventID string `json:"eventId,omitempty"`
		Pushed  bool   `json:"pushed"`
	}{order, eventID, err == nil})
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8087", "listen address")
	hubURL := flag.String("hub", "http://127.0.0.1:8080", "the hub's base URL")
	flag.Parse()
	hub := &Hub{URL: *hubURL, Secret: os.Getenv("SSEKIT_PUBLISH_SECRET")}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: newServer(hub), ReadHeaderTimeout: 10 * time.Second}
	log.Printf("order service on http://%s, publishing to %s", ln.Addr(), hub.URL)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
