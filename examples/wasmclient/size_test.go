package wasmclient

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// TestWasmSize measures the app as js/wasm, what a browser downloads, and
// which packages its code comes from. go tool nm cannot read wasm, so the
// test reads the binary itself: the code section gives each function's
// size, the name section its Go name.
//
// It checks that the measurement works (the client's code is found) and
// that nothing of package core is linked, let alone core.Broker: issue 17
// wants the client honest about its size, with no broker in it, so the
// client decodes with the wire format's own package, core/sse. The figures
// are logged (go test -v -run TestWasmSize) and recorded in README.md.
func TestWasmSize(t *testing.T) {
	bin, gz := sizes(t, appWasm)
	baseBin, baseGz := sizes(t, baseWasm)
	m, err := parseWasm(bin)
	require.NoError(t, err, "reading %s", appWasm)
	base, err := parseWasm(baseBin)
	require.NoError(t, err, "reading %s", baseWasm)
	pkgOf := packageNamer(t)
	byPkg, code := m.codeByPackage(pkgOf)
	baseByPkg, _ := base.codeByPackage(pkgOf)
	pkgs := slices.SortedFunc(maps.Keys(byPkg), func(a, b string) int {
		return cmp.Or(cmp.Compare(byPkg[b], byPkg[a]), strings.Compare(a, b))
	})
	added := slices.SortedFunc(maps.Keys(byPkg), func(a, b string) int {
		return cmp.Or(cmp.Compare(byPkg[b]-baseByPkg[b], byPkg[a]-baseByPkg[a]), strings.Compare(a, b))
	})

	var b strings.Builder
	fmt.Fprintf(&b, "app.wasm (GOOS=js GOARCH=wasm): %s (%s); code %s in %d functions, data %s\n",
		kib(len(bin)), gzipped(gz), kib(code), len(m.funcs), kib(m.data))
	fmt.Fprintf(&b, "baseline.wasm (one net/http GET, no SSE): %s (%s); the app adds %s (%s)\n",
		kib(len(baseBin)), gzipped(baseGz), kib(len(bin)-len(baseBin)), gzipped(gz-baseGz))
	fmt.Fprintf(&b, "largest packages by code:\n")
	for _, p := range pkgs[:min(len(pkgs), 15)] {
		fmt.Fprintf(&b, "  %9s  %s\n", kib(byPkg[p]), p)
	}
	fmt.Fprintf(&b, "code the app adds over the baseline, by package (data: %s more):\n", kib(m.data-base.data))
	for _, p := range added[:min(len(added), 10)] {
		fmt.Fprintf(&b, "  %9s  %s\n", kib(byPkg[p]-baseByPkg[p]), p)
	}
	fmt.Fprintf(&b, "packages outside the standard library:\n")
	for _, p := range pkgs {
		if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
			fmt.Fprintf(&b, "  %9s  %s\n", kib(byPkg[p]), p)
		}
	}
	// The client decodes with core/sse, which imports only the standard
	// library. These lines say what of it is linked, and what of core
	// (nothing, or something the client calls reaches the broker's
	// package). Mangled names keep the two apart: "core." is not a prefix
	// of "core_sse.".
	linked := func(pkg string) []wasmFunc {
		var fs []wasmFunc
		for _, f := range m.funcs {
			if strings.HasPrefix(f.name, wasmName(pkg+".")) {
				fs = append(fs, f)
			}
		}
		slices.SortFunc(fs, func(a, b wasmFunc) int { return cmp.Or(cmp.Compare(b.size, a.size), strings.Compare(a.name, b.name)) })
		return fs
	}
	wire, core := linked("github.com/ssekit/ssekit/core/sse"), linked("github.com/ssekit/ssekit/core")
	fmt.Fprintf(&b, "core/sse: %d functions linked; largest:\n", len(wire))
	for _, f := range wire[:min(len(wire), 8)] {
		fmt.Fprintf(&b, "  %9s  %s\n", kib(f.size), f.name)
	}
	fmt.Fprintf(&b, "core: %d functions linked\n", len(core))
	for _, f := range core[:min(len(core), 8)] {
		fmt.Fprintf(&b, "  %9s  %s\n", kib(f.size), f.name)
	}
	t.Log(b.String())

	assert.NotZero(t, byPkg["github.com/ssekit/ssekit/client"], "no code of package client in %s: the measurement reads the wrong binary or names", appWasm)
	assert.NotEmpty(t, wire, "no code of package core/sse in %s: the client no longer decodes with it?", appWasm)
	assert.Empty(t, core, "functions of package core are linked into the client's wasm: something the client calls imports core (go list -deps ./client)")
}

// sizes returns the binary at path and its size compressed by gzip -9,
// what a browser downloads from a server that compresses it (0 when gzip
// is not on the PATH). The gzip program, not compress/gzip: under -race
// the test binary's own compressor takes half a minute for the two files.
func sizes(t *testing.T, path string) ([]byte, int) {
	t.Helper()
	bin, err := os.ReadFile(path)
	require.NoError(t, err)
	if _, err := exec.LookPath("gzip"); err != nil {
		return bin, 0
	}
	gz, err := exec.Command("gzip", "-9", "-c", path).Output()
	require.NoError(t, err, "gzip -9 -c %s", path)
	return bin, len(gz)
}

// gzipped formats a compressed size, or says that there is none.
func gzipped(n int) string {
	if n == 0 {
		return "gzip not on the PATH"
	}
	return kib(n) + " gzipped"
}

func kib(n int) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }

// wasmName is a Go symbol name as Go's linker writes it in the wasm name
// section: every character but letters, digits, '_' and '.' becomes '_'
// (cmd/link/internal/wasm: nameRegexp). "net/http.(*Client).Do" is
// "net_http.__Client_.Do".
func wasmName(sym string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return '_'
	}, sym)
}

// packageNamer returns a function that names the package of a function
// in the wasm name section. The mangling cannot be undone ('/' and '_'
// look alike), so the names are matched against the packages the app
// links, as go list reports them for js/wasm, mangled the same way:
// "net_http.__Client_.Do" is net/http, not net. Functions of no package
// (the runtime's assembly, the linker's "type:.eq.T") are grouped by the
// name up to its first dot.
func packageNamer(t *testing.T) func(name string) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./wasmclient/app")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	out, err := cmd.Output()
	require.NoError(t, err, "go list -deps ./wasmclient/app")
	// The program's own package is "main" in symbol names.
	paths := append(strings.Fields(string(out)), "main")
	// Longest first, so that net/http wins over net.
	slices.SortFunc(paths, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	mangled := make([]string, len(paths))
	for i, p := range paths {
		mangled[i] = wasmName(p) + "."
	}
	return func(name string) string {
		for i, m := range mangled {
			if strings.HasPrefix(name, m) {
				return paths[i]
			}
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			return name[:i] + " (no package)"
		}
		return name + " (no package)"
	}
}

// codeByPackage sums the code of m's functions by package, and in all.
func (m *wasmModule) codeByPackage(pkgOf func(string) string) (map[string]int, int) {
	byPkg := map[string]int{}
	total := 0
	for _, f := range m.funcs {
		byPkg[pkgOf(f.name)] += f.size
		total += f.size
	}
	return byPkg, total
}

// wasmModule is what the size report needs of a wasm binary.
type wasmModule struct {
	funcs []wasmFunc // the module's own functions, in index order
	data  int        // bytes of the data section (read-only data, type information)
}

type wasmFunc struct {
	name string
	size int // bytes of its body in the code section
}

// parseWasm reads the sections of a WebAssembly binary (the core spec's
// binary format): imports (to know where the module's own function
// indexes start), the code section (body sizes), the data section and the
// custom "name" section (function names), which Go's linker writes unless
// told -s.
func parseWasm(bin []byte) (*wasmModule, error) {
	if len(bin) < 8 || string(bin[:4]) != "\x00asm" {
		return nil, errors.New("not a wasm binary")
	}
	r := &wasmReader{b: bin[8:]}
	m := &wasmModule{}
	var imported int
	var sizes []int
	names := map[int]string{}
	for r.more() {
		id := r.byte()
		sec := &wasmReader{b: r.bytes(int(r.u32()))}
		switch id {
		case 0: // custom
			if sec.name() == "name" {
				for sec.more() {
					sub := sec.byte()
					body := &wasmReader{b: sec.bytes(int(sec.u32()))}
					if sub != 1 { // function names
						continue
					}
					for n := body.u32(); n > 0 && body.err == nil; n-- {
						idx := int(body.u32())
						names[idx] = body.name()
					}
				}
			}
		case 2: // imports
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				sec.name() // module
				sec.name() // field
				switch kind := sec.byte(); kind {
				case 0: // function: type index
					sec.u32()
					imported++
				case 1: // table: reference type, limits
					sec.byte()
					sec.limits()
				case 2: // memory: limits
					sec.limits()
				case 3: // global: value type, mutability
					sec.byte()
					sec.byte()
				default:
					return nil, fmt.Errorf("import of unknown kind %d", kind)
				}
			}
		case 10: // code
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				size := int(sec.u32())
				sec.bytes(size)
				sizes = append(sizes, size)
			}
		case 11: // data
			m.data = len(sec.b)
		}
		if sec.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, sec.err)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(names) == 0 {
		return nil, errors.New("no function names (built with -ldflags=-s?)")
	}
	for i, size := range sizes {
		name, ok := names[imported+i]
		if !ok {
			name = fmt.Sprintf("func%d", imported+i)
		}
		m.funcs = append(m.funcs, wasmFunc{name: name, size: size})
	}
	return m, nil
}

// wasmReader decodes the binary format's primitives; the first error
// sticks and later reads return zero values.
type wasmReader struct {
	b   []byte
	err error
}

func (r *wasmReader) more() bool { return r.err == nil && len(r.b) > 0 }

func (r *wasmReader) byte() byte {
	if b := r.bytes(1); len(b) == 1 {
		return b[0]
	}
	return 0
}

func (r *wasmReader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errors.New("truncated")
		return nil
	}
	b := r.b[:n]
	r.b = r.b[n:]
	return b
}

// u32 reads an unsigned LEB128 number.
func (r *wasmReader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > 1<<32-1 {
		r.err = errors.New("bad LEB128 number")
		return 0
	}
	r.b = r.b[n:]
	return uint32(v)
}

func (r *wasmReader) name() string { return string(r.bytes(int(r.u32()))) }

func (r *wasmReader) limits() {
	if r.byte()&1 != 0 {
		r.u32()
		r.u32()
		return
	}
	r.u32()
}
