package cli

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath finds the browser or skips the test, saying why.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KABUTO_TEST_CHROMIUM"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Skip("Chromium not found: install Debian's chromium (apt-get install chromium) or set KABUTO_TEST_CHROMIUM=/path/to/chromium to run the browser tests")
	return ""
}

// TestConsoleSignInFromChromium: an analyst signs in to the console of the
// real demo in Chromium, halts an instrument and signs out. (Before: the
// console's Referrer-Policy no-referrer made Chromium send Origin: null
// with the sign-in form, which the origin check refused with 403.)
func TestConsoleSignInFromChromium(t *testing.T) {
	path := chromiumPath(t)
	base := startDemo(t, "--customers", "20")
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true), chromedp.Flag("disable-dev-shm-usage", true)}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(tctx, steps...); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("%s: %v (at %s: %.300q)", what, err, loc, body)
		}
	}
	text := func() string {
		s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		return s
	}
	// Signs in from a console page; comes back to it.
	step("open an instrument page", chromedp.Navigate(base+"/console/instruments/7203"), chromedp.WaitVisible(chromedp.CSS(`input[name="key"]`)))
	step("sign in", chromedp.SendKeys(chromedp.CSS(`input[name="key"]`), DemoKey), chromedp.Submit(chromedp.CSS(`input[name="key"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/console/halts/7203"] button`)))
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/console/instruments/7203") {
		t.Errorf("after sign-in at %s, want the instrument page", loc)
	}
	if s := text(); strings.Contains(strings.ToLower(s), "cross-origin") || !strings.Contains(s, "7203") {
		t.Fatalf("signed-in page: %.300q", s)
	}
	// A form of the signed-in console goes through too (CSRF token and
	// origin both checked).
	step("halt buying", chromedp.Submit(chromedp.CSS(`form[action="/console/halts/7203"]`)))
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(text(), "halted by analyst"); {
		if s := strings.ToLower(text()); strings.Contains(s, "cross-origin request refused") || strings.Contains(s, "the form expired") || time.Now().After(deadline) {
			t.Fatalf("after halting: %.300q", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, m := call(t, "GET", base+"/api/v1/halts", DemoKey, "", "")
	if halts, _ := m["halts"].(map[string]any); code != 200 || halts["7203"] == nil {
		t.Errorf("halt from the console not in force: %d %v", code, m)
	}
}
