package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// MaxIdempotencyKeyLen bounds Message.IdempotencyKey, so that the keys a
// broker (or Redis) remembers stay small next to the events they stand for.
const MaxIdempotencyKeyLen = 128

// ValidateIdempotencyKey checks an idempotency key: "" (none) or 1 to 128
// bytes of visible ASCII, '!' to '~' (a UUID, a ULID, base64 or a
// "order-42/attempt" all fit). Spaces and control characters are refused,
// so a key read from an HTTP header means the same once trimmed.
func ValidateIdempotencyKey(key string) error {
	if len(key) > MaxIdempotencyKeyLen {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidIdempotencyKey, len(key), MaxIdempotencyKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c < '!' || c > '~' {
			return fmt.Errorf("%w: %q may hold only visible ASCII ('!' to '~')", ErrInvalidIdempotencyKey, truncate(key))
		}
	}
	return nil
}

// dedupe is a tenant's memory of the idempotency keys the broker
// published for it on a MemoryBackend (a Bus that spans brokers deduplicates itself: see
// Message.IdempotencyKey). A key is remembered as long as its event is in
// the broker's window (Config.HistoryBytes, Config.HistoryAge): that is
// what a client can still be replayed, so a retry inside it is recognised
// and one outside it is a new event. Only keyed publishes to the tenant
// take its lock.
//
// Entries are held in publish order and forgotten from the oldest, on the
// next keyed publish: between two keyed publishes the map holds at most
// the keyed events the window held at the first, and an entry (about 100
// bytes plus its key) costs less than the event it stands for.
type dedupe struct {
	mu    sync.Mutex
	keys  map[dedupeKey]*dedupeEntry
	order []*dedupeEntry // oldest first, from head
	head  int
}

type dedupeKey struct{ tenant, key string }

// errPublishAborted settles a key whose publish panicked (in an Observer
// hook): its outcome is unknown, and forgetting the key lets the caller's
// retry publish instead of finding a key that never settles.
var errPublishAborted = errors.New("ssekit: publish aborted")

// dedupeEntry is one key: being published (pending) or published as id
// at window position seq.
type dedupeEntry struct {
	k       dedupeKey
	win     *window // the tenant's, which seq is a position in
	pending bool
	id      string // "" while pending, or when the first attempt failed
	seq     uint64
	// wait is made by the first concurrent duplicate that has to wait for
	// the first attempt, and closed when that attempt ends: most keys are
	// never waited on, and cost no channel.
	wait chan struct{}
}

// publishIdempotent publishes m, checked and carrying a key, unless its
// tenant published the same key within the window: then it returns that
// event's ID and sends nothing. A duplicate that arrives while the first
// attempt is still in flight waits for its outcome, and tries itself if
// that attempt failed (then nothing was sent).
func (b *Broker) publishIdempotent(ctx context.Context, m *Message) (string, error) {
	t := b.tenant(m.Target.Tenant)
	d := &t.idem
	k := dedupeKey{m.Target.Tenant, m.IdempotencyKey}
	for {
		d.mu.Lock()
		d.forget()
		e := d.keys[k]
		if e != nil && !e.pending && e.win.lapsed(e.seq) {
			// Out of the window but not yet forgotten (entries are
			// forgotten from the oldest): a new event.
			delete(d.keys, k)
			e = nil
		}
		switch {
		case e == nil:
			e = d.claim(k, t.win)
			d.mu.Unlock()
			// Deferred, so that a panic in send (an Observer hook) still
			// releases the key and the duplicates waiting on it.
			id, err := "", errPublishAborted
			defer func() { d.settle(e, id, m.seq, err) }()
			id, err = b.send(ctx, m)
			return id, err
		case !e.pending:
			id := e.id
			d.mu.Unlock()
			return id, nil
		}
		if e.wait == nil {
			e.wait = make(chan struct{})
		}
		wait := e.wait
		d.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		// The first attempt ended: published (the next round returns its
		// ID) or failed and forgotten (the next round publishes).
	}
}

// claim records k as being published; d.mu is held. The key is copied:
// the caller's string may share memory with a large body.
func (d *dedupe) claim(k dedupeKey, w *window) *dedupeEntry {
	if d.keys == nil {
		d.keys = make(map[dedupeKey]*dedupeEntry)
	}
	e := &dedupeEntry{k: dedupeKey{strings.Clone(k.tenant), strings.Clone(k.key)}, win: w, pending: true}
	d.keys[e.k] = e
	d.order = append(d.order, e)
	return e
}

// settle ends e's first attempt: on success the key now stands for id; on
// failure it is forgotten, since nothing was sent.
func (d *dedupe) settle(e *dedupeEntry, id string, seq uint64, err error) {
	d.mu.Lock()
	e.pending = false
	if err == nil {
		// A copy: a MemoryHistory ID lives inside its Message, which the
		// entry must not keep alive.
		e.id, e.seq = strings.Clone(id), seq
	} else if d.keys[e.k] == e {
		delete(d.keys, e.k)
	}
	if e.wait != nil {
		close(e.wait)
		e.wait = nil
	}
	d.mu.Unlock()
}

// forget drops the oldest entries whose events left the window, and those
// whose first attempt failed; d.mu is held. It stops at the first entry
// still live or pending, so it costs nothing per publish in the steady
// state.
func (d *dedupe) forget() {
	for d.head < len(d.order) {
		e := d.order[d.head]
		if e.pending || e.id != "" && !e.win.lapsed(e.seq) {
			break
		}
		if e.id != "" && d.keys[e.k] == e {
			delete(d.keys, e.k)
		}
		d.order[d.head] = nil
		d.head++
	}
	// Compact once the forgotten prefix is most of the slice, so the FIFO
	// costs amortised O(1) per key and shrinks after a burst.
	if d.head > 0 && d.head >= len(d.order)/2 {
		n := copy(d.order, d.order[d.head:])
		clear(d.order[n:])
		d.order = d.order[:n]
		d.head = 0
		if cap(d.order) > 1024 && n < cap(d.order)/4 {
			d.order = append([]*dedupeEntry(nil), d.order...)
		}
	}
}
