// Package cors is the CORS rule every ssekit adapter applies, written once
// so that the net/http adapters and the fasthttp ones (which set headers on
// different types) answer a cross-origin stream request alike: which
// origins may read a stream, which configurations are refused as unsafe,
// and what a preflight gets.
package cors

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Policy is the configuration an adapter's CORS option carries.
type Policy struct {
	AllowedOrigins   []string
	AllowCredentials bool
	MaxAge           time.Duration
}

// ErrInvalid reports a configuration that would be unsafe or useless.
var ErrInvalid = errors.New("invalid CORS")

// Validate refuses an empty origin list, and "*" with credentials: that
// would let any site read a signed-in user's stream.
func (p Policy) Validate() error {
	if len(p.AllowedOrigins) == 0 {
		return fmt.Errorf("%w: AllowedOrigins is empty", ErrInvalid)
	}
	if p.AllowCredentials && slices.Contains(p.AllowedOrigins, "*") {
		return fmt.Errorf("%w: \"*\" with AllowCredentials would let any site read a user's stream", ErrInvalid)
	}
	return nil
}

// Field is one response header to write: Add appends a value (Vary, which
// other layers may also set), otherwise the value replaces any other.
type Field struct {
	Name, Value string
	Add         bool
}

// Answer says what a request with the given Origin header and method gets:
// the headers to write, and the status to answer with instead of a stream
// (0: go on and serve it). A request without Origin is same-origin and
// gets nothing; an unknown origin gets 403 (with Vary, without
// Access-Control-Allow-Origin); an OPTIONS request from an allowed origin
// is a preflight and gets 204.
func (p Policy) Answer(origin, method string) (fields []Field, status int) {
	if origin == "" {
		return nil, 0
	}
	fields = append(fields, Field{Name: "Vary", Value: "Origin", Add: true})
	anyOrigin := slices.Contains(p.AllowedOrigins, "*")
	if !anyOrigin && !slices.Contains(p.AllowedOrigins, origin) {
		return fields, 403
	}
	allow := origin
	if anyOrigin {
		allow = "*"
	}
	fields = append(fields, Field{Name: "Access-Control-Allow-Origin", Value: allow})
	if p.AllowCredentials {
		fields = append(fields, Field{Name: "Access-Control-Allow-Credentials", Value: "true"})
	}
	if method != "OPTIONS" {
		return fields, 0
	}
	// Polyfills that send headers need a preflight; EventSource does not.
	fields = append(fields,
		Field{Name: "Access-Control-Allow-Methods", Value: "GET"},
		Field{Name: "Access-Control-Allow-Headers", Value: "Authorization, Cache-Control, Last-Event-ID, SSEKit-Reject"})
	if p.MaxAge > 0 {
		fields = append(fields, Field{Name: "Access-Control-Max-Age", Value: strconv.Itoa(int(p.MaxAge / time.Second))})
	}
	return fields, 204
}
