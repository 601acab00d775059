package sseredis

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/ssekit/ssekit/internal/leaktest"
)

// quiet drops go-redis's own log lines (dial failures while the restart
// test has Redis down); the backend reports through Options.ErrorLog.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	leaktest.VerifyTestMain(m)
}
