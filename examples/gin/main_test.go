package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ssekit/ssekit/core"
	"github.com/ssekit/ssekit/examples/internal/exampletest"
	"github.com/ssekit/ssekit/internal/leaktest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	leaktest.VerifyTestMain(m)
}

func TestPublishAndStream(t *testing.T) {
	b, err := core.New(core.Config{Authenticator: core.InsecureQueryAuthenticator(), RetryHint: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, newRouter(b), b) }()
	exampletest.PublishAndStream(t, "http://"+ln.Addr().String(), stop, done)
}
