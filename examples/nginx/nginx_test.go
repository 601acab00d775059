package nginx

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/internal/leaktest"
	"github.com/ssekit/ssekit/internal/testenv"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

// nginxBinary finds nginx: SSEKIT_NGINX, /usr/sbin/nginx, or the PATH.
// Without it the test fails unless SSEKIT_SKIP lists nginx (internal/testenv).
func nginxBinary(t *testing.T) string {
	t.Helper()
	return testenv.Program(t, "nginx", "install the Debian package nginx (scripts/install-deps.sh) or set SSEKIT_NGINX",
		os.Getenv("SSEKIT_NGINX"), "/usr/sbin/nginx", "nginx")
}

// The placeholders ssekit.conf must hold exactly once each.
const (
	upstreamLine = "server 127.0.0.1:8080;"
	listenLine   = "listen 127.0.0.1:8443 ssl http2;"
	certLine     = "ssl_certificate     /etc/ssl/certs/ssekit.pem;"
	keyLine      = "ssl_certificate_key /etc/ssl/private/ssekit.key;"
)

// proxy is a running nginx in front of upstream.
type proxy struct {
	url    string // https://127.0.0.1:PORT
	client *http.Client
}

// startNginx runs nginx with ssekit.conf in a temporary prefix directory,
// proxying to upstream (host:port), and stops it when the test ends.
func startNginx(t *testing.T, upstream string) *proxy {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	certPEM, keyPEM, pool := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeFile(t, certFile, certPEM)
	writeFile(t, keyFile, keyPEM)

	documented, err := os.ReadFile("ssekit.conf")
	require.NoError(t, err)
	port := freePort(t)
	site := string(documented)
	for _, r := range [][2]string{
		{upstreamLine, "server " + upstream + ";"},
		{listenLine, fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", port)},
		{certLine, "ssl_certificate " + certFile + ";"},
		{keyLine, "ssl_certificate_key " + keyFile + ";"},
	} {
		n := strings.Count(site, r[0])
		require.Equal(t, 1, n, "ssekit.conf holds %q %d times, want once (the test swaps it)", r[0], n)
		site = strings.Replace(site, r[0], r[1], 1)
	}
	writeFile(t, filepath.Join(dir, "ssekit.conf"), []byte(site))

	// The main configuration around it is the test's own: everything in
	// the temporary directory, in the foreground. Compression is switched
	// on for event streams at the http level, as a careless global config
	// would, to check that the location's "gzip off" wins.
	var user string
	if os.Geteuid() == 0 {
		user = "user root;" // the workers must reach the temporary directory
	}
	main := fmt.Sprintf(`%s
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[2]s/access.log;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    gzip on;
    gzip_min_length 1;
    gzip_types text/event-stream text/plain;
    include %[2]s/ssekit.conf;
}
`, user, dir)
	conf := filepath.Join(dir, "nginx.conf")
	writeFile(t, conf, []byte(main))

	var logs bytes.Buffer
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // fast shutdown: streams are cut
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			errorLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", logs.String(), errorLog)
		}
	})

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case err := <-exited:
			errorLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			require.FailNow(t, fmt.Sprintf("nginx exited: %v\n%s\n%s", err, logs.String(), errorLog))
		default:
		}
		require.False(t, time.Now().After(deadline), "nginx is not listening on %s after 10s", addr)
		time.Sleep(20 * time.Millisecond)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &proxy{url: "https://" + addr, client: &http.Client{Transport: tr}}
}

func writeFile(t *testing.T, name string, data []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(name, data, 0o600))
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// selfSigned returns a certificate for 127.0.0.1, its key, and a pool
// that trusts it.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ssekit nginx test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), pool
}

// sseStream is one stream read with core.Decoder, so the test sees each
// comment and event the moment nginx passes it on.
type sseStream struct {
	resp     *http.Response
	events   chan core.Event
	comments chan string
	done     chan struct{}
	cancel   context.CancelFunc
	mu       sync.Mutex
	lastID   string
}

func open(t *testing.T, p *proxy, path, lastEventID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Accept-Encoding", "gzip") // nginx must still not compress
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	// A proxy that buffers may hold back even the response headers: bound
	// the wait for them instead of hanging.
	timer := time.AfterFunc(5*time.Second, cancel)
	resp, err := p.client.Do(req)
	if !timer.Stop() {
		cancel()
		if err == nil {
			resp.Body.Close()
		}
		require.FailNow(t, fmt.Sprintf("GET %s: no response headers through nginx within 5s: is it buffering? (%v)", path, err))
	}
	if err != nil {
		cancel()
		require.NoError(t, err)
	}
	s := &sseStream{resp: resp, events: make(chan core.Event, 64), comments: make(chan string, 64), done: make(chan struct{}), cancel: cancel}
	t.Cleanup(s.close)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s through nginx: %s", path, resp.Status)
	dec := core.NewDecoder(resp.Body)
	dec.OnComment = func(text string) {
		select {
		case s.comments <- text:
		default:
		}
	}
	go func() {
		defer close(s.done)
		for {
			ev, err := dec.Next()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.lastID = dec.LastEventID()
			s.mu.Unlock()
			select {
			case s.events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return s
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
	<-s.done
}

func (s *sseStream) event(t *testing.T, within time.Duration) core.Event {
	t.Helper()
	select {
	case ev := <-s.events:
		return ev
	case <-time.After(within):
		require.FailNow(t, fmt.Sprintf("no event through nginx within %v", within))
		return core.Event{}
	}
}

func (s *sseStream) comment(t *testing.T, within time.Duration, want string) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case c := <-s.comments:
			if c == want {
				return
			}
		case <-deadline:
			require.FailNow(t, fmt.Sprintf("no comment %q through nginx within %v", want, within))
		}
	}
}

func TestStreamThroughNginx(t *testing.T) {
	broker, err := core.New(core.Config{
		Authenticator:     core.InsecureQueryAuthenticator(),
		HeartbeatInterval: core.MinHeartbeatInterval,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = broker.Close(context.Background()) })
	mux := http.NewServeMux()
	mux.Handle("/events", nethttp.Handler(broker))
	backend := httptest.NewServer(mux)
	t.Cleanup(backend.Close)
	p := startNginx(t, backend.Listener.Addr().String())

	user := uuid.New()
	ctx := context.Background()
	s := open(t, p, "/events?topic=news&user="+user.String(), "")
	assert.Equal(t, 2, s.resp.ProtoMajor, "nginx answered over %s, want HTTP/2", s.resp.Proto)
	ct := s.resp.Header.Get("Content-Type")
	assert.Equal(t, "text/event-stream", ct, "Content-Type %q through nginx", ct)
	ce := s.resp.Header.Get("Content-Encoding")
	assert.False(t, ce != "" || s.resp.Uncompressed, "nginx compressed the stream (Content-Encoding %q): gzip must be off for it", ce)

	// Unbuffered: each event arrives while the stream stays open, within
	// moments of being published, one by one.
	for i := 1; i <= 3; i++ {
		start := time.Now()
		require.NoError(t, broker.SendToTopic(ctx, "news", "headline", fmt.Sprintf("story %d", i)))
		ev := s.event(t, 2*time.Second)
		require.Equal(t, "headline", ev.Type, "got %q %q, want headline story %d", ev.Type, ev.Data, i)
		require.Equal(t, fmt.Sprintf("story %d", i), ev.Data, "got %q %q, want headline story %d", ev.Type, ev.Data, i)
		d := time.Since(start)
		assert.LessOrEqual(t, d, time.Second, "event %d took %v through nginx: is it buffering?", i, d)
	}

	// The heartbeat (an empty comment after HeartbeatInterval idle) passes.
	s.comment(t, core.MinHeartbeatInterval+5*time.Second, "")

	// Replay through the proxy: what is published while the client is
	// away arrives when it reconnects with Last-Event-ID.
	s.mu.Lock()
	last := s.lastID
	s.mu.Unlock()
	s.close()
	for i := 4; i <= 5; i++ {
		require.NoError(t, broker.SendToUser(ctx, user, "notification", fmt.Sprintf("note %d", i)))
	}
	s2 := open(t, p, "/events?topic=news&user="+user.String(), last)
	for i := 4; i <= 5; i++ {
		ev := s2.event(t, 2*time.Second)
		require.Equal(t, "notification", ev.Type, "replay: got %q %q, want notification note %d", ev.Type, ev.Data, i)
		require.Equal(t, fmt.Sprintf("note %d", i), ev.Data, "replay: got %q %q, want notification note %d", ev.Type, ev.Data, i)
	}
	require.NoError(t, broker.SendToTopic(ctx, "news", "headline", "live again"))
	ev := s2.event(t, 2*time.Second)
	require.Equal(t, "live again", ev.Data, "after replay: got %q, want the live event", ev.Data)
}
