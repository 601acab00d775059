package core

import (
	"context"
	"encoding/json"
	"unsafe"

	"github.com/google/uuid"
)

// Tenant is a broker seen from inside one tenant: every push and presence
// query made through it stays in that tenant. Broker's own methods of the
// same names act on the default tenant "".
type Tenant struct {
	b    *Broker
	name string
}

// Tenant returns the view of tenant name. The name is checked when used.
func (b *Broker) Tenant(name string) Tenant { return Tenant{b: b, name: name} }

// Name returns the tenant's name.
func (t Tenant) Name() string { return t.name }

// SendToUser pushes an event to every connection of user. Data is taken
// as-is when it is a string, []byte or json.RawMessage, and marshalled as
// JSON otherwise. An empty eventType or a nil user is an error and sends
// nothing.
func (t Tenant) SendToUser(ctx context.Context, user uuid.UUID, eventType string, data any) error {
	m := &Message{}
	m.one[0] = user
	m.Target.Users = m.one[:] // no second allocation for the common case
	return t.send(ctx, m, eventType, data)
}

// SendToTopic pushes an event to every connection subscribed to topic.
func (t Tenant) SendToTopic(ctx context.Context, topic, eventType string, data any) error {
	m := &Message{}
	m.Target.Topics = []string{topic}
	return t.send(ctx, m, eventType, data)
}

// Broadcast pushes an event to every connection of the tenant.
func (t Tenant) Broadcast(ctx context.Context, eventType string, data any) error {
	return t.send(ctx, &Message{Target: Target{Broadcast: true}}, eventType, data)
}

func (t Tenant) send(ctx context.Context, m *Message, eventType string, data any) error {
	var text string
	switch d := data.(type) {
	case []byte:
		// Borrowed until the broker has validated the event; it then copies
		// the bytes next to the frame, one allocation for both.
		text, m.borrowed = unsafe.String(unsafe.SliceData(d), len(d)), true
	case json.RawMessage:
		text, m.borrowed = unsafe.String(unsafe.SliceData(d), len(d)), true
	default:
		var err error
		if text, err = DataString(data); err != nil {
			return err
		}
	}
	m.Target.Tenant = t.name
	m.Event = Event{Type: eventType, Data: text}
	_, err := t.b.publish(ctx, m)
	return err
}

// IsUserOnline reports whether user has a connection to this broker, or,
// when the Backend implements Presence, to any broker of the cluster.
func (t Tenant) IsUserOnline(user uuid.UUID) bool { return t.b.connections(t.name, user) > 0 }

// UserConnections returns how many connections user has to this broker,
// plus those to the cluster's other brokers when the Backend implements
// Presence.
func (t Tenant) UserConnections(user uuid.UUID) int { return t.b.connections(t.name, user) }

// OnlineUsers returns the users with a connection to this broker (to any
// broker of the cluster when the Backend implements Presence), sorted.
func (t Tenant) OnlineUsers() []uuid.UUID { return t.b.onlineUsers(t.name) }

// SendToUser pushes an event to every connection of user in the default
// tenant; see Tenant.SendToUser.
func (b *Broker) SendToUser(ctx context.Context, user uuid.UUID, eventType string, data any) error {
	return b.Tenant("").SendToUser(ctx, user, eventType, data)
}

// SendToTopic pushes an event to the subscribers of topic in the default
// tenant; see Tenant.SendToTopic.
func (b *Broker) SendToTopic(ctx context.Context, topic, eventType string, data any) error {
	return b.Tenant("").SendToTopic(ctx, topic, eventType, data)
}

// Broadcast pushes an event to every connection of the default tenant; see
// Tenant.Broadcast.
func (b *Broker) Broadcast(ctx context.Context, eventType string, data any) error {
	return b.Tenant("").Broadcast(ctx, eventType, data)
}

// IsUserOnline reports whether user has a connection in the default tenant.
func (b *Broker) IsUserOnline(user uuid.UUID) bool { return b.Tenant("").IsUserOnline(user) }

// UserConnections returns user's connection count in the default tenant.
func (b *Broker) UserConnections(user uuid.UUID) int { return b.Tenant("").UserConnections(user) }

// OnlineUsers returns the users connected in the default tenant, sorted.
func (b *Broker) OnlineUsers() []uuid.UUID { return b.Tenant("").OnlineUsers() }
