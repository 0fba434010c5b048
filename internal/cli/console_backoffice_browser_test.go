package cli

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/kabuto-sec/kabuto/internal/cases"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// TestBackOfficeInChromium walks analysts through the console of a real
// `kabuto serve` in Chromium with the DevTools virtual authenticator: an
// analyst enrols a passkey with the code `kabuto analyst --create`
// printed, signs out and signs in with it, opens a campaign and its
// cases, freezes an account, records a re-verification, proposes the
// reopening and is refused approving it herself; she proposes a
// compensation by each method (50% on one case, restoration on another of
// the campaign); a supervisor enrols and approves all three, after which
// the account acts again and both payments are in its ledger. On SQLite,
// and on PostgreSQL when KABUTO_TEST_POSTGRES is set.
func TestBackOfficeInChromium(t *testing.T) {
	path := chromiumPath(t)
	if testing.Short() {
		t.Skip("runs kabuto demo and serve in Chromium")
	}
	t.Run("sqlite", func(t *testing.T) { backOfficeInChromium(t, path, []string{"--data", t.TempDir()}) })
	t.Run("postgres", func(t *testing.T) { backOfficeInChromium(t, path, []string{"--db", postgresSchema(t)}) })
}

func backOfficeInChromium(t *testing.T, chromium string, dbArgs []string) {
	ctx0 := context.Background()
	stopDemo := runUntilStopped(t, func(out string) bool { return strings.Contains(out, "Kabuto demo is running") },
		append([]string{"demo", "--addr", freeAddr(t), "--customers", "5", "--log-level", "warn"}, dbArgs...)...)
	stopDemo()
	kabuto := func(args ...string) string {
		t.Helper()
		var out, errs syncBuffer
		if code := Run(ctx0, append(append(args, dbArgs...), "--log-level", "warn"), &out, &errs); code != 0 {
			t.Fatalf("%v: %s", args, errs.String())
		}
		return out.String()
	}
	field := func(out, name string) string {
		t.Helper()
		m := regexp.MustCompile(name + `: (\S+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no %s in %q", name, out)
		}
		return m[1]
	}
	system := field(kabuto("apikey", "--create", "ops", "--scopes", "broker,events,admin"), "secret")
	satoOut := kabuto("analyst", "--create", "sato", "--role", "analyst")
	satoKey, satoCode := field(satoOut, "secret"), field(satoOut, "enrolment code")
	suzukiCode := field(kabuto("analyst", "--create", "suzuki", "--role", "supervisor"), "enrolment code")

	// The server on localhost: passkeys need a host name.
	addr := freeAddr(t)
	base := "http://localhost:" + strings.Split(addr, ":")[1]
	runUntilStopped(t, func(string) bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}, append([]string{"serve", "--addr", addr, "--public-url", base, "--log-level", "warn", "--warm-days", "0", "--market-hours", "always"}, dbArgs...)...)
	api := base + "/api/v1"

	// Two accounts of one campaign: the watchtower's alerts open their
	// cases (here written as it writes them), and the incidents are
	// recorded through the API with the analyst's key.
	var db *store.DB
	var err error
	if dbArgs[0] == "--db" {
		db, err = store.Open(ctx0, dbArgs[1], "")
	} else {
		db, err = store.Open(ctx0, "", dbArgs[1])
	}
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	office := cases.New(cases.Config{DB: db})
	caseOf := map[string]string{}
	for i, acct := range []string{"C0000002", "C0000003"} {
		id, err := office.Open(ctx0, cases.Link{Kind: "alert", Ref: "al-" + acct, Account: acct, Symbol: "7203", Campaign: "wave-1",
			Title: "holdings sold, thin issue bought", Severity: 70 + i, Actor: "system:surveil", Text: "R1_liquidate_concentrate shared_ip"})
		if err != nil {
			t.Fatal(err)
		}
		caseOf[acct] = id
	}
	t0 := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	incidents := map[string]string{
		// The fraudster bought far above today's price: the 50% method.
		"C0000002": `{"accesses":[{"time":"` + t0 + `","ip":"203.0.113.9"}],"fills":[{"time":"` + t0 + `","symbol":"7203","side":"buy","qty":100,"price":100000,"fee_jpy":550,"fraudulent":true}],"snapshot":{"cash_jpy":10000000,"shares":{}}}`,
		// The fraudster sold the customer's shares cheaply: restoration.
		"C0000003": `{"accesses":[{"time":"` + t0 + `","ip":"203.0.113.9"}],"fills":[{"time":"` + t0 + `","symbol":"7203","side":"sell","qty":200,"price":100,"fee_jpy":550,"fraudulent":true}],"snapshot":{"cash_jpy":100000,"shares":{"7203":200}}}`,
	}
	for acct, body := range incidents {
		if code, m := call(t, "PUT", api+"/cases/"+caseOf[acct]+"/incident", satoKey, "inc-"+acct, body); code != 200 {
			t.Fatalf("incident of %s: %d %v", acct, code, m)
		}
	}
	cash := func(acct string) float64 {
		_, m := call(t, "GET", api+"/accounts/"+acct, system, "", "")
		v, _ := m["cash_jpy"].(float64)
		return v
	}
	cash2, cash3 := cash("C0000002"), cash("C0000003")

	// Chromium with a virtual platform authenticator.
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true), chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 1600)}
	actx, cancel := chromedp.NewExecAllocator(ctx0, opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser for the whole test
		t.Fatal(err)
	}
	text := func() string {
		s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		return s
	}
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(tctx, steps...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("%s: %v (at %s: %.600q)", what, err, loc, text())
		}
	}
	// until waits for the page to say want (or fails on a problem).
	until := func(what, want string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(text(), want); {
			if time.Now().After(deadline) {
				loc, _ := chromedp.Run(ctx, chromedp.Location())
				t.Fatalf("%s: no %q (at %s: %.800q)", what, want, loc, text())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// open navigates to path; a navigation that a page still settling
	// aborts (net::ERR_ABORTED) is tried again.
	open := func(what, path string) {
		t.Helper()
		for try := 0; ; try++ {
			tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := chromedp.Do(tctx, chromedp.Navigate(base+path))
			cancel()
			if err == nil {
				return
			}
			if !strings.Contains(err.Error(), "ERR_ABORTED") || try == 5 {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	step("virtual authenticator", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}})
		return err
	}))
	enrol := func(who, code string) {
		t.Helper()
		step(who+" enrols", chromedp.Navigate(base+"/console/enrol"), chromedp.WaitVisible(chromedp.ID("code")),
			chromedp.SendKeys(chromedp.ID("code"), code), chromedp.Click(chromedp.CSS("#enrol-form button")))
		until(who+" signed in by enrolment", who+" (")
	}
	// signOut submits the header's sign-out form; a node the page's live
	// refresh replaced between finding and submitting it is found again.
	signOut := func() {
		t.Helper()
		for try := 0; ; try++ {
			tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := chromedp.Do(tctx, chromedp.Submit(chromedp.CSS(`form[action="/console/logout"]`)))
			cancel()
			if err == nil {
				break
			}
			if !strings.Contains(err.Error(), "No node with given id") || try == 5 {
				t.Fatalf("sign out: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		until("signed out", "Sign in with your passkey")
	}
	// submit fills a form's note (and selects) and sends it.
	submit := func(what, form, note string, selects map[string]string) {
		t.Helper()
		acts := []chromedp.Action[chromedp.Void]{chromedp.WaitVisible(chromedp.CSS(form + ` textarea[name="note"]`))}
		for name, v := range selects {
			acts = append(acts, chromedp.SetValue(chromedp.CSS(form+` select[name="`+name+`"]`), v))
		}
		acts = append(acts, chromedp.SendKeys(chromedp.CSS(form+` textarea[name="note"]`), note))
		if strings.Contains(form, "approvals") {
			acts = append(acts, chromedp.Click(chromedp.CSS(form+` button[value="approve"]`)))
		} else {
			acts = append(acts, chromedp.Submit(chromedp.CSS(form+` textarea[name="note"]`)))
		}
		step(what, acts...)
	}

	// The analyst enrols, signs out, and signs in with her passkey.
	enrol("sato", satoCode)
	signOut()
	step("passkey sign-in", chromedp.Navigate(base+"/console/cases"), chromedp.WaitVisible(chromedp.ID("passkey-signin")),
		chromedp.Click(chromedp.ID("passkey-signin")), chromedp.WaitVisible(chromedp.ID("cases")))
	until("signed in as sato", "sato (analyst)")
	// The campaign and its cases.
	step("campaign", chromedp.Click(chromedp.CSS(`a[href="/console/campaigns/wave-1"]`)), chromedp.WaitVisible(chromedp.ID("campaign-cases")))
	for _, want := range []string{"C0000002", "C0000003", "203.0.113.9", "¥10,020,000"} {
		until("campaign page", want)
	}
	casePage := func(acct string) string { return "/console/cases/" + caseOf[acct] }
	step("a case of the campaign", chromedp.Click(chromedp.CSS(`#campaign-cases a[href="`+casePage("C0000002")+`"]`)), chromedp.WaitVisible(chromedp.ID("timeline")))
	until("timeline in words", "surveillance alert · 監視アラート")
	// Freeze, re-verify, propose the reopening.
	submit("freeze", "#freeze-form", "the customer called: the buys were not theirs", nil)
	until("frozen", "frozen · 凍結中")
	order := `{"symbol":"7203","side":"buy","qty":100,"price_type":"market","account_kind":"cash"}`
	if code, m := call(t, "POST", api+"/accounts/C0000002/orders", system, "o-frozen", order, customer); code != 403 || !strings.Contains(strings.Join(reasonsOf(m), ","), "account_frozen") {
		t.Errorf("order of the frozen account: %d %v", code, m)
	}
	submit("re-verification", "#reverify-form", "called the registered number; the customer answered the security questions", map[string]string{"method": "callback", "result": "passed"})
	until("re-verified", "identity re-verified")
	submit("propose reopening", "#reopen-form", "re-verified by call back; attacker's factors removed", nil)
	until("proposal", "reopening proposed")
	submit("approve own proposal", `form.decide[action*="/approvals/"]`, "approving my own", nil)
	until("refused to its proposer", "four_eyes_required")
	// Compensation by both methods.
	submit("propose 50%", "#compensate-form", "50% method: the fraudster's buy of 7203", map[string]string{"method": "half"})
	until("half proposed", "compensation proposed")
	open("the other case", casePage("C0000003"))
	step("the other case", chromedp.WaitVisible(chromedp.ID("compensate-form")))
	submit("propose restoration", "#compensate-form", "restore the 200 shares sold", map[string]string{"method": "restore"})
	until("restore proposed", "compensation proposed")
	signOut()

	// The supervisor approves all three.
	enrol("suzuki", suzukiCode)
	for _, acct := range []string{"C0000002", "C0000002", "C0000003"} {
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != base+casePage(acct) {
			open("supervisor opens "+acct, casePage(acct))
		}
		step("approvals of "+acct, chromedp.WaitVisible(chromedp.ID("approvals")))
		pending := func() int {
			n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("form.decide").length`))
			return n
		}
		before := pending()
		submit("supervisor approves on "+acct, `form.decide[action*="/approvals/"]`, "checked the re-verification and the working", nil)
		// The decision lands back on the case page with one proposal fewer.
		for deadline := time.Now().Add(20 * time.Second); ; {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			if loc == base+casePage(acct) && pending() == before-1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("approval on %s: at %s: %.600q", acct, loc, text())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	open("case page", casePage("C0000002"))
	step("case page", chromedp.WaitVisible(chromedp.ID("timeline")))
	for _, want := range []string{"reopening approved", "compensation approved and paid", "reopened · 凍結解除", "analyst:suzuki"} {
		until("after approvals", want)
	}
	// The incident report for the finance bureau, from the case page.
	step("incident report", chromedp.Click(chromedp.ID("report-link")), chromedp.WaitVisible(chromedp.ID("report-account")))
	for _, want := range []string{"事故報告書", "C0000002", "口座凍結 · Account frozen", "支払済み", "analyst:suzuki"} {
		until("incident report", want)
	}
	open("case page again", casePage("C0000002"))
	step("case page again", chromedp.WaitVisible(chromedp.ID("timeline")))
	if dir := os.Getenv("KABUTO_TEST_SCREENSHOTS"); dir != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "console-case-"+filepath.Base(t.Name())+".png"), png, 0o644); err != nil {
			t.Error(err)
		}
	}
	for acct, before := range map[string]float64{"C0000002": cash2, "C0000003": cash3} {
		comps, err := office.Compensations(ctx0, caseOf[acct])
		if err != nil || len(comps) != 1 || comps[0].Status != "paid" {
			t.Fatalf("compensation of %s: %+v %v", acct, comps, err)
		}
		if paid := int64(cash(acct) - before); paid != comps[0].AmountJPY || paid <= 0 {
			t.Errorf("%s: paid %d into the account, compensation %+v", acct, paid, comps[0])
		}
	}
	if code, m := call(t, "POST", api+"/accounts/C0000002/orders", system, "o-open", order, customer); strings.Contains(strings.Join(reasonsOf(m), ","), "account_frozen") || code >= 500 {
		t.Errorf("order after reopening: %d %v", code, m)
	}
}
