module github.com/ssekit/ssekit/adapters/internal/fasthttpsse

go 1.25.0

require (
	github.com/ssekit/ssekit v0.1.0
	github.com/valyala/fasthttp v1.69.0
)

require (
	github.com/andybalholm/brotli v1.2.0 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/klauspost/compress v1.18.4 // indirect
	github.com/valyala/bytebufferpool v1.0.0 // indirect
	go.uber.org/goleak v1.3.0 // indirect
)

replace github.com/ssekit/ssekit => ../../..
