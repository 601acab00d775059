// Package sse is the Server-Sent Events wire format, text/event-stream, as
// the WHATWG HTML standard defines it: the Event type, an encoder that no
// value can make inject a field or an event, and a streaming Decoder that
// returns exactly the events a browser's EventSource would dispatch.
//
// It imports nothing but the standard library, so a program that only
// writes or reads event streams (a Go client, a proxy, a test) links
// neither ssekit's broker nor its dependencies. Package core, the
// client and the adapter conformance suite all use it; core.Event is an
// alias of Event and core's codec names are the same values.
//
// Encode an event into a reusable buffer, and decode a stream:
//
//	buf, err := sse.AppendEvent(buf[:0], sse.Event{ID: "7", Type: "greeting", Data: "hello\nworld"})
//	if err != nil {
//		return err // a control character in ID or Type, invalid UTF-8, a negative Retry
//	}
//	w.Write(buf) // id: 7\nevent: greeting\ndata: hello\ndata: world\n\n
//
//	dec := sse.NewDecoder(resp.Body)
//	for {
//		ev, err := dec.Next()
//		if err != nil {
//			return err // io.EOF at the end of the stream
//		}
//		fmt.Println(ev.Type, ev.Data, dec.LastEventID())
//	}
//
// The encoder never allocates when the buffer has room (EncodedLen tells
// how much). The Decoder bounds what it buffers (MaxLineSize,
// MaxEventSize), so a hostile server cannot make it grow without end.
package sse
