package web

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/event"
)

// rawCode matches the stored codes that must never reach a Japanese page's
// visible text (whole words).
var rawCode = regexp.MustCompile(`\b(nisa|cash|margin|TSE_[A-Z]*|email_otp|passkey|totp|sent|held|filled|open)\b`)

// TestPortalScreens takes screenshots of the main portal pages in Japanese
// and English (under KABUTO_TEST_SCREENSHOTS when set) and checks that no
// raw code shows on the Japanese pages, that the bank account is masked,
// and that the self-lock preselects nothing, asks for confirmation and
// shows its result.
func TestPortalScreens(t *testing.T) {
	ctx := browser(t)
	k := startKabuto(t)
	bg := context.Background()
	const id = "C7100001"
	err := k.b.OpenAccount(bg, broker.NewAccount{ID: id, Name: "田中 太郎", Locale: "ja", Email: "c7100001@example.jp", Phone: "090-1234-5678",
		Bank: "Rakuten Bank 123-4567280", CashJPY: 5_000_000, Factors: []string{event.FactorPassword, event.FactorEmailOTP},
		Holdings: []event.Holding{{Symbol: "7203", Qty: 1000, CostJPY: 2_500_000, Kind: event.KindNISA}, {Symbol: "6758", Qty: 200, CostJPY: 600_000, Kind: event.KindCash}}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := k.id.HashPassword(bg, "violet-kettle-42-orbit")
	if err != nil {
		t.Fatal(err)
	}
	if err := k.id.Enrol(bg, nil, id, "", h); err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("KABUTO_TEST_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	u := k.url
	shot := func(name, lang string) string {
		t.Helper()
		waitJS(t, ctx, `document.readyState == "complete"`, "the page "+name)
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "portal-"+name+"-"+lang+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		txt, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		if err != nil {
			t.Fatal(err)
		}
		if lang == "ja" {
			if m := rawCode.FindAllString(txt, -1); m != nil {
				t.Errorf("%s (ja): raw codes %q in %q", name, m, txt)
			}
		} else if m := regexp.MustCompile(`\b(TSE_[A-Z]*|email_otp|nisa)\b|[a-z_]+,[a-z_]+`).FindAllString(txt, -1); m != nil {
			t.Errorf("%s (en): raw codes %q", name, m)
		}
		if strings.Contains(txt, "4567280") {
			t.Errorf("%s (%s): the bank account is shown in full", name, lang)
		}
		return txt
	}

	// Sign in (password and emailed code), in Japanese.
	run(t, ctx, chromedp.Navigate(u+"/portal/signin?lang=ja&autofill=0"), chromedp.WaitVisible(chromedp.ID("password-form")))
	shot("signin", "ja")
	run(t, ctx, chromedp.SendKeys(chromedp.ID("account"), id), chromedp.SendKeys(chromedp.ID("password"), "violet-kettle-42-orbit"),
		chromedp.Submit(chromedp.ID("password-form")), chromedp.WaitVisible(chromedp.ID("code")))
	run(t, ctx, chromedp.SendKeys(chromedp.ID("code"), k.codeFor(t, id)), chromedp.Submit(chromedp.ID("second-form")))
	waitJS(t, ctx, `location.pathname == "/portal/home" || location.pathname == "/portal/security"`, "signed in")

	// An order, confirmed with its estimate.
	run(t, ctx, chromedp.Navigate(u+"/portal/trade?symbol=7203"), chromedp.WaitVisible(chromedp.ID("order-submit")), chromedp.Click(chromedp.ID("order-submit")))
	waitJS(t, ctx, `!document.getElementById("confirm").hidden`, "the order's confirmation")
	shot("trade-confirm", "ja")
	run(t, ctx, chromedp.Click(chromedp.ID("confirm-yes")))
	waitJS(t, ctx, `!!document.getElementById("result").dataset.state && document.getElementById("result").textContent != "処理中…" || !document.getElementById("stepup").hidden`, "the order's result")

	pages := []struct{ name, path string }{{"signin", "/portal/signin?autofill=0"}, {"home", "/portal/home"}, {"trade", "/portal/trade"}, {"withdraw", "/portal/withdraw"}, {"bank", "/portal/bank"},
		{"security", "/portal/security"}, {"self-lock", "/portal/lock"}, {"messages", "/portal/mailbox"}, {"signup", "/portal/signup"}}
	for _, lang := range []string{"ja", "en"} {
		// The language is picked once and kept on every page after.
		run(t, ctx, chromedp.Navigate(u+"/portal/home?lang="+lang))
		for _, pg := range pages {
			run(t, ctx, chromedp.Navigate(u+pg.path))
			txt := shot(pg.name, lang)
			if got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang`)); got != lang {
				t.Errorf("%s: in %q after picking %q", pg.name, got, lang)
			}
			if pg.name == "home" && lang == "ja" {
				if !regexp.MustCompile(`¥\d{1,3}(,\d{3})+`).MatchString(txt) {
					t.Error("home (ja): no yen with separators")
				}
				for _, want := range []string{"トヨタ自動車", "NISA（成長投資枠）", "1,000"} {
					if !strings.Contains(txt, want) {
						t.Errorf("home (ja) lacks %q", want)
					}
				}
			}
			if pg.name == "withdraw" && !strings.Contains(txt, "Rakuten Bank •••-•••7280") {
				t.Errorf("withdraw (%s): the bank account is not masked as the API masks it", lang)
			}
		}
	}

	// Self-lock: nothing preselected; confirmed first; the result shown.
	run(t, ctx, chromedp.Navigate(u+"/portal/security?lang=ja"), chromedp.WaitVisible(chromedp.ID("lock-form")))
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#lock-form input[name=scope]:checked").length`)); n != 0 {
		t.Errorf("%d lock scopes preselected", n)
	}
	run(t, ctx, chromedp.Click(chromedp.CSS(`#lock-form input[name=scope][value="1"]`)), chromedp.Click(chromedp.CSS(`#lock-form button`)))
	waitJS(t, ctx, `!document.getElementById("confirm").hidden`, "the self-lock's confirmation")
	shot("self-lock-confirm", "ja")
	if n := k.count(t, `SELECT COUNT(*) FROM self_locks WHERE account = $1`, id); n != 0 {
		t.Fatalf("locked before the confirmation")
	}
	run(t, ctx, chromedp.Click(chromedp.ID("confirm-yes")))
	waitJS(t, ctx, `!!document.getElementById("done") && !!document.getElementById("lock-state")`, "the self-lock's result")
	shot("self-lock-done", "ja")
}
