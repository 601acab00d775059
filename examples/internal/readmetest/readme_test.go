package readmetest

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// block is one ```go fenced block of a Markdown file.
type block struct {
	line int // the line of its opening fence, from 1
	src  string
}

// goBlocks returns the ```go fenced blocks of a Markdown file, in order.
func goBlocks(markdown string) []block {
	var blocks []block
	var cur []string
	open := 0
	for i, line := range strings.Split(markdown, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case open == 0 && trimmed == "```go":
			open, cur = i+1, nil
		case open != 0 && trimmed == "```":
			blocks = append(blocks, block{line: open, src: strings.Join(cur, "\n")})
			open = 0
		case open != 0:
			cur = append(cur, line)
		}
	}
	return blocks
}

// fragmentImports are the packages a fragment may name, by the name it
// uses: the ones it does not use are left out of its program.
var fragmentImports = []struct{ name, path string }{
	{"context", "context"},
	{"errors", "errors"},
	{"fmt", "fmt"},
	{"json", "encoding/json"},
	{"log", "log"},
	{"http", "net/http"},
	{"os", "os"},
	{"signal", "os/signal"},
	{"syscall", "syscall"},
	{"time", "time"},
	{"uuid", "github.com/google/uuid"},
	{"core", "github.com/ssekit/ssekit/core"},
	{"nethttp", "github.com/ssekit/ssekit/adapters/nethttp"},
	{"client", "github.com/ssekit/ssekit/client"},
	{"metrics", "github.com/ssekit/ssekit/metrics"},
	{"auth", "github.com/ssekit/ssekit/middleware/auth"},
	{"tracing", "github.com/ssekit/ssekit/middleware/tracing"},
	{"ssegin", "github.com/ssekit/ssekit/adapters/gin"},
	{"gin", "github.com/gin-gonic/gin"},
	{"sseecho", "github.com/ssekit/ssekit/adapters/echo"},
	{"echo", "github.com/labstack/echo/v5"},
	{"ssefiber", "github.com/ssekit/ssekit/adapters/fiber"},
	{"fiber", "github.com/gofiber/fiber/v3"},
}

// prelude is what a fragment may assume: a ctx and a broker.
const prelude = `ctx := context.Background()
broker, err := core.New(core.Config{})
if err != nil {
	log.Fatal(err)
}
_, _ = ctx, broker
`

var packageClause = regexp.MustCompile(`(?m)^package\s+\w+`)

// program returns the complete program a block stands for.
func program(src string) (string, error) {
	if packageClause.MatchString(src) {
		return src, nil
	}
	// Parse the fragment as the body of a function to learn the names it
	// declares (each gets a "_ =" use, so a fragment that shows a value
	// without using it still compiles) and the packages it names.
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "fragment.go", "package p\nfunc _() {\n"+src+"\n}\n", 0)
	if err != nil {
		return "", fmt.Errorf("the fragment does not parse as the statements of a function: %w", err)
	}
	fn := f.Decls[0].(*ast.FuncDecl)
	var uses strings.Builder
	use := func(id *ast.Ident) {
		if id.Name != "_" {
			fmt.Fprintf(&uses, "_ = %s\n", id.Name)
		}
	}
	for _, s := range fn.Body.List {
		switch s := s.(type) {
		case *ast.AssignStmt:
			if s.Tok == token.DEFINE {
				for _, e := range s.Lhs {
					if id, ok := e.(*ast.Ident); ok {
						use(id)
					}
				}
			}
		case *ast.DeclStmt:
			if gd, ok := s.Decl.(*ast.GenDecl); ok && gd.Tok == token.VAR {
				for _, spec := range gd.Specs {
					for _, id := range spec.(*ast.ValueSpec).Names {
						use(id)
					}
				}
			}
		}
	}
	named := map[string]bool{"context": true, "core": true, "log": true} // the prelude's
	ast.Inspect(fn, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				named[id.Name] = true
			}
		}
		return true
	})
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n")
	for _, im := range fragmentImports {
		if named[im.name] {
			fmt.Fprintf(&b, "\t%s %q\n", im.name, im.path)
		}
	}
	// The fragment sits in a block of its own, so it may redeclare ctx,
	// broker or err.
	fmt.Fprintf(&b, ")\n\nfunc main() {\n%s{\n%s\n%s}\n}\n", prelude, src, uses.String())
	out, err := format.Source([]byte(b.String()))
	if err != nil {
		return "", fmt.Errorf("format: %w\n%s", err, b.String())
	}
	return string(out), nil
}

// moduleDir is the examples module's directory (where go.mod is), found
// from the test's working directory.
func moduleDir(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(data), "module github.com/ssekit/ssekit/examples\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "the examples module's go.mod is not above the test's directory")
		dir = parent
	}
}

// TestREADMESnippetsCompile builds (and vets) every Go block of the root
// README.md, as a user would paste it.
func TestREADMESnippetsCompile(t *testing.T) {
	mod := moduleDir(t)
	readme, err := os.ReadFile(filepath.Join(mod, "..", "README.md"))
	require.NoError(t, err)
	blocks := goBlocks(string(readme))
	require.NotEmpty(t, blocks, "README.md has no Go block")
	for _, bl := range blocks {
		t.Run(fmt.Sprintf("line%d", bl.line), func(t *testing.T) {
			prog, err := program(bl.src)
			require.NoError(t, err, "README.md:%d", bl.line)
			assert.NoError(t, build(t, mod, prog), "README.md:%d", bl.line)
		})
	}
}

// TestBuildFailsOnUndefinedNames checks that a snippet that does not
// compile fails the test: an undefined name (the README once used myAuth).
func TestBuildFailsOnUndefinedNames(t *testing.T) {
	prog, err := program("broker, err := core.New(core.Config{Authenticator: myAuth})")
	require.NoError(t, err)
	err = build(t, moduleDir(t), prog)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "undefined: myAuth")
}

// build runs go build and go vet on prog within the examples module. The
// program exists only in an overlay, where it takes the place of this
// directory's own files (go vet needs a directory that is on disk), so the
// tree is never written to.
func build(t *testing.T, mod, prog string) error {
	t.Helper()
	tmp := t.TempDir()
	src := filepath.Join(tmp, "main.go")
	require.NoError(t, os.WriteFile(src, []byte(prog), 0o644))
	pkgDir := filepath.Join(mod, "internal", "readmetest")
	replace := map[string]string{filepath.Join(pkgDir, "zz_readme_snippet.go"): src}
	own, err := filepath.Glob(filepath.Join(pkgDir, "*.go"))
	require.NoError(t, err)
	for _, f := range own {
		replace[f] = "" // hidden from the build
	}
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": replace})
	require.NoError(t, err)
	overlayFile := filepath.Join(tmp, "overlay.json")
	require.NoError(t, os.WriteFile(overlayFile, overlay, 0o644))
	for _, args := range [][]string{
		{"build", "-overlay", overlayFile, "-o", filepath.Join(tmp, "snippet"), "./internal/readmetest"},
		{"vet", "-overlay", overlayFile, "./internal/readmetest"},
	} {
		cmd := exec.Command("go", args...)
		cmd.Dir = mod
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %w\n%s\nprogram:\n%s", args[0], err, out, numbered(prog))
		}
	}
	return nil
}

// numbered prefixes each line of src with its number, to read compiler
// errors against.
func numbered(src string) string {
	var b strings.Builder
	for i, line := range strings.Split(src, "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, line)
	}
	return b.String()
}

func TestProgramOfAFragment(t *testing.T) {
	prog, err := program("srv := &http.Server{Handler: nethttp.Handler(broker)}\nbroker, err := core.New(core.Config{})")
	require.NoError(t, err)
	assert.Contains(t, prog, `"github.com/ssekit/ssekit/adapters/nethttp"`)
	assert.Contains(t, prog, `"net/http"`)
	assert.NotContains(t, prog, `"github.com/google/uuid"`)
	assert.Contains(t, prog, "_ = srv")
	assert.Contains(t, prog, "_ = err")

	full := "package main\n\nfunc main() {}\n"
	prog, err = program(full)
	require.NoError(t, err)
	assert.Equal(t, full, prog)

	_, err = program("func broken(")
	assert.Error(t, err)
}

func TestGoBlocks(t *testing.T) {
	md := "# x\n\n```go\na := 1\n```\n\n```sh\nls\n```\n\n  ```go\nb := 2\n  ```\n"
	assert.Equal(t, []block{{line: 3, src: "a := 1"}, {line: 11, src: "b := 2"}}, goBlocks(md))
}
