package main

import (
	"testing"

	"github.com/ssekit/ssekit/examples/internal/exampletest"
	"github.com/ssekit/ssekit/internal/leaktest"
)

func TestMain(m *testing.M) { leaktest.VerifyTestMain(m) }

type stream = exampletest.Stream

var (
	subscribe = exampletest.Subscribe
	post      = exampletest.Post
)
