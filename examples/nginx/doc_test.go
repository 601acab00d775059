package nginx

import (
	"os"
	"strings"
	"testing"
)

// TestOperationsDocQuotesTheConfig keeps docs/OPERATIONS.md and
// ssekit.conf (what TestStreamThroughNginx runs) the same: the doc's
// nginx block must be the file, from its upstream block on.
func TestOperationsDocQuotesTheConfig(t *testing.T) {
	conf, err := os.ReadFile("ssekit.conf")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```nginx\n")
	if !ok {
		t.Fatal("docs/OPERATIONS.md has no ```nginx block")
	}
	block, _, _ = strings.Cut(block, "```")
	i := strings.Index(string(conf), "upstream ssekit {")
	if i < 0 {
		t.Fatal("ssekit.conf has no upstream ssekit block")
	}
	if want := string(conf[i:]); strings.TrimSpace(block) != strings.TrimSpace(want) {
		t.Errorf("the nginx block of docs/OPERATIONS.md differs from examples/nginx/ssekit.conf; copy the file into the doc:\n%s", want)
	}
}
