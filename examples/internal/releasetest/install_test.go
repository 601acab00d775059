package releasetest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// target is one module a user installs, and what the test compiles with it.
type target struct {
	name   string // subtest name
	dir    string // the module's directory in the repository
	pkg    string // the package a user imports, relative to the repository root
	readme string // the README whose first Go block is the module's main snippet
	// minimal is a complete program ({{.Pkg}}: the package's name), compiled
	// whatever the README says.
	minimal string
	// scaffold is what the README's main snippet may use besides the package.
	scaffold scaffold
	// notInGraph are module path prefixes a user of this module must not get.
	notInGraph []string
}

const (
	ssekit = "github.com/ssekit/ssekit"
	// The prelude every scaffold starts with.
	brokerPrelude = `ctx := context.Background()
broker, err := core.New(core.Config{})
if err != nil {
	log.Fatal(err)
}
`
)

var targets = []target{
	{
		name:   "nethttp",
		dir:    ".",
		pkg:    "adapters/nethttp",
		readme: "README.md",
		minimal: `package main

import (
	"log"
	"net/http"

	"github.com/ssekit/ssekit/adapters/nethttp"
	"github.com/ssekit/ssekit/core"
)

func main() {
	broker, err := core.New(core.Config{})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /events", {{.Pkg}}.Handler(broker))
	log.Fatal(http.ListenAndServe("localhost:8080", mux))
}
`,
		scaffold: scaffold{prelude: brokerPrelude + "mux := http.NewServeMux()\n"},
		notInGraph: []string{
			"github.com/gin-gonic/", "github.com/labstack/", "github.com/gofiber/",
			"github.com/valyala/fasthttp", "github.com/redis/",
			ssekit + "/adapters/",
		},
	},
	{
		name:   "gin",
		dir:    "adapters/gin",
		pkg:    "adapters/gin",
		readme: "adapters/gin/README.md",
		minimal: `package main

import (
	"log"

	"github.com/gin-gonic/gin"
	{{.Pkg}} "github.com/ssekit/ssekit/adapters/gin"
	"github.com/ssekit/ssekit/core"
)

func main() {
	broker, err := core.New(core.Config{})
	if err != nil {
		log.Fatal(err)
	}
	r := gin.New()
	r.GET("/events", {{.Pkg}}.Handler(broker))
	log.Fatal(r.Run("localhost:8080"))
}
`,
		scaffold: scaffold{
			imports: []imp{{"gin", "github.com/gin-gonic/gin"}, {"gzip", "github.com/gin-contrib/gzip"}},
			prelude: brokerPrelude + "r := gin.New()\n",
		},
		notInGraph: []string{"github.com/labstack/", "github.com/gofiber/", "github.com/redis/"},
	},
	{
		name:   "echo",
		dir:    "adapters/echo",
		pkg:    "adapters/echo",
		readme: "adapters/echo/README.md",
		minimal: `package main

import (
	"context"
	"log"

	"github.com/labstack/echo/v5"
	{{.Pkg}} "github.com/ssekit/ssekit/adapters/echo"
	"github.com/ssekit/ssekit/core"
)

func main() {
	broker, err := core.New(core.Config{})
	if err != nil {
		log.Fatal(err)
	}
	e := echo.New()
	e.GET("/events", {{.Pkg}}.Handler(broker))
	sc := echo.StartConfig{Address: "localhost:8080"}
	log.Fatal(sc.Start(context.Background(), e))
}
`,
		scaffold: scaffold{
			imports: []imp{{"echo", "github.com/labstack/echo/v5"}, {"middleware", "github.com/labstack/echo/v5/middleware"}},
			prelude: brokerPrelude + "e := echo.New()\n",
		},
		notInGraph: []string{"github.com/gin-gonic/", "github.com/gofiber/", "github.com/labstack/echo/v4", "github.com/redis/"},
	},
	{
		name:   "echov4",
		dir:    "adapters/echov4",
		pkg:    "adapters/echov4",
		readme: "adapters/echov4/README.md",
		minimal: `package main

import (
	"log"

	"github.com/labstack/echo/v4"
	{{.Pkg}} "github.com/ssekit/ssekit/adapters/echov4"
	"github.com/ssekit/ssekit/core"
)

func main() {
	broker, err := core.New(core.Config{})
	if err != nil {
		log.Fatal(err)
	}
	e := echo.New()
	e.GET("/events", {{.Pkg}}.Handler(broker))
	log.Fatal(e.Start("localhost:8080"))
}
`,
		scaffold: scaffold{
			imports: []imp{{"echo", "github.com/labstack/echo/v4"}, {"middleware", "github.com/labstack/echo/v4/middleware"}},
			prelude: brokerPrelude + "e := echo.New()\n",
		},
		notInGraph: []string{"github.com/gin-gonic/", "github.com/gofiber/", "github.com/labstack/echo/v5", "github.com/redis/"},
	},
	{
		name:   "fiber",
		dir:    "adapters/fiber",
		pkg:    "adapters/fiber",
		readme: "adapters/fiber/README.md",
		minimal: `package main

import (
	"log"

	"github.com/gofiber/fiber/v3"
	{{.Pkg}} "github.com/ssekit/ssekit/adapters/fiber"
	"github.com/ssekit/ssekit/core"
)

func main() {
	broker, err := core.New(core.Config{})
	if err != nil {
		log.Fatal(err)
	}
	app := fiber.New()
	app.Get("/events", {{.Pkg}}.Handler(broker))
	log.Fatal(app.Listen("localhost:8080"))
}
`,
		scaffold: scaffold{
			imports: []imp{{"fiber", "github.com/gofiber/fiber/v3"}, {"compress", "github.com/gofiber/fiber/v3/middleware/compress"}},
			prelude: brokerPrelude + "app := fiber.New()\n",
		},
		notInGraph: []string{"github.com/gin-gonic/", "github.com/labstack/", "github.com/gofiber/fiber/v2", "github.com/redis/"},
	},
	{
		name:   "fiberv2",
		dir:    "adapters/fiberv2",
		pkg:    "adapters/fiberv2",
		readme: "adapters/fiberv2/README.md",
		minimal: `package main

import (
	"log"

	"github.com/gofiber/fiber/v2"
	{{.Pkg}} "github.com/ssekit/ssekit/adapters/fiberv2"
	"github.com/ssekit/ssekit/core"
)

func main() {
	broker, err := core.New(core.Config{})
	if err != nil {
		log.Fatal(err)
	}
	app := fiber.New()
	app.Get("/events", {{.Pkg}}.Handler(broker))
	log.Fatal(app.Listen("localhost:8080"))
}
`,
		scaffold: scaffold{
			imports: []imp{{"fiber", "github.com/gofiber/fiber/v2"}, {"compress", "github.com/gofiber/fiber/v2/middleware/compress"}},
			prelude: brokerPrelude + "app := fiber.New()\n",
		},
		notInGraph: []string{"github.com/gin-gonic/", "github.com/labstack/", "github.com/gofiber/fiber/v3", "github.com/redis/"},
	},
	{
		name:   "redis",
		dir:    "adapters/redis",
		pkg:    "adapters/redis",
		readme: "adapters/redis/README.md",
		minimal: `package main

import (
	"log"

	goredis "github.com/redis/go-redis/v9"
	{{.Pkg}} "github.com/ssekit/ssekit/adapters/redis"
	"github.com/ssekit/ssekit/core"
)

func main() {
	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379"})
	backend, err := {{.Pkg}}.New(client, {{.Pkg}}.Options{})
	if err != nil {
		log.Fatal(err)
	}
	broker, err := core.New(core.Config{Backend: backend})
	if err != nil {
		log.Fatal(err)
	}
	_ = broker
}
`,
		scaffold: scaffold{
			imports: []imp{{"goredis", "github.com/redis/go-redis/v9"}},
			prelude: "ctx := context.Background()\n",
		},
		notInGraph: []string{"github.com/gin-gonic/", "github.com/labstack/", "github.com/gofiber/"},
	},
}

// readmeKnownBroken names the READMEs whose main snippet is known not to
// compile as written, and why. Such a snippet's failure is logged, not fatal
// (the minimal program still proves the module installs); every other
// README's main snippet must compile.
var readmeKnownBroken = map[string]string{}

// TestModulesInstall installs every adapter module and the Redis module from
// a file-based proxy built from the working tree, as a user outside the
// repository would (GOWORK=off, -mod=mod, no network: GOPROXY is the
// working tree's proxy, then the machine's module cache for third-party
// modules, then off), and compiles a program with each.
func TestModulesInstall(t *testing.T) {
	start := time.Now()
	root := repoRoot(t)
	mods := readVersions(t, root)
	version := releaseVersion(t, mods)
	tmp := t.TempDir()

	// The machine's module cache must hold the third-party modules each
	// module's go.mod selects (a consumer selects the same versions). On a
	// machine that built the repository with GOWORK=off they are there; this
	// is the one step that may reach the network, for third-party modules
	// only, and only when they are missing.
	for _, m := range mods {
		if m.released() {
			goCmd(t, filepath.Join(root, filepath.FromSlash(m.Dir)), withEnv([]string{"GOWORK"}, "GOWORK=off"), "mod", "download")
		}
	}
	machineCache := strings.TrimSpace(goCmd(t, root, nil, "env", "GOMODCACHE"))
	require.NotEmpty(t, machineCache)
	t.Logf("third-party modules present in %s (%v)", machineCache, time.Since(start).Round(time.Millisecond))

	proxy := filepath.Join(tmp, "proxy")
	buildProxy(t, root, mods, proxy)

	// A module cache of the test's own: the working tree's modules are
	// extracted there at the release version, never into the machine's
	// cache, where a stale copy of "v0.1.0" would shadow every later run.
	// -trimpath keys the build cache on module@version rather than on this
	// temporary directory, so the machine's GOCACHE serves later runs.
	env := withEnv(
		[]string{"GOFLAGS", "GOPROXY", "GONOPROXY", "GOPRIVATE", "GONOSUMDB", "GONOSUMCHECK", "GOSUMDB",
			"GOWORK", "GOMODCACHE", "GOTOOLCHAIN", "GOINSECURE", "GOVCS"},
		"GOWORK=off",
		"GOFLAGS=-mod=mod -modcacherw -trimpath",
		"GOPROXY=file://"+filepath.ToSlash(proxy)+",file://"+filepath.ToSlash(filepath.Join(machineCache, "cache", "download"))+",off",
		"GOSUMDB=off",
		"GOMODCACHE="+filepath.Join(tmp, "modcache"),
		"GOTOOLCHAIN=local",
		"GOVCS=*:off",
	)
	sums := repoSums(t, root)

	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			mod := findModule(t, mods, tg.dir)
			require.True(t, mod.released(), "%s is not released in versions.txt", tg.dir)
			pkgName, err := packageName(filepath.Join(root, filepath.FromSlash(tg.pkg)))
			require.NoError(t, err)
			importPath := ssekit + "/" + tg.pkg

			dir := filepath.Join(tmp, "consumer-"+tg.name)
			require.NoError(t, os.MkdirAll(dir, 0o755))
			writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/consumer\n\ngo 1.25\n")
			// The repository's go.sum lines: third-party modules are checked
			// against the sums the repository was built with.
			writeFile(t, filepath.Join(dir, "go.sum"), sums)

			goCmd(t, dir, env, "get", importPath+"@"+version)

			// In the module graph (what go get resolved from the go.mod files),
			// every ssekit module is at the release version, and no module of
			// another framework or backend appears.
			graph := goCmd(t, dir, env, "mod", "graph")
			sawModule := false
			for _, node := range strings.Fields(graph) {
				path, ver, _ := strings.Cut(node, "@")
				if path == "example.com/consumer" || path == "go" || path == "toolchain" {
					continue
				}
				if path == mod.Path {
					sawModule = true
				}
				if path == ssekit || strings.HasPrefix(path, ssekit+"/") {
					assert.Equal(t, version, ver, "%s in the module graph", path)
				}
				for _, bad := range tg.notInGraph {
					assert.False(t, strings.HasPrefix(path, bad), "a user of %s gets %s in their module graph", tg.pkg, node)
				}
			}
			assert.True(t, sawModule, "%s is not in the module graph after go get:\n%s", mod.Path, graph)

			// The minimal program: the module installs and its API builds.
			var minimal bytes.Buffer
			require.NoError(t, template.Must(template.New("").Parse(tg.minimal)).Execute(&minimal, struct{ Pkg string }{pkgName}))
			writeFile(t, filepath.Join(dir, "minimal", "main.go"), minimal.String())
			goCmd(t, dir, env, "build", "-o", filepath.Join(tmp, "bin", tg.name+"-minimal"), "./minimal")

			// The README's main snippet.
			readme, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(tg.readme)))
			require.NoError(t, err)
			blocks := goBlocks(string(readme))
			require.NotEmpty(t, blocks, "%s has no Go block", tg.readme)
			sc := tg.scaffold
			sc.imports = append([]imp{{"core", ssekit + "/core"}, {pkgName, importPath}}, sc.imports...)
			if pkgName != "nethttp" {
				sc.imports = append(sc.imports, imp{"nethttp", ssekit + "/adapters/nethttp"})
			}
			prog, err := snippetProgram(sc, blocks[0])
			if err == nil {
				writeFile(t, filepath.Join(dir, "readme", "main.go"), prog)
				var out string
				out, err = runCmd(dir, env, "go", "build", "-o", filepath.Join(tmp, "bin", tg.name+"-readme"), "./readme")
				if err != nil {
					err = fmt.Errorf("%v\n%s\nprogram:\n%s", err, out, prog)
				}
			}
			switch why, known := readmeKnownBroken[tg.readme]; {
			case err != nil && known:
				t.Logf("%s: main snippet does not compile as written (known: %s):\n%v", tg.readme, why, err)
			case err != nil:
				t.Errorf("%s: main snippet does not compile as written:\n%v", tg.readme, err)
			case known:
				t.Logf("%s: main snippet compiles now; drop it from readmeKnownBroken", tg.readme)
			}
		})
	}
	t.Logf("installed %d modules at %s in %v", len(targets), version, time.Since(start).Round(time.Millisecond))
}

func findModule(t *testing.T, mods []release, dir string) release {
	t.Helper()
	for _, m := range mods {
		if m.Dir == dir {
			return m
		}
	}
	require.FailNow(t, "versions.txt does not name "+dir)
	return release{}
}

// repoSums is every go.sum line of the repository (go.work.sum included)
// that is not about an ssekit module.
func repoSums(t *testing.T, root string) string {
	t.Helper()
	var files []string
	require.NoError(t, filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (d.Name() == "go.sum" || d.Name() == "go.work.sum") {
			files = append(files, path)
		}
		return nil
	}))
	seen := map[string]bool{}
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, line := range strings.Split(string(data), "\n") {
			if line == "" || seen[line] || strings.HasPrefix(line, ssekit+" ") || strings.HasPrefix(line, ssekit+"/") {
				continue
			}
			seen[line] = true
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(name), 0o755))
	require.NoError(t, os.WriteFile(name, []byte(content), 0o644))
}
