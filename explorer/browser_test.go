package explorer_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the README's screenshot, docs/img/explorer-timeline.png")

// stepTimeout bounds every wait on the page; a busy 2-core machine under
// the race detector stays well inside it.
const stepTimeout = 30 * time.Second

// chromiumPath finds Chromium. Without it the browser tests skip, except
// in CI (CI set) or when VERITY_REQUIRE_BROWSER=1, where they fail: a
// missing browser must not pass silently where it is meant to run.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VERITY_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found (install it with apt-get install -y chromium, or set VERITY_CHROMIUM)"
	if os.Getenv("CI") != "" || os.Getenv("VERITY_REQUIRE_BROWSER") == "1" {
		t.Fatalf("%s; CI or VERITY_REQUIRE_BROWSER=1 requires the browser tests to run", msg)
	}
	t.Skipf("%s: skipping the browser test", msg)
	return ""
}

// artifactDir is where screenshots go: $VERITY_TEST_ARTIFACTS when set,
// else the test's temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("VERITY_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// browser is one headless Chromium with a fresh profile, and the page
// errors it reported (exceptions, console errors, refused loads such as
// Content-Security-Policy violations).
type browser struct {
	t   *testing.T
	ctx context.Context
	log *pageLog
}

type pageLog struct {
	mu     sync.Mutex
	errors []string
}

// on returns b reporting to t, for a subtest.
func (b *browser) on(t *testing.T) *browser {
	return &browser{t: t, ctx: b.ctx, log: b.log}
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("mute-audio", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx, log: &pageLog{}}
	// The first action starts the browser; it gets no timeout, which would
	// stop the browser with it. Chromium starts or fails on its own.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				b.record(fmt.Sprintf("%s %s:%d", m, m.URL, m.Line+1))
			}
		}
	}()
	return b
}

func (b *browser) record(s string) {
	b.log.mu.Lock()
	defer b.log.mu.Unlock()
	b.log.errors = append(b.log.errors, s)
}

// pageErrors returns the errors the page reported, except those a test
// expects (a substring each).
func (b *browser) pageErrors(expected ...string) []string {
	b.log.mu.Lock()
	defer b.log.mu.Unlock()
	var out []string
next:
	for _, e := range b.log.errors {
		for _, x := range expected {
			if strings.Contains(e, x) {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

// run runs actions within stepTimeout, failing the test with what as the
// step's name.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// fail ends the test after a step failed, with what the page showed.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	dctx, dcancel := context.WithTimeout(b.ctx, 5*time.Second)
	body, _ := chromedp.Run(dctx, chromedp.Text(chromedp.CSS("body")))
	dcancel()
	if errors.Is(err, context.DeadlineExceeded) {
		b.t.Fatalf("%s: not within %s; the page shows:\n%s\npage errors: %v", what, stepTimeout, body, b.pageErrors())
	}
	b.t.Fatalf("%s: %v; the page shows:\n%s\npage errors: %v", what, err, body, b.pageErrors())
}

// value runs one action that returns a value, within stepTimeout.
func value[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.fail(what, err)
	}
	return v
}

// waitFor waits until the page has an element matching sel.
func (b *browser) waitFor(what, sel string) {
	b.t.Helper()
	// A predicate checked at once and on every DOM mutation, in the page:
	// the page replaces its nodes as events arrive, so the selector is
	// matched afresh each time rather than a node found once.
	js := fmt.Sprintf("(() => { const e = document.querySelector(%q); return !!e && e.getClientRects().length > 0; })()", sel)
	b.run(what, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(stepTimeout)))
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	// One evaluation: the page re-renders as events arrive, and a node
	// found first and read later may have been replaced in between.
	js := fmt.Sprintf("document.querySelector(%q)?.innerText ?? ''", sel)
	return strings.TrimSpace(value(b, "read "+sel, chromedp.Evaluate[string](js)))
}

func (b *browser) count(sel string) int {
	b.t.Helper()
	return value(b, "count "+sel, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
}

// screenshot saves the whole page as PNG under dir and returns its path.
func (b *browser) screenshot(dir, name string) string {
	b.t.Helper()
	png := value(b, "screenshot "+name, chromedp.FullScreenshot(100))
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}
