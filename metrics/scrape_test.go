//go:build !js && !wasip1

package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScrape runs the scenario and reads it back the way Prometheus does:
// over HTTP from a real /metrics endpoint.
func TestScrape(t *testing.T) {
	reg, expected := runScenario(t)
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	require.NoError(t, testutil.ScrapeAndCompare(srv.URL+"/metrics", strings.NewReader(expected), scenarioNames...))

	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	text := string(body)
	assert.Contains(t, text, "ssekit_delivery_latency_seconds_count 3\n")
	assert.Contains(t, text, `ssekit_delivery_latency_seconds_bucket{le="10"} 3`+"\n")
	assert.Contains(t, text, `ssekit_delivery_latency_seconds_bucket{le="+Inf"} 3`+"\n")
}
