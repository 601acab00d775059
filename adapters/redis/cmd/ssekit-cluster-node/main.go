// Command ssekit-cluster-node is one node of an ssekit cluster on Redis:
// it serves SSE streams, publishes, and answers cluster-wide presence.
// Run several behind any load balancer; examples/cluster starts three.
//
//	ssekit-cluster-node -addr 127.0.0.1:8081 -redis 127.0.0.1:6379
//
// Endpoints:
//
//	GET  /events?topic=T&user=UUID&tenant=N   the stream (Last-Event-ID resumes)
//	POST /publish?topic=T|user=UUID|broadcast=1[&tenant=N][&type=E]   body = data
//	                                          [Idempotency-Key: K makes a retry safe]
//	GET  /presence?user=UUID[&tenant=N]       {"online":..,"connections":..,"users":[..]}
//	GET  /stats                               this node's broker statistics
//	GET  /healthz
//
// Identity comes from the query (core.InsecureQueryAuthenticator): this is
// a demo. A real service plugs its Authenticator into core.Config.
//
// -redis takes one address (a single Redis), several (Redis Cluster, or
// the Sentinels with -master), as redis.NewUniversalClient does.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/ssekit/ssekit/adapters/nethttp"
	sseredis "github.com/ssekit/ssekit/adapters/redis"
	"github.com/ssekit/ssekit/core"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	addrs := flag.String("redis", "127.0.0.1:6379", "Redis address(es), comma-separated")
	master := flag.String("master", "", "Sentinel master name (then -redis lists the Sentinels)")
	cluster := flag.Bool("cluster", false, "Redis Cluster even with a single seed address")
	maxLen := flag.Int64("history", sseredis.DefaultMaxLen, "events kept in the stream for replay")
	flag.Parse()
	if err := run(*addr, strings.Split(*addrs, ","), *master, *cluster, *maxLen); err != nil {
		log.Fatal(err)
	}
}

func run(addr string, addrs []string, master string, cluster bool, maxLen int64) error {
	client := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         addrs,
		MasterName:    master,
		IsClusterMode: cluster,
		MaxRetries:    -1, // a publish is never resent blindly (see Backend.Publish)
		// PublishTimeout bounds a call to a stalled Redis only if go-redis
		// honours context deadlines.
		ContextTimeoutEnabled: true,
	})
	defer client.Close()
	logf := func(err error) { log.Print(err) }
	backend, err := sseredis.New(client, sseredis.Options{MaxLen: maxLen, ErrorLog: logf})
	if err != nil {
		return err
	}
	defer backend.Close()
	presence, err := sseredis.NewPresence(client, sseredis.PresenceOptions{ErrorLog: logf})
	if err != nil {
		return err
	}
	broker, err := core.New(core.Config{
		Backend:       backend,
		Observer:      presence.Observer(),
		Authenticator: core.InsecureQueryAuthenticator(),
	})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /events", nethttp.Handler(broker, nethttp.WithCORS(nethttp.CORS{AllowedOrigins: []string{"*"}})))
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		m := core.Message{Target: core.Target{Tenant: q.Get("tenant"), Topics: q["topic"], Broadcast: q.Get("broadcast") == "1"}}
		for _, u := range q["user"] {
			id, err := uuid.Parse(u)
			if err != nil {
				http.Error(w, "bad user: "+err.Error(), http.StatusBadRequest)
				return
			}
			m.Target.Users = append(m.Target.Users, id)
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		m.Event = core.Event{Type: q.Get("type"), Data: string(data)}
		// A publisher that retries after a 503 sends the same key: the
		// event is appended once, and the answer is its first ID.
		m.IdempotencyKey = r.Header.Get("Idempotency-Key")
		if m.Event.Type == "" {
			m.Event.Type = "message"
		}
		id, err := broker.Publish(r.Context(), m)
		switch {
		case errors.Is(err, sseredis.ErrPublish):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
		default:
			writeJSON(w, map[string]string{"id": id})
		}
	})
	mux.HandleFunc("GET /presence", func(w http.ResponseWriter, r *http.Request) {
		tenant := r.URL.Query().Get("tenant")
		out := map[string]any{}
		if u := r.URL.Query().Get("user"); u != "" {
			id, err := uuid.Parse(u)
			if err != nil {
				http.Error(w, "bad user: "+err.Error(), http.StatusBadRequest)
				return
			}
			n, err := presence.UserConnections(r.Context(), tenant, id)
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			out["online"], out["connections"] = n > 0, n
		}
		users, err := presence.OnlineUsers(r.Context(), tenant)
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		out["users"] = users
		writeJSON(w, out)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, broker.Stats()) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })

	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("ssekit-cluster-node on http://%s (Redis %s)", addr, strings.Join(addrs, ","))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case <-sig:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = nethttp.Shutdown(ctx, srv, broker) // streams end with a reconnect hint
	return errors.Join(err, presence.Close(ctx))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
