//go:build !js && !wasip1

package sse

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStandardLibraryOnly keeps the wire format free of dependencies: a
// program that only reads or writes event streams (the Go client, a proxy)
// must link nothing of ssekit but this package, and nothing outside the
// standard library.
func TestStandardLibraryOnly(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Equal(t, []string{"github.com/ssekit/ssekit/core/sse"}, strings.Fields(string(out)),
		"package sse may import the standard library only")
}
