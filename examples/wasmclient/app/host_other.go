//go:build !js

package main

// host reads the settings from the environment and reports on standard
// output: a native build behaves as the wasm build does under Node.
func host() (settings, func([]byte), error) {
	s, err := parseSettings(envSettings)
	return s, printLine, err
}
