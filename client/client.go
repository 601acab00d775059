package client

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssekit/ssekit/core/sse"
)

// State is where a Client stands in its connection cycle, reported to
// WithOnState.
type State int

const (
	// Connecting: the first connection attempt of an Events loop is under
	// way.
	Connecting State = iota
	// Open: the server answered 200 with an event stream; events flow. (A
	// limit rejection stream, see WithRejectStatus, is Open too until its
	// event is read.)
	Open
	// Reconnecting: the stream ended or an attempt failed; the client is
	// waiting to retry, or retrying.
	Reconnecting
	// Closed: the Events loop ended (context done, loop exited, or gave
	// up). Nothing reconnects until Events is ranged over again.
	Closed
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case Connecting:
		return "connecting"
	case Open:
		return "open"
	case Reconnecting:
		return "reconnecting"
	case Closed:
		return "closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Client reads one SSE URL, reconnecting as needed. Create one with New and
// range over Events. Its methods are safe for concurrent use, but only one
// Events loop may run at a time.
type Client struct {
	url  string
	opts options

	running  atomic.Bool
	mu       sync.Mutex
	lastID   string        // the last event ID string, carried across connections
	retry    time.Duration // the server's last retry hint, when retrySet
	retrySet bool          // the server sent a retry hint ("retry: 0" included)
}

// New returns a Client for the http or https URL rawURL. It connects only
// when Events is ranged over. It returns an error for a URL it cannot
// request and for invalid options.
func New(rawURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("ssekit: client: invalid URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("ssekit: client: invalid URL %q: want an absolute http or https URL", rawURL)
	}
	o := options{httpClient: http.DefaultClient, rejectStatus: true}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	o.backoff = o.backoff.withDefaults()
	if err := o.backoff.validate(); err != nil {
		o.errs = append(o.errs, err)
	}
	if len(o.errs) > 0 {
		return nil, fmt.Errorf("ssekit: client: invalid options: %w", errors.Join(o.errs...))
	}
	return &Client{url: u.String(), opts: o, lastID: o.lastEventID}, nil
}

// LastEventID returns the ID the client resumes from: the last event ID
// string of the stream (the ID of the last event yielded, or one an id
// field set since), else the WithLastEventID value. Save it to resume a
// later run with WithLastEventID.
func (c *Client) LastEventID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastID
}

// Events connects and yields every event the server dispatches, across
// reconnections, in the goroutine ranging over it. Event.Type is "" for
// events without an event field (a browser's "message"); ssekit servers
// send a core.GapEventType event when events could not be replayed, on
// which an application should refetch its state.
//
// Errors are not yielded while the client can retry: they go to
// WithOnRetry. When it gives up (a status that cannot succeed, a response
// that is not an event stream, retries exhausted, an event larger than the
// decoder accepts, a certificate that does not verify, a WithHeaderFunc
// error), Events yields that error once, with a zero Event, and stops. When ctx is done, Events stops promptly,
// closing the connection, and yields no error: check ctx.Err() if it
// matters. Leaving the loop early also closes the connection.
//
// Ranging over Events again, after the loop ended, resumes from
// LastEventID. Ranging over it while another loop of the same Client runs
// yields ErrInUse.
func (c *Client) Events(ctx context.Context) iter.Seq2[sse.Event, error] {
	return func(yield func(sse.Event, error) bool) {
		if !c.running.CompareAndSwap(false, true) {
			yield(sse.Event{}, ErrInUse)
			return
		}
		defer c.running.Store(false)
		r := &run{c: c, ctx: ctx, yield: yield, state: -1}
		err := r.loop()
		r.setState(Closed)
		if err != nil && !errors.Is(err, errStopped) && ctx.Err() == nil {
			yield(sse.Event{}, err)
		}
	}
}

// errStopped ends a run whose consumer left the loop: yield must not be
// called again.
var errStopped = errors.New("stopped")

// run is one Events loop.
type run struct {
	c     *Client
	ctx   context.Context
	yield func(sse.Event, error) bool
	state State
}

func (r *run) setState(s State) {
	if s == r.state {
		return
	}
	r.state = s
	if f := r.c.opts.onState; f != nil {
		f(s)
	}
}

// outcome says how a connection attempt ended.
type outcome int

const (
	ended   outcome = iota // an open stream ended: reconnect after the base delay
	failed                 // the attempt failed: back off
	fatal                  // it cannot succeed: give up
	stopped                // ctx done or the consumer left
)

type result struct {
	outcome outcome
	err     error
	floor   time.Duration // the least the server asked to wait
}

func (r *run) loop() error {
	c := r.c
	r.setState(Connecting)
	failures := 0
	for {
		res := r.attempt()
		switch res.outcome {
		case stopped, fatal:
			return res.err
		case ended:
			failures = 0
		case failed:
			failures++
			if n := c.opts.maxRetries; n > 0 && failures > n {
				return fmt.Errorf("%w after %d failed attempts: %w", ErrGaveUp, failures, res.err)
			}
		}
		delay := c.opts.backoff.delay(c.base(), failures, res.floor, rand.Float64)
		r.setState(Reconnecting)
		if f := c.opts.onRetry; f != nil {
			f(res.err, delay)
		}
		if !sleep(r.ctx, delay) {
			return nil
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// base is the delay after an open stream ends: the server's retry hint, at
// least MinRetryDelay, or Backoff.Initial when the server sent none.
func (c *Client) base() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.retrySet {
		return max(c.retry, MinRetryDelay)
	}
	return c.opts.backoff.Initial
}

// remember records the stream's position and, when the stream set one, its
// retry hint: a hint lasts across connections, as in a browser.
func (c *Client) remember(id string, retry time.Duration, set bool) {
	c.mu.Lock()
	c.lastID = id
	if set {
		c.retry, c.retrySet = retry, true
	}
	c.mu.Unlock()
}

// streamRetry returns the retry hint the stream has set so far, and whether
// it set one: the decoder's, or 0 when it reads 0 because of a "retry: 0".
func streamRetry(dec *sse.Decoder, w *zeroRetryWatch) (time.Duration, bool) {
	if d := dec.Retry(); d > 0 {
		return d, true
	}
	return 0, w.zero
}

// attempt makes one connection and reads it until it ends. It reads in the
// caller's goroutine: the request's context, derived from the loop's, is
// what unblocks a read when the loop's context is done.
func (r *run) attempt() result {
	c := r.c
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	var idle *idleTimer
	if d := c.opts.idleTimeout; d > 0 {
		idle = newIdleTimer(d, cancel)
		defer idle.stop()
	}
	// gone classifies an error after which the context may be why.
	gone := func(o outcome, err error) result {
		if r.ctx.Err() != nil {
			return result{outcome: stopped}
		}
		if idle.fired() {
			err = ErrIdleTimeout
		}
		return result{outcome: o, err: err}
	}

	req, err := c.newRequest(ctx)
	if err != nil {
		return gone(fatal, err)
	}
	resp, err := c.opts.httpClient.Do(req)
	if err != nil {
		var cert *tls.CertificateVerificationError
		if errors.As(err, &cert) {
			return gone(fatal, err) // retrying will not make the certificate valid
		}
		return gone(failed, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		se := newStatusError(resp)
		if retryable(se.Code) {
			return result{outcome: failed, err: se, floor: se.RetryAfter}
		}
		return result{outcome: fatal, err: se}
	}
	if ct := resp.Header.Get("Content-Type"); !isEventStream(ct) {
		return result{outcome: fatal, err: fmt.Errorf("%w: Content-Type %q", ErrNotEventStream, ct)}
	}
	r.setState(Open)

	watch := &zeroRetryWatch{r: resp.Body}
	var body io.Reader = watch
	if idle != nil {
		idle.reset()
		body = &idleReader{r: body, t: idle}
	}
	dec := sse.NewDecoder(body)
	dec.SetLastEventID(c.LastEventID())
	dec.OnComment = c.opts.onComment
	for {
		ev, err := dec.Next()
		if err != nil {
			retry, set := streamRetry(dec, watch)
			c.remember(dec.LastEventID(), retry, set)
			if errors.Is(err, sse.ErrEventTooLarge) && r.ctx.Err() == nil {
				return result{outcome: fatal, err: err}
			}
			return gone(ended, err)
		}
		if ev.Type == rejectedEventType {
			// Not an event for the application: the server cannot take
			// the stream now (a limit, shutdown, an auth outage). Its
			// retry hint is for this once, not the stream's base.
			return rejected(ev, dec.Retry())
		}
		if r.ctx.Err() != nil {
			// Not yielded, so not part of the position to resume from.
			return result{outcome: stopped}
		}
		retry, set := streamRetry(dec, watch)
		c.remember(dec.LastEventID(), retry, set)
		idle.pause()
		if !r.yield(ev, nil) {
			return result{outcome: stopped, err: errStopped}
		}
		idle.reset()
	}
}

// The names of ssekit's rejection protocol, core.RejectedEventType and
// core.RejectModeHeader. They are copied, not imported, so that the client
// links no part of core (TestProtocolNames checks that they match).
const (
	rejectedEventType = "ssekit.rejected"
	rejectModeHeader  = "SSEKit-Reject"
)

// rejected turns a core.RejectedEventType event into a failed attempt that
// waits at least what the server asked.
func rejected(ev sse.Event, retry time.Duration) result {
	var data struct {
		Reason  string `json:"reason"`
		RetryMs int64  `json:"retryMs"`
	}
	err := ErrRejected
	if json.Unmarshal([]byte(ev.Data), &data) == nil {
		if data.RetryMs > 0 && data.RetryMs < int64(maxDuration/time.Millisecond) {
			retry = time.Duration(data.RetryMs) * time.Millisecond
		}
		if data.Reason != "" {
			err = fmt.Errorf("%w: %s", ErrRejected, data.Reason)
		}
	}
	return result{outcome: failed, err: err, floor: retry}
}

// newRequest builds the GET of one connection attempt.
func (c *Client) newRequest(ctx context.Context) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("ssekit: client: %w", err)
	}
	h := req.Header
	h.Set("Accept", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	if c.opts.rejectStatus {
		h.Set(rejectModeHeader, "status")
	}
	for k, vs := range c.opts.header {
		h[k] = slices.Clone(vs)
	}
	if f := c.opts.headerFunc; f != nil {
		extra, err := f(ctx)
		if err != nil {
			return nil, fmt.Errorf("ssekit: client: header func: %w", err)
		}
		for k, vs := range extra {
			if !validHeaderName(k) {
				return nil, fmt.Errorf("ssekit: client: header func: invalid header name %q", k)
			}
			for _, v := range vs {
				if !validHeaderValue(v) {
					return nil, fmt.Errorf("ssekit: client: header func: invalid value for header %q", k)
				}
			}
			h[http.CanonicalHeaderKey(k)] = slices.Clone(vs)
		}
	}
	if host := h.Get("Host"); host != "" {
		req.Host = host
		h.Del("Host")
	}
	// An ID the server sent with control characters cannot be a header
	// value; sending none beats a request that can never be made.
	if id := c.LastEventID(); id != "" && validHeaderValue(id) {
		h.Set("Last-Event-ID", id)
	} else {
		h.Del("Last-Event-ID")
	}
	return req, nil
}

func isEventStream(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "text/event-stream"
}

func newStatusError(resp *http.Response) *StatusError {
	se := &StatusError{Code: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/plain" {
		line, _ := bufio.NewReader(io.LimitReader(resp.Body, 200)).ReadString('\n')
		se.Body = strings.TrimSpace(strings.ToValidUTF8(line, "\uFFFD"))
	}
	return se
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date. It returns 0 when there is none or it cannot be read.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxDuration/time.Second) {
			return maxDuration
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// idleTimer cancels a connection on which nothing arrived for d. A nil
// *idleTimer does nothing.
type idleTimer struct {
	d    time.Duration
	t    *time.Timer
	fire atomic.Bool
}

func newIdleTimer(d time.Duration, cancel context.CancelFunc) *idleTimer {
	it := &idleTimer{d: d}
	it.t = time.AfterFunc(d, func() {
		it.fire.Store(true)
		cancel()
	})
	return it
}

func (it *idleTimer) fired() bool { return it != nil && it.fire.Load() }

// reset restarts the countdown: something arrived, or the loop body
// returned.
func (it *idleTimer) reset() {
	if it != nil {
		it.t.Reset(it.d)
	}
}

// pause stops the countdown while the loop body runs.
func (it *idleTimer) pause() {
	if it != nil {
		it.t.Stop()
	}
}

func (it *idleTimer) stop() { it.t.Stop() }

// idleReader restarts an idleTimer whenever bytes arrive.
type idleReader struct {
	r io.Reader
	t *idleTimer
}

func (ir *idleReader) Read(p []byte) (int, error) {
	n, err := ir.r.Read(p)
	if n > 0 {
		ir.t.reset()
	}
	return n, err
}
