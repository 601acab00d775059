// Command jwt is the auth middleware end to end: streams and a publish
// endpoint authenticated by JSON Web Tokens, topics and publishing
// authorized by the token's claims, and streams that end when their token
// expires so the client comes back with a fresh one.
//
//	go run ./examples/jwt                   # http://127.0.0.1:8086, prints two dev tokens
//
//	curl -N -H "Authorization: Bearer $SUBSCRIBER" 'http://127.0.0.1:8086/events?topic=orders/eu'
//	curl -H "Authorization: Bearer $PUBLISHER" -H 'Content-Type: application/json' \
//	  -d '{"topic":"orders/eu","event":"order.created","data":{"id":42}}' http://127.0.0.1:8086/publish
//
// Routes:
//
//	GET  /events    token in "Authorization: Bearer" (Go clients, curl) or the
//	                ssekit_token cookie (browsers); 401 without a valid token,
//	                403 for a topic the token's "topics" claim does not grant
//	POST /publish   {"topic" | "user" | "broadcast", "event", "data"} with a token
//	                whose "publish" claim grants the target (auth.CanPublish);
//	                the tenant always comes from the token
//
// When a stream's token expires, the stream ends with a ": token_expired"
// comment and a retry hint. A browser whose cookie was refreshed meanwhile,
// or a Go client with client.WithHeaderFunc, reconnects with the new token
// and Last-Event-ID and is replayed what it missed.
//
// The HMAC secret comes from SSEKIT_JWT_SECRET (at least 32 bytes) or is
// made per process. The printed tokens are minted here for the demo; real
// tokens come from your identity provider (RS256/ES256/EdDSA with its
// public key: see the middleware/auth package docs).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/examples/internal/httpserve"
	"github.com/ssekit/ssekit/middleware/auth"
)

// newAuth returns the verifier used for streams and publishing.
func newAuth(secret []byte) (*auth.JWT, error) {
	return auth.New(auth.Config{
		Algorithms:  []string{"HS256"},
		Keys:        []auth.Key{{Key: secret}},
		Issuer:      "ssekit-example",
		Audience:    []string{"ssekit"},
		TenantClaim: "tenant",
	})
}

// newServer returns the routes: the broker must use a as its
// Authenticator and Authorizer.
func newServer(broker *core.Broker, a *auth.JWT) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/events", nethttp.Handler(broker))
	mux.Handle("POST /publish", publishHandler(broker, a))
	return mux
}

// publishHandler publishes one event for a caller whose token grants it.
func publishHandler(broker *core.Broker, a *auth.JWT) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.Error(w, "unauthenticated", http.StatusUnauthorized)
			return
		}
		id, err := a.Verify(token)
		if err != nil {
			// The cause (expired, bad signature...) is for logs only.
			http.Error(w, "unauthenticated", http.StatusUnauthorized)
			return
		}
		var req struct {
			Topic     string          `json:"topic"`
			User      uuid.UUID       `json:"user"`
			Broadcast bool            `json:"broadcast"`
			Event     string          `json:"event"`
			Data      json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 128<<10)).Decode(&req); err != nil {
			http.Error(w, "invalid JSON body", http.StatusBadRequest)
			return
		}
		// The tenant comes from the token, never from the request.
		target := core.Target{Tenant: id.Tenant, Broadcast: req.Broadcast}
		if req.Topic != "" {
			target.Topics = []string{req.Topic}
		}
		if req.User != uuid.Nil {
			target.Users = []uuid.UUID{req.User}
		}
		if err := auth.CanPublish(id, target); err != nil {
			http.Error(w, err.Error(), httpStatus(err))
			return
		}
		eventID, err := broker.Publish(r.Context(), core.Message{Target: target, Event: core.Event{Type: req.Event, Data: string(req.Data)}})
		if err != nil {
			http.Error(w, err.Error(), httpStatus(err))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"id": eventID})
	}
}

func httpStatus(err error) int {
	switch {
	case errors.Is(err, core.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, core.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest // a bad topic, event type or target
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8086", "listen address")
	ttl := flag.Duration("token-ttl", time.Minute, "lifetime of the printed subscriber token: watch its stream end and reconnect")
	flag.Parse()
	secret := []byte(os.Getenv("SSEKIT_JWT_SECRET"))
	if len(secret) == 0 {
		secret = auth.NewSecret()
	}
	a, err := newAuth(secret)
	if err != nil {
		log.Fatal(err)
	}
	broker, err := core.New(core.Config{Authenticator: a, Authorizer: a})
	if err != nil {
		log.Fatal(err)
	}
	sub, err := a.Mint(secret, auth.Grant{User: uuid.New(), Tenant: "acme", Topics: []string{"orders/*"}, TTL: *ttl})
	if err != nil {
		log.Fatal(err)
	}
	pub, err := a.Mint(secret, auth.Grant{User: uuid.New(), Tenant: "acme", Publish: []string{"orders/**", auth.GrantUsers, auth.GrantBroadcast}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("SUBSCRIBER=%s\nPUBLISHER=%s\n", sub, pub)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := httpserve.Run(ctx, *addr, newServer(broker, a), broker); err != nil {
		log.Fatal(err)
	}
}
