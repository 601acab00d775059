// Package apitable keeps the API table in the README's "Frameworks"
// section and the adapters' exported names in step. The adapters live in
// modules of their own, which the root module cannot import without
// pulling every framework into its graph, so the test reads their source
// with go/parser instead.
package apitable

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// root is the repository root, from this package's directory.
const root = "../../.."

// common are the options every adapter offers under the same name.
var common = []string{"WithCORS", "WithErrorLog"}

// row is one line of the README's API table.
type row struct {
	dir      string   // "adapters/gin"
	handler  []string // Handler's result type, then New's if it differs
	options  []string
	shutdown []string // "Shutdown(ctx, *http.Server, broker)", then any other helper
}

// pkg is what the test needs of one adapter package: its name and its
// exported functions.
type pkg struct {
	name  string
	funcs map[string]*ast.FuncType
}

func TestREADMETable(t *testing.T) {
	rows := readTable(t)
	adapters := adapterDirs(t)
	var listed []string
	for _, r := range rows {
		listed = append(listed, r.dir)
	}
	assert.ElementsMatch(t, adapters, listed, "every adapter (a package under adapters/ with a Handler) has exactly one row")

	for _, r := range rows {
		t.Run(r.dir, func(t *testing.T) {
			p := parse(t, filepath.Join(root, r.dir))
			checkHandler(t, p, r)
			checkOptions(t, p, r)
			checkShutdown(t, p, r)
		})
	}
}

// checkHandler: Handler(b *core.Broker, opts ...Option) T and
// New(b *core.Broker, opts ...Option) (U, error), T and U as the table says.
func checkHandler(t *testing.T, p pkg, r row) {
	require.NotEmpty(t, r.handler, "handler column")
	want := map[string]string{"Handler": r.handler[0], "New": r.handler[len(r.handler)-1]}
	for _, name := range []string{"Handler", "New"} {
		f, ok := p.funcs[name]
		if !assert.True(t, ok, "%s is not exported", name) {
			continue
		}
		assert.Equal(t, []string{"*core.Broker", "...Option"}, params(f, p.name), "%s's parameters", name)
		results := []string{want[name]}
		if name == "New" {
			results = append(results, "error")
		}
		assert.Equal(t, results, fieldTypes(f.Results, p.name), "%s's results", name)
	}
}

// checkOptions: the With functions are exactly those the table lists, each
// returns Option, and the common ones are there.
func checkOptions(t *testing.T, p pkg, r row) {
	var with []string
	for name, f := range p.funcs {
		if strings.HasPrefix(name, "With") {
			with = append(with, name)
			assert.Equal(t, []string{"Option"}, fieldTypes(f.Results, p.name), "%s's result", name)
		}
	}
	assert.ElementsMatch(t, with, r.options, "options")
	for _, name := range common {
		assert.Contains(t, with, name, "every adapter offers %s", name)
	}
}

// shutdownSpan is the shutdown column's first entry.
var shutdownSpan = regexp.MustCompile(`^Shutdown\(ctx, (\S+), broker\)$`)

// checkShutdown: Shutdown(ctx context.Context, server T, b *core.Broker)
// error, T as the table says; every other exported function about
// shutting down is listed after it, and exists.
func checkShutdown(t *testing.T, p pkg, r row) {
	require.NotEmpty(t, r.shutdown, "shutdown column")
	m := shutdownSpan.FindStringSubmatch(r.shutdown[0])
	require.NotNil(t, m, "shutdown column starts with %q, want Shutdown(ctx, <server>, broker)", r.shutdown[0])
	f, ok := p.funcs["Shutdown"]
	require.True(t, ok, "Shutdown is not exported")
	assert.Equal(t, []string{"context.Context", m[1], "*core.Broker"}, params(f, p.name), "Shutdown's parameters")
	assert.Equal(t, []string{"error"}, fieldTypes(f.Results, p.name), "Shutdown's result")
	var listed, exported []string
	for _, s := range r.shutdown {
		listed = append(listed, s[:strings.Index(s+"(", "(")])
	}
	for name := range p.funcs {
		if strings.Contains(name, "Shutdown") {
			exported = append(exported, name)
		}
	}
	assert.ElementsMatch(t, exported, listed, "shutdown helpers")
}

// readTable returns the rows of the table under "## Frameworks" whose
// header starts with "| module |".
func readTable(t *testing.T) []row {
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	text := string(b)
	start := strings.Index(text, "\n## Frameworks\n")
	require.NotEqual(t, -1, start, "README.md has no Frameworks section")
	section := text[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var rows []row
	in := false
	for line := range strings.Lines(section) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "| module |"):
			in = true
		case !in || strings.HasPrefix(line, "| ---"):
		case !strings.HasPrefix(line, "|"):
			in = false
		default:
			cells := strings.Split(strings.Trim(line, "|"), "|")
			require.Len(t, cells, 4, "row %q", line)
			dir := spans(cells[0])
			require.Len(t, dir, 1, "module cell of %q", line)
			rows = append(rows, row{dir: dir[0], handler: spans(cells[1]), options: spans(cells[2]), shutdown: spans(cells[3])})
		}
	}
	require.NotEmpty(t, rows, "no API table (header \"| module | ...\") in the Frameworks section")
	return rows
}

// spans returns the code spans of a Markdown table cell.
func spans(cell string) []string {
	var out []string
	for i, part := range strings.Split(cell, "`") {
		if i%2 == 1 {
			out = append(out, part)
		}
	}
	return out
}

// adapterDirs lists the packages under adapters/ that export Handler.
func adapterDirs(t *testing.T) []string {
	var dirs []string
	entries, err := os.ReadDir(filepath.Join(root, "adapters"))
	require.NoError(t, err)
	for _, e := range entries {
		if !e.IsDir() || e.Name() == "internal" {
			continue
		}
		if _, ok := parse(t, filepath.Join(root, "adapters", e.Name())).funcs["Handler"]; ok {
			dirs = append(dirs, "adapters/"+e.Name())
		}
	}
	sort.Strings(dirs)
	return dirs
}

// parse reads the exported functions of the package in dir (its non-test
// files).
func parse(t *testing.T, dir string) pkg {
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	p := pkg{funcs: map[string]*ast.FuncType{}}
	fset := token.NewFileSet()
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		p.name = f.Name.Name
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && fd.Name.IsExported() {
				p.funcs[fd.Name.Name] = fd.Type
			}
		}
	}
	return p
}

// params returns f's parameter types, one per parameter.
func params(f *ast.FuncType, pkgName string) []string { return fieldTypes(f.Params, pkgName) }

// fieldTypes returns the types of a parameter or result list, one per
// name, with the package's own exported types qualified by its name
// (StreamHandler in package nethttp reads nethttp.StreamHandler), as a
// user writes them, except Option, which the table names bare.
func fieldTypes(fl *ast.FieldList, pkgName string) []string {
	if fl == nil {
		return nil
	}
	var out []string
	for _, f := range fl.List {
		s := qualify(types.ExprString(f.Type), pkgName)
		for range max(len(f.Names), 1) {
			out = append(out, s)
		}
	}
	return out
}

// ownType matches an unqualified exported identifier, with the pointer or
// variadic marks before it.
var ownType = regexp.MustCompile(`^([*.]*)([A-Z]\w*)$`)

func qualify(s, pkgName string) string {
	m := ownType.FindStringSubmatch(s)
	if m == nil || slices.Contains([]string{"Option"}, m[2]) {
		return s
	}
	return m[1] + pkgName + "." + m[2]
}
