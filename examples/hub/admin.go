package main

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// access is who called a read-only route (/stats, /metrics, /online).
type access struct {
	// admin: the publish secret, a token with the admin grant
	// (auth.AdminClaim), or any caller outside auth mode.
	admin bool
	// id is the token's identity; nil for the publish secret and outside
	// auth mode.
	id *core.Identity
}

// callerOf authenticates the caller of a read-only route and answers 401
// itself when that fails. Outside auth mode every caller is admin: the
// hub is then a demo whose streams trust the query string anyway, so
// hiding its figures would protect nothing. In auth mode the caller needs
// a JWT (Authorization header only, like /publish: a cookie would let any
// page the user visits make the request) or the publish secret, which
// already allows publishing into every tenant and so may read them too.
func (h *hub) callerOf(w http.ResponseWriter, r *http.Request) (access, bool) {
	if h.jwt == nil || h.secret != nil && h.authorized(r) {
		return access{admin: true}, true
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		unauthorized(w, "auth mode: send Authorization: Bearer <JWT>")
		return access{}, false
	}
	id, err := h.jwt.Verify(strings.TrimSpace(token))
	if err != nil {
		h.refuseToken(w, r, err)
		return access{}, false
	}
	return access{admin: auth.CanAdmin(id) == nil, id: &id}, true
}

// adminOnly lets only admin callers (see callerOf) reach next: the figures
// of the whole node, every tenant's included.
func (h *hub) adminOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, ok := h.callerOf(w, r)
		if !ok {
			return
		}
		if !who.admin {
			writeJSON(w, http.StatusForbidden, apiError{Error: "auth mode: this route needs a token with the admin grant (claim " + auth.AdminClaim + ": true) or the publish secret"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// onlineTenant decides which tenant GET /online lists for who: an admin
// names any tenant (absent: the token's own, or the default tenant for
// the publish secret); anyone else only their own, which is also what an
// absent tenant means for them. ok is false for a tenant the caller may
// not see.
func onlineTenant(who access, query url.Values) (tenant string, ok bool) {
	values, named := query["tenant"]
	if named && len(values) > 0 {
		tenant = values[0]
	} else if who.id != nil {
		tenant = who.id.Tenant
	}
	return tenant, who.admin || who.id != nil && tenant == who.id.Tenant
}

// unauthorized answers 401 with the Bearer challenge. The connection is
// closed after the answer: whatever body the request carries is not
// going to be read.
func unauthorized(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="ssekit-hub"`)
	w.Header().Set("Connection", "close")
	writeJSON(w, http.StatusUnauthorized, apiError{Error: msg})
}
