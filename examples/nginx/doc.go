// Package nginx tests ssekit behind a real nginx, configured with
// ssekit.conf: the configuration docs/OPERATIONS.md documents. The test
// starts /usr/sbin/nginx (Debian package nginx; scripts/install-deps.sh
// installs it) as a child process in a temporary directory, with TLS and
// HTTP/2 on a free loopback port, in front of a net/http server
// in-process. Without nginx the test fails, unless SSEKIT_SKIP lists nginx
// (internal/testenv); SSEKIT_NGINX=/path/to/nginx uses another binary.
//
//	cd examples && go test ./nginx/
package nginx
