// Command app is ssekit's Go EventSource (package client) as a program to
// compile to WebAssembly: it reads one stream, across reconnections, and
// reports every state change, reconnection and event as one JSON object per
// line, so that a test (or a person) can check what the client got.
//
// Where it runs decides where the settings come from and where the lines
// go (see host_js.go and host_other.go):
//
//   - js/wasm in a browser: settings from the page's query string
//     (?url=...&timeout=...), lines appended to the JavaScript array
//     globalThis.ssekitWasm and to the page's #events list;
//   - js/wasm under Node: settings from SSEKIT_WASM_URL and
//     SSEKIT_WASM_TIMEOUT, lines on standard output;
//   - natively: the same variables and standard output, which lets the
//     program be tried with go run before it is compiled to wasm.
//
// The program ends when it receives an event of type stopType, when the
// client gives up, or after the timeout, so that no run can hang a test.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/ssekit/ssekit/client"
)

// stopType is the event type that ends the program: the test publishes it
// last, so the program's exit says "everything before it was read".
const stopType = "wasmclient.stop"

// defaultTimeout bounds a run whose host gave no timeout.
const defaultTimeout = 60 * time.Second

// settings are what the host gives the program.
type settings struct {
	url     string        // the stream: an absolute http(s) URL
	timeout time.Duration // the program ends after this long, whatever happens
}

// parseSettings reads the settings through get, which returns the value of
// "url" or "timeout" (a query parameter, an environment variable).
func parseSettings(get func(name string) string) (settings, error) {
	s := settings{url: get("url"), timeout: defaultTimeout}
	if s.url == "" {
		return s, errors.New("no stream URL given")
	}
	if v := get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return s, fmt.Errorf("timeout %q: want a positive duration such as 30s", v)
		}
		s.timeout = d
	}
	return s, nil
}

// report is one line of output. Kind is "state" (State), "retry" (Error,
// Delay), "event" (ID, Type, Data) or "done" (Error, empty after a stop
// event).
type report struct {
	Kind  string `json:"kind"`
	State string `json:"state,omitempty"`
	ID    string `json:"id,omitempty"`
	Type  string `json:"type,omitempty"`
	Data  string `json:"data,omitempty"`
	Error string `json:"error,omitempty"`
	Delay string `json:"delay,omitempty"`
}

func main() {
	s, emit, err := host()
	if err == nil {
		err = run(context.Background(), s, emit)
	}
	done := report{Kind: "done"}
	if err != nil {
		done.Error = err.Error()
	}
	line, _ := json.Marshal(done)
	emit(line)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasmclient:", err)
		os.Exit(1)
	}
}

// run reads the stream until a stop event, a terminal error or the
// timeout, passing each report to emit as one line of JSON.
func run(ctx context.Context, s settings, emit func([]byte)) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	send := func(r report) {
		line, err := json.Marshal(r)
		if err != nil { // cannot happen: strings only
			panic(err)
		}
		emit(line)
	}
	c, err := client.New(s.url,
		// The server's retry hint sets the delay after a stream ends; this
		// caps the growth of the delay while the server is down, so a
		// restarted hub is found again within about a second.
		client.WithBackoff(client.Backoff{Max: time.Second}),
		client.WithOnState(func(st client.State) { send(report{Kind: "state", State: st.String()}) }),
		client.WithOnRetry(func(err error, d time.Duration) {
			send(report{Kind: "retry", Error: oneLine(err), Delay: d.String()})
		}),
	)
	if err != nil {
		return err
	}
	for ev, err := range c.Events(ctx) {
		if err != nil {
			return err
		}
		send(report{Kind: "event", ID: ev.ID, Type: ev.Type, Data: ev.Data})
		if ev.Type == stopType {
			return nil
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("no %s event within %v: %w", stopType, s.timeout, err)
	}
	return nil
}

// oneLine keeps an error's text on one line of the report.
func oneLine(err error) string {
	if err == nil {
		return ""
	}
	return strings.ReplaceAll(err.Error(), "\n", " ")
}

// envSettings maps a setting to its environment variable: url is
// SSEKIT_WASM_URL, timeout SSEKIT_WASM_TIMEOUT.
func envSettings(name string) string {
	return os.Getenv("SSEKIT_WASM_" + strings.ToUpper(name))
}

// printLine writes one report on standard output, which Node passes on
// (wasm_exec.js writes file descriptor 1 to process.stdout).
func printLine(line []byte) { fmt.Println(string(line)) }
