package sseecho_test

import (
	"net/http"
	"testing"

	"github.com/labstack/echo/v5"
	"github.com/labstack/echo/v5/middleware"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	sseecho "github.com/ssekit/ssekit/adapters/echo"
	"github.com/ssekit/ssekit/core"
)

// TestConformance runs the suite over HTTP/1.1 and HTTP/2 on an echo
// instance with its recover middleware, mounted the one-line way.
func TestConformance(t *testing.T) {
	t.Parallel()
	adaptertest.Run(t, func(t *testing.T, b *core.Broker) http.Handler {
		e := echo.New()
		e.Use(middleware.Recover())
		e.GET("/events", sseecho.Handler(b))
		return e
	})
}
