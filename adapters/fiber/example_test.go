package ssefiber_test

import (
	"context"
	"fmt"
	"log"

	"github.com/gofiber/fiber/v3"

	ssefiber "github.com/ssekit/ssekit/adapters/fiber"
	"github.com/ssekit/ssekit/core"
)

// New takes the options every ssekit adapter has, and reports an invalid
// one where Handler would panic.
func ExampleNew() {
	broker, err := core.New(core.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close(context.Background())

	_, err = ssefiber.New(broker, ssefiber.WithCORS(ssefiber.CORS{AllowedOrigins: []string{"*"}, AllowCredentials: true}))
	fmt.Println(err)

	h, err := ssefiber.New(broker,
		ssefiber.WithCORS(ssefiber.CORS{AllowedOrigins: []string{"https://app.example.com"}}),
		ssefiber.WithErrorLog(func(err error) { log.Printf("stream ended: %v", err) }))
	if err != nil {
		log.Fatal(err)
	}
	app := fiber.New()
	app.Get("/events", h)
	fmt.Println("mounted")
	// Output:
	// ssekit/fiber: invalid CORS: "*" with AllowCredentials would let any site read a user's stream
	// mounted
}
