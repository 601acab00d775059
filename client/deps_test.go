//go:build !js && !wasip1

package client

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNoCore keeps the client light: of ssekit it may import the wire
// format (core/sse) and nothing else, so neither core's broker nor its
// dependencies (uuid among them) end up in a client's binary, on a server
// or in a browser (examples/wasmclient measures the latter). The test
// files may use core: they run a real broker.
func TestNoCore(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, pkg := range strings.Fields(string(out)) {
		switch pkg {
		case "github.com/ssekit/ssekit/client", "github.com/ssekit/ssekit/core/sse":
		default:
			t.Errorf("client depends on %s; it may import only the standard library and core/sse", pkg)
		}
	}
}
