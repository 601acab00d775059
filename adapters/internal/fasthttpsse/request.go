package fasthttpsse

import (
	"net/textproto"

	"github.com/valyala/fasthttp"

	"github.com/ssekit/ssekit/core"
)

// NewRequest returns the core view of rc's request. It copies the headers,
// cookies, query and remote address into Go maps, because fasthttp and
// Fiber recycle the RequestCtx once the handler returns: the view stays
// valid, and safe for concurrent reads, for as long as anyone keeps it.
// (Fiber v2 and v3 both resolve the fasthttp this module requires, whose
// All and Cookies iterators replace the deprecated VisitAll callbacks.)
func NewRequest(rc *fasthttp.RequestCtx) core.Request {
	r := &request{
		header: map[string]string{},
		query:  map[string][]string{},
		cookie: map[string]string{},
		addr:   rc.RemoteAddr().String(),
	}
	for k, v := range rc.Request.Header.All() {
		key := textproto.CanonicalMIMEHeaderKey(string(k))
		if _, ok := r.header[key]; !ok {
			r.header[key] = string(v)
		}
	}
	for k, v := range rc.Request.Header.Cookies() {
		if _, ok := r.cookie[string(k)]; !ok {
			r.cookie[string(k)] = string(v)
		}
	}
	for k, v := range rc.QueryArgs().All() {
		r.query[string(k)] = append(r.query[string(k)], string(v))
	}
	return r
}

type request struct {
	header map[string]string // canonical name -> first value
	query  map[string][]string
	cookie map[string]string
	addr   string
}

func (r *request) Header(name string) string {
	return r.header[textproto.CanonicalMIMEHeaderKey(name)]
}

func (r *request) Query(name string) []string { return r.query[name] }
func (r *request) Cookie(name string) string  { return r.cookie[name] }
func (r *request) RemoteAddr() string         { return r.addr }
