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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/metrics"
)

func TestDashboardQueriesExist(t *testing.T) {
	raw, err := os.ReadFile("ssekit.json")
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	require.NoError(t, json.Unmarshal(raw, &dash))

	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	// One publish and one reject make every labelled series appear.
	b, err := core.New(core.Config{Observer: m.Observer(), MaxConnections: 1})
	require.NoError(t, err)
	defer b.Close(context.Background())
	// The series read from the broker's Stats appear once it is tracked,
	// as the hub does.
	m.Track(b)
	require.NoError(t, b.Broadcast(context.Background(), "e", ""))
	families, err := reg.Gather()
	require.NoError(t, err)
	exported := map[string]bool{}
	for _, f := range families {
		name := f.GetName()
		exported[name] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			exported[name+suffix] = true
		}
	}

	series := regexp.MustCompile(`ssekit_[a-z_]+`)
	require.NotEmpty(t, dash.Panels, "no panels")
	for _, p := range dash.Panels {
		assert.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			names := series.FindAllString(tg.Expr, -1)
			assert.NotEmpty(t, names, "panel %q: query %q reads no ssekit series", p.Title, tg.Expr)
			for _, n := range names {
				assert.True(t, exported[n], "panel %q: %s is not exported by package metrics (have %s)", p.Title, n, strings.Join(keys(exported), ", "))
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
