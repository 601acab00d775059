package nethttp

import (
	"net/http"
	"net/url"

	"github.com/ssekit/ssekit/core"
)

// Request returns the core view of r, as the handler passes it to
// core.Broker.Connect (and so to the Authenticator). The Gin and Echo
// adapters run this package's handler, so their requests are seen through
// it too; a handler of your own that calls core.Broker.Connect and Serve
// can use it to authenticate the same way.
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
