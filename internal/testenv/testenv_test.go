// Native only: these tests look up and run executables (os.Executable is
// not implemented under js or wasip1). See the package doc.

//go:build !js && !wasip1

package testenv

import (
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

func TestSkipped(t *testing.T) {
	t.Setenv(SkipEnv, "")
	require.False(t, Skipped("nginx"), "an empty list skips nothing")

	t.Setenv(SkipEnv, " chromium, nginx ,,redis")
	for _, name := range []string{"chromium", "nginx", "redis"} {
		require.True(t, Skipped(name), name)
	}
	require.False(t, Skipped("redis-server"), "only exact names are skipped")
	require.False(t, Skipped(""), "the empty name is never listed")
}

func TestProgramFound(t *testing.T) {
	t.Setenv(SkipEnv, "")
	exe, err := os.Executable()
	require.NoError(t, err)
	got := Program(t, "self", "", "", "/nonexistent/program", exe)
	require.Equal(t, exe, got, "empty and missing candidates are passed over")
}

// recorder is a testing.TB whose Fatalf and Skipf only record what they said.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Fatalf(f string, args ...any) { r.fatal = fmt.Sprintf(f, args...) }
func (r *recorder) Skipf(f string, args ...any)  { r.skip = fmt.Sprintf(f, args...) }

func TestProgramMissingFails(t *testing.T) {
	t.Setenv(SkipEnv, "chromium")
	r := &recorder{TB: t}
	Program(r, "nginx", "install the Debian package nginx", "/nonexistent/nginx")
	require.Empty(t, r.skip, "a program not listed in SSEKIT_SKIP is required")
	require.Contains(t, r.fatal, "nginx not found (tried /nonexistent/nginx)")
	require.Contains(t, r.fatal, "install the Debian package nginx")
	require.Contains(t, r.fatal, "SSEKIT_SKIP=nginx", "the failure names the opt-out")
}

func TestProgramListedIsSkipped(t *testing.T) {
	t.Setenv(SkipEnv, "chromium,nginx")
	exe, err := os.Executable()
	require.NoError(t, err)
	r := &recorder{TB: t}
	Program(r, "nginx", "", exe)
	require.Empty(t, r.fatal)
	require.Equal(t, "nginx skipped: SSEKIT_SKIP=chromium,nginx", r.skip,
		"a listed program is skipped, present or not, and the message names the variable")
}
