// Package testenv holds the one rule for tests that drive an outside program
// (chromium, nginx, redis-server): a missing program fails the test, unless
// the run names it in SSEKIT_SKIP, which skips the test and says so.
//
//	SSEKIT_SKIP=chromium,nginx,redis go test ./...
//
// scripts/test.sh exports SSEKIT_SKIP and prints what it skipped in its
// summary; scripts/install-deps.sh installs every program that is not skipped.
//
// Outside programs cannot run under js/wasm or wasip1, so this package's
// own tests, which build and look up executables, are native only (an
// explicit build constraint, so the wasm runs of the root module say
// "no test files" here rather than skipping).
package testenv

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// SkipEnv is the variable that lists, comma-separated, the programs whose
// tests a run leaves out. Empty (the default) means every program is required.
const SkipEnv = "SSEKIT_SKIP"

// Skipped reports whether name is listed in SSEKIT_SKIP.
func Skipped(name string) bool {
	return slices.Contains(skipList(), name)
}

func skipList() []string {
	var names []string
	for _, f := range strings.Split(os.Getenv(SkipEnv), ",") {
		if f = strings.TrimSpace(f); f != "" {
			names = append(names, f)
		}
	}
	return names
}

// Program returns the path of the program a test drives, known to the
// opt-out as name ("chromium", "nginx", "redis"). It tries each candidate in
// order (an absolute path must exist and be executable, a bare name is looked
// up on PATH; empty candidates, such as an unset override variable, are
// ignored). When name is listed in SSEKIT_SKIP the test is skipped without
// looking; when no candidate is found the test fails, with install as the
// hint for getting the program.
func Program(t testing.TB, name, install string, candidates ...string) string {
	t.Helper()
	if Skipped(name) {
		t.Skipf("%s skipped: %s=%s", name, SkipEnv, os.Getenv(SkipEnv))
	}
	var tried []string
	for _, c := range candidates {
		if c == "" {
			continue
		}
		tried = append(tried, c)
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	t.Fatalf("%s not found (tried %s): %s; or run without it with %s=%s",
		name, strings.Join(tried, ", "), install, SkipEnv, name)
	return ""
}
