package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// hubPackage is built for -spawn hub.
const hubPackage = "github.com/ssekit/ssekit/examples/hub"

// child is a server this run started: the hub, or "loadtest serve".
type child struct {
	cmd    *exec.Cmd
	url    string // http://host:port
	pid    int
	self   bool   // "loadtest serve", with its debug routes
	tmp    string // build directory to remove, if any
	output *syncBuffer
	exited chan struct{}
	err    error // Wait's result, once exited
}

// syncBuffer collects a child's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		return len(p), nil
	}
	return s.b.Write(p)
}

// addrWatcher passes a child's stdout on and reports the URL of its
// "... listening on http://127.0.0.1:PORT ..." line (hub and serve).
type addrWatcher struct {
	w     io.Writer
	line  []byte
	found chan string
	done  bool
}

func (a *addrWatcher) Write(p []byte) (int, error) {
	if !a.done {
		a.line = append(a.line, p...)
		for {
			i := bytes.IndexByte(a.line, '\n')
			if i < 0 {
				break
			}
			if _, rest, ok := strings.Cut(string(a.line[:i]), "listening on "); ok {
				u, _, _ := strings.Cut(rest, " ")
				a.found <- u
				a.done, a.line = true, nil
				break
			}
			a.line = a.line[i+1:]
		}
	}
	return a.w.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// buildHub compiles examples/hub once into a temporary directory.
func buildHub(ctx context.Context, log io.Writer) (bin, tmp string, err error) {
	tmp, err = os.MkdirTemp("", "ssekit-loadtest-")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(tmp, "hub")
	fmt.Fprintf(log, "building %s ...\n", hubPackage)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, hubPackage)
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.RemoveAll(tmp)
		return "", "", fmt.Errorf("go build %s: %w\n%s", hubPackage, err, out)
	}
	return bin, tmp, nil
}

// spawn starts the server cfg.Spawn names on a free loopback port, with
// the workload's flags, and waits until it serves.
func spawn(ctx context.Context, cfg Config, hubArgs []string, log io.Writer) (*child, error) {
	var (
		bin  string
		args []string
		tmp  string
		err  error
	)
	switch cfg.Spawn {
	case "hub":
		bin = cfg.HubBin
		if bin == "" {
			if bin, tmp, err = buildHub(ctx, log); err != nil {
				return nil, err
			}
		}
	case "self":
		if bin, err = os.Executable(); err != nil {
			return nil, err
		}
		args = []string{"serve"}
		if cfg.CPUProfile != "" {
			args = append(args, "-cpuprofile", cfg.CPUProfile)
		}
		if cfg.MemProfile != "" {
			args = append(args, "-memprofile", cfg.MemProfile)
		}
	}
	args = append(args, "-addr", "127.0.0.1:0")
	args = append(args, hubArgs...)
	args = append(args, cfg.HubArgs...)
	env := os.Environ()
	if cfg.Secret != "" {
		// Not a flag: flags show in ps.
		env = append(env, "SSEKIT_PUBLISH_SECRET="+cfg.Secret)
	}
	return startChild(ctx, bin, args, env, tmp, cfg.Spawn == "self", log)
}

// startChild runs bin with args, waits for its "listening on URL" line
// and for URL/healthz to answer, and removes tmp when the child is done.
func startChild(ctx context.Context, bin string, args, env []string, tmp string, self bool, log io.Writer) (*child, error) {
	c := &child{tmp: tmp, self: self, output: &syncBuffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Env = env
	found := make(chan string, 1)
	c.cmd.Stderr = c.output
	c.cmd.Stdout = &addrWatcher{w: c.output, found: found}
	dieWithParent(c.cmd)
	fmt.Fprintf(log, "starting %s %s\n", filepath.Base(bin), strings.Join(args, " "))
	if err := c.cmd.Start(); err != nil {
		c.cleanup()
		return nil, err
	}
	c.pid = c.cmd.Process.Pid
	go func() {
		c.err = c.cmd.Wait()
		close(c.exited)
	}()
	wait := time.NewTimer(30 * time.Second)
	defer wait.Stop()
	select {
	case c.url = <-found:
	case <-c.exited:
		c.cleanup()
		return nil, fmt.Errorf("%s exited at start (%v):\n%s", filepath.Base(bin), c.err, c.output.String())
	case <-wait.C:
		c.stop()
		return nil, fmt.Errorf("%s did not say where it listens within 30s:\n%s", filepath.Base(bin), c.output.String())
	case <-ctx.Done():
		c.stop()
		return nil, ctx.Err()
	}
	if err := waitHealthy(ctx, c.url+"/healthz"); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

func waitHealthy(ctx context.Context, u string) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = errors.New(resp.Status)
		}
		if time.Now().After(deadline) || !sleepFor(ctx, 50*time.Millisecond) {
			return fmt.Errorf("%s: not healthy: %w", u, err)
		}
	}
}

// stop ends the child gracefully (SIGTERM, as an operator would), or kills
// it after 15s.
func (c *child) stop() error {
	defer c.cleanup()
	select {
	case <-c.exited:
		return c.err
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case <-c.exited:
		return c.err
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("server did not stop within 15s of SIGTERM; killed")
	}
}

func (c *child) cleanup() {
	if c.tmp != "" {
		os.RemoveAll(c.tmp)
		c.tmp = ""
	}
}

// post calls one of the "loadtest serve" debug routes.
func (c *child) post(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+path, nil)
	if err != nil {
		return err
	}
	hc := &http.Client{Timeout: time.Minute}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("POST %s: %s %s", path, resp.Status, bytes.TrimSpace(b))
	}
	if v == nil {
		return nil
	}
	return jsonDecode(resp.Body, v)
}
