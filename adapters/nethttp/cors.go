package nethttp

import (
	"fmt"
	"net/http"
	"time"

	"github.com/ssekit/ssekit/adapters/internal/cors"
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

// policy is c as the rule every adapter shares (the Fiber ones too).
func (c CORS) policy() cors.Policy {
	return cors.Policy{AllowedOrigins: c.AllowedOrigins, AllowCredentials: c.AllowCredentials, MaxAge: c.MaxAge}
}

func (c CORS) validate() error {
	if err := c.policy().Validate(); err != nil {
		return fmt.Errorf("ssekit/nethttp: %w", err)
	}
	return nil
}

// apply writes the CORS headers and reports whether to go on serving: it
// answers preflights itself and refuses unknown origins.
func (c *CORS) apply(w http.ResponseWriter, r *http.Request) bool {
	fields, status := c.policy().Answer(r.Header.Get("Origin"), r.Method)
	hdr := w.Header()
	for _, f := range fields {
		if f.Add {
			hdr.Add(f.Name, f.Value)
		} else {
			hdr.Set(f.Name, f.Value)
		}
	}
	switch status {
	case 0:
		return true
	case http.StatusForbidden:
		http.Error(w, "origin not allowed", status)
	default:
		w.WriteHeader(status)
	}
	return false
}
