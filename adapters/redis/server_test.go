package sseredis

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/internal/testenv"
)

// redisServer is a real redis-server on a free loopback port, in a temp
// dir, with no persistence unless aof is set: killing it loses everything,
// which is the harsh case the restart test wants.
type redisServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	addr string
	cmd  *exec.Cmd
	done chan struct{}
	// aof runs Redis with appendonly yes and appendfsync always: a
	// restart keeps everything acknowledged, as a production Redis that
	// must not cost a gap event would.
	aof bool
}

// redisBinary finds redis-server. Without it the test fails unless
// SSEKIT_SKIP lists redis (internal/testenv; scripts/install-deps.sh installs it).
func redisBinary(t testing.TB) string {
	t.Helper()
	return testenv.Program(t, "redis", "apt-get install redis-server, or run scripts/install-deps.sh",
		"redis-server", "/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server")
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startRedis(t testing.TB) *redisServer {
	t.Helper()
	return startRedisWith(t, false)
}

// startRedisAOF starts a redis-server with appendonly yes (appendfsync
// always), whose restarts (start after kill, same dir) keep what it
// acknowledged.
func startRedisAOF(t testing.TB) *redisServer {
	t.Helper()
	return startRedisWith(t, true)
}

func startRedisWith(t testing.TB, aof bool) *redisServer {
	t.Helper()
	r := &redisServer{t: t, bin: redisBinary(t), dir: t.TempDir(), port: freePort(t), aof: aof}
	r.addr = "127.0.0.1:" + strconv.Itoa(r.port)
	r.start()
	t.Cleanup(r.kill)
	return r
}

// start runs redis-server on r.port and waits until it answers PING.
func (r *redisServer) start() {
	r.t.Helper()
	// appendfsync always: Redis answers only once the write is on disk,
	// so SIGKILL loses nothing it acknowledged. (With everysec, the
	// default, a write may be acknowledged up to 2s before it is written
	// when the disk is slow, and a crash loses it.)
	appendonly, fsync := "no", "everysec"
	if r.aof {
		appendonly, fsync = "yes", "always"
	}
	r.cmd = exec.Command(r.bin,
		"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", appendonly, "--appendfsync", fsync, "--dir", r.dir,
		"--protected-mode", "no", "--loglevel", "warning")
	if log, err := os.OpenFile(r.dir+"/redis.log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
		r.cmd.Stdout, r.cmd.Stderr = log, log
		defer log.Close()
	}
	require.NoError(r.t, r.cmd.Start(), "starting redis-server")
	r.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(r.cmd, r.done)
	awaitPing(r.t, "redis-server", r.addr, r.done, r.dir)
}

// kill ends redis-server with SIGKILL: no shutdown, no save.
func (r *redisServer) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.done
	r.cmd = nil
}

// signal sends sig to redis-server: SIGSTOP freezes it with its sockets
// open (requests queue in the kernel, to run at SIGCONT), as a stalled
// host or a long fork would.
func (r *redisServer) signal(sig os.Signal) error {
	if r.cmd == nil {
		return errors.New("redis-server is not running")
	}
	return r.cmd.Process.Signal(sig)
}

// client returns a client closed at the end of the test. MaxRetries -1:
// a publish whose connection broke is reported, never silently resent.
func (r *redisServer) client(t testing.TB) *redis.Client {
	return r.clientWith(t, false)
}

// clientWith is client, with go-redis honouring context deadlines when
// ctxTimeouts is set (then Options.PublishTimeout bounds a stalled call).
func (r *redisServer) clientWith(t testing.TB, ctxTimeouts bool) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr:                  r.addr,
		MaxRetries:            -1,
		DialTimeout:           200 * time.Millisecond,
		PoolSize:              32,
		ContextTimeoutEnabled: ctxTimeouts,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (r *redisServer) String() string { return fmt.Sprintf("redis-server %s", r.addr) }
