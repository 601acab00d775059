package nethttp

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// CORS lets EventSource connect from other origins. Browsers send an
// Origin header on cross-origin EventSource requests; a request from an
// origin not listed is refused with 403.
type CORS struct {
	// AllowedOrigins lists origins such as "https://app.example.com".
	// "*" allows any origin, and cannot be combined with AllowCredentials.
	AllowedOrigins []string
	// AllowCredentials lets the browser send cookies (new EventSource(url,
	// {withCredentials: true})), which is how a browser carries a token.
	AllowCredentials bool
	// MaxAge is how long a browser may cache a preflight answer.
	MaxAge time.Duration
}

func (c CORS) validate() error {
	if len(c.AllowedOrigins) == 0 {
		return fmt.Errorf("%w: AllowedOrigins is empty", errInvalidCORS)
	}
	if c.AllowCredentials && slices.Contains(c.AllowedOrigins, "*") {
		return fmt.Errorf("%w: \"*\" with AllowCredentials would let any site read a user's stream", errInvalidCORS)
	}
	return nil
}

// apply writes the CORS headers and reports whether to go on serving: it
// answers preflights itself and refuses unknown origins.
func (c *CORS) apply(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // same-origin
	}
	hdr := w.Header()
	hdr.Add("Vary", "Origin")
	if !slices.Contains(c.AllowedOrigins, origin) && !slices.Contains(c.AllowedOrigins, "*") {
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return false
	}
	if slices.Contains(c.AllowedOrigins, "*") {
		hdr.Set("Access-Control-Allow-Origin", "*")
	} else {
		hdr.Set("Access-Control-Allow-Origin", origin)
	}
	if c.AllowCredentials {
		hdr.Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method == http.MethodOptions {
		// Polyfills that send headers need a preflight; EventSource does not.
		hdr.Set("Access-Control-Allow-Methods", "GET")
		hdr.Set("Access-Control-Allow-Headers", "Authorization, Cache-Control, Last-Event-ID, SSEKit-Reject")
		if c.MaxAge > 0 {
			hdr.Set("Access-Control-Max-Age", strconv.Itoa(int(c.MaxAge/time.Second)))
		}
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	return true
}
