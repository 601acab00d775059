package exampletest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/ssekit/ssekit/internal/testenv"
)

// ChromiumEnv overrides the browser binary of the browser tests (default
// /usr/bin/chromium, from the Debian package chromium;
// scripts/install-deps.sh installs it).
const ChromiumEnv = "SSEKIT_CHROMIUM"

// Chromium returns the browser to drive. Without one the test fails unless
// SSEKIT_SKIP lists chromium (internal/testenv).
func Chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv(ChromiumEnv)
	if path == "" {
		path = "/usr/bin/chromium"
	}
	return testenv.Program(t, "chromium", fmt.Sprintf("install the Debian package chromium (scripts/install-deps.sh does) or set %s", ChromiumEnv), path)
}

// NewBrowser starts headless Chromium (exe, from [Chromium]) with a fresh
// profile and returns a tab's context; the browser is stopped when the test
// ends. Nothing reaches out to the network but the page. opts add to the
// flags, such as a window size for screenshots.
func NewBrowser(t *testing.T, exe string, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	opts = append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox, // root in containers and CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
	}, opts...)
	// Registered after TempDir, so it runs first: the browser exits before
	// its profile directory is removed.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	// The first Run starts the browser; it must not be bounded by a
	// short-lived context, or the browser would die with it. A watchdog
	// bounds it instead: the cleanup above cancels it.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		require.NoError(t, err, "starting %s", exe)
	case <-time.After(60 * time.Second):
		require.FailNow(t, fmt.Sprintf("starting %s: no answer after 60s", exe))
	}
	return ctx
}

// Eval runs a JavaScript expression in the page of ctx (from [NewBrowser])
// and decodes its value, failing the test after 5s.
func Eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](js))
	require.NoError(t, err, "evaluating %s", js)
	return v
}
