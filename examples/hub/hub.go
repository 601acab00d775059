package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/middleware/auth"
)

// web holds the demo page: plain HTML, CSS and JavaScript, no build step.
//
//go:embed web
var web embed.FS

// hubConfig is what the HTTP layer needs beyond the broker.
type hubConfig struct {
	// publishSecret, when set, is the bearer token POST /publish requires.
	publishSecret string
	// maxEventSize is the broker's MaxEventSize (0: the core default); the
	// publish body limit is derived from it.
	maxEventSize int
	// maxBatch is the most events one POST /publish array may hold (0:
	// defaultMaxBatch).
	maxBatch int
	// takeover serves HTTP/1.x streams on connections taken over from
	// net/http (nethttp.WithTakeover): a third of the memory per idle
	// stream and less CPU per write.
	takeover bool
	// jwt, when set, is auth mode: the broker authenticates streams with
	// it, and /publish takes a JWT whose publish claim allows the target
	// (or the publish secret, for trusted services).
	jwt *auth.JWT
	// obs serves /metrics and, with tracing on, wraps /publish in a server
	// span; nil serves no /metrics.
	obs *observability
	// limits bound the requests of every route but the stream (zero
	// fields: the defaults).
	limits limits
	// log receives what the hub refuses and why, with the request's
	// context; nil means obs's logger, or slog.Default without obs.
	log *slog.Logger
}

// hub is the service's HTTP surface around one broker. It holds no state
// of its own, so a broker (and its history) can outlive one http.Server
// and be served again by the next: the browser test restarts the server
// this way and checks that the page is replayed what it missed.
type hub struct {
	broker *core.Broker
	secret *[sha256.Size]byte // hash of the publish secret; nil: open
	jwt    *auth.JWT
	// maxBody bounds the body of a single-object publish, maxBatchBody
	// the body of a batch (a JSON array) of at most maxBatch events.
	maxBody      int64
	maxBatchBody int64
	maxBatch     int
	limits       limits
	// publishing holds one slot per POST /publish in flight.
	publishing publishSlots
	mux        *http.ServeMux
	// log gets the full errors; answers carry fixed texts only.
	log *slog.Logger
	// retryAfter is the Retry-After of a 503 for an outage: the back-off
	// core.Broker.Reject gives streams, so publishers and pages return
	// together, not before the outage can have passed.
	retryAfter string
}

// Batch publishing: POST /publish also takes a JSON array of the objects
// it takes one at a time.
const (
	// defaultMaxBatch is the default of -max-batch, the most events one
	// array may hold.
	defaultMaxBatch = 1000
	// maxMaxBatch bounds -max-batch: every event of a batch is held in
	// memory until all of them are validated.
	maxMaxBatch = 100_000
	// maxBatchBodyCap caps a batch's body, whatever max-batch times the
	// single-object limit would allow, for the same reason.
	maxBatchBodyCap = 16 << 20
)

// batchBodyLimit is the body limit of a batch: the single-object limit
// per event, capped at maxBatchBodyCap, never below the single limit.
func batchBodyLimit(single int64, maxBatch int) int64 {
	limit := int64(maxBatchBodyCap)
	if single <= limit/int64(maxBatch) {
		limit = single * int64(maxBatch)
	}
	return max(limit, single)
}

// newHub returns the handler serving every route of the hub for b. The
// broker should use core.InsecureQueryAuthenticator, so that the demo page
// can name its user and tenant.
func newHub(b *core.Broker, cfg hubConfig) (*hub, error) {
	maxEvent := cfg.maxEventSize
	if maxEvent <= 0 {
		maxEvent = core.DefaultMaxEventSize
	}
	h := &hub{
		broker: b,
		// JSON escaping can double the data ("\n" for a newline), and the
		// rest of the request is small: a larger body cannot hold a valid
		// event, so it is refused before it is read into memory.
		maxBody:  2*int64(maxEvent) + 4096,
		maxBatch: cfg.maxBatch,
		mux:      http.NewServeMux(),
		jwt:      cfg.jwt,
		limits:   cfg.limits.withDefaults(),
	}
	h.publishing = make(publishSlots, h.limits.maxPublishing)
	h.log = cfg.log
	if h.log == nil && cfg.obs != nil {
		h.log = cfg.obs.log
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	backoff := 5 * b.Config().RetryHint
	h.retryAfter = strconv.Itoa(int((backoff + time.Second - 1) / time.Second))
	if cfg.obs != nil {
		// Here, where the broker and its metrics meet: the history's
		// gauges and the delivered count come from the broker's Stats.
		cfg.obs.track(b)
	}
	if h.maxBatch <= 0 {
		h.maxBatch = defaultMaxBatch
	}
	h.maxBatchBody = batchBodyLimit(h.maxBody, h.maxBatch)
	if cfg.publishSecret != "" {
		sum := sha256.Sum256([]byte(cfg.publishSecret))
		h.secret = &sum
	}
	page, err := fs.Sub(web, "web")
	if err != nil {
		return nil, err
	}
	// The stream handler answers wrong methods (405) and CORS preflights
	// itself, so it takes every method.
	var streamOpts []nethttp.Option
	if cfg.takeover {
		streamOpts = append(streamOpts, nethttp.WithTakeover())
	}
	// The stream is the one route without a read deadline (see bounded);
	// every other route gets it, so no request can hold its connection
	// by trickling a body.
	h.mux.Handle("/events", nethttp.Handler(b, streamOpts...))
	route := func(pattern string, handler http.Handler) { h.mux.Handle(pattern, h.bounded(handler)) }
	route("POST /publish", cfg.obs.instrument(http.HandlerFunc(h.publish), "POST /publish"))
	if cfg.obs != nil {
		// In auth mode the figures of the whole node need the admin grant.
		route("GET /metrics", h.adminOnly(cfg.obs.metricsHandler()))
	}
	route("GET /stats", h.adminOnly(http.HandlerFunc(h.stats)))
	route("GET /online", http.HandlerFunc(h.online))
	route("GET /healthz", http.HandlerFunc(h.healthz))
	// Without these, a wrong method on an API route would fall through to
	// the page's file server and read as 404.
	for path, allow := range map[string]string{"/publish": "POST", "/stats": "GET", "/online": "GET", "/healthz": "GET", "/metrics": "GET"} {
		if path == "/metrics" && cfg.obs == nil {
			continue
		}
		route(path, methodNotAllowed(allow))
	}
	route("/", pageHeaders(http.FileServerFS(page)))
	return h, nil
}

func (h *hub) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// pageHeaders adds the headers that keep the demo page from being framed
// or from running script that is not its own.
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed("GET, HEAD")(w, r)
			return
		}
		hdr := w.Header()
		hdr.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		hdr.Set("X-Content-Type-Options", "nosniff")
		hdr.Set("Referrer-Policy", "no-referrer")
		hdr.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// publishRequest is the body of POST /publish.
type publishRequest struct {
	// Tenant scopes the event; "" is the default tenant.
	Tenant string `json:"tenant"`
	// User, a UUID, receives the event on every connection.
	User string `json:"user"`
	// Topic reaches every connection subscribed to it.
	Topic string `json:"topic"`
	// Broadcast reaches every connection of the tenant.
	Broadcast bool `json:"broadcast"`
	// Event is the event type, which EventSource listeners select on.
	Event string `json:"event"`
	// ID is refused when present: the history assigns IDs, and that is
	// what makes Last-Event-ID replay exact. It is declared so the error
	// can say so, instead of "unknown field".
	ID json.RawMessage `json:"id"`
	// Data is any JSON value: a string is sent as it is, anything else as
	// its (compacted) JSON text.
	Data json.RawMessage `json:"data"`
	// IdempotencyKey makes a retry safe (core.Message.IdempotencyKey): an
	// event whose key its tenant already published within the history
	// window is not sent again, and the answer carries the first ID. A
	// single publish may send it as the Idempotency-Key header instead.
	IdempotencyKey string `json:"idempotencyKey"`
}

// apiError is every error body of the hub's JSON routes.
type apiError struct {
	Error string `json:"error"`
	// Field names the request field at fault; "target" stands for the
	// user/topic/broadcast trio, "body" for the JSON document as a whole.
	// In a batch it is prefixed with the item's index: "[3].user", or
	// "[3]" for the item as a whole.
	Field string `json:"field,omitempty"`
	// Index is the batch item at fault, when one is.
	Index *int `json:"index,omitempty"`
}

// batchError is the error body of a batch that failed while its events
// were being published: IDs are those of the events already published,
// in item order (none of the later ones was).
type batchError struct {
	apiError
	IDs []string `json:"ids"`
}

// atItem moves e to batch item k: the field gets the item's index.
func atItem(k int, e apiError) *apiError {
	prefix := fmt.Sprintf("[%d]", k)
	switch e.Field {
	case "", "body":
		e.Field = prefix
	default:
		e.Field = prefix + "." + e.Field
	}
	e.Index = &k
	return &e
}

// publish handles POST /publish: one JSON object, or a JSON array of
// them (a batch).
func (h *hub) publish(w http.ResponseWriter, r *http.Request) {
	caller, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	// Requiring JSON makes a cross-site form post impossible: a browser
	// must ask (preflight) before sending it, and the hub never says yes.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		w.Header().Set("Connection", "close") // the body is not read
		writeJSON(w, http.StatusUnsupportedMediaType, apiError{Error: "Content-Type must be application/json", Field: "body"})
		return
	}
	// The slot is taken only now, for a caller that may publish: requests
	// refused above cost no slot, so they cannot starve the publishers.
	if !h.publishing.tryAcquire() {
		tooManyPublishing(w)
		return
	}
	defer h.publishing.release()
	// The batch limit bounds the whole body; a single object gets its own,
	// smaller limit once the first byte says it is not an array.
	br := bufio.NewReader(http.MaxBytesReader(w, r.Body, h.maxBatchBody))
	skipped, isArray := startsArray(br, h.maxBody)
	if isArray {
		h.publishBatch(w, r, caller, br)
		return
	}
	h.publishOne(w, r, caller, http.MaxBytesReader(w, io.NopCloser(br), h.maxBody-skipped))
}

// startsArray skips the whitespace before the JSON value, at most max
// bytes of it, and reports how much it skipped and whether the value is
// an array.
func startsArray(br *bufio.Reader, max int64) (int64, bool) {
	var n int64
	for n < max {
		c, err := br.ReadByte()
		if err != nil {
			return n, false
		}
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			n++
			continue
		}
		_ = br.UnreadByte()
		return n, c == '['
	}
	return n, false
}

// authenticate checks the caller of POST /publish and answers 401 itself
// when it fails. In auth mode a valid JWT is the caller's identity (nil
// otherwise); the publish secret, when set, still lets a trusted service
// publish anywhere.
func (h *hub) authenticate(w http.ResponseWriter, r *http.Request) (*core.Identity, bool) {
	if h.jwt != nil && !(h.secret != nil && h.authorized(r)) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		// Header only: a cookie would let any site the user visits
		// publish in their name (CSRF).
		id, err := h.jwt.Verify(strings.TrimSpace(token))
		if err != nil {
			h.refuseToken(w, r, err)
			return nil, false
		}
		return &id, true
	}
	if !h.authorized(r) {
		unauthorized(w, "missing or wrong publish secret: send Authorization: Bearer <secret>")
		return nil, false
	}
	return nil, true
}

// idempotencyHeader names the key of a single publish, as in the IETF
// draft of the same name: a client that did not get the answer (timeout,
// reset connection) sends the request again with the same value.
const idempotencyHeader = "Idempotency-Key"

// publishOne publishes the single object in body.
func (h *hub) publishOne(w http.ResponseWriter, r *http.Request, caller *core.Identity, body io.Reader) {
	req, err := decodeObject(body)
	if err != nil {
		status, aerr := badBody(err, h.maxBody)
		writeJSON(w, status, aerr)
		return
	}
	if key := r.Header.Get(idempotencyHeader); key != "" {
		if err := core.ValidateIdempotencyKey(key); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error(), Field: idempotencyHeader})
			return
		}
		if req.IdempotencyKey != "" && req.IdempotencyKey != key {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "the Idempotency-Key header and idempotencyKey differ: send one", Field: idempotencyHeader})
			return
		}
		req.IdempotencyKey = key
	}
	msg, aerr := req.message()
	if aerr != nil {
		writeJSON(w, http.StatusBadRequest, aerr)
		return
	}
	if status, aerr := h.allow(r, caller, req, &msg); aerr != nil {
		writeJSON(w, status, aerr)
		return
	}
	id, err := h.broker.Publish(r.Context(), msg)
	if err != nil {
		status, aerr := h.publishError(w, r, err)
		writeJSON(w, status, aerr)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		ID string `json:"id"`
	}{id})
}

// publishBatch publishes the JSON array in body: every item is decoded,
// validated and authorized before any is published, so that a bad item
// publishes nothing; then the items are published in order.
func (h *hub) publishBatch(w http.ResponseWriter, r *http.Request, caller *core.Identity, body io.Reader) {
	if r.Header.Get(idempotencyHeader) != "" {
		// One key for many events would make every item after the first a
		// duplicate of it: each item carries its own.
		w.Header().Set("Connection", "close") // the body is not read
		writeJSON(w, http.StatusBadRequest, apiError{Error: "Idempotency-Key names one event: give each batch item its own idempotencyKey", Field: idempotencyHeader})
		return
	}
	items, status, aerr := h.decodeBatch(body)
	if aerr != nil {
		writeJSON(w, status, aerr)
		return
	}
	msgs := make([]core.Message, len(items))
	for k, raw := range items {
		msg, status, aerr := h.item(w, r, raw, caller)
		if aerr != nil {
			writeJSON(w, status, atItem(k, *aerr))
			return
		}
		msgs[k] = msg
	}
	ids := make([]string, 0, len(msgs))
	for k, msg := range msgs {
		id, err := h.broker.Publish(r.Context(), msg)
		if err != nil {
			// Shutting down, the context gone, or a rule of the broker
			// the checks above do not know: the caller learns which
			// events were published.
			status, aerr := h.publishError(w, r, err)
			writeJSON(w, status, batchError{apiError: *atItem(k, aerr), IDs: ids})
			return
		}
		ids = append(ids, id)
	}
	writeJSON(w, http.StatusOK, struct {
		IDs []string `json:"ids"`
	}{ids})
}

// decodeBatch reads a JSON array of at most h.maxBatch items, without
// decoding the items yet.
func (h *hub) decodeBatch(body io.Reader) ([]json.RawMessage, int, *apiError) {
	fail := func(err error) ([]json.RawMessage, int, *apiError) {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF // the array was opened
		}
		status, aerr := badBody(err, h.maxBatchBody)
		aerr.Field = "body"
		return nil, status, &aerr
	}
	dec := json.NewDecoder(body)
	if _, err := dec.Token(); err != nil { // [
		return fail(err)
	}
	var items []json.RawMessage
	for dec.More() {
		if len(items) == h.maxBatch {
			return nil, http.StatusRequestEntityTooLarge, &apiError{
				Error: fmt.Sprintf("a batch may hold at most %d events: split it", h.maxBatch), Field: "body"}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fail(err)
		}
		items = append(items, raw)
	}
	if _, err := dec.Token(); err != nil { // ]
		return fail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, http.StatusBadRequest, &apiError{Error: "the body must hold exactly one JSON array", Field: "body"}
	}
	if len(items) == 0 {
		return nil, http.StatusBadRequest, &apiError{Error: "empty batch: send at least one event", Field: "body"}
	}
	return items, 0, nil
}

// item turns one batch item into a message that is ready to publish: the
// checks of a single publish, then the broker's own rules (check), so that
// a batch is refused before any of it is published.
func (h *hub) item(w http.ResponseWriter, r *http.Request, raw json.RawMessage, caller *core.Identity) (core.Message, int, *apiError) {
	if raw[0] != '{' {
		return core.Message{}, http.StatusBadRequest, &apiError{Error: "each item must be a JSON object, got " + jsonValueKind(raw[0])}
	}
	req, err := decodeObject(bytes.NewReader(raw))
	if err != nil {
		status, aerr := badBody(err, h.maxBatchBody)
		return core.Message{}, status, &aerr
	}
	msg, aerr := req.message()
	if aerr != nil {
		return msg, http.StatusBadRequest, aerr
	}
	if status, aerr := h.allow(r, caller, req, &msg); aerr != nil {
		return msg, status, aerr
	}
	if err := h.check(msg); err != nil {
		status, aerr := h.publishError(w, r, err)
		return msg, status, &aerr
	}
	return msg, 0, nil
}

// allow applies the caller's token to msg (nil caller: the publish secret
// or an open hub allow everything): the tenant comes from the token, never
// from the body, and the publish claim must allow the target. A refusal
// answers a fixed text per class and logs the error, whose text names
// grants, users and topics the caller need not learn.
func (h *hub) allow(r *http.Request, caller *core.Identity, req publishRequest, msg *core.Message) (int, *apiError) {
	if caller == nil {
		return 0, nil
	}
	if req.Tenant != "" && req.Tenant != caller.Tenant {
		return http.StatusForbidden, &apiError{Error: "the token does not allow this tenant", Field: "tenant"}
	}
	msg.Target.Tenant = caller.Tenant
	err := auth.CanPublish(*caller, msg.Target)
	if err == nil {
		return 0, nil
	}
	h.log.InfoContext(r.Context(), "hub: publish refused", "tenant", caller.Tenant, "user", caller.User, "err", err)
	switch {
	case errors.Is(err, core.ErrUnauthenticated):
		// The token expired between Verify and now.
		return http.StatusUnauthorized, &apiError{Error: "the token is no longer valid: send a fresh one"}
	case errors.Is(err, core.ErrInvalidTopic):
		return http.StatusBadRequest, &apiError{Error: "invalid topic", Field: "topic"}
	case errors.Is(err, auth.ErrTenantNotAllowed):
		return http.StatusForbidden, &apiError{Error: "the token does not allow this tenant", Field: "tenant"}
	case errors.Is(err, core.ErrForbidden):
		return http.StatusForbidden, &apiError{Error: "the token's publish claim does not allow this target", Field: "target"}
	}
	return http.StatusInternalServerError, &apiError{Error: "internal error"}
}

// refuseToken answers a bearer token that Verify refused: 503 with
// Retry-After when the keys to check it are unavailable (a JWKS outage),
// so the caller retries rather than giving up on a token that may be
// good; 401 otherwise. The reason stays in the log: it can name what was
// wrong with a token the caller should not learn about.
func (h *hub) refuseToken(w http.ResponseWriter, r *http.Request, err error) {
	if core.IsUnavailable(err) {
		h.log.WarnContext(r.Context(), "hub: token not checked: keys unavailable", "path", r.URL.Path, "err", err)
		w.Header().Set("Connection", "close") // the body is not read
		h.retryLater(w, "cannot check tokens now: retry later")
		return
	}
	h.log.InfoContext(r.Context(), "hub: token refused", "path", r.URL.Path, "err", err)
	unauthorized(w, "auth mode: send Authorization: Bearer <JWT>")
}

// retryLater answers 503 with the hub's Retry-After.
func (h *hub) retryLater(w http.ResponseWriter, msg string) {
	w.Header().Set("Retry-After", h.retryAfter)
	writeJSON(w, http.StatusServiceUnavailable, apiError{Error: msg})
}

// check applies core's publish rules (core.Broker.Check), so that every
// item of a batch is known good before the first is published.
func (h *hub) check(m core.Message) error { return h.broker.Check(m) }

// authorized checks the bearer secret in constant time. Hashing both sides
// first keeps the comparison constant-time in the secret's length too.
func (h *hub) authorized(r *http.Request) bool {
	if h.secret == nil {
		return true
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(sum[:], h.secret[:]) == 1
}

// decodeObject reads one JSON object, strictly: unknown fields, wrong
// types and trailing data are errors (see badBody).
func decodeObject(r io.Reader) (publishRequest, error) {
	var req publishRequest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errTrailing
		}
	}
	return req, err
}

// badBody maps a decoding error to a status and an error naming the
// field; limit is the body limit that applied.
func badBody(err error, limit int64) (int, apiError) {
	var (
		tooBig  *http.MaxBytesError
		typeErr *json.UnmarshalTypeError
		syntax  *json.SyntaxError
	)
	switch {
	case isTimeout(err):
		// -body-timeout fired: the client sent its body too slowly, or
		// stopped sending it.
		return http.StatusRequestTimeout, apiError{Error: "the request body did not arrive in time", Field: "body"}
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge, apiError{Error: fmt.Sprintf("request body is larger than %d bytes", limit), Field: "data"}
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return http.StatusBadRequest, apiError{Error: fmt.Sprintf("%s must be a JSON %s, got %s", typeErr.Field, jsonKind(typeErr.Field), typeErr.Value), Field: typeErr.Field}
	case errors.As(err, &typeErr):
		return http.StatusBadRequest, apiError{Error: "the body must be a JSON object (or an array of them), got " + typeErr.Value, Field: "body"}
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, apiError{Error: "invalid JSON: " + err.Error(), Field: "body"}
	case errors.Is(err, io.EOF):
		return http.StatusBadRequest, apiError{Error: "empty body: send a JSON object", Field: "body"}
	case errors.Is(err, errTrailing):
		return http.StatusBadRequest, apiError{Error: "the body must hold exactly one JSON object", Field: "body"}
	}
	// encoding/json reports unknown fields only as text.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return http.StatusBadRequest, apiError{Error: fmt.Sprintf("unknown field %q (want tenant, user, topic, broadcast, event, data, idempotencyKey)", name), Field: name}
	}
	return http.StatusBadRequest, apiError{Error: "invalid request: " + err.Error(), Field: "body"}
}

var errTrailing = errors.New("trailing data after the JSON object")

// jsonValueKind names the kind of the JSON value that starts with c.
func jsonValueKind(c byte) string {
	switch c {
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func jsonKind(field string) string {
	if field == "broadcast" {
		return "boolean"
	}
	return "string"
}

// message turns a decoded request into a broker message, checking what
// the broker cannot tell apart by itself (which field a problem is in).
func (req publishRequest) message() (core.Message, *apiError) {
	var m core.Message
	if req.ID != nil {
		return m, &apiError{Error: "id must not be set: the hub's history assigns event IDs (that is what makes replay exact)", Field: "id"}
	}
	if req.Event == "" {
		return m, &apiError{Error: "event (the event type) is required", Field: "event"}
	}
	m.Target = core.Target{Tenant: req.Tenant, Broadcast: req.Broadcast}
	if req.User != "" {
		u, err := uuid.Parse(req.User)
		if err != nil {
			return m, &apiError{Error: fmt.Sprintf("user must be a UUID, got %q", clip(req.User)), Field: "user"}
		}
		m.Target.Users = []uuid.UUID{u}
	}
	if req.Topic != "" {
		m.Target.Topics = []string{req.Topic}
	}
	if !req.Broadcast && req.User == "" && req.Topic == "" {
		return m, &apiError{Error: "no target: set user, topic, or broadcast: true", Field: "target"}
	}
	data, err := dataText(req.Data)
	if err != nil {
		return m, &apiError{Error: "data: " + err.Error(), Field: "data"}
	}
	if err := core.ValidateIdempotencyKey(req.IdempotencyKey); err != nil {
		return m, &apiError{Error: err.Error(), Field: "idempotencyKey"}
	}
	m.Event = core.Event{Type: req.Event, Data: data}
	m.IdempotencyKey = req.IdempotencyKey
	return m, nil
}

// dataText is the wire text of data: a JSON string is sent as the string
// it holds, any other JSON value as its compact JSON text, and no data as
// an empty data field.
func dataText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// publishError maps the broker's sentinel errors to a status and the field
// at fault. A 400 carries the broker's words about the request's own
// fields; any other failure (History, Bus) gets a fixed text, its error
// going to the log, since it may hold addresses or commands. An outage
// (core.IsUnavailable) is a 503 with Retry-After, set on w.
func (h *hub) publishError(w http.ResponseWriter, r *http.Request, err error) (int, apiError) {
	fields := []struct {
		sentinel error
		field    string
	}{
		{core.ErrInvalidTenant, "tenant"},
		{core.ErrInvalidUser, "user"},
		{core.ErrInvalidTopic, "topic"},
		{core.ErrNoTarget, "target"},
		{core.ErrInvalidType, "event"},
		{core.ErrInvalidID, "id"},
		{core.ErrEventTooLarge, "data"},
		{core.ErrInvalidUTF8, "data"},
		{core.ErrInvalidData, "data"},
		{core.ErrInvalidIdempotencyKey, "idempotencyKey"},
	}
	for _, f := range fields {
		if errors.Is(err, f.sentinel) {
			return http.StatusBadRequest, apiError{Error: err.Error(), Field: f.field}
		}
	}
	switch {
	case errors.Is(err, core.ErrClosed):
		return http.StatusServiceUnavailable, apiError{Error: "the hub is shutting down"}
	case core.IsUnavailable(err):
		h.log.WarnContext(r.Context(), "hub: publish failed for now", "err", err)
		w.Header().Set("Retry-After", h.retryAfter)
		return http.StatusServiceUnavailable, apiError{Error: "publishing is unavailable: retry later"}
	}
	h.log.ErrorContext(r.Context(), "hub: publish failed", "err", err)
	return http.StatusInternalServerError, apiError{Error: "publish failed"}
}

// stats handles GET /stats.
func (h *hub) stats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.broker.Stats())
}

// online handles GET /online?tenant=: the users with a connection, sorted.
// In auth mode it needs credentials, and lists another tenant than the
// caller's own only for an admin (see onlineTenant).
func (h *hub) online(w http.ResponseWriter, r *http.Request) {
	who, ok := h.callerOf(w, r)
	if !ok {
		return
	}
	tenant, ok := onlineTenant(who, r.URL.Query())
	if !ok {
		writeJSON(w, http.StatusForbidden, apiError{Error: "auth mode: the token lists only its own tenant (other tenants need the admin grant)", Field: "tenant"})
		return
	}
	if err := core.ValidateTenant(tenant); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error(), Field: "tenant"})
		return
	}
	users := h.broker.Tenant(tenant).OnlineUsers()
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.String()
	}
	writeJSON(w, http.StatusOK, out)
}

// healthz handles GET /healthz: the process is up and serving.
func (h *hub) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Allow", allow)
		writeJSON(w, http.StatusMethodNotAllowed, apiError{Error: "method not allowed: use " + allow})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json; charset=utf-8")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// clip keeps echoed input short in error messages.
func clip(s string) string {
	if len(s) > 64 {
		return strings.ToValidUTF8(s[:64], "") + "..."
	}
	return s
}
