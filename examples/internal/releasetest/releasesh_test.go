package releasetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/modfile"
)

// TestReleaseCheck: versions.txt and the repository's go.mod files agree.
func TestReleaseCheck(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	out, err := runCmd(root, nil, "bash", "scripts/release.sh", "check")
	require.NoError(t, err, out)

	out, err = runCmd(root, nil, "bash", "scripts/release.sh", "tags")
	require.NoError(t, err, out)
	var want []string
	for _, m := range readVersions(t, root) {
		if m.released() {
			want = append(want, m.tag())
		}
	}
	assert.Equal(t, want, tagLines(out))
}

// copyTree copies what scripts/release.sh reads (the script, versions.txt,
// go.work and every module's go.mod) into a new directory.
func copyTree(t *testing.T, root string) (string, []release) {
	t.Helper()
	mods := readVersions(t, root)
	dst := t.TempDir()
	files := []string{"scripts/release.sh", "versions.txt", "go.work"}
	for _, m := range mods {
		files = append(files, filepath.ToSlash(filepath.Join(m.Dir, "go.mod")))
	}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		require.NoError(t, err)
		writeFile(t, filepath.Join(dst, filepath.FromSlash(f)), string(data))
	}
	return dst, mods
}

// TestReleaseSet: "set" moves versions.txt and every ssekit require to the
// new version, "tags" then names it, and "check" catches a require that
// falls behind.
func TestReleaseSet(t *testing.T) {
	t.Parallel()
	dir, mods := copyTree(t, repoRoot(t))
	const next = "v0.2.0-rc.1"
	out, err := runCmd(dir, nil, "bash", "scripts/release.sh", "set", next)
	require.NoError(t, err, out)

	moved := readVersions(t, dir)
	require.Len(t, moved, len(mods))
	requires := 0
	for i, m := range moved {
		if mods[i].released() {
			assert.Equal(t, next, m.Version, m.Dir)
		} else {
			assert.Equal(t, "-", m.Version, m.Dir)
		}
		gomod := filepath.Join(dir, filepath.FromSlash(m.Dir), "go.mod")
		data, err := os.ReadFile(gomod)
		require.NoError(t, err)
		f, err := modfile.Parse(gomod, data, nil)
		require.NoError(t, err)
		for _, r := range f.Require {
			if r.Mod.Path == ssekit || strings.HasPrefix(r.Mod.Path, ssekit+"/") {
				assert.Equal(t, next, r.Mod.Version, "%s requires %s", m.Dir, r.Mod.Path)
				requires++
			}
		}
	}
	assert.Positive(t, requires, "no go.mod requires an ssekit module")

	out, err = runCmd(dir, nil, "bash", "scripts/release.sh", "tags")
	require.NoError(t, err, out)
	assert.Contains(t, tagLines(out), next)
	assert.Contains(t, tagLines(out), "adapters/gin/"+next)

	// A require left behind fails the check.
	gin := filepath.Join(dir, "adapters", "gin", "go.mod")
	_, err = runCmd(dir, nil, "go", "mod", "edit", "-require="+ssekit+"@v0.1.0", gin)
	require.NoError(t, err)
	out, err = runCmd(dir, nil, "bash", "scripts/release.sh", "check")
	require.Error(t, err, out)
	assert.Contains(t, out, "adapters/gin/go.mod requires "+ssekit+" v0.1.0, want "+next)

	// So does a version that is not semver, and a module missing from versions.txt.
	_, err = runCmd(dir, nil, "bash", "scripts/release.sh", "set", "1.0")
	require.Error(t, err)
	writeFile(t, filepath.Join(dir, "stray", "go.mod"), "module "+ssekit+"/stray\n\ngo 1.25\n")
	out, err = runCmd(dir, nil, "bash", "scripts/release.sh", "check")
	require.Error(t, err, out)
	assert.Contains(t, out, "stray/go.mod is not in versions.txt")
}

// TestReleaseCreateTags: "tags --create" tags a clean commit once per
// released module, and refuses to tag twice.
func TestReleaseCreateTags(t *testing.T) {
	t.Parallel()
	dir, mods := copyTree(t, repoRoot(t))
	git := func(args ...string) string {
		t.Helper()
		out, err := runCmd(dir, gitEnv(), "git", args...)
		require.NoError(t, err, out)
		return out
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "release")

	out, err := runCmd(dir, gitEnv(), "bash", "scripts/release.sh", "tags", "--create")
	require.NoError(t, err, out)
	var want []string
	for _, m := range mods {
		if m.released() {
			want = append(want, m.tag())
		}
	}
	assert.ElementsMatch(t, want, nonEmptyLines(git("tag", "--list")))
	assert.Contains(t, out, "git push origin")

	out, err = runCmd(dir, gitEnv(), "bash", "scripts/release.sh", "tags", "--create")
	require.Error(t, err, out)
	assert.Contains(t, out, "exists already")
}

// gitEnv is the test's environment with an identity for commits and tags
// and no user or system git configuration.
func gitEnv() []string {
	return withEnv([]string{"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"},
		"GIT_AUTHOR_NAME=releasetest", "GIT_AUTHOR_EMAIL=releasetest@example.com",
		"GIT_COMMITTER_NAME=releasetest", "GIT_COMMITTER_EMAIL=releasetest@example.com",
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
}

// tagLines is the output of "release.sh tags" without the check's report.
func tagLines(out string) []string {
	var tags []string
	for _, l := range nonEmptyLines(out) {
		if !strings.HasPrefix(l, "release check:") {
			tags = append(tags, l)
		}
	}
	return tags
}

func nonEmptyLines(s string) []string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
