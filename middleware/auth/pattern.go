package auth

import (
	"fmt"
	"strings"

	"github.com/ssekit/ssekit/core"
)

// Pattern is one entry of a topics or publish claim: a topic name, or a
// topic name in which whole "/"-separated segments are wildcards.
//
//	orders/eu      exactly the topic "orders/eu"
//	orders/*       one segment under orders: "orders/eu", not "orders" or "orders/eu/1"
//	*/status       "a/status", "b/status", not "a/b/status"
//	orders/**      one or more segments under orders: "orders/eu", "orders/eu/1", not "orders"
//	**             every topic
//
// "*" and "**" must be whole segments ("ord*" is invalid) and "**" may only
// be the last segment. Every other segment follows the topic rules of
// core.ValidateTopic. A pattern grants topics; clients still subscribe to
// concrete topic names, never to patterns.
type Pattern struct {
	s string
}

// ParsePattern checks s against the pattern rules and returns it as a
// Pattern.
func ParsePattern(s string) (Pattern, error) {
	if s == "" || len(s) > core.MaxTopicLen {
		return Pattern{}, fmt.Errorf("pattern %q must be 1 to %d bytes", clip(s), core.MaxTopicLen)
	}
	rest := s
	for rest != "" {
		seg, tail, more := strings.Cut(rest, "/")
		switch {
		case seg == "**":
			if more {
				return Pattern{}, fmt.Errorf("pattern %q: \"**\" may only be the last segment", clip(s))
			}
		case seg == "*":
		case seg == "":
			return Pattern{}, fmt.Errorf("pattern %q has an empty segment", clip(s))
		case strings.Contains(seg, "*"):
			return Pattern{}, fmt.Errorf("pattern %q: a wildcard must be a whole segment (\"*\" or \"**\")", clip(s))
		default:
			if err := core.ValidateTopic(seg); err != nil {
				return Pattern{}, fmt.Errorf("pattern %q may hold only letters, digits, -_.:/ and wildcard segments", clip(s))
			}
		}
		if more && tail == "" {
			return Pattern{}, fmt.Errorf("pattern %q ends with /", clip(s))
		}
		rest = tail
	}
	return Pattern{s: s}, nil
}

// MustParsePattern is ParsePattern for patterns known to be valid: it
// panics on an invalid one.
func MustParsePattern(s string) Pattern {
	p, err := ParsePattern(s)
	if err != nil {
		panic("auth: " + err.Error())
	}
	return p
}

// String returns the pattern as written.
func (p Pattern) String() string { return p.s }

// IsLiteral reports whether the pattern has no wildcard, so that it grants
// exactly one topic.
func (p Pattern) IsLiteral() bool { return p.s != "" && !strings.Contains(p.s, "*") }

// Match reports whether topic is granted by the pattern. It never matches
// a topic with an empty segment or a "*" in it (which core.ValidateTopic
// refuses), and the zero Pattern matches nothing. Match does not allocate.
func (p Pattern) Match(topic string) bool {
	pat := p.s
	if pat == "" || topic == "" {
		return false
	}
	for {
		pseg, prest, pmore := strings.Cut(pat, "/")
		if pseg == "**" {
			return validTail(topic)
		}
		tseg, trest, tmore := strings.Cut(topic, "/")
		if tseg == "" || strings.Contains(tseg, "*") {
			return false
		}
		if pseg != "*" && pseg != tseg {
			return false
		}
		if !pmore || !tmore {
			return pmore == tmore
		}
		pat, topic = prest, trest
	}
}

// validTail reports whether topic is one or more non-empty segments free
// of wildcards.
func validTail(topic string) bool {
	if topic == "" || topic[0] == '/' || topic[len(topic)-1] == '/' {
		return false
	}
	return !strings.Contains(topic, "//") && !strings.Contains(topic, "*")
}

// Patterns is a list of patterns, as read from a claim.
type Patterns []Pattern

// Match reports whether any pattern of the list matches topic.
func (ps Patterns) Match(topic string) bool {
	for _, p := range ps {
		if p.Match(topic) {
			return true
		}
	}
	return false
}

// Strings returns the patterns as written.
func (ps Patterns) Strings() []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.s
	}
	return out
}

// clip keeps error messages short whatever a token or a client sends.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}
