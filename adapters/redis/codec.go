package sseredis

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/ssekit/ssekit/core"
)

// Entry fields of the stream. Every entry carries the ID of the entry
// before it in the stream ("g") and of the previous entry of the same
// tenant ("t"), so a reader can prove that it saw every entry (or every
// entry of a tenant) between two IDs, whatever was trimmed or lost.
const (
	fieldGlobalPrev = "g"
	fieldTenantPrev = "t"
	fieldTenant     = "n"
	fieldPayload    = "m"
)

// payloadVersion is the first byte of every encoded message. A reader
// refuses versions it does not know rather than guess.
const payloadVersion = 1

var errBadPayload = errors.New("ssekit/redis: malformed stream entry")

// encodePayload appends the message (everything but the tenant, which is
// its own field, and the ID, which Redis assigns) in a compact binary form:
//
//	version byte, flags byte (bit 0: broadcast),
//	uvarint n + n x 16-byte user UUIDs, uvarint n + n x string topics,
//	string type, string data, string comment, varint retry (ns),
//	varint PublishedAt (Unix ns, 0 = zero time),
//	uvarint n + n x (string key, string value) metadata
//
// where a string is a uvarint length and its bytes.
func encodePayload(dst []byte, m *core.Message) []byte {
	var flags byte
	if m.Target.Broadcast {
		flags |= 1
	}
	dst = append(dst, payloadVersion, flags)
	dst = binary.AppendUvarint(dst, uint64(len(m.Target.Users)))
	for _, u := range m.Target.Users {
		dst = append(dst, u[:]...)
	}
	dst = binary.AppendUvarint(dst, uint64(len(m.Target.Topics)))
	for _, t := range m.Target.Topics {
		dst = appendString(dst, t)
	}
	dst = appendString(dst, m.Event.Type)
	dst = appendString(dst, m.Event.Data)
	dst = appendString(dst, m.Event.Comment)
	dst = binary.AppendVarint(dst, int64(m.Event.Retry))
	var at int64
	if !m.PublishedAt.IsZero() {
		at = m.PublishedAt.UnixNano()
	}
	dst = binary.AppendVarint(dst, at)
	dst = binary.AppendUvarint(dst, uint64(len(m.Metadata)))
	for k, v := range m.Metadata {
		dst = appendString(appendString(dst, k), v)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

// decodeMessage rebuilds a message from a stream entry and checks it with
// the rules Publish applies, so an entry written by anything else than
// this package (or by a newer, incompatible version) is refused instead of
// reaching subscribers.
func decodeMessage(id, tenant string, payload []byte) (*core.Message, error) {
	r := reader{b: payload}
	if v := r.byte(); v != payloadVersion {
		return nil, fmt.Errorf("%w: payload version %d", errBadPayload, v)
	}
	flags := r.byte()
	m := &core.Message{Target: core.Target{Tenant: tenant, Broadcast: flags&1 != 0}}
	if n := r.count(16); n > 0 {
		m.Target.Users = make([]uuid.UUID, n)
		for i := range m.Target.Users {
			copy(m.Target.Users[i][:], r.bytes(16))
		}
	}
	if n := r.count(1); n > 0 {
		m.Target.Topics = make([]string, n)
		for i := range m.Target.Topics {
			m.Target.Topics[i] = r.string()
		}
	}
	m.Event.ID = id
	m.Event.Type = r.string()
	m.Event.Data = r.string()
	m.Event.Comment = r.string()
	m.Event.Retry = time.Duration(r.varint())
	if at := r.varint(); at != 0 {
		m.PublishedAt = time.Unix(0, at)
	}
	if n := r.count(2); n > 0 {
		m.Metadata = make(map[string]string, n)
		for range n {
			k := r.string()
			m.Metadata[k] = r.string()
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadPayload, len(r.b))
	}
	if err := validate(m); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadPayload, err)
	}
	return m, nil
}

// validate applies the checks core.Broker.Publish makes (size aside: the
// publishing broker enforced its MaxEventSize).
func validate(m *core.Message) error {
	t := &m.Target
	if err := core.ValidateTenant(t.Tenant); err != nil {
		return err
	}
	if !t.Broadcast && len(t.Users) == 0 && len(t.Topics) == 0 {
		return core.ErrNoTarget
	}
	for _, u := range t.Users {
		if u == uuid.Nil {
			return core.ErrInvalidUser
		}
	}
	for _, topic := range t.Topics {
		if err := core.ValidateTopic(topic); err != nil {
			return err
		}
	}
	if m.Event.Type == "" {
		return core.ErrInvalidType
	}
	if m.Event.Retry < 0 {
		return core.ErrInvalidRetry
	}
	if err := core.ValidateIdempotencyKey(m.IdempotencyKey); err != nil {
		return err
	}
	return m.Event.Validate()
}

// reader decodes the payload; the first error sticks and later reads
// return zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = fmt.Errorf("%w: truncated payload", errBadPayload)
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes(n int) []byte {
	if len(r.b) < n {
		r.fail()
		return make([]byte, n)
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads an element count, refusing one that the remaining bytes
// cannot hold (each element takes at least min bytes), so a corrupt entry
// cannot make the reader allocate without bound.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
