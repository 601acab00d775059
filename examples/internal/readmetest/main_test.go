package readmetest

import (
	"testing"

	"github.com/ssekit/ssekit/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }
