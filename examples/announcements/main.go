// Command announcements lets an operator broadcast a system notice to
// every connected user of one tenant, or of every tenant the service
// knows.
//
//	SSEKIT_OPERATOR_TOKEN=s3cret go run ./examples/announcements   # http://127.0.0.1:8084
//
//	curl -N 'http://127.0.0.1:8084/events?tenant=acme&user=4f1c2a8e-0d7b-4c55-9a53-2f1e7f0c9b11'
//	curl -H 'Authorization: Bearer s3cret' -H 'Content-Type: application/json' \
//	  -d '{"tenant":"acme","text":"Invoices are late today"}' http://127.0.0.1:8084/announce
//	curl -H 'Authorization: Bearer s3cret' -H 'Content-Type: application/json' \
//	  -d '{"all":true,"text":"Maintenance at 22:00 UTC"}' http://127.0.0.1:8084/announce
//
// Every connection of the tenant (users and anonymous ones alike) receives
//
//	announcement  {"text": "...", "scope": "tenant"|"all"}
//
// A broadcast never crosses tenants: "all" loops over the tenants the
// service knows and broadcasts in each. Demo only: streams name their
// tenant and user in the query string; a real service takes both from a
// token (see examples/jwt, auth.Config.TenantClaim).
package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/examples/internal/httpserve"
)

// Announcement is the data of an announcement event.
type Announcement struct {
	Text  string `json:"text"`
	Scope string `json:"scope"` // "tenant" or "all"
}

type announcer struct {
	broker  *core.Broker
	tenants []string // the tenants the service knows ("" is the default tenant)
	token   [sha256.Size]byte
}

// newServer returns the routes. Streams may only open in a known tenant
// (see knownTenants); POST /announce requires the operator token.
func newServer(broker *core.Broker, tenants []string, operatorToken string) http.Handler {
	a := &announcer{broker: broker, tenants: tenants, token: sha256.Sum256([]byte(operatorToken))}
	mux := http.NewServeMux()
	mux.Handle("/events", nethttp.Handler(broker))
	mux.HandleFunc("POST /announce", a.announce)
	return mux
}

// knownTenants wraps an Authenticator so that streams open only in the
// tenants the service knows: the ones an "all" announcement reaches.
func knownTenants(next core.Authenticator, tenants []string) core.Authenticator {
	return core.AuthenticatorFunc(func(ctx context.Context, r core.Request) (core.Identity, error) {
		id, err := next.Authenticate(ctx, r)
		if err == nil && !slices.Contains(tenants, id.Tenant) {
			return core.Identity{}, fmt.Errorf("%w: unknown tenant %q", core.ErrForbidden, id.Tenant)
		}
		return id, err
	})
}

func (a *announcer) announce(w http.ResponseWriter, r *http.Request) {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if sum := sha256.Sum256([]byte(token)); subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
		http.Error(w, "operator token required", http.StatusUnauthorized)
		return
	}
	var req struct {
		Tenant string `json:"tenant"`
		All    bool   `json:"all"`
		Text   string `json:"text"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req); err != nil || req.Text == "" {
		http.Error(w, `want {"tenant": "...", "text": "..."} or {"all": true, "text": "..."}`, http.StatusBadRequest)
		return
	}
	targets := []string{req.Tenant}
	scope := "tenant"
	switch {
	case req.All:
		targets, scope = a.tenants, "all"
	case !slices.Contains(a.tenants, req.Tenant):
		http.Error(w, "unknown tenant", http.StatusNotFound)
		return
	}
	// One broadcast per tenant: each gets its own event ID in its own
	// sequence, and a client reconnecting to any of them is replayed it.
	var errs []error
	for _, tenant := range targets {
		if err := a.broker.Tenant(tenant).Broadcast(r.Context(), "announcement", Announcement{Text: req.Text, Scope: scope}); err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", tenant, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]int{"tenants": len(targets)})
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8084", "listen address")
	tenants := flag.String("tenants", ",acme,globex", "comma-separated tenants the service knows (empty: the default tenant)")
	flag.Parse()
	token := os.Getenv("SSEKIT_OPERATOR_TOKEN")
	if token == "" {
		log.Fatal("set SSEKIT_OPERATOR_TOKEN: POST /announce requires it as a bearer token")
	}
	known := strings.Split(*tenants, ",")
	broker, err := core.New(core.Config{Authenticator: knownTenants(core.InsecureQueryAuthenticator(), known)})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := httpserve.Run(ctx, *addr, newServer(broker, known, token), broker); err != nil {
		log.Fatal(err)
	}
}
