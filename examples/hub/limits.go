package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// Defaults of the flags that bound what one hostile or broken client can
// hold: a goroutine, a descriptor and up to a batch body of memory per
// request, for as long as it likes.
const (
	// defaultBodyTimeout is -body-timeout: how long a non-stream request
	// may take to deliver its body. Ten seconds is the header timeout too:
	// a publish body is at most 16 MiB, which arrives well within it on
	// any link a service publishes over.
	defaultBodyTimeout = 10 * time.Second
	// defaultMaxPublishing is -max-publishing: POST /publish requests in
	// flight at once. Each may hold a whole batch body (up to 16 MiB) in
	// memory, so the cap bounds that memory too (1 GiB at the extreme);
	// publishing itself takes microseconds, so 64 requests in flight is
	// far beyond what healthy publishers need.
	defaultMaxPublishing = 64
	// publishRetryAfter is the Retry-After of a publish refused at the cap.
	publishRetryAfter = time.Second
)

// limits are the request bounds of the non-stream routes.
type limits struct {
	// bodyTimeout is the read deadline of every non-stream request,
	// counted from the end of its headers (0: defaultBodyTimeout).
	bodyTimeout time.Duration
	// maxPublishing caps the POST /publish requests in flight
	// (0: defaultMaxPublishing).
	maxPublishing int
}

// withDefaults fills the zero fields, so that tests building a hubConfig
// by hand get the service's bounds.
func (l limits) withDefaults() limits {
	if l.bodyTimeout <= 0 {
		l.bodyTimeout = defaultBodyTimeout
	}
	if l.maxPublishing <= 0 {
		l.maxPublishing = defaultMaxPublishing
	}
	return l
}

// registerLimitFlags adds the limit flags to fs (and so their environment
// variables, which parseOptions derives from every flag of fs). check,
// called after parsing, reports bad values in the form parseOptions uses.
func registerLimitFlags(fs *flag.FlagSet) (l *limits, check func() []error) {
	l = &limits{}
	fs.DurationVar(&l.bodyTimeout, "body-timeout", defaultBodyTimeout,
		"read deadline of every request but the stream, from the end of its headers: a POST /publish body that has not fully arrived by then is answered 408 and its connection closed")
	fs.IntVar(&l.maxPublishing, "max-publishing", defaultMaxPublishing,
		fmt.Sprintf("most POST /publish `requests` in flight; beyond it the hub answers 503 with Retry-After: %d at once", int(publishRetryAfter/time.Second)))
	check = func() []error {
		var errs []error
		if l.bodyTimeout <= 0 {
			errs = append(errs, fmt.Errorf("-body-timeout (%s): must be > 0, got %v", envName("body-timeout"), l.bodyTimeout))
		}
		if l.maxPublishing < 1 {
			errs = append(errs, fmt.Errorf("-max-publishing (%s): must be >= 1, got %d", envName("max-publishing"), l.maxPublishing))
		}
		return errs
	}
	return l, check
}

// bounded gives a non-stream request the read deadline of -body-timeout,
// and makes sure that net/http never waits for a body the handler did
// not read.
//
// The stream route must not get it: a read deadline on a stream's
// connection would end the stream when it fires.
func (h *hub) bounded(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// ErrNotSupported (a ResponseWriter without a connection, in
		// tests) leaves the request unbounded, which is all it can be.
		_ = rc.SetReadDeadline(time.Now().Add(h.limits.bodyTimeout))
		body := &eofReader{ReadCloser: r.Body}
		r.Body = body
		next.ServeHTTP(w, r)
		if r.ContentLength != 0 && !body.eof {
			// The handler answered without reading the whole body (401,
			// 415, 503, a syntax error). net/http would now read up to
			// 256 KiB of it, at the client's pace, before sending the
			// answer or freeing the connection: a client trickling its
			// body would hold a goroutine and a descriptor for the full
			// deadline, and until then never learn its answer. An expired
			// deadline makes that read fail at once, and net/http then
			// closes the connection instead of parsing the rest of the
			// body as the next request.
			_ = rc.SetReadDeadline(time.Unix(1, 0))
		}
	})
}

// eofReader records whether the body was read to its end.
type eofReader struct {
	io.ReadCloser
	eof bool
}

func (r *eofReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		r.eof = true
	}
	return n, err
}

// publishSlots bounds the POST /publish requests in flight.
type publishSlots chan struct{}

// tryAcquire takes a slot without waiting: a publisher over the cap is
// told to come back rather than queued, so that the hub's memory and
// descriptors stay bounded whatever the publishers do.
func (s publishSlots) tryAcquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s publishSlots) release() { <-s }

// tooManyPublishing answers a publish over the -max-publishing cap: 503
// with Retry-After, and the connection closed so its unread body costs
// nothing.
func tooManyPublishing(w http.ResponseWriter) {
	w.Header().Set("Retry-After", strconv.Itoa(int(publishRetryAfter/time.Second)))
	w.Header().Set("Connection", "close")
	writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "too many publish requests in flight: retry later"})
}

// isTimeout reports whether err is the read deadline of -body-timeout
// firing.
func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
