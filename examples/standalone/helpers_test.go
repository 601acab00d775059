package main

import "github.com/ssekit/ssekit/examples/internal/exampletest"

type stream = exampletest.Stream

var (
	subscribe = exampletest.Subscribe
	post      = exampletest.Post
)
