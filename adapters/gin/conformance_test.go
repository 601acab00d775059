package ssegin_test

import (
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/ssekit/ssekit/adapters/adaptertest"
	ssegin "github.com/ssekit/ssekit/adapters/gin"
	"github.com/ssekit/ssekit/core"
)

// TestConformance runs the suite over HTTP/1.1 and HTTP/2 on a gin engine
// with its recovery middleware, mounted the one-line way.
func TestConformance(t *testing.T) {
	t.Parallel()
	adaptertest.Run(t, func(t *testing.T, b *core.Broker) http.Handler {
		r := gin.New()
		r.Use(gin.Recovery())
		r.GET("/events", ssegin.Handler(b))
		return r
	})
}
