package releasetest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/modfile"
)

// release is one line of versions.txt.
type release struct {
	Dir     string // relative to the repository root, "." for the root module
	Path    string // module path, from Dir/go.mod
	Version string // release version, "-" when never released
}

func (m release) released() bool { return m.Version != "-" }

// tag is the git tag that releases m.
func (m release) tag() string {
	if m.Dir == "." {
		return m.Version
	}
	return m.Dir + "/" + m.Version
}

// repoRoot is the directory holding versions.txt and go.work, above the
// test's working directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if fileExists(filepath.Join(dir, "versions.txt")) && fileExists(filepath.Join(dir, "go.work")) {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no versions.txt with a go.work beside it above the working directory")
		dir = parent
	}
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// readVersions parses root/versions.txt ("<dir> <version>" lines, "#"
// comments) and reads each module's path from its go.mod.
func readVersions(t *testing.T, root string) []release {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "versions.txt"))
	require.NoError(t, err)
	var mods []release
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		require.Len(t, f, 2, "versions.txt:%d: want \"<directory> <version>\"", n)
		gomod := filepath.Join(root, filepath.FromSlash(f[0]), "go.mod")
		data, err := os.ReadFile(gomod)
		require.NoError(t, err, "versions.txt:%d", n)
		path := modfile.ModulePath(data)
		require.NotEmpty(t, path, "%s declares no module", gomod)
		mods = append(mods, release{Dir: f[0], Path: path, Version: f[1]})
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, mods, "versions.txt names no module")
	return mods
}

// releaseVersion is the one version every released module carries.
func releaseVersion(t *testing.T, mods []release) string {
	t.Helper()
	v := ""
	for _, m := range mods {
		if !m.released() {
			continue
		}
		if v == "" {
			v = m.Version
		}
		require.Equal(t, v, m.Version, "%s: the modules are released in lockstep", m.Dir)
	}
	require.NotEmpty(t, v, "versions.txt releases no module")
	return v
}

// goCmd runs the go command in dir with env (nil: the test's environment)
// and fails the test with its output if it fails.
func goCmd(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	out, err := runCmd(dir, env, "go", args...)
	require.NoError(t, err, "go %s (in %s):\n%s", strings.Join(args, " "), dir, out)
	return out
}

// runCmd runs name with args in dir and returns its combined output.
func runCmd(dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	start := time.Now()
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%s %s: %w (after %v)", name, strings.Join(args, " "), err, time.Since(start).Round(time.Millisecond))
	}
	return out.String(), err
}

// withEnv returns the test's environment with the variables in drop removed
// and set appended.
func withEnv(drop []string, set ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, d := range drop {
			if k == d {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return append(env, set...)
}
