module github.com/ssekit/ssekit/tools

go 1.25

require (
	github.com/tetratelabs/wazero v1.11.0 // indirect
	golang.org/x/sys v0.38.0 // indirect
)

tool github.com/tetratelabs/wazero/cmd/wazero
