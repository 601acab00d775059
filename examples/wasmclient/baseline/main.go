// Command baseline is the reference for the app's wasm size: the least a
// Go program that reads an event stream needs, one net/http GET copied to
// standard output, with no SSE parsing, reconnection or JSON. The size
// test builds it for js/wasm beside the app, so the cost of ssekit's
// client is the difference between the two, measured with the same Go.
//
//	SSEKIT_WASM_URL=http://127.0.0.1:8080/events go run ./wasmclient/baseline
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	resp, err := http.Get(os.Getenv("SSEKIT_WASM_URL"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(os.Stdout, resp.Body); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}
