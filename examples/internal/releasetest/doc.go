// Package releasetest proves, without the network, that every ssekit module
// installs as a user installs it: its tests build a file-based module proxy
// (GOPROXY=file://...) from the working tree at the release version named in
// versions.txt, then, in fresh modules outside the workspace, run "go get"
// for the net/http adapter (root module), each framework adapter and the Redis
// module, and compile a program for each: a minimal complete one and the main
// snippet of the module's README. They also drive scripts/release.sh (check,
// set, tags) on a copy of the repository's go.mod files.
//
// The package has no API; it lives in the examples module so that the
// repository's test command ("go test ./..." in every module) runs it.
package releasetest
