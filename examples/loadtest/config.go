package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config is one load run. The zero value of most fields means "the
// workload's preset value"; see presets.
type Config struct {
	// Workload names the preset: fanout, rate, idle, slow or custom.
	Workload string

	// URL is the SSE stream (the hub's /events). PublishURL, StatsURL and
	// OnlineURL default to /publish, /stats and /online on the same host.
	URL        string
	PublishURL string
	StatsURL   string
	OnlineURL  string
	// MetricsURL, when set, is scraped (Prometheus text format) for
	// process_cpu_seconds_total and process_resident_memory_bytes.
	MetricsURL string
	// Secret, when set, is sent as "Authorization: Bearer <secret>" on
	// POST /publish.
	Secret string
	// Tenant and Topic scope the subscribers and the events; an empty
	// Topic means broadcast events to subscribers without a topic.
	Tenant string
	Topic  string

	// Subscribers is the number of reading SSE connections (client
	// package: they reconnect like a browser, with Last-Event-ID).
	Subscribers int
	// NonReaders is the number of raw TCP connections that send the GET
	// and then never read a byte.
	NonReaders int
	// NonReaderRcvBuf, when > 0, sets SO_RCVBUF on the non-readers'
	// sockets, so the stall shows within a smaller burst.
	NonReaderRcvBuf int
	// PauseReaders readers stop reading after event PauseAt until the
	// burst is published, then read on: the server cuts them as slow
	// consumers, and they must be replayed what they missed.
	PauseReaders int
	PauseAt      int
	// ReaderRcvBuf, when > 0, sets SO_RCVBUF on the readers' sockets.
	ReaderRcvBuf int
	// Events is the number of events to publish; with Rate and Duration
	// and no Events, Rate x Duration.
	Events int
	// Rate is the publish rate in events/s; 0 publishes as fast as
	// possible.
	Rate     float64
	Duration time.Duration
	// Size is the length of each event's data in bytes (at least what the
	// sequence number and timestamp need).
	Size int
	// Publishers is the number of concurrent POST /publish loops. With
	// more than one, publish order is not sequence order, so gaps and
	// out-of-order deliveries are not counted (loss and duplicates are).
	Publishers int
	// Batch is the number of events per POST /publish: 1 sends one JSON
	// object per request, more send a JSON array (the hub's batch publish).
	// Every event of a request carries the time the request started. With
	// Rate, a batch is sent when its first event is due. Publisher
	// "server" honours it too: each call publishes Batch events in a row.
	Batch int
	// Publisher says who publishes: "process" (default), a child
	// "loadtest publish" process, so that the subscribers' goroutines do
	// not delay the publisher's responses; "inline", this process;
	// "server", a "loadtest serve" server in-process through
	// core.Broker.Publish (no HTTP request per event).
	Publisher string
	// LateJoiner connects one more subscriber right after the burst and
	// measures how long a new event takes to reach it.
	LateJoiner bool

	// ServerPID, when > 0, is the server process whose CPU and memory are
	// read from /proc.
	ServerPID int
	// Settle is the wait after the connections opened before memory is
	// read (repeatedly, until two readings agree).
	Settle time.Duration
	// ConnectConcurrency bounds connection attempts in flight.
	ConnectConcurrency int
	// ConnectTimeout bounds the connection phase.
	ConnectTimeout time.Duration
	// DrainTimeout bounds the wait for deliveries after the last publish.
	DrainTimeout time.Duration
	// Timeout bounds the whole run.
	Timeout time.Duration
	// AllowRemote allows a non-loopback target.
	AllowRemote bool

	// Spawn starts the server as a child process: "hub" builds and runs
	// examples/hub, "self" runs this program's "serve" subcommand (the
	// same handler, with profiling endpoints). "" targets URL.
	Spawn string
	// HubBin is a prebuilt hub binary for Spawn "hub" (built when empty).
	HubBin string
	// HubArgs are extra flags for the spawned server, after the preset's.
	HubArgs []string
	// CPUProfile and MemProfile are written by a Spawn "self" server: the
	// CPU profile covers the publish and delivery phase, the heap profile
	// is taken with the connections open and idle.
	CPUProfile string
	MemProfile string
}

// maxBatch bounds -batch; the hub takes up to its -max-batch (default
// 1,000) events per request.
const maxBatch = 100_000

// preset is a named workload.
type preset struct {
	name        string
	about       string
	subscribers int
	nonReaders  int
	events      int
	rate        float64
	duration    time.Duration
	size        int
	lateJoiner  bool
	drain       time.Duration
	// batch is the preset's events per POST /publish (0: 1).
	batch int
	// hubArgs are the flags a spawned hub gets for this workload; against
	// an external server they are printed as advice.
	hubArgs []string
}

var presets = map[string]preset{
	"fanout": {
		name:        "fanout",
		about:       "1,000 subscribers x 2,000 broadcast events, published as fast as possible",
		subscribers: 1000,
		events:      2000,
		drain:       2 * time.Minute,
		// As fast as possible means batches: one request per event costs
		// the hub more than fanning the event out to 1,000 streams.
		batch: 500,
		// The hub a fan-out-heavy service would run (docs/OPERATIONS.md):
		// each stream absorbs the burst and writes at most every 100 ms.
		// A subscriber cut as a slow consumer all the same finds what it
		// missed in the history when it comes back.
		hubArgs: []string{"-history-size", "4096", "-buffer-size", "4096", "-flush-interval", "100ms"},
	},
	"rate": {
		name:        "rate",
		about:       "1,000 subscribers, broadcast events at 100/s for 30s",
		subscribers: 1000,
		rate:        100,
		duration:    30 * time.Second,
		drain:       time.Minute,
	},
	"idle": {
		name:        "idle",
		about:       "10,000 idle subscribers (memory per connection), then one broadcast to check them all",
		subscribers: 10000,
		events:      1,
		drain:       time.Minute,
	},
	"slow": {
		name:        "slow",
		about:       "200 readers + 5 subscribers that never read, 20,000 broadcast events of 1 KiB as fast as possible",
		subscribers: 200,
		nonReaders:  5,
		events:      20000,
		size:        1024,
		lateJoiner:  true,
		drain:       3 * time.Minute,
		// The history holds the whole burst, so every reader cut as a
		// slow consumer is replayed all it missed.
		hubArgs: []string{"-history-size", "25000"},
	},
	"custom": {
		name:        "custom",
		about:       "what the flags say",
		subscribers: 100,
		events:      1000,
		drain:       time.Minute,
	},
}

func presetNames() string { return "fanout, rate, idle, slow, custom" }

// withDefaults fills the fields the caller left zero from the workload's
// preset and derives the URLs.
func (c Config) withDefaults() (Config, error) {
	if c.Workload == "" {
		c.Workload = "fanout"
	}
	p, ok := presets[c.Workload]
	if !ok {
		return c, fmt.Errorf("unknown workload %q (want %s)", c.Workload, presetNames())
	}
	if c.Subscribers == 0 {
		c.Subscribers = p.subscribers
	}
	if c.NonReaders == 0 {
		c.NonReaders = p.nonReaders
	}
	if c.Rate == 0 {
		c.Rate = p.rate
	}
	if c.Duration == 0 {
		c.Duration = p.duration
	}
	if c.Events == 0 {
		c.Events = p.events
		if c.Rate > 0 && c.Duration > 0 {
			c.Events = int(c.Rate * c.Duration.Seconds())
		}
	}
	if c.Size == 0 {
		c.Size = p.size
	}
	if !c.LateJoiner {
		c.LateJoiner = p.lateJoiner
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = p.drain
	}
	if c.Publishers == 0 {
		c.Publishers = 1
	}
	if c.Batch == 0 {
		c.Batch = max(p.batch, 1)
	}
	if c.Publisher == "" {
		c.Publisher = "process"
	}
	if c.PauseAt == 0 {
		c.PauseAt = max(c.Events/10, 1)
	}
	if c.Settle == 0 {
		c.Settle = 5 * time.Second
	}
	if c.ConnectConcurrency == 0 {
		c.ConnectConcurrency = 64
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 2 * time.Minute
	}
	if c.Timeout == 0 {
		c.Timeout = 15 * time.Minute
	}
	if c.URL == "" && c.Spawn == "" {
		c.URL = "http://127.0.0.1:8080/events"
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Subscribers < 0 || c.NonReaders < 0 || c.Events < 0 {
		bad("-subscribers, -non-readers and -events must be >= 0")
	}
	if c.Subscribers+c.NonReaders == 0 {
		bad("no connections: set -subscribers or -non-readers")
	}
	if c.PauseReaders < 0 || c.PauseReaders > c.Subscribers {
		bad("-pause-readers must be between 0 and -subscribers, got %d", c.PauseReaders)
	}
	if c.Rate < 0 {
		bad("-rate must be >= 0 (0: as fast as possible), got %v", c.Rate)
	}
	if c.Publishers < 1 {
		bad("-publishers must be >= 1, got %d", c.Publishers)
	}
	if c.Batch < 1 || c.Batch > maxBatch {
		bad("-batch must be between 1 and %d, got %d", maxBatch, c.Batch)
	}
	if c.ConnectConcurrency < 1 {
		bad("-connect-concurrency must be >= 1, got %d", c.ConnectConcurrency)
	}
	if c.Events > 10_000_000 {
		bad("-events must be at most 10,000,000 (a load run is bounded), got %d", c.Events)
	}
	if c.Size > 1<<20 {
		bad("-size must be at most 1 MiB, got %d", c.Size)
	}
	switch c.Publisher {
	case "process", "inline", "server":
	default:
		bad("-publisher must be process, inline or server, got %q", c.Publisher)
	}
	if c.Publisher == "server" && c.Spawn == "hub" {
		bad("-publisher server needs -spawn self (or a \"loadtest serve\" server): the hub publishes only through POST /publish")
	}
	switch c.Spawn {
	case "", "hub", "self":
	default:
		bad("-spawn must be hub or self, got %q", c.Spawn)
	}
	if c.Spawn != "" && c.ServerPID != 0 {
		bad("-server-pid makes no sense with -spawn (the child's PID is used)")
	}
	if (c.CPUProfile != "" || c.MemProfile != "") && c.Spawn != "self" {
		bad("-cpuprofile and -memprofile need -spawn self (the hub has no profiling hook)")
	}
	if c.Timeout <= 0 || c.DrainTimeout <= 0 || c.ConnectTimeout <= 0 {
		bad("timeouts must be > 0")
	}
	return errors.Join(errs...)
}

// deriveURLs fills the publish, stats and online URLs from the stream URL:
// the hub serves them at the root of the same host.
func (c *Config) deriveURLs() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url %q: want an absolute http(s) URL", c.URL)
	}
	at := func(p string) string {
		v := *u
		v.Path, v.RawPath, v.RawQuery, v.Fragment = p, "", "", ""
		return v.String()
	}
	if c.PublishURL == "" {
		c.PublishURL = at("/publish")
	}
	if c.StatsURL == "" {
		c.StatsURL = at("/stats")
	}
	if c.OnlineURL == "" {
		c.OnlineURL = at("/online")
	}
	if c.StatsURL == "off" {
		c.StatsURL = ""
	}
	if c.OnlineURL == "off" {
		c.OnlineURL = ""
	}
	if !c.AllowRemote {
		for _, raw := range []string{c.URL, c.PublishURL, c.StatsURL, c.OnlineURL, c.MetricsURL} {
			if raw == "" {
				continue
			}
			if err := requireLoopback(raw); err != nil {
				return err
			}
		}
	}
	return nil
}

// requireLoopback refuses a URL whose host is not loopback: a load tool
// pointed at someone else's server by mistake is an attack.
func requireLoopback(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q: %w", raw, err)
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s is not a loopback address: pass -allow-remote to load a server on another machine (only one you run)", host)
}
