package sse_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ssekit/ssekit/core/sse"
)

// Encode an event: line breaks in Data become data lines, and the frame
// ends with the blank line that makes a client dispatch it.
func ExampleAppendEvent() {
	var buf []byte // reuse it across events: a buffer with room costs no allocation
	buf, err := sse.AppendEvent(buf[:0], sse.Event{ID: "7", Type: "greeting", Data: "hello\nworld"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q\n", buf)

	// A value that would inject a field is refused, and nothing is written.
	_, err = sse.AppendEvent(buf[:0], sse.Event{ID: "8\ndata: forged"})
	fmt.Println(errors.Is(err, sse.ErrInvalidID))
	// Output:
	// "id: 7\nevent: greeting\ndata: hello\ndata: world\n\n"
	// true
}

// Decode a stream as a browser's EventSource would: comments and blocks
// without data dispatch nothing, the last event ID persists, and an event
// the stream cuts short is dropped.
func ExampleDecoder() {
	stream := ": welcome\n" +
		"retry: 3000\n\n" +
		"id: 1\nevent: order.created\ndata: {\"id\":42}\n\n" +
		"data: line one\ndata: line two\n\n" +
		"data: cut sho"
	dec := sse.NewDecoder(strings.NewReader(stream))
	for {
		ev, err := dec.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Printf("id=%s type=%q data=%q\n", ev.ID, ev.Type, ev.Data)
	}
	fmt.Println("reconnect after", dec.Retry(), "with Last-Event-ID", dec.LastEventID())
	// Output:
	// id=1 type="order.created" data="{\"id\":42}"
	// id=1 type="" data="line one\nline two"
	// reconnect after 3s with Last-Event-ID 1
}
