package auth_test

import (
	"strings"
	"testing"

	"github.com/ssekit/ssekit/middleware/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		require.NoError(t, err, "ParsePattern(%q)", c.pattern)
		assert.Equal(t, c.pattern, p.String(), "String() = %q, want %q", p.String(), c.pattern)
		for _, topic := range c.yes {
			assert.True(t, p.Match(topic), "%q should match %q", c.pattern, topic)
		}
		for _, topic := range c.no {
			assert.False(t, p.Match(topic), "%q must not match %q", c.pattern, topic)
		}
	}
}

func TestPatternInvalid(t *testing.T) {
	for _, s := range []string{
		"", "/orders", "orders/", "orders//eu", "ord*", "orders/e*", "orders/**/x", "**/x",
		"***", "orders eu", "orders/ä", strings.Repeat("a", 129), "@broadcast",
	} {
		p, err := auth.ParsePattern(s)
		assert.Error(t, err, "ParsePattern(%q) = %v, want an error", s, p)
	}
	assert.False(t, (auth.Pattern{}).Match("x"), "the zero Pattern matched")
	defer func() {
		assert.NotNil(t, recover(), "MustParsePattern did not panic on an invalid pattern")
	}()
	auth.MustParsePattern("a*")
}

func TestPatternsAndLiteral(t *testing.T) {
	ps := auth.Patterns{auth.MustParsePattern("orders/*"), auth.MustParsePattern("news")}
	assert.True(t, ps.Match("news"), "Patterns.Match(news)")
	assert.True(t, ps.Match("orders/1"), "Patterns.Match(orders/1)")
	assert.False(t, ps.Match("orders"), "Patterns.Match(orders)")
	got := strings.Join(ps.Strings(), ",")
	assert.Equal(t, "orders/*,news", got, "Strings() = %q", got)
	assert.True(t, auth.MustParsePattern("news").IsLiteral(), "news is a literal")
	assert.False(t, auth.MustParsePattern("news/*").IsLiteral(), "news/* is not a literal")
}

func TestPatternMatchDoesNotAllocate(t *testing.T) {
	p := auth.MustParsePattern("orders/*/lines/**")
	n := testing.AllocsPerRun(100, func() { p.Match("orders/42/lines/a/b") })
	assert.Zero(t, n, "Match allocates %v times", n)

}

func BenchmarkPatternMatch(b *testing.B) {
	p := auth.MustParsePattern("orders/*/lines/**")
	for b.Loop() {
		p.Match("orders/42/lines/a/b")
	}
}
