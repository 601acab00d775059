package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// defaultAddr is loopback on purpose: the stream trusts the user named in
// its query string, so the hub is only reachable from this machine unless
// the operator says otherwise.
const defaultAddr = "127.0.0.1:8080"

// envPrefix turns a flag name into its environment variable:
// -max-event-size is SSEKIT_MAX_EVENT_SIZE.
const envPrefix = "SSEKIT_"

// options is the parsed command line and environment.
type options struct {
	addr            string
	insecurePublish bool
	devToken        bool
	trace           string // traceOff, traceStdout or traceOTLP
	jwtSecret       []byte // the HS256 secret in auth mode
	shutdownTimeout time.Duration
	broker          core.Config
	hub             hubConfig
}

// usageError is a configuration mistake: main exits with status 2 for it.
type usageError struct {
	err     error
	printed bool // the flag package already printed it with the usage
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// envName returns the environment variable read for flag name.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// configFields maps core.Config field names, as Validate's messages spell
// them, to the flag that sets them, so an error names what the user typed.
var configFields = map[string]string{
	"ClientBufferSize":      "buffer-size",
	"SlowConsumer":          "slow-consumer",
	"HeartbeatInterval":     "heartbeat",
	"ClientTimeout":         "client-timeout",
	"HistorySize":           "history-size",
	"HistoryBytes":          "history-bytes",
	"HistoryAge":            "history-age",
	"RetryHint":             "retry",
	"MaxConnections":        "max-connections",
	"MaxConnectionsPerUser": "max-connections-per-user",
	"MaxEventSize":          "max-event-size",
	"FlushInterval":         "flush-interval",
}

// parseOptions reads flags, then fills every flag the command line did not
// set from its environment variable: a flag always wins over the
// environment. It validates the broker configuration with
// core.Config.Validate and the safety rule for non-loopback addresses.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var (
		o            options
		slowConsumer string
		historySize  int
		secret       string
		jwtSecret    string
		maxBatch     int
		takeover     bool
	)
	fs := flag.NewFlagSet("hub", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", defaultAddr, "`host:port` to listen on; a non-loopback host needs -publish-secret or -insecure-publish")
	fs.StringVar(&secret, "publish-secret", "", "shared `secret` that POST /publish requires as \"Authorization: Bearer <secret>\" (prefer the environment variable: flags show in ps)")
	fs.StringVar(&jwtSecret, "jwt-secret", "", "HS256 `secret` (>= 32 bytes) that turns on auth mode: streams and /publish need JWTs (claims: sub = user UUID or any subject, mapped by core.UserFromSubject; tenant, topics, publish)")
	fs.BoolVar(&o.devToken, "dev-token", false, "auth mode for development: print a token for a random user allowed every topic and every publish (with no -jwt-secret, a random secret that dies with the process)")
	fs.StringVar(&o.trace, "trace", traceOff, "trace publishes end to end with OpenTelemetry, exporting to `exporter` stdout or otlp (configured by the standard OTEL_EXPORTER_OTLP_* variables)")
	fs.BoolVar(&o.insecurePublish, "insecure-publish", false, "allow an unprotected /publish on a non-loopback address")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long a graceful shutdown may take before streams are cut")
	fs.IntVar(&o.broker.ClientBufferSize, "buffer-size", 0, "cap on `events` queued per connection, beyond which -slow-consumer applies; 0 = no cap: the history window bounds every backlog (ClientBufferSize)")
	fs.StringVar(&slowConsumer, "slow-consumer", core.Disconnect.String(), "`policy` for a queue full at -buffer-size: disconnect, drop-oldest or drop-newest (SlowConsumer)")
	fs.DurationVar(&o.broker.HeartbeatInterval, "heartbeat", core.DefaultHeartbeatInterval, "comment sent on a stream idle this long, >= 5s (HeartbeatInterval; 0 = default)")
	fs.DurationVar(&o.broker.ClientTimeout, "client-timeout", core.DefaultClientTimeout, "close a connection whose writes stall this long, >= 2 x heartbeat (ClientTimeout; 0 = default)")
	fs.Int64Var(&o.broker.HistoryBytes, "history-bytes", core.DefaultHistoryBytes, "memory in `bytes` the events held for replay and backlogs may cost (HistoryBytes; 0 = default)")
	fs.DurationVar(&o.broker.HistoryAge, "history-age", core.DefaultHistoryAge, "how long events are held for replay and backlogs (HistoryAge; 0 = default)")
	fs.IntVar(&historySize, "history-size", 0, "cap on `events` kept for Last-Event-ID replay; 0 = no cap beyond -history-bytes and -history-age; -1 turns replay off (HistorySize)")
	fs.DurationVar(&o.broker.RetryHint, "retry", core.DefaultRetryHint, "reconnect delay sent to clients, plus up to 50% jitter (RetryHint; 0 = default)")
	fs.IntVar(&o.broker.MaxConnections, "max-connections", 0, "open connections allowed in total; 0 = unlimited (MaxConnections)")
	fs.IntVar(&o.broker.MaxConnectionsPerUser, "max-connections-per-user", 0, "open connections allowed per user and tenant; 0 = unlimited (MaxConnectionsPerUser)")
	fs.DurationVar(&o.broker.FlushInterval, "flush-interval", 0, "write each stream at most once per interval, batching bursts (FlushInterval; 0 = write at once)")
	fs.IntVar(&o.broker.MaxEventSize, "max-event-size", core.DefaultMaxEventSize, "largest encoded event in `bytes` (MaxEventSize; 0 = default)")
	fs.BoolVar(&takeover, "takeover", true, "serve HTTP/1.x streams on connections taken over from net/http: about a third of the memory per idle stream (nethttp.WithTakeover); -takeover=false keeps net/http's own response writer")
	fs.IntVar(&maxBatch, "max-batch", defaultMaxBatch, fmt.Sprintf("most `events` one POST /publish JSON array may hold, 1 to %d; its body may be this many times the single-event limit, at most %d MiB", maxMaxBatch, maxBatchBodyCap>>20))
	lim, checkLimits := registerLimitFlags(fs) // limits.go
	fs.Usage = func() {
		out := fs.Output()
		fmt.Fprintf(out, "Usage: hub [flags]\n\nssekit's standalone SSE service and demo page. Every flag can also be set\nwith an environment variable (shown in brackets); a flag wins over it.\n\n")
		fs.VisitAll(func(f *flag.Flag) {
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(out, "  -%s %s\t[%s]\n    \t%s", f.Name, name, envName(f.Name), usage)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
				fmt.Fprintf(out, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(out)
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, &usageError{err: err, printed: true}
	}
	if fs.NArg() > 0 {
		return o, &usageError{err: fmt.Errorf("unexpected argument %q (every setting is a -flag)", fs.Arg(0))}
	}

	// The environment fills what the command line left alone.
	var errs []error
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fs.VisitAll(func(f *flag.Flag) {
		env := envName(f.Name)
		v := getenv(env)
		if set[f.Name] || v == "" {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q (for -%s): %v%s", env, v, f.Name, err, want(f)))
		}
	})
	if len(errs) > 0 {
		return o, &usageError{err: errors.Join(errs...)}
	}

	bad := func(flagName, format string, a ...any) {
		errs = append(errs, fmt.Errorf("-%s (%s): %s", flagName, envName(flagName), fmt.Sprintf(format, a...)))
	}
	policy, err := core.ParseSlowConsumerPolicy(slowConsumer)
	if err != nil {
		bad("slow-consumer", "%v", err)
	}
	o.broker.SlowConsumer = policy
	if historySize < core.NoHistory {
		bad("history-size", "must be >= -1 (-1 turns replay off), got %d", historySize)
	}
	o.broker.HistorySize = historySize
	if o.trace != traceOff && o.trace != traceStdout && o.trace != traceOTLP {
		bad("trace", "want stdout or otlp, got %q", o.trace)
	}
	if maxBatch < 1 || maxBatch > maxMaxBatch {
		bad("max-batch", "must be between 1 and %d, got %d", maxMaxBatch, maxBatch)
	}
	if o.shutdownTimeout <= 0 {
		bad("shutdown-timeout", "must be > 0, got %v", o.shutdownTimeout)
	}
	if err := o.broker.Validate(); err != nil {
		for _, e := range unjoin(err) {
			bad(flagForConfigError(e), "%v", e)
		}
	}
	host, port, err := net.SplitHostPort(o.addr)
	if err != nil {
		bad("addr", "%v", err)
	} else if _, err := net.LookupPort("tcp", port); err != nil {
		bad("addr", "%v", err)
	}
	errs = append(errs, checkLimits()...)
	if len(errs) > 0 {
		return o, &usageError{err: errors.Join(errs...)}
	}

	var jwtAuth *auth.JWT
	if jwtSecret != "" || o.devToken {
		o.jwtSecret = []byte(jwtSecret)
		if len(o.jwtSecret) == 0 {
			o.jwtSecret = auth.NewSecret()
		}
		jwtAuth, err = auth.New(auth.Config{
			Algorithms:  []string{"HS256"},
			Keys:        []auth.Key{{Key: o.jwtSecret}},
			TenantClaim: "tenant",
			// Tokens from any identity provider: a UUID sub stays that
			// user, as before; any other (auth0|..., numeric, e-mail) is
			// the user core.UserFromSubject(sub), which publishers name
			// in POST /publish's "user".
			Subjects: auth.MapNonUUIDSubjects,
		})
		if err != nil {
			return o, &usageError{err: fmt.Errorf("-jwt-secret (%s): %v", envName("jwt-secret"), err)}
		}
	}

	// Safe by default: an open /publish is fine on loopback, where only
	// this machine can reach it, and refused anywhere else unless asked for.
	if secret == "" && jwtAuth == nil && !o.insecurePublish && !isLoopbackHost(host) {
		return o, &usageError{err: fmt.Errorf(
			"refusing to listen on %s: it is not a loopback address and POST /publish is unprotected; "+
				"set -publish-secret (%s), or pass -insecure-publish (%s=true) to let anyone who reaches it publish",
			o.addr, envName("publish-secret"), envName("insecure-publish"))}
	}

	o.broker.Authenticator = core.InsecureQueryAuthenticator()
	if jwtAuth != nil {
		o.broker.Authenticator, o.broker.Authorizer = jwtAuth, jwtAuth
	}
	o.hub = hubConfig{publishSecret: secret, maxEventSize: o.broker.MaxEventSize, maxBatch: maxBatch, takeover: takeover, jwt: jwtAuth}
	o.hub.limits = *lim
	return o, nil
}

// want describes the value a flag expects, for environment errors (the
// flag package's own message is a bare "parse error").
func want(f *flag.Flag) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case time.Duration:
		return ": want a duration such as 500ms, 3s or 5m"
	case int:
		return ": want an integer"
	case bool:
		return ": want true or false"
	}
	return ""
}

// flagForConfigError names the flag behind one of Validate's errors, which
// read "ssekit: invalid config: FieldName must ...".
func flagForConfigError(err error) string {
	msg := err.Error()
	for field, name := range configFields {
		if strings.Contains(msg, ": "+field+" must") {
			return name
		}
	}
	return "config"
}

// unjoin splits an errors.Join result into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// isLoopbackHost reports whether every address host stands for is a
// loopback address. An empty host (":8080") means every interface.
func isLoopbackHost(host string) bool {
	if host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil || len(addrs) == 0 {
		return false
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return false
		}
	}
	return true
}
