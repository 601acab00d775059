package auth_test

import (
	"strings"
	"testing"

	"github.com/ssekit/ssekit/middleware/auth"
)

func TestPatternMatch(t *testing.T) {
	cases := []struct {
		pattern string
		yes     []string
		no      []string
	}{
		{"orders/eu", []string{"orders/eu"}, []string{"orders", "orders/e", "orders/eu/1", "orders/us", "xorders/eu"}},
		{"orders/*", []string{"orders/eu", "orders/1", "orders/a:b"}, []string{"orders", "orders/eu/1", "order/eu", "billing/eu", "orders/*", "orders//"}},
		{"*/status", []string{"a/status", "b.c/status"}, []string{"status", "a/b/status", "a/statuses", "/status"}},
		{"orders/*/lines", []string{"orders/1/lines"}, []string{"orders/1", "orders/1/lines/2", "orders/lines"}},
		{"orders/**", []string{"orders/eu", "orders/eu/1", "orders/a/b/c/d"}, []string{"orders", "billing/eu", "orders/", "orders//x", "orders/x/", "orders/*", "orders/a/**"}},
		{"*", []string{"orders", "a"}, []string{"orders/eu", "*", ""}},
		{"**", []string{"orders", "orders/eu", "a/b/c"}, []string{"", "/a", "a/", "a//b", "a/*"}},
		{"a/*/**", []string{"a/b/c", "a/b/c/d"}, []string{"a", "a/b"}},
	}
	for _, c := range cases {
		p, err := auth.ParsePattern(c.pattern)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", c.pattern, err)
		}
		if p.String() != c.pattern {
			t.Errorf("String() = %q, want %q", p.String(), c.pattern)
		}
		for _, topic := range c.yes {
			if !p.Match(topic) {
				t.Errorf("%q should match %q", c.pattern, topic)
			}
		}
		for _, topic := range c.no {
			if p.Match(topic) {
				t.Errorf("%q must not match %q", c.pattern, topic)
			}
		}
	}
}

func TestPatternInvalid(t *testing.T) {
	for _, s := range []string{
		"", "/orders", "orders/", "orders//eu", "ord*", "orders/e*", "orders/**/x", "**/x",
		"***", "orders eu", "orders/ä", strings.Repeat("a", 129), "@broadcast",
	} {
		if p, err := auth.ParsePattern(s); err == nil {
			t.Errorf("ParsePattern(%q) = %v, want an error", s, p)
		}
	}
	if (auth.Pattern{}).Match("x") {
		t.Error("the zero Pattern matched")
	}
	defer func() {
		if recover() == nil {
			t.Error("MustParsePattern did not panic on an invalid pattern")
		}
	}()
	auth.MustParsePattern("a*")
}

func TestPatternsAndLiteral(t *testing.T) {
	ps := auth.Patterns{auth.MustParsePattern("orders/*"), auth.MustParsePattern("news")}
	if !ps.Match("news") || !ps.Match("orders/1") || ps.Match("orders") {
		t.Error("Patterns.Match is wrong")
	}
	if got := strings.Join(ps.Strings(), ","); got != "orders/*,news" {
		t.Errorf("Strings() = %q", got)
	}
	if !auth.MustParsePattern("news").IsLiteral() || auth.MustParsePattern("news/*").IsLiteral() {
		t.Error("IsLiteral is wrong")
	}
}

func TestPatternMatchDoesNotAllocate(t *testing.T) {
	p := auth.MustParsePattern("orders/*/lines/**")
	if n := testing.AllocsPerRun(100, func() { p.Match("orders/42/lines/a/b") }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}

func BenchmarkPatternMatch(b *testing.B) {
	p := auth.MustParsePattern("orders/*/lines/**")
	for b.Loop() {
		p.Match("orders/42/lines/a/b")
	}
}
