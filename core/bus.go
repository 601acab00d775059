package core

import (
	"context"
	"sync"
)

// Bus carries published messages to every broker of a cluster. The default
// delivers in-process; the Redis backend implements it on Redis Streams.
type Bus interface {
	// Publish hands m to every attached broker, this one included, and sets
	// m.Event.ID before it returns. An error means nobody will receive m.
	Publish(ctx context.Context, m *Message) error
	// Attach delivers every message published on the bus to deliver, one
	// call at a time and in ID order, until detach is called.
	Attach(deliver func(*Message)) (detach func(), err error)
}

// localBus is the in-process Bus: History assigns the ID and delivery
// happens before Publish returns. One lock around both keeps delivery order
// equal to ID order, which is what makes replay gapless.
type localBus struct {
	mu      sync.Mutex
	history History
	deliver func(*Message)
}

func (l *localBus) Publish(ctx context.Context, m *Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.history.Append(ctx, m); err != nil {
		return err
	}
	if l.deliver != nil {
		l.deliver(m)
	}
	return nil
}

func (l *localBus) Attach(deliver func(*Message)) (func(), error) {
	l.mu.Lock()
	l.deliver = deliver
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		l.deliver = nil
		l.mu.Unlock()
	}, nil
}
