//go:build js && wasm

package main

import (
	"syscall/js"
)

// host tells a browser from Node by the document global. In a browser the
// settings come from the page's query string (a page has no environment)
// and reports go where the page and a test driving it can read them; under
// Node, wasm_exec_node.js hands the process environment and standard
// output to the program, so it behaves as a native build.
func host() (settings, func([]byte), error) {
	global := js.Global()
	doc := global.Get("document")
	if !doc.Truthy() {
		s, err := parseSettings(envSettings)
		return s, printLine, err
	}
	params := global.Get("URLSearchParams").New(global.Get("location").Get("search"))
	s, err := parseSettings(func(name string) string {
		if v := params.Call("get", name); v.Type() == js.TypeString {
			return v.String()
		}
		return ""
	})
	// The array exists before the first report, so a poller can tell
	// "started, nothing yet" (empty) from "not started" (undefined).
	global.Set("ssekitWasm", global.Get("Array").New())
	return s, pageReporter(global, doc), err
}

// pageReporter appends each line to globalThis.ssekitWasm (what a test
// polls) and shows it in the page: the state in #state[data-state], each
// event as an #events li with data-id and data-type.
func pageReporter(global, doc js.Value) func([]byte) {
	reports := global.Get("ssekitWasm")
	state := doc.Call("getElementById", "state")
	events := doc.Call("getElementById", "events")
	json := global.Get("JSON")
	return func(line []byte) {
		text := string(line)
		reports.Call("push", text)
		r := json.Call("parse", text)
		get := func(key string) string {
			if v := r.Get(key); v.Type() == js.TypeString {
				return v.String()
			}
			return "" // omitted from the JSON: empty
		}
		switch get("kind") {
		case "state":
			if state.Truthy() {
				st := get("state")
				state.Set("textContent", st)
				state.Get("dataset").Set("state", st)
			}
		case "event":
			if events.Truthy() {
				li := doc.Call("createElement", "li")
				li.Get("dataset").Set("id", get("id"))
				li.Get("dataset").Set("type", get("type"))
				li.Set("textContent", text)
				events.Call("appendChild", li)
			}
		case "done":
			if state.Truthy() {
				state.Get("dataset").Set("done", "true")
			}
		}
	}
}
