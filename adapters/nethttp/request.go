package nethttp

import (
	"net/http"
	"net/url"

	"github.com/ssekit/ssekit/core"
)

// Request returns the core view of r. Adapters for frameworks built on
// net/http (Gin, Echo) use it too.
func Request(r *http.Request) core.Request {
	return &request{r: r}
}

type request struct {
	r *http.Request
	q url.Values // parsed on first use
}

func (v *request) Header(name string) string { return v.r.Header.Get(name) }

func (v *request) Query(name string) []string {
	if v.q == nil {
		v.q = v.r.URL.Query()
	}
	return v.q[name]
}

func (v *request) Cookie(name string) string {
	c, err := v.r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

func (v *request) RemoteAddr() string { return v.r.RemoteAddr }
