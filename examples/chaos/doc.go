// Package chaos is a hostile-client suite for the hub: its tests build
// the real examples/hub binary, attack it over TCP by the hundred
// (aborted replays and flushes, trickling and oversized requests, churn,
// clients that never read), and check that afterwards the process is
// alive, its goroutines, descriptors and registered connections are back
// to their baseline, and /healthz answers within 100 ms.
//
//	cd examples && go test ./chaos/
//
// It runs on Linux (it counts descriptors in /proc) in well under a
// minute on two cores. The package holds no code besides its tests; see
// README.md.
package chaos
