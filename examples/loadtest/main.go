// Command loadtest measures an SSE server over the whole HTTP path: it
// opens N streams with the ssekit client (which reconnects like a browser:
// the server's retry hint, then Last-Event-ID), publishes numbered,
// timestamped events through the hub's POST /publish, and reports
// delivered events/s, loss, duplicates, gaps, end-to-end latency and the
// server's CPU and memory.
//
//	go run ./examples/loadtest -workload fanout -spawn hub   # builds and runs the hub itself
//	go run ./examples/hub -history-size 4096 &               # or against a running hub:
//	go run ./examples/loadtest -workload fanout -url http://127.0.0.1:8080/events -server-pid $!
//
// Workloads (-workload; any flag given overrides the preset):
//
//	fanout  1,000 subscribers x 2,000 broadcast events, as fast as possible
//	rate    1,000 subscribers, 100 events/s for 30s
//	idle    10,000 idle subscribers: server memory per connection
//	slow    200 readers + 5 raw connections that never read, 20,000 events
//	        of 1 KiB: every non-reader is cut, publishing never stalls, a
//	        late joiner gets a new event at once, every reader gets every
//	        event exactly once (live or replayed after a reconnect)
//	custom  whatever the flags say
//
// The burst workloads (burst-fanout, burst-mixed, burst-custom) have flags
// of their own (burst.go): the server publishes a burst in-process with
// the default core.Config, and ssekit and a frame-ring reference server
// (ring.go) are measured one after the other in the same run.
//
// A child process ("loadtest publish") publishes, so that the tool's own
// reading goroutines do not slow the publisher down. "-spawn self" runs
// "loadtest serve" instead of the hub: the same stream handler and API,
// with CPU and heap profiles and experimental stream handlers.
//
// The tool only loads loopback addresses unless -allow-remote says
// otherwise, bounds everything it does in count and time, and exits with
// status 1 when a check failed (loss, duplicates, gaps, a non-reader not
// cut, a publish stall), 2 for a bad command line. See README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(serveMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "burst-serve" {
		os.Exit(burstServeMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := 0
	if len(os.Args) > 1 && os.Args[1] == "publish" {
		code = publishMain(ctx, os.Args[2:], os.Getenv, os.Stdout, os.Stderr)
	} else {
		code = cliMain(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	}
	stop()
	os.Exit(code)
}

// cliMain is the program minus the process, for tests.
func cliMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if isBurstWorkload(args) {
		return burstMain(ctx, args, stdout, stderr)
	}
	cfg, asJSON, err := parseFlags(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	res, err := run(ctx, cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		res.print(stdout)
	}
	if res.Failed() {
		return 1
	}
	return 0
}

func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (Config, bool, error) {
	var (
		c       Config
		hubArgs string
		asJSON  bool
	)
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Workload, "workload", "fanout", "preset: "+presetNames())
	fs.StringVar(&c.URL, "url", "", "SSE stream `URL` (default http://127.0.0.1:8080/events; set by -spawn)")
	fs.StringVar(&c.PublishURL, "publish-url", "", "POST /publish `URL` (default: /publish on the -url host)")
	fs.StringVar(&c.StatsURL, "stats-url", "", "GET /stats `URL` (default: /stats on the -url host; off to skip)")
	fs.StringVar(&c.OnlineURL, "online-url", "", "GET /online `URL` (default: /online on the -url host; off to skip)")
	fs.StringVar(&c.MetricsURL, "metrics-url", "", "Prometheus `URL` to scrape process_cpu_seconds_total and process_resident_memory_bytes from")
	fs.StringVar(&c.Secret, "secret", getenv("SSEKIT_PUBLISH_SECRET"), "publish `secret` sent as Authorization: Bearer (default $SSEKIT_PUBLISH_SECRET)")
	fs.StringVar(&c.Tenant, "tenant", "", "tenant of the subscribers and events")
	fs.StringVar(&c.Topic, "topic", "", "publish to this topic and subscribe to it (default: broadcast)")
	fs.IntVar(&c.Subscribers, "subscribers", 0, "reading SSE connections (preset)")
	fs.IntVar(&c.NonReaders, "non-readers", 0, "raw connections that never read (preset)")
	fs.IntVar(&c.NonReaderRcvBuf, "non-reader-rcvbuf", 0, "SO_RCVBUF `bytes` of the non-readers (0: kernel default)")
	fs.IntVar(&c.PauseReaders, "pause-readers", 0, "this many readers stop reading after event -pause-at until the burst is published (they get cut, then replayed)")
	fs.IntVar(&c.PauseAt, "pause-at", 0, "sequence number after which -pause-readers stop (default events/10)")
	fs.IntVar(&c.ReaderRcvBuf, "reader-rcvbuf", 0, "SO_RCVBUF `bytes` of the readers (0: kernel default)")
	fs.IntVar(&c.Events, "events", 0, "events to publish (preset; with -rate and -duration: rate x duration)")
	fs.Float64Var(&c.Rate, "rate", 0, "events per second; 0 = as fast as possible (preset)")
	fs.DurationVar(&c.Duration, "duration", 0, "with -rate: how long to publish (preset)")
	fs.IntVar(&c.Size, "size", 0, "event data `bytes` (preset; at least what the sequence number and timestamp take)")
	fs.IntVar(&c.Publishers, "publishers", 1, "concurrent publish loops (>1: gaps and order are not checked)")
	fs.IntVar(&c.Batch, "batch", 0, "events per POST /publish: >1 sends a JSON array (the hub's batch publish), each event stamped with the request's start; with -rate, the rate stays in events/s (0: the preset's, 500 for fanout, else 1)")
	fs.StringVar(&c.Publisher, "publisher", "process", "who publishes: process (a child \"loadtest publish\" POSTing /publish), inline (this process POSTing), server (-spawn self publishes in-process, no HTTP per event)")
	fs.BoolVar(&c.LateJoiner, "late-joiner", false, "after the burst, connect one more subscriber and time a new event to it (preset for slow)")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "`pid` of a local server: CPU and memory from /proc")
	fs.StringVar(&c.Spawn, "spawn", "", "start the server as a child: hub (go build examples/hub) or self (\"loadtest serve\", same handler, with profiling)")
	fs.StringVar(&c.HubBin, "hub-bin", "", "prebuilt hub `binary` for -spawn hub")
	fs.StringVar(&hubArgs, "server-args", "", "extra `flags` for the spawned server, after the preset's (e.g. \"-buffer-size 1024\")")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "with -spawn self: CPU profile of the server during publish+delivery")
	fs.StringVar(&c.MemProfile, "memprofile", "", "with -spawn self: heap profile of the server with the connections idle")
	fs.DurationVar(&c.Settle, "settle", 0, "wait before reading the server's memory with the connections open (default 5s)")
	fs.IntVar(&c.ConnectConcurrency, "connect-concurrency", 0, "connection attempts in flight (default 64)")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 0, "bound on the connection phase (default 2m)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 0, "bound on the wait for deliveries after the last publish (preset)")
	fs.DurationVar(&c.Timeout, "timeout", 0, "bound on the whole run (default 15m)")
	fs.BoolVar(&c.AllowRemote, "allow-remote", false, "allow a non-loopback target (only a server you run)")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprint(out, `Usage: loadtest [flags]
       loadtest serve [flags]   (the server -spawn self runs; -h for its flags)
       loadtest publish [flags] (the publisher process a run starts)

Opens SSE connections with the ssekit client (browser-like reconnects with
Last-Event-ID), publishes numbered, timestamped events through POST /publish,
and reports delivered events/s, loss, duplicates, gaps, latency and the
server's CPU and memory. Loopback targets only, unless -allow-remote.

Workloads:
`)
		for _, name := range []string{"fanout", "rate", "idle", "slow", "custom"} {
			p := presets[name]
			fmt.Fprintf(out, "  %-7s %s", name, p.about)
			if len(p.hubArgs) > 0 {
				fmt.Fprintf(out, " (hub flags: %s)", strings.Join(p.hubArgs, " "))
			}
			fmt.Fprintln(out)
		}
		fmt.Fprintln(out, "\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, false, err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadtest: unexpected argument %q\n", fs.Arg(0))
		return c, false, errors.New("usage")
	}
	if c.Spawn != "" && c.URL != "" {
		fmt.Fprintln(stderr, "loadtest: -url and -spawn exclude each other")
		return c, false, errors.New("usage")
	}
	if c.Batch < 0 {
		// 0 is the preset's batch size (withDefaults).
		fmt.Fprintf(stderr, "loadtest: -batch must be between 1 and %d, got %d\n", maxBatch, c.Batch)
		return c, false, errors.New("usage")
	}
	c.HubArgs = strings.Fields(hubArgs)
	c, err := c.withDefaults()
	if err != nil {
		fmt.Fprintln(stderr, "loadtest:", strings.ReplaceAll(err.Error(), "\n", "\nloadtest: "))
		return c, false, err
	}
	if c.Spawn == "" {
		if p := presets[c.Workload]; len(p.hubArgs) > 0 {
			fmt.Fprintf(stderr, "note: the %s workload expects the hub to run with %s\n", c.Workload, strings.Join(p.hubArgs, " "))
		}
	}
	return c, asJSON, nil
}
