package releasetest

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// buildProxy writes a file-based module proxy (the layout GOPROXY=file://dir
// reads: <escaped path>/@v/list, <version>.info, .mod and .zip) holding every
// released module of mods, made from the working tree at its release version.
//
// A module's zip holds what a tag of the working tree would publish: the
// files git tracks or would track (not ignored ones such as bin/), without
// nested modules, which zip.Create leaves out on its own. Without git (an
// exported tree) it falls back to every file of the directory.
func buildProxy(t *testing.T, root string, mods []release, dir string) {
	t.Helper()
	tracked, haveGit := gitFiles(root)
	for _, m := range mods {
		if !m.released() {
			continue
		}
		esc, err := module.EscapePath(m.Path)
		require.NoError(t, err)
		vdir := filepath.Join(dir, filepath.FromSlash(esc), "@v")
		require.NoError(t, os.MkdirAll(vdir, 0o755))
		mv := module.Version{Path: m.Path, Version: m.Version}
		modDir := filepath.Join(root, filepath.FromSlash(m.Dir))

		zf, err := os.Create(filepath.Join(vdir, m.Version+".zip"))
		require.NoError(t, err)
		if haveGit {
			var files []modzip.File
			prefix := ""
			if m.Dir != "." {
				prefix = m.Dir + "/"
			}
			for _, p := range tracked {
				if !strings.HasPrefix(p, prefix) {
					continue
				}
				abs := filepath.Join(root, filepath.FromSlash(p))
				if _, err := os.Lstat(abs); err != nil {
					continue // deleted in the working tree, not yet in the index
				}
				files = append(files, diskFile{rel: strings.TrimPrefix(p, prefix), abs: abs})
			}
			err = modzip.Create(zf, mv, files)
		} else {
			err = modzip.CreateFromDir(zf, mv, modDir)
		}
		require.NoError(t, err, "zip of %s", m.Dir)
		require.NoError(t, zf.Close())

		gomod, err := os.ReadFile(filepath.Join(modDir, "go.mod"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(vdir, m.Version+".mod"), gomod, 0o644))
		info, err := json.Marshal(struct {
			Version string
			Time    time.Time
		}{m.Version, time.Now().UTC().Truncate(time.Second)})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(vdir, m.Version+".info"), info, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(vdir, "list"), []byte(m.Version+"\n"), 0o644))
	}
}

// gitFiles lists the working tree's files that git tracks or would track
// (slash-separated, relative to root); false when root is not a git work tree.
func gitFiles(root string) ([]string, bool) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, false
	}
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, false
	}
	var files []string
	for _, p := range strings.Split(string(out), "\x00") {
		if p != "" {
			files = append(files, p)
		}
	}
	return files, len(files) > 0
}

// diskFile is a file of the working tree as zip.Create sees it.
type diskFile struct{ rel, abs string }

func (f diskFile) Path() string                 { return f.rel }
func (f diskFile) Lstat() (os.FileInfo, error)  { return os.Lstat(f.abs) }
func (f diskFile) Open() (io.ReadCloser, error) { return os.Open(f.abs) }
