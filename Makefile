.PHONY: test run bench

# The one test command (same as CI: .ci/run).
test:
	./scripts/test.sh

run:
	go run ./examples/hub

bench:
	go test -run '^$$' -bench . -benchmem ./core/...
