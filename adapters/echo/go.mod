module github.com/ssekit/ssekit/adapters/echo

go 1.25.0

require (
	github.com/labstack/echo/v5 v5.4.4
	github.com/ssekit/ssekit v0.1.0
)

require (
	github.com/google/uuid v1.6.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/time v0.15.0 // indirect
)

replace github.com/ssekit/ssekit => ../..
