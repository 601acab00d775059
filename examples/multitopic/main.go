// Command multitopic shows one connection following several topics and
// changing them while it stays connected: the page learns its connection
// ID from the ssekit.connected event (core.Config.AnnounceConnection) and
// asks the server to add or remove topics for it.
//
//	go run ./examples/multitopic            # open http://127.0.0.1:8085
//
//	GET  /events?user=UUID&topic=news&topic=sports   first event: ssekit.connected {"connectionId": "..."}
//	POST /topics?user=UUID   {"connectionId": "...", "add": ["weather"], "remove": ["news"]}
//	POST /publish            {"topic": "weather", "text": "..."}   (demo: anyone may publish)
//
// /topics only changes a connection that belongs to the caller: the
// service remembers who opened each connection (an Observer's Connect and
// Disconnect hooks) and compares. Topics added later are delivered from
// then on; earlier events are not replayed for them.
//
// Demo only: the user is named in the query string; a real service takes
// it from its session or token (see examples/jwt).
package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/google/uuid"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/examples/internal/httpserve"
)

//go:embed web
var web embed.FS

// connections remembers the identity behind every open connection, so
// that a request to change a connection's topics can be checked against
// the caller.
type connections struct {
	mu     sync.Mutex
	owners map[string]core.Identity
}

func newConnections() *connections { return &connections{owners: map[string]core.Identity{}} }

// Observer returns the hooks that keep the registry current; set it as
// (or join it into, core.JoinObservers) core.Config.Observer.
func (c *connections) Observer() *core.Observer {
	return &core.Observer{
		Connect: func(ctx context.Context, s *core.Subscription) context.Context {
			c.mu.Lock()
			c.owners[s.ID()] = s.Identity()
			c.mu.Unlock()
			return ctx
		},
		Disconnect: func(_ context.Context, s *core.Subscription, _ core.CloseReason) {
			c.mu.Lock()
			delete(c.owners, s.ID())
			c.mu.Unlock()
		},
	}
}

// owns reports whether connection connID is open and was opened by id's
// user in id's tenant. Anonymous connections belong to nobody.
func (c *connections) owns(id core.Identity, connID string) bool {
	c.mu.Lock()
	owner, ok := c.owners[connID]
	c.mu.Unlock()
	return ok && id.User != uuid.Nil && owner.User == id.User && owner.Tenant == id.Tenant
}

type server struct {
	broker *core.Broker
	conns  *connections
}

// newServer returns the routes. The broker must announce connections and
// use conns.Observer().
func newServer(broker *core.Broker, conns *connections) http.Handler {
	s := &server{broker: broker, conns: conns}
	page, _ := fs.Sub(web, "web")
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServerFS(page))
	mux.Handle("/events", nethttp.Handler(broker))
	mux.HandleFunc("POST /topics", s.topics)
	mux.HandleFunc("POST /publish", s.publish)
	return mux
}

func (s *server) topics(w http.ResponseWriter, r *http.Request) {
	// The caller's identity, the same way the stream establishes it.
	caller, err := core.InsecureQueryAuthenticator().Authenticate(r.Context(), nethttp.Request(r))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req struct {
		ConnectionID string   `json:"connectionId"`
		Add          []string `json:"add"`
		Remove       []string `json:"remove"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil {
		http.Error(w, `want {"connectionId": "...", "add": [...], "remove": [...]}`, http.StatusBadRequest)
		return
	}
	if !s.conns.owns(caller, req.ConnectionID) {
		http.Error(w, "not one of your open connections", http.StatusForbidden)
		return
	}
	if len(req.Add) > 0 {
		if err := s.broker.AddTopics(r.Context(), req.ConnectionID, req.Add...); err != nil {
			http.Error(w, err.Error(), status(err))
			return
		}
	}
	if len(req.Remove) > 0 {
		if err := s.broker.RemoveTopics(r.Context(), req.ConnectionID, req.Remove...); err != nil {
			http.Error(w, err.Error(), status(err))
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) publish(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Topic string `json:"topic"`
		Text  string `json:"text"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil {
		http.Error(w, `want {"topic": "...", "text": "..."}`, http.StatusBadRequest)
		return
	}
	if err := s.broker.SendToTopic(r.Context(), req.Topic, "post", map[string]string{"topic": req.Topic, "text": req.Text}); err != nil {
		http.Error(w, err.Error(), status(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func status(err error) int {
	switch {
	case errors.Is(err, core.ErrInvalidTopic):
		return http.StatusBadRequest
	case errors.Is(err, core.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, core.ErrUnknownConnection):
		return http.StatusNotFound
	}
	return http.StatusServiceUnavailable
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8085", "listen address")
	flag.Parse()
	conns := newConnections()
	broker, err := core.New(core.Config{
		AnnounceConnection: true,
		Authenticator:      core.InsecureQueryAuthenticator(),
		Observer:           conns.Observer(),
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := httpserve.Run(ctx, *addr, newServer(broker, conns), broker); err != nil {
		log.Fatal(err)
	}
}
