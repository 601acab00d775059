package releasetest

import (
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// goBlocks returns the ```go fenced blocks of a Markdown file, in order.
func goBlocks(markdown string) []string {
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(markdown, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && trimmed == "```go":
			in, cur = true, nil
		case in && trimmed == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// imp is one import a scaffold offers a snippet.
type imp struct {
	name string // the name the snippet uses
	path string
}

// scaffold is what a README fragment evidently assumes around it: the
// imports of the packages it names, a broker, the framework's router and a
// ctx. Nothing else is supplied: an identifier the README never defines is a
// snippet that does not compile as written.
type scaffold struct {
	imports []imp  // offered; the ones the program does not use are dropped
	prelude string // statements before the snippet; the names they declare are used
}

// stdImports are offered to every snippet.
var stdImports = []imp{
	{"context", "context"},
	{"errors", "errors"},
	{"fmt", "fmt"},
	{"log", "log"},
	{"http", "net/http"},
	{"os", "os"},
	{"signal", "os/signal"},
	{"syscall", "syscall"},
	{"time", "time"},
}

var packageClause = regexp.MustCompile(`(?m)^package\s+([A-Za-z_][A-Za-z0-9_]*)`)

// packageName reads the name a package declares from its non-test files in
// dir, so that a renamed package is imported under its new name.
func packageName(dir string) (string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", err
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		if m := packageClause.FindSubmatch(data); m != nil {
			return string(m[1]), nil
		}
	}
	return "", fmt.Errorf("no Go package in %s", dir)
}

// snippetProgram turns a README block into a complete program: a block that
// is a program (it has a package clause) as it is; a fragment inside
// func main, in a block of its own after the scaffold's prelude (so it may
// redeclare broker or err), with "_ = x" for every name it declares and
// without the offered imports it does not use.
func snippetProgram(sc scaffold, snippet string) (string, error) {
	if packageClause.MatchString(snippet) {
		return snippet, nil
	}
	body := func(imports []imp, preludeUses, snippetUses string) string {
		var b strings.Builder
		b.WriteString("package main\n\nimport (\n")
		for _, im := range imports {
			fmt.Fprintf(&b, "\t%s %q\n", im.name, im.path)
		}
		b.WriteString(")\n\nfunc main() {\n")
		b.WriteString(sc.prelude)
		b.WriteString("\n")
		b.WriteString(preludeUses)
		b.WriteString("{\n")
		b.WriteString(snippet)
		b.WriteString("\n")
		b.WriteString(snippetUses)
		b.WriteString("}\n}\n")
		return b.String()
	}
	offered := append(append([]imp(nil), stdImports...), sc.imports...)
	src := body(offered, "", "")
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "main.go", src, 0)
	if err != nil {
		return "", fmt.Errorf("the snippet does not parse as the statements of a function: %w", err)
	}

	// The names the prelude and the snippet declare at their top level.
	var main *ast.FuncDecl
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "main" {
			main = fd
		}
	}
	stmts := main.Body.List
	snippetBlock := stmts[len(stmts)-1].(*ast.BlockStmt)
	collect := func(list []ast.Stmt) string {
		var uses strings.Builder
		declared := func(name string) {
			if name != "_" {
				fmt.Fprintf(&uses, "_ = %s\n", name)
			}
		}
		for _, s := range list {
			switch s := s.(type) {
			case *ast.AssignStmt:
				if s.Tok == token.DEFINE {
					for _, e := range s.Lhs {
						if id, ok := e.(*ast.Ident); ok {
							declared(id.Name)
						}
					}
				}
			case *ast.DeclStmt:
				if gd, ok := s.Decl.(*ast.GenDecl); ok && gd.Tok == token.VAR {
					for _, spec := range gd.Specs {
						for _, id := range spec.(*ast.ValueSpec).Names {
							declared(id.Name)
						}
					}
				}
			}
		}
		return uses.String()
	}
	preludeUses := collect(stmts[:len(stmts)-1])
	snippetUses := collect(snippetBlock.List)

	// The package names the program refers to.
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				used[id.Name] = true
			}
		}
		return true
	})
	var imports []imp
	for _, im := range offered {
		if used[im.name] {
			imports = append(imports, im)
		}
	}
	out, err := format.Source([]byte(body(imports, preludeUses, snippetUses)))
	if err != nil {
		return "", fmt.Errorf("format: %w", err)
	}
	return string(out), nil
}
