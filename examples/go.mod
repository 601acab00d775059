module github.com/ssekit/ssekit/examples

go 1.25

require (
	github.com/google/uuid v1.6.0
	github.com/ssekit/ssekit v0.0.0
)

require (
	github.com/chromedp/chromedp v0.23.0
	go.uber.org/goleak v1.3.0
)

require (
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
)

replace github.com/ssekit/ssekit => ../
