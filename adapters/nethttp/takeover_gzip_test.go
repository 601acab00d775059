package nethttp_test

import (
	"compress/gzip"
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

// gzipWriter is the writer of a minimal compression middleware, shaped like
// the common ones: it compresses every write, flushes the compressor on
// Flush, and unwraps, so http.ResponseController (and Hijack) reach the
// connection through it.
type gzipWriter struct {
	http.ResponseWriter
	gz *gzip.Writer
}

func (w *gzipWriter) Write(p []byte) (int, error) { return w.gz.Write(p) }

func (w *gzipWriter) Flush() {
	_ = w.gz.Flush()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *gzipWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// gzipped is that middleware: it sets Content-Encoding before it calls
// next, as gin-contrib/gzip and most others do.
func gzipped(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		gz := gzip.NewWriter(w)
		defer gz.Close()
		next.ServeHTTP(&gzipWriter{ResponseWriter: w, gz: gz}, r)
	})
}

// TestTakeoverDeclinesHeaders: take-over declines when a middleware in
// front has set a header the hand-written writer would not honour, so the
// stream goes the ordinary way, through the middleware's writer; headers
// it honours do not stop it.
func TestTakeoverDeclinesHeaders(t *testing.T) {
	t.Parallel()
	setting := func(k, v string) func(http.Handler) http.Handler {
		return func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(k, v)
				next.ServeHTTP(w, r)
			})
		}
	}
	for _, tc := range []struct {
		name       string
		middleware func(http.Handler) http.Handler
		takeover   bool
	}{
		// Without the check, the head said gzip and the body was plain:
		// the client's gzip reader failed on the first event.
		{"Gzip", gzipped, false},
		{"Trailer", setting("Trailer", "X-Checksum"), false},
		{"IdentityEncoding", setting("Content-Encoding", "identity"), true},
		{"HonouredHeader", setting("X-Request-Id", "42"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newBroker(t, quietConfig())
			srv, hijacked := takeoverServer(t, tc.middleware(nethttp.Handler(b, nethttp.WithTakeover())), nil)
			ctx, cancel := context.WithTimeout(context.Background(), adaptertest.WaitTimeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/?topic=a", nil)
			require.NoError(t, err)
			// The Transport asks for gzip itself and decodes the body.
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, tc.takeover, hijacked.Load() == 1, "taken over")
			assert.Equal(t, tc.name == "Gzip", resp.Uncompressed, "the body came gzip-compressed")
			d := core.NewDecoder(resp.Body)
			id := publish(t, b, core.Target{Topics: []string{"a"}}, "e", tc.name)
			ev, err := d.Next()
			require.NoError(t, err)
			assert.Equal(t, id, ev.ID)
			assert.Equal(t, tc.name, ev.Data)
		})
	}
}
