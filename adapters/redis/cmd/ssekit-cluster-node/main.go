// Command ssekit-cluster-node is one node of an ssekit cluster on Redis:
// it serves SSE streams, publishes, and answers cluster-wide presence.
// Run several behind any load balancer; examples/cluster starts three.
//
//	ssekit-cluster-node -addr 127.0.0.1:8081 -redis 127.0.0.1:6379 [-shards N]
//
// Endpoints:
//
//	GET  /events?topic=T&user=UUID&tenant=N   the stream (Last-Event-ID resumes)
//	POST /publish?topic=T|user=UUID|broadcast=1[&tenant=N][&type=E]   body = data
//	                                          [Idempotency-Key: K makes a retry safe]
//	GET  /presence?user=UUID[&tenant=N]       {"online":..,"connections":..,"users":[..]}, cluster-wide
//	GET  /stats                               this node's broker statistics ("cluster": all nodes)
//	GET  /healthz
//
// Identity comes from the query (core.InsecureQueryAuthenticator): this is
// a demo. A real service plugs its Authenticator into core.Config.
//
// -redis takes one address (a single Redis), several (Redis Cluster, or
// the Sentinels with -master), as redis.NewUniversalClient does. -shards
// must be the same on every node.
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
	maxLen := flag.Int64("history", sseredis.DefaultMaxLen, "events kept in each shard's stream for replay")
	shards := flag.Int("shards", 0, "streams of the event log, the same on every node (0: 1 for a single Redis or Sentinel, 3 for Redis Cluster)")
	flag.Parse()
	if err := run(*addr, strings.Split(*addrs, ","), *master, *cluster, *maxLen, *shards); err != nil {
		log.Fatal(err)
	}
}

func run(addr string, addrs []string, master string, cluster bool, maxLen int64, shards int) error {
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
	backend, err := sseredis.New(client, sseredis.Options{MaxLen: maxLen, Shards: shards, ErrorLog: logf})
	if err != nil {
		return err
	}
	defer backend.Close()
	broker, err := core.New(core.Config{
		Backend:       backend, // bus, history, catch-up and presence
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
		// Cluster-wide, from this node's view (no Redis round trip).
		t := broker.Tenant(r.URL.Query().Get("tenant"))
		out := map[string]any{}
		if u := r.URL.Query().Get("user"); u != "" {
			id, err := uuid.Parse(u)
			if err != nil {
				http.Error(w, "bad user: "+err.Error(), http.StatusBadRequest)
				return
			}
			n := t.UserConnections(id)
			out["online"], out["connections"] = n > 0, n
		}
		out["users"] = t.OnlineUsers()
		writeJSON(w, out)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, broker.Stats()) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })

	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Printf("ssekit-cluster-node on http://%s (Redis %s, %d shards)", addr, strings.Join(addrs, ","), backend.Shards())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case <-sig:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Streams end with a reconnect hint; closing the broker detaches it,
	// which removes this node from the others' presence at once.
	return nethttp.Shutdown(ctx, srv, broker)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
