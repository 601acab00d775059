package core

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unsafe"

	"github.com/google/uuid"
)

// Target names who receives a message, always inside one tenant. A
// connection that matches several parts of a target receives the message
// once.
type Target struct {
	// Tenant scopes the message; "" is the default tenant. No message ever
	// reaches another tenant.
	Tenant string
	// Users receive the message on every one of their connections.
	Users []uuid.UUID
	// Topics reach every connection subscribed to any of them.
	Topics []string
	// Broadcast reaches every connection of the tenant.
	Broadcast bool
}

// Kind names the widest part of the target, for metrics and tracing:
// "broadcast", "topic" or "user".
func (t Target) Kind() string {
	switch {
	case t.Broadcast:
		return "broadcast"
	case len(t.Topics) > 0:
		return "topic"
	default:
		return "user"
	}
}

// Message is an event on its way to its target.
type Message struct {
	Target Target
	// Event is what clients receive. Its ID must be empty on Publish: the
	// History assigns it, which is what makes replay exact.
	Event Event
	// Metadata travels with the message across the Bus (for example a trace
	// context); clients never see it.
	Metadata map[string]string
	// PublishedAt is set by Publish when the broker has an Observer or a
	// Bus (the only readers: delivery latency is measured from it).
	PublishedAt time.Time
	// IdempotencyKey, when set, makes Publish safe to retry: a Publish
	// whose key its tenant already published, while that event is still
	// in the history window (Config.HistoryBytes and HistoryAge), sends
	// nothing and returns the ID of that first event, not an error. A
	// publisher that retries after a failure it cannot interpret (a
	// timeout, a lost reply) sends the same key on every attempt, and the
	// event is delivered once. Outside the window the key is a new event.
	// "" (the default) publishes every call. It must pass
	// ValidateIdempotencyKey (1 to 128 bytes of visible ASCII), else
	// ErrInvalidIdempotencyKey. The broker remembers keys for its
	// in-process Bus; a Bus that spans brokers deduplicates them itself,
	// across nodes (the Redis backend does). Clients never see the key.
	IdempotencyKey string

	frame      []byte // encoded once per broker, shared by every recipient
	spare      []byte // capacity reserved for frame in the data's allocation, or the prebuilt frame
	prebuilt   bool   // spare holds the frame but its id line, and Event.Data points into it
	recipients int    // local recipients counted by deliver, for observers
	size       int    // encoded size without the id field, once validated
	flat       bool   // one data line, no comment: see encodedLen
	borrowed   bool   // Event.Data still aliases the caller's []byte
	inlineUsed bool   // inline holds the data copy or the frame
	stamped    bool   // at is set
	seq        uint64 // position in the broker's window, set by deliver
	at         int64  // when first held (history or window), as monoNow
	one        [1]uuid.UUID
	idBuf      [idBufLen]byte // MemoryHistory writes the ID here
	// inline holds a small message's data copy and frame, so that the
	// message, its ID and its bytes are one allocation. It is written at
	// most once: strings point into it.
	inline [inlineLen]byte
}

const (
	// idBufLen holds a MemoryHistory ID (8-byte epoch, "-", up to 20
	// digits), so assigning it costs no allocation of its own.
	idBufLen = 32
	// inlineLen makes a Message exactly 448 bytes, an allocator size
	// class, with room for a typical notification and its frame.
	inlineLen = 112
	// messageSize is what a Message costs before its data and frame.
	messageSize = 448
)

// Frame returns the message encoded for the wire, encoding it on first use.
// The slice is shared: callers must not modify it.
func (m *Message) Frame() []byte {
	if m.frame != nil {
		return m.frame
	}
	if m.prebuilt {
		// check encoded all but the id line, leaving room for it in front:
		// the frame and the data it carries are one allocation.
		line := len(idPrefix) + len(m.Event.ID) + 1
		if start := idRoom - line; start >= 0 {
			buf := m.spare
			copy(buf[start:], idPrefix)
			copy(buf[start+len(idPrefix):], m.Event.ID)
			buf[idRoom-1] = '\n'
			m.frame, m.spare = buf[start:], nil
			return m.frame
		}
		// An ID longer than the room (from a custom History): encode anew.
		m.frame, m.spare = appendFlatEvent(make([]byte, 0, m.size+line), m.Event), nil
		return m.frame
	}
	if m.size > 0 {
		// Publish validated it and measured it: encode without validating
		// again, into the room reserved next to the data or else into one
		// exact allocation.
		n := m.size + len(idPrefix) + len(m.Event.ID) + 1
		buf := m.spare[:0]
		if cap(buf) < n {
			buf = m.room(n)
		}
		m.spare = nil
		if m.flat {
			m.frame = appendFlatEvent(buf, m.Event)
		} else {
			m.frame = appendEventUnchecked(buf, m.Event)
		}
		return m.frame
	}
	// A message from a Bus that this broker did not validate: check it,
	// and drop it rather than risk injecting fields.
	f, err := AppendEvent(nil, m.Event)
	if err != nil {
		return nil
	}
	m.frame = f
	return m.frame
}

// entitled reports whether a connection with this identity and topic set
// may receive m. Replay uses it; live routing uses the indexes instead.
func (m *Message) entitled(s *Subscription) bool {
	t := &m.Target
	if t.Tenant != s.id.Tenant {
		return false
	}
	if t.Broadcast {
		return true
	}
	if s.id.User != uuid.Nil {
		for _, u := range t.Users {
			if u == s.id.User {
				return true
			}
		}
	}
	for _, topic := range t.Topics {
		if _, ok := s.topics[topic]; ok {
			return true
		}
	}
	return false
}

func (t Target) validate() error {
	if err := ValidateTenant(t.Tenant); err != nil {
		return err
	}
	if !t.Broadcast && len(t.Users) == 0 && len(t.Topics) == 0 {
		return ErrNoTarget
	}
	for _, u := range t.Users {
		if u == uuid.Nil {
			return fmt.Errorf("%w: nil UUID", ErrInvalidUser)
		}
	}
	for _, topic := range t.Topics {
		if err := ValidateTopic(topic); err != nil {
			return err
		}
	}
	return nil
}

// MaxTopicLen and MaxTenantLen bound names so that indexes, metrics labels
// and Redis keys built from them stay small.
const (
	MaxTopicLen  = 128
	MaxTenantLen = 64
)

// ValidateTopic checks a topic name: 1 to 128 bytes of ASCII letters,
// digits and "-_.:/", made of non-empty "/"-separated segments (so
// "orders/eu" is valid and "/orders", "orders//eu" are not). "*" is
// reserved for authorization patterns.
func ValidateTopic(topic string) error {
	if topic == "" || len(topic) > MaxTopicLen {
		return fmt.Errorf("%w: %q must be 1 to %d bytes", ErrInvalidTopic, truncate(topic), MaxTopicLen)
	}
	prev := byte('/')
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		if c == '/' && prev == '/' {
			return fmt.Errorf("%w: %q has an empty segment", ErrInvalidTopic, truncate(topic))
		}
		if !nameByte(c) && c != '/' && c != ':' {
			return fmt.Errorf("%w: %q may hold only letters, digits and -_.:/", ErrInvalidTopic, truncate(topic))
		}
		prev = c
	}
	if prev == '/' {
		return fmt.Errorf("%w: %q ends with /", ErrInvalidTopic, truncate(topic))
	}
	return nil
}

// ValidateTenant checks a tenant name: empty (the default tenant) or up to
// 64 bytes of ASCII letters, digits and "-_.".
func ValidateTenant(tenant string) error {
	if len(tenant) > MaxTenantLen {
		return fmt.Errorf("%w: %q is longer than %d bytes", ErrInvalidTenant, truncate(tenant), MaxTenantLen)
	}
	for i := 0; i < len(tenant); i++ {
		if !nameByte(tenant[i]) {
			return fmt.Errorf(`%w: %q may hold only letters, digits and "-_."`, ErrInvalidTenant, truncate(tenant))
		}
	}
	return nil
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}

// DataString turns event data into its wire text: string, []byte and
// json.RawMessage are taken as they are, nil is empty, anything else is
// marshalled as JSON.
func DataString(data any) (string, error) {
	switch d := data.(type) {
	case nil:
		return "", nil
	case string:
		return d, nil
	case []byte:
		return string(d), nil
	case json.RawMessage:
		return string(d), nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidData, err)
	}
	return string(b), nil
}

// idRoom is the room prebuild leaves in front of a frame for its id line.
const idRoom = len(idPrefix) + idBufLen + 1

// prebuild encodes a flat event (one data line, no comment, no retry) but
// its id line, which the History sets later, into one allocation with room
// for that line in front, and points Event.Data into it. The data is then
// held once, inside the frame, whether it came as a borrowed []byte or as
// a string the caller may drop. check calls it once the event is valid.
func (m *Message) prebuild() {
	e := m.Event
	buf := m.room(idRoom + m.size)[:idRoom]
	if e.Type != "" {
		buf = append(append(append(buf, eventPrefix...), e.Type...), '\n')
	}
	buf = append(buf, dataPrefix...)
	at := len(buf)
	buf = append(append(buf, e.Data...), '\n', '\n')
	m.Event.Data = unsafe.String(unsafe.SliceData(buf[at:]), len(e.Data))
	m.spare, m.prebuilt, m.borrowed = buf, true, false
}

// own ends the borrowing of the caller's data: it copies the data into an
// allocation that also has room for the frame (with an ID of up to
// idBufLen bytes), so a []byte payload costs one allocation, not two.
// check calls it once the event is known valid, before anyone else sees m.
func (m *Message) own() {
	d := m.Event.Data
	buf := m.room(len(d) + m.size + len(idPrefix) + idBufLen + 1)[:len(d)]
	copy(buf, d)
	m.Event.Data = unsafe.String(unsafe.SliceData(buf), len(d))
	m.spare = buf[len(d):len(d)]
	m.borrowed = false
}

// setID sets the event ID epoch-seq, writing it into m's own idBuf the
// first time (strings are immutable, so a buffer is written at most once).
func (m *Message) setID(epoch string, seq uint64) {
	if m.Event.ID == "" {
		id := strconv.AppendUint(append(append(m.idBuf[:0], epoch...), '-'), seq, 10)
		if len(id) <= idBufLen {
			m.Event.ID = unsafe.String(&m.idBuf[0], len(id))
			return
		}
	}
	var buf [64]byte
	m.Event.ID = string(strconv.AppendUint(append(append(buf[:0], epoch...), '-'), seq, 10))
}

// room returns an empty slice with capacity n: m's inline array the first
// time it fits, a new allocation otherwise.
func (m *Message) room(n int) []byte {
	if n <= len(m.inline) && !m.inlineUsed {
		m.inlineUsed = true
		return m.inline[:0:n]
	}
	return make([]byte, 0, n)
}

// Cost estimates the bytes of memory m holds once delivered: the Message
// itself, its data and its encoded frame. The in-memory history and the
// broker's window (Config.HistoryBytes) count it.
func (m *Message) Cost() int64 {
	size := m.size
	if size == 0 { // not validated here: estimate the frame from its parts
		size = len(m.Event.Type) + len(m.Event.Data) + len(m.Event.Comment) + 32
	}
	n := int64(messageSize)
	switch {
	case m.inlineUsed && m.prebuilt && idRoom+size <= inlineLen:
	case m.inlineUsed && !m.prebuilt && size+len(m.Event.Data) <= inlineLen:
	case m.prebuilt:
		n += int64(idRoom + size) // the data lives inside the frame
	default:
		n += int64(len(m.Event.Data) + size + idRoom)
	}
	return n
}

// stamp returns when m was first held, reading the clock the first time.
func (m *Message) stamp() int64 {
	if !m.stamped {
		m.at, m.stamped = monoNow(), true
	}
	return m.at
}

// monoBase anchors monoNow. It is read-only after package initialisation.
var monoBase = time.Now()

// monoNow returns a monotonic clock reading in nanoseconds, for the age
// bounds: it reads one clock where time.Now reads two (wall and monotonic),
// which halves what the age bound costs a publish. Readings are comparable
// only with each other, and may be negative (inside a synctest bubble).
func monoNow() int64 { return int64(time.Since(monoBase)) }

// forget drops what a broker worked out for m, for a Message the caller
// passed by value: a copy must be checked and encoded afresh.
func (m *Message) forget() {
	m.frame, m.spare, m.size, m.flat, m.borrowed, m.inlineUsed, m.prebuilt = nil, nil, 0, false, false, false, false
	m.seq, m.at, m.stamped = 0, 0, false
}
