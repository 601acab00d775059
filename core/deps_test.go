//go:build !js && !wasip1

package core

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTransportAgnostic keeps core free of HTTP and process code, so it
// keeps building and running under WebAssembly. Every Go program reaches
// syscall through time and os, so the rule for syscall is that core itself
// never imports it; net is allowed only where github.com/google/uuid
// brings it (for version-1 node IDs, which core never makes).
func TestTransportAgnostic(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}:{{join .Imports \" \"}}", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		for _, imp := range strings.Fields(imports) {
			switch imp {
			case "net/http", "os/exec":
				t.Errorf("%s imports %s: core must stay transport-agnostic", pkg, imp)
			case "net":
				assert.Equal(t, "github.com/google/uuid", pkg, "only uuid may bring in net")
			case "syscall":
				assert.False(t, strings.HasPrefix(pkg, "github.com/ssekit/"), "%s imports syscall", pkg)
			}
		}
	}
}
