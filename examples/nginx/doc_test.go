package nginx

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOperationsDocQuotesTheConfig keeps docs/OPERATIONS.md and
// ssekit.conf (what TestStreamThroughNginx runs) the same: the doc's
// nginx block must be the file, from its upstream block on.
func TestOperationsDocQuotesTheConfig(t *testing.T) {
	conf, err := os.ReadFile("ssekit.conf")
	require.NoError(t, err)
	doc, err := os.ReadFile("../../docs/OPERATIONS.md")
	require.NoError(t, err)
	_, block, ok := strings.Cut(string(doc), "```nginx\n")
	require.True(t, ok, "docs/OPERATIONS.md has no ```nginx block")
	block, _, _ = strings.Cut(block, "```")
	i := strings.Index(string(conf), "upstream ssekit {")
	require.GreaterOrEqual(t, i, 0, "ssekit.conf has no upstream ssekit block")
	want := string(conf[i:])
	assert.Equal(t, strings.TrimSpace(want), strings.TrimSpace(block), "the nginx block of docs/OPERATIONS.md differs from examples/nginx/ssekit.conf; copy the file into the doc:\n%s", want)
}
