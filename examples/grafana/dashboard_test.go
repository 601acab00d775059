// Package grafana holds the ssekit Grafana dashboard; its test keeps the
// dashboard's queries in step with the series package metrics exports.
package grafana

import (
	"context"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/metrics"
)

func TestDashboardQueriesExist(t *testing.T) {
	raw, err := os.ReadFile("ssekit.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	// One publish and one reject make every labelled series appear.
	b, err := core.New(core.Config{Observer: m.Observer(), MaxConnections: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	// The series read from the broker's Stats appear once it is tracked,
	// as the hub does.
	m.Track(b)
	if err := b.Broadcast(context.Background(), "e", ""); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		exported[name] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			exported[name+suffix] = true
		}
	}

	series := regexp.MustCompile(`ssekit_[a-z_]+`)
	if len(dash.Panels) == 0 {
		t.Fatal("no panels")
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			names := series.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q reads no ssekit series", p.Title, tg.Expr)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("panel %q: %s is not exported by package metrics (have %s)", p.Title, n, strings.Join(keys(exported), ", "))
				}
			}
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		if !strings.HasSuffix(k, "_sum") && !strings.HasSuffix(k, "_count") && !strings.HasSuffix(k, "_bucket") {
			out = append(out, k)
		}
	}
	return out
}
