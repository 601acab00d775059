package sseredis

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/internal/testenv"
)

// This file starts real Redis topologies for the tests and benchmarks:
// a Redis Cluster (startRedisCluster) and a Sentinel-managed primary
// (startSentinel). Every process listens on 127.0.0.1 only, keeps its
// files in a temp dir, persists nothing (--save "" --appendonly no) and is
// SIGKILLed and waited for in t.Cleanup. Every wait is bounded and fails
// with what it was waiting for. The programs are looked up like
// redis-server in server_test.go: missing, they fail the test unless
// SSEKIT_SKIP lists redis.

// redisCLI finds redis-cli (package redis-tools, a dependency of the
// redis-server package), which creates the cluster.
func redisCLI(t testing.TB) string {
	t.Helper()
	return testenv.Program(t, "redis", "apt-get install redis-tools (redis-server depends on it), or run scripts/install-deps.sh",
		"redis-cli", "/usr/bin/redis-cli", "/usr/local/bin/redis-cli")
}

// topologyWait bounds every wait for a topology to form or to recover.
const topologyWait = 30 * time.Second

// redisProc is one process of a topology: a cluster node, a primary, a
// replica or a sentinel.
type redisProc struct {
	name string
	addr string
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}

	mu     sync.Mutex
	killed bool
}

// startProc runs bin with args (which must make it listen on port) in dir,
// logging to dir/redis.log, and waits until it answers PING.
func startProc(t testing.TB, name, bin, dir string, port int, args ...string) *redisProc {
	t.Helper()
	p := &redisProc{name: name, addr: "127.0.0.1:" + strconv.Itoa(port), port: port, dir: dir, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	log, err := os.OpenFile(dir+"/redis.log", os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	err = p.cmd.Start()
	_ = log.Close()
	require.NoError(t, err, "starting %s (%s)", name, bin)
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.kill)
	awaitPing(t, name, p.addr, p.done, p.dir)
	return p
}

// awaitPing waits up to 10s until the Redis on addr answers PING. It fails
// at once, with the end of dir/redis.log, if done closes first: the
// process exited.
func awaitPing(t testing.TB, name, addr string, done <-chan struct{}, dir string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			require.FailNow(t, fmt.Sprintf("%s on %s exited at start; its log:\n%s", name, addr, tailLog(dir)))
		default:
		}
		require.False(t, time.Now().After(deadline), "%s on %s not ready after 10s: %v", name, addr, err)
		time.Sleep(10 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL (no shutdown, no save) and waits for it.
func (p *redisProc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killed {
		return
	}
	p.killed = true
	_ = p.cmd.Process.Kill()
	<-p.done
}

// signal sends sig to the process: SIGSTOP freezes it with its sockets
// open, SIGCONT resumes it.
func (p *redisProc) signal(sig os.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killed {
		return fmt.Errorf("%s is not running", p.name)
	}
	return p.cmd.Process.Signal(sig)
}

func (p *redisProc) alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.killed
}

// tailLog returns the end of dir/redis.log.
func tailLog(dir string) string {
	b, _ := os.ReadFile(dir + "/redis.log")
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// adminClient returns a single-connection client to p, for topology
// queries; the caller closes it.
func (p *redisProc) adminClient() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1, PoolSize: 1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: time.Second, WriteTimeout: time.Second})
}

// info returns the fields of INFO section on p.
func (p *redisProc) info(ctx context.Context, section string) (map[string]string, error) {
	c := p.adminClient()
	defer c.Close()
	s, err := c.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	return parseInfo(s), nil
}

// parseInfo parses INFO or CLUSTER INFO output (key:value lines).
func parseInfo(s string) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok {
			out[k] = v
		}
	}
	return out
}

// cpuSeconds returns used_cpu_sys + used_cpu_user of the process, from INFO cpu.
func (p *redisProc) cpuSeconds(ctx context.Context) (float64, error) {
	f, err := p.info(ctx, "cpu")
	if err != nil {
		return 0, err
	}
	sys, err1 := strconv.ParseFloat(f["used_cpu_sys"], 64)
	user, err2 := strconv.ParseFloat(f["used_cpu_user"], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: INFO cpu: %q %q", p.addr, f["used_cpu_sys"], f["used_cpu_user"])
	}
	return sys + user, nil
}

// waitUntil polls cond every 50ms until it returns nil, or fails the test
// after d with cond's last error.
func waitUntil(t testing.TB, d time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			require.FailNow(t, fmt.Sprintf("timed out after %v waiting for %s: %v", d, what, err))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- Redis Cluster -------------------------------------------------------

// redisCluster is a real Redis Cluster on loopback: masters shards, each
// with replicasPerMaster replicas, created by redis-cli --cluster create.
// cluster-node-timeout is 1s, so a replica takes over a killed master
// within a few seconds; cluster-require-full-coverage is off, so the
// other shards keep serving meanwhile.
type redisCluster struct {
	t     testing.TB
	nodes []*redisProc
}

// afterKills, registered before any client of a topology, runs after they
// are closed: once a killed node made a go-redis pool fail PoolSize dials,
// the pool probes it from a goroutine that sleeps 1s between dials and
// only then sees that the pool was closed. Waiting that long when a node
// was killed keeps goleak (TestMain) from reporting it.
func afterKills(t testing.TB, nodes func() []*redisProc) {
	t.Cleanup(func() {
		for _, p := range nodes() {
			if p != nil && !p.alive() {
				time.Sleep(1100 * time.Millisecond)
				return
			}
		}
	})
}

// startRedisCluster starts masters*(1+replicasPerMaster) cluster nodes,
// joins them with redis-cli --cluster create, and waits until every node
// reports cluster_state:ok, knows every other node, and every replica is
// in sync with its master.
func startRedisCluster(t testing.TB, masters, replicasPerMaster int) *redisCluster {
	t.Helper()
	require.GreaterOrEqual(t, masters, 3, "redis-cli --cluster create needs at least 3 masters")
	bin, cli := redisBinary(t), redisCLI(t)
	c := &redisCluster{t: t}
	afterKills(t, func() []*redisProc { return c.nodes })
	total := masters * (1 + replicasPerMaster)
	for i := range total {
		dir := t.TempDir()
		port, bus := freePort(t), freePort(t)
		p := startProc(t, fmt.Sprintf("cluster node %d", i), bin, dir, port,
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "no",
			"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning",
			"--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf",
			"--cluster-port", strconv.Itoa(bus), // not port+10000, which may be taken or > 65535
			"--cluster-node-timeout", "1000",
			"--cluster-require-full-coverage", "no",
			"--cluster-replica-validity-factor", "0", // a replica may always take over
			"--repl-diskless-sync-delay", "0", // sync a replica at once, not after 5s
		)
		c.nodes = append(c.nodes, p)
	}
	args := []string{"--cluster", "create"}
	for _, p := range c.nodes {
		args = append(args, p.addr)
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(replicasPerMaster), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), topologyWait)
	defer cancel()
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	require.NoError(t, err, "redis-cli %s:\n%s", strings.Join(args, " "), out)
	c.waitHealthy(t)
	return c
}

// live returns the nodes still running.
func (c *redisCluster) live() []*redisProc {
	var out []*redisProc
	for _, p := range c.nodes {
		if p.alive() {
			out = append(out, p)
		}
	}
	return out
}

// addrs returns the addresses of the live nodes.
func (c *redisCluster) addrs() []string {
	var out []string
	for _, p := range c.live() {
		out = append(out, p.addr)
	}
	return out
}

func (c *redisCluster) node(addr string) *redisProc {
	for _, p := range c.nodes {
		if p.addr == addr {
			return p
		}
	}
	return nil
}

// clusterClient returns a *redis.ClusterClient on the live nodes, closed
// at the end of the test. Like the other test clients: MaxRetries -1 (a
// publish whose connection broke is reported, never resent blindly) and
// context deadlines honoured.
func (c *redisCluster) clusterClient(t testing.TB) *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 c.addrs(),
		MaxRetries:            -1,
		DialTimeout:           200 * time.Millisecond,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		PoolSize:              32,
		ContextTimeoutEnabled: true,
		// go-redis reloads its slot map on MOVED or ASK and every
		// ClusterStateReloadInterval (60s by default), not when a master
		// refuses connections: a client whose only traffic goes to a dead
		// master's slots keeps dialling it (a plain SET loop did, for
		// 20s, in a trial). The brokers' mixed traffic meets a MOVED
		// within about a second anyway; reloading often makes a failover
		// show as quickly whatever the traffic.
		ClusterStateReloadInterval: 250 * time.Millisecond,
	})
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// slotOwner is one slot range and the address of its master.
type slotOwner struct {
	start, end int
	master     string
}

// shardMaster returns the address of a shard's master ("" if none is
// listed) and whether that master is online, from CLUSTER SHARDS.
func shardMaster(sh redis.ClusterShard) (addr string, online bool) {
	for _, n := range sh.Nodes {
		if n.Role == "master" {
			return n.IP + ":" + strconv.FormatInt(n.Port, 10), n.Health == "online"
		}
	}
	return "", false
}

// slots returns the slot map as a live node sees it (CLUSTER SHARDS).
func (c *redisCluster) slots(ctx context.Context) ([]slotOwner, error) {
	var lastErr error
	for _, p := range c.live() {
		a := p.adminClient()
		shs, err := a.ClusterShards(ctx).Result()
		a.Close()
		if err != nil {
			lastErr = err
			continue
		}
		var out []slotOwner
		for _, sh := range shs {
			m, _ := shardMaster(sh)
			for _, r := range sh.Slots {
				out = append(out, slotOwner{int(r.Start), int(r.End), m})
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("no live node answered CLUSTER SHARDS: %v", lastErr)
}

// keySlot returns CLUSTER KEYSLOT key.
func (c *redisCluster) keySlot(ctx context.Context, key string) (int, error) {
	for _, p := range c.live() {
		a := p.adminClient()
		n, err := a.ClusterKeySlot(ctx, key).Result()
		a.Close()
		if err == nil {
			return int(n), nil
		}
	}
	return 0, fmt.Errorf("no live node answered CLUSTER KEYSLOT")
}

// masterOf returns the address of the master that owns key's slot.
func (c *redisCluster) masterOf(t testing.TB, key string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	slot, err := c.keySlot(ctx, key)
	require.NoError(t, err)
	ss, err := c.slots(ctx)
	require.NoError(t, err)
	for _, s := range ss {
		if slot >= s.start && slot <= s.end {
			return s.master
		}
	}
	require.FailNow(t, fmt.Sprintf("slot %d of %q has no master", slot, key))
	return ""
}

// replicaOf returns a live replica of the master at addr, from the
// master's INFO replication.
func (c *redisCluster) replicaOf(t testing.TB, addr string) *redisProc {
	t.Helper()
	m := c.node(addr)
	require.NotNil(t, m, "no cluster node at %s", addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ri, err := m.info(ctx, "replication")
	require.NoError(t, err)
	for k, v := range ri {
		if !strings.HasPrefix(k, "slave") {
			continue
		}
		f := map[string]string{}
		for _, kv := range strings.Split(v, ",") {
			if a, b, ok := strings.Cut(kv, "="); ok {
				f[a] = b
			}
		}
		if r := c.node(f["ip"] + ":" + f["port"]); r != nil && r.alive() {
			return r
		}
	}
	require.FailNow(t, fmt.Sprintf("master %s has no live replica", addr))
	return nil
}

// killNode SIGKILLs the node at addr and returns addr.
func (c *redisCluster) killNode(t testing.TB, addr string) string {
	t.Helper()
	p := c.node(addr)
	require.NotNil(t, p, "no cluster node at %s", addr)
	p.kill()
	return addr
}

// waitHealthy waits until every live node reports cluster_state:ok and
// knows every live node, every slot is owned by a live master in every
// live node's view, and every live replica is in sync with its master.
// After killNode on a master, it is the wait for the failover.
func (c *redisCluster) waitHealthy(t testing.TB) {
	t.Helper()
	waitUntil(t, topologyWait, "a healthy cluster", c.healthy)
}

func (c *redisCluster) healthy(ctx context.Context) error {
	live := c.live()
	liveAddr := map[string]bool{}
	for _, p := range live {
		liveAddr[p.addr] = true
	}
	for _, p := range live {
		a := p.adminClient()
		err := func() error {
			s, err := a.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			ci := parseInfo(s)
			if ci["cluster_state"] != "ok" {
				return fmt.Errorf("%s: cluster_state:%s", p.addr, ci["cluster_state"])
			}
			if ci["cluster_slots_assigned"] != "16384" || ci["cluster_slots_ok"] != "16384" {
				return fmt.Errorf("%s: slots assigned %s, ok %s", p.addr, ci["cluster_slots_assigned"], ci["cluster_slots_ok"])
			}
			shs, err := a.ClusterShards(ctx).Result()
			if err != nil {
				return err
			}
			covered := 0
			for _, sh := range shs {
				if len(sh.Slots) == 0 {
					continue // a master that lost its slots, or a shard of the dead
				}
				m, online := shardMaster(sh)
				if !online || !liveAddr[m] {
					return fmt.Errorf("%s: slots %d-%d served by %q, not a live online master", p.addr, sh.Slots[0].Start, sh.Slots[0].End, m)
				}
				for _, r := range sh.Slots {
					covered += int(r.End - r.Start + 1)
				}
			}
			if covered != 16384 {
				return fmt.Errorf("%s: %d slots covered", p.addr, covered)
			}
			repl, err := a.Info(ctx, "replication").Result()
			if err != nil {
				return err
			}
			ri := parseInfo(repl)
			if ri["role"] == "slave" && ri["master_link_status"] != "up" {
				return fmt.Errorf("%s: replica link to %s:%s is %s", p.addr, ri["master_host"], ri["master_port"], ri["master_link_status"])
			}
			return nil
		}()
		a.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// ---- Sentinel --------------------------------------------------------------

// sentinelSetup is a Sentinel-managed primary: one master, one replica
// (--replicaof) and three sentinels with quorum 2, down-after 500ms and
// failover-timeout 2s, all on loopback. The master's name is "m".
type sentinelSetup struct {
	t         testing.TB
	master    *redisProc
	replica   *redisProc
	sentinels []*redisProc
}

const sentinelMaster = "m"

// startSentinel starts the master, its replica and three sentinels, and
// waits until the replica is in sync and every sentinel knows the replica
// and the two other sentinels (so that a failover can be agreed at once).
func startSentinel(t testing.TB) *sentinelSetup {
	t.Helper()
	bin := redisBinary(t)
	s := &sentinelSetup{t: t}
	afterKills(t, func() []*redisProc { return []*redisProc{s.master, s.replica} })
	data := func(name string, port int, extra ...string) *redisProc {
		dir := t.TempDir()
		args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "no",
			"--save", "", "--appendonly", "no", "--dir", dir, "--loglevel", "warning",
			"--repl-diskless-sync-delay", "0"}, extra...)
		return startProc(t, name, bin, dir, port, args...)
	}
	mport := freePort(t)
	s.master = data("master", mport)
	s.replica = data("replica", freePort(t), "--replicaof", "127.0.0.1", strconv.Itoa(mport))
	for i := range 3 {
		dir := t.TempDir()
		port := freePort(t)
		conf := fmt.Sprintf(`port %d
bind 127.0.0.1
protected-mode no
dir %s
loglevel warning
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %s 500
sentinel failover-timeout %s 2000
sentinel parallel-syncs %s 1
`, port, dir, sentinelMaster, mport, sentinelMaster, sentinelMaster, sentinelMaster)
		path := dir + "/sentinel.conf" // sentinel rewrites its config: it must be writable
		require.NoError(t, os.WriteFile(path, []byte(conf), 0o644))
		s.sentinels = append(s.sentinels, startProc(t, fmt.Sprintf("sentinel %d", i), bin, dir, port, path, "--sentinel"))
	}
	waitUntil(t, topologyWait, "the replica in sync", func(ctx context.Context) error {
		ri, err := s.replica.info(ctx, "replication")
		if err != nil {
			return err
		}
		if ri["master_link_status"] != "up" {
			return fmt.Errorf("replica link %s", ri["master_link_status"])
		}
		return nil
	})
	waitUntil(t, topologyWait, "every sentinel to know the replica and the other sentinels", func(ctx context.Context) error {
		for _, sp := range s.sentinels {
			sc := redis.NewSentinelClient(&redis.Options{Addr: sp.addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
			m, err := sc.Master(ctx, sentinelMaster).Result()
			sc.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", sp.name, err)
			}
			if m["num-other-sentinels"] != "2" || m["num-slaves"] != "1" {
				return fmt.Errorf("%s: %s other sentinels, %s replicas", sp.name, m["num-other-sentinels"], m["num-slaves"])
			}
		}
		return nil
	})
	return s
}

func (s *sentinelSetup) sentinelAddrs() []string {
	var out []string
	for _, p := range s.sentinels {
		out = append(out, p.addr)
	}
	return out
}

// failoverClient returns a go-redis failover client (master "m", through
// the three sentinels), closed at the end of the test; MaxRetries -1 and
// context deadlines honoured, like the other test clients.
func (s *sentinelSetup) failoverClient(t testing.TB) *redis.Client {
	c := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            sentinelMaster,
		SentinelAddrs:         s.sentinelAddrs(),
		MaxRetries:            -1,
		DialTimeout:           200 * time.Millisecond,
		ReadTimeout:           2 * time.Second,
		WriteTimeout:          2 * time.Second,
		PoolSize:              32,
		ContextTimeoutEnabled: true,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// masterAddr asks a live sentinel for the current master's address.
func (s *sentinelSetup) masterAddr(ctx context.Context) (string, error) {
	var lastErr error
	for _, sp := range s.sentinels {
		if !sp.alive() {
			continue
		}
		sc := redis.NewSentinelClient(&redis.Options{Addr: sp.addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		a, err := sc.GetMasterAddrByName(ctx, sentinelMaster).Result()
		sc.Close()
		if err == nil && len(a) == 2 {
			return a[0] + ":" + a[1], nil
		}
		lastErr = err
	}
	return "", fmt.Errorf("no sentinel answered: %v", lastErr)
}

// killMaster SIGKILLs the current master and returns its address.
func (s *sentinelSetup) killMaster(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addr, err := s.masterAddr(ctx)
	require.NoError(t, err)
	for _, p := range []*redisProc{s.master, s.replica} {
		if p.addr == addr {
			p.kill()
			return addr
		}
	}
	require.FailNow(t, fmt.Sprintf("the master %s is neither of ours", addr))
	return ""
}

// waitFailover waits until the sentinels name a live master other than
// old, and that master answers as a master. It returns its address.
func (s *sentinelSetup) waitFailover(t testing.TB, old string) string {
	t.Helper()
	var now string
	waitUntil(t, topologyWait, "the sentinels to promote a new master", func(ctx context.Context) error {
		addr, err := s.masterAddr(ctx)
		if err != nil {
			return err
		}
		if addr == old {
			return fmt.Errorf("the sentinels still name %s", old)
		}
		for _, p := range []*redisProc{s.master, s.replica} {
			if p.addr == addr && p.alive() {
				ri, err := p.info(ctx, "replication")
				if err != nil {
					return err
				}
				if ri["role"] != "master" {
					return fmt.Errorf("%s is still a %s", addr, ri["role"])
				}
				now = addr
				return nil
			}
		}
		return fmt.Errorf("the sentinels name %s, not a live node of ours", addr)
	})
	return now
}
