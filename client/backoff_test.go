package client

import (
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.5}.withDefaults()
	base := b.Initial
	zero := func() float64 { return 0 }
	ms := time.Millisecond
	for failures, want := range []time.Duration{100 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second} {
		assert.Equal(t, want, b.delay(base, failures, 0, zero), "failures=%d", failures)
	}
	assert.Equal(t, time.Second, b.delay(base, 1<<30, 0, zero), "no overflow after many failures")

	// Jitter adds up to half, and never after a stream simply ended.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		d := b.delay(base, 3, 0, rng.Float64)
		assert.GreaterOrEqual(t, d, 400*ms)
		assert.Less(t, d, 600*ms)
	}
	assert.Equal(t, base, b.delay(base, 0, 0, rng.Float64))

	// The server's hint and floor win over Max.
	assert.Equal(t, 5*time.Second, b.delay(5*time.Second, 4, 0, zero))
	assert.Equal(t, time.Hour, b.delay(base, 2, time.Hour, zero))
	assert.Equal(t, maxDuration, b.delay(base, 2, maxDuration, func() float64 { return 0.9 }), "saturates")

	flat := Backoff{Multiplier: 1, Jitter: NoJitter}.withDefaults()
	assert.Equal(t, DefaultInitialDelay, flat.delay(DefaultInitialDelay, 50, 0, zero))
}

func TestBackoffDefaults(t *testing.T) {
	assert.Equal(t, Backoff{Initial: 3 * time.Second, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.5}, Backoff{}.withDefaults())
	assert.NoError(t, Backoff{Jitter: NoJitter}.withDefaults().validate())
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                     0,
		"7":                    7 * time.Second,
		" 2 ":                  2 * time.Second,
		"0":                    0,
		"-5":                   0,
		"soon":                 0,
		"99999999999999999999": 0,
		"9999999999999":        maxDuration,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		assert.Equal(t, want, parseRetryAfter(in, now), "%q", in)
	}
}

func TestRetryableStatuses(t *testing.T) {
	for code, want := range map[int]bool{
		408: true, 429: true, 500: true, 502: true, 503: true, 504: true,
		204: false, 301: false, 400: false, 401: false, 403: false, 404: false, 405: false, 410: false,
	} {
		assert.Equal(t, want, retryable(code), "%d", code)
	}
}
