package core_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/ssekit/ssekit/core"
)

// memStream is a core.Stream that keeps what a client would receive.
type memStream struct {
	strings.Builder
	opened chan struct{} // closed by the first Flush: the stream is open
}

func (m *memStream) Flush() error {
	select {
	case <-m.opened:
	default:
		close(m.opened)
	}
	return nil
}

func Example() {
	ctx := context.Background()
	broker, err := core.New(core.Config{})
	if err != nil {
		panic(err)
	}
	alice := uuid.MustParse("6f1c2f58-0d5e-4a3c-9a53-0a2a9a3f3b11")

	// An adapter does this for every stream request: register, then serve.
	sub, _ := broker.Subscribe(ctx, core.SubscribeRequest{
		Identity: core.Identity{User: alice},
		Topics:   []string{"orders"},
	})
	out := &memStream{opened: make(chan struct{})}
	done := make(chan error)
	go func() { done <- broker.Serve(ctx, sub, out) }()
	<-out.opened

	_ = broker.SendToUser(ctx, alice, "notification", map[string]int{"unread": 3})
	_ = broker.SendToTopic(ctx, "orders", "order.created", `{"id":42}`)
	_ = broker.Close(ctx) // flushes the queue, then ends the stream
	<-done

	dec := core.NewDecoder(strings.NewReader(out.String()))
	for {
		ev, err := dec.Next()
		if err != nil {
			break
		}
		fmt.Println(ev.Type, ev.Data)
	}
	// Output:
	// notification {"unread":3}
	// order.created {"id":42}
}

func ExampleBroker_Tenant() {
	ctx := context.Background()
	broker, _ := core.New(core.Config{})
	defer broker.Close(ctx)

	acme := broker.Tenant("acme")
	err := acme.Broadcast(ctx, "announcement", "maintenance at 22:00")
	fmt.Println(err, acme.IsUserOnline(uuid.New()))
	// Output: <nil> false
}

func ExampleConfig_Validate() {
	err := core.Config{HeartbeatInterval: 1e9, ClientBufferSize: -1}.Validate()
	fmt.Println(err)
	// Output:
	// ssekit: invalid config: ClientBufferSize must be >= 0, got -1
	// ssekit: invalid config: HeartbeatInterval must be >= 5s, got 1s
}

func ExampleAppendEvent() {
	frame, err := core.AppendEvent(nil, core.Event{ID: "7", Type: "greeting", Data: "hello\nworld"})
	fmt.Printf("%q %v\n", frame, err == nil)

	_, err = core.AppendEvent(nil, core.Event{Type: "x\ndata: injected"})
	fmt.Println(err != nil)
	// Output:
	// "id: 7\nevent: greeting\ndata: hello\ndata: world\n\n" true
	// true
}
