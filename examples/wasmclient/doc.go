// Package wasmclient proves that ssekit's Go client (package client) works
// compiled to WebAssembly (GOOS=js GOARCH=wasm) against the real hub: its
// tests build examples/hub natively and app/ (a program around the client)
// as wasm, run the wasm under Node and in headless Chromium, publish to the
// hub, and check what the client received, across a hub restart in the
// browser. They also measure the wasm binary and what it is made of.
//
//	cd examples && go test ./wasmclient/
//
// The package holds no code besides its tests; see README.md.
package wasmclient
