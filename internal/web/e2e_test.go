package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdpnet "github.com/chromedp/cdproto/network"
	cdpwa "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/identity"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/server"
	"github.com/kabuto-sec/kabuto/internal/session"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// kabuto is a running portal for tests.
type kabuto struct {
	db     *store.DB
	b      *broker.Broker
	id     *identity.Service
	portal *Portal
	url    string // http://localhost:port
	mu     sync.Mutex
	stepUp []byte // body of the last POST /portal/api/step-up
	cookie []*http.Cookie
}

func startKabuto(t *testing.T) *kabuto { return startKabutoWith(t, nil) }

// startKabutoWith starts a portal whose configuration mod may change.
func startKabutoWith(t *testing.T, mod func(*Config)) *kabuto {
	t.Helper()
	ctx := context.Background()
	db := storetest.SQLite(t)
	universe := market.Universe(1, 20)
	x := market.NewExchange(universe, 1, market.Hours{Always: true}, time.Now())
	b := broker.New(broker.Config{DB: db, Exchange: x, HashKey: []byte("0123456789abcdef0123456789abcdef")})
	// The real guard, as in production: the risk engine with the built-in
	// policy and the watchtower decide every sign-in and every action.
	dlog := pipeline.NewLog(db, nil)
	lctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go dlog.Run(lctx)
	pipe := pipeline.NewPipeline(risk.NewEngine(nil), surveil.New(surveil.DefaultConfig()), dlog)
	b.SetGuard(pipe)
	if err := b.SeedInstruments(ctx, universe); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Config{DB: db, Broker: b, Keys: apikey.New(db)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := &kabuto{db: db, b: b, url: fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)}
	k.id, err = identity.New(identity.Config{DB: db, Outbox: &notify.Outbox{}, RPID: "localhost", Origins: []string{k.url}, Argon: identity.Params{Memory: 1024, Time: 1, Threads: 1, KeyLen: 32}, Guard: pipe})
	if err != nil {
		t.Fatal(err)
	}
	pc := Config{DB: db, Broker: b, Identity: k.id, Sessions: session.New(session.Config{DB: db}), ClientIPHeader: "X-Forwarded-For", SignUpCash: 2_000_000, Demo: true}
	if mod != nil {
		mod(&pc)
	}
	p, err := New(pc)
	if err != nil {
		t.Fatal(err)
	}
	k.portal = p
	t.Cleanup(p.Wait)
	p.Register(srv.Mux())
	h := srv.Handler()
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/portal/api/step-up" {
			body, _ := io.ReadAll(r.Body)
			k.mu.Lock()
			k.stepUp, k.cookie = body, r.Cookies()
			k.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		h.ServeHTTP(w, r)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return k
}

func (k *kabuto) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := k.db.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (k *kabuto) lastCode(t *testing.T) string {
	t.Helper()
	var body string
	if err := k.db.QueryRowContext(context.Background(), `SELECT body FROM outbox WHERE kind = 'one_time_code' ORDER BY created_us DESC, id DESC LIMIT 1`).Scan(&body); err != nil {
		t.Fatal(err)
	}
	i := strings.Index(body, "確認コード: ")
	j := strings.Index(body, "Confirmation code: ")
	switch {
	case i >= 0:
		return body[i+len("確認コード: ") : i+len("確認コード: ")+6]
	case j >= 0:
		return body[j+19 : j+25]
	}
	t.Fatalf("no code in %q", body)
	return ""
}

// chromium finds the browser or skips the test, saying why.
func chromium(t *testing.T) string {
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

func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(chromium(t)), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true), chromedp.Flag("disable-dev-shm-usage", true)}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel3)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, bound to ctx
		t.Fatal(err)
	}
	return ctx
}

func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%v (at %s)", err, loc)
	}
}

// authenticator adds a virtual platform authenticator with user
// verification to the tab of ctx.
func authenticator(t *testing.T, ctx context.Context) {
	t.Helper()
	run(t, ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, cdpwa.Enable, cdpwa.EnableParams{}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, cdpwa.AddVirtualAuthenticator, cdpwa.AddVirtualAuthenticatorParams{Options: &cdpwa.VirtualAuthenticatorOptions{
			Protocol: cdpwa.AuthenticatorProtocolCtap2, Ctap2version: cdpwa.Ctap2versionCtap21, Transport: cdpwa.AuthenticatorTransportInternal,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}})
		return err
	}))
}

// waitJS polls a JavaScript condition until it holds.
func waitJS(t *testing.T, ctx context.Context, expr, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			txt, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("result")||document.getElementById("status")||document.body).textContent`))
			t.Fatalf("waiting for %s: not reached (at %s; %q; err %v)", what, loc, txt, err)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestBrowser runs the customer's journey and the attacks in Chromium with
// the DevTools virtual authenticator.
func TestBrowser(t *testing.T) {
	k := startKabuto(t)
	ctx := browser(t)
	authenticator(t, ctx)
	u := k.url

	// Sign up: an account with a password, the email confirmed by a code.
	run(t, ctx, chromedp.Navigate(u+"/portal/signup?lang=en"),
		chromedp.SendKeys(chromedp.ID("su-name"), "Sato Yui"), chromedp.SendKeys(chromedp.ID("su-email"), "yui@example.jp"),
		chromedp.SendKeys(chromedp.ID("su-phone"), "090-1111-2222"), chromedp.SendKeys(chromedp.ID("su-bank"), "Mizuho 001-7654321"),
		chromedp.SendKeys(chromedp.ID("su-password"), "violet-kettle-42-orbit"), chromedp.Submit(chromedp.ID("signup-form")),
		chromedp.WaitVisible(chromedp.ID("code")))
	run(t, ctx, chromedp.SendKeys(chromedp.ID("code"), k.lastCode(t)), chromedp.Submit(chromedp.ID("second-form")), chromedp.WaitVisible(chromedp.ID("enrol-offer")))
	var account string
	if err := k.db.QueryRowContext(context.Background(), `SELECT id FROM accounts WHERE email = 'yui@example.jp'`).Scan(&account); err != nil {
		t.Fatal(err)
	}

	// Enrol a passkey (the email code was just proven: interim mode's strongest).
	run(t, ctx, chromedp.SendKeys(chromedp.ID("passkey-name"), "test laptop"), chromedp.Click(chromedp.ID("passkey-enrol")))
	waitJS(t, ctx, `document.querySelector("#passkeys") && document.querySelector("#passkeys").textContent.includes("test laptop")`, "the passkey in the list")
	// The customer is told it worked.
	waitJS(t, ctx, `!!document.getElementById("done") && /passkey is registered/.test(document.getElementById("done").textContent)`, "the passkey's success message")
	if n := k.count(t, `SELECT COUNT(*) FROM passkeys WHERE account = $1 AND user_verified = 1`, account); n != 1 {
		t.Fatalf("%d passkeys stored", n)
	}

	// Sign out, sign in with the passkey.
	run(t, ctx, chromedp.Click(chromedp.ID("signout")))
	waitJS(t, ctx, `location.pathname.startsWith("/portal/signin") && document.readyState == "complete" && !!document.getElementById("passkey-signin")`, "the sign-in page")
	run(t, ctx, chromedp.Navigate(u+"/portal/signin?autofill=0"), chromedp.WaitVisible(chromedp.ID("passkey-signin")), chromedp.Click(chromedp.ID("passkey-signin")))
	waitJS(t, ctx, `location.pathname == "/portal/home"`, "the portfolio after passkey sign-in")

	// A passkey customer's password (plus any code) no longer signs in.
	run(t, ctx, chromedp.Click(chromedp.ID("signout")))
	waitJS(t, ctx, `location.pathname.startsWith("/portal/signin") && document.readyState == "complete" && !!document.getElementById("passkey-signin")`, "the sign-in page")
	run(t, ctx, chromedp.SendKeys(chromedp.ID("account"), account), chromedp.SendKeys(chromedp.ID("password"), "violet-kettle-42-orbit"),
		chromedp.Submit(chromedp.ID("password-form")), chromedp.WaitVisible(chromedp.ID("error")))
	if txt, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("error"))); !strings.Contains(txt, "passkey") {
		t.Fatalf("password sign-in of a passkey customer: %q", txt)
	}
	run(t, ctx, chromedp.Navigate(u+"/portal/signin?autofill=0"), chromedp.Click(chromedp.ID("passkey-signin")))
	waitJS(t, ctx, `location.pathname == "/portal/home"`, "signed in again")

	// Place an order.
	sym := ""
	for _, s := range k.b.Exchange().Symbols() {
		if in, _ := k.b.Exchange().Instrument(s); market.Domestic(in.Market) && in.PrevClose < 3000 && in.LargeCap {
			sym = s
			break
		}
	}
	run(t, ctx, chromedp.Navigate(u+"/portal/trade?symbol="+sym), chromedp.WaitVisible(chromedp.ID("order-submit")), chromedp.Click(chromedp.ID("order-submit")))
	// A market order is confirmed first, with its estimated amount; nothing
	// is placed until then.
	waitJS(t, ctx, `!document.getElementById("confirm").hidden && /¥[0-9,]+/.test(document.getElementById("confirm-message").textContent)`, "the order's confirmation with its estimate")
	if n := k.count(t, `SELECT COUNT(*) FROM orders WHERE account = $1`, account); n != 0 {
		t.Fatalf("%d orders before the confirmation", n)
	}
	run(t, ctx, chromedp.Click(chromedp.ID("confirm-yes")))
	waitJS(t, ctx, `document.getElementById("result").dataset.state == "ok" && document.getElementById("result").textContent.includes("`+sym+`")`, "the order confirmation")
	if n := k.count(t, `SELECT COUNT(*) FROM orders WHERE account = $1`, account); n != 1 {
		t.Fatalf("%d orders", n)
	}
	if k.count(t, `SELECT COUNT(*) FROM orders WHERE account = $1 AND status = 'filled'`, account) == 1 {
		// The fill is shown: quantity, price and amount.
		txt, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("result").textContent`))
		if !strings.Contains(txt, "約定: 100株 × ") && !strings.Contains(txt, "Filled: 100 shares at ") || !strings.Contains(txt, "金額 ¥") && !strings.Contains(txt, "amount ¥") {
			t.Errorf("the fill is not shown: %q", txt)
		}
	}

	// Withdraw with the step-up bound to the action.
	run(t, ctx, chromedp.Navigate(u+"/portal/withdraw"), chromedp.SendKeys(chromedp.ID("amount"), "10000"), chromedp.Click(chromedp.ID("withdraw-submit")))
	waitJS(t, ctx, `document.getElementById("result").dataset.state == "ok" && document.getElementById("result").textContent.includes("10,000")`, "the withdrawal")
	if n := k.count(t, `SELECT COUNT(*) FROM withdrawals WHERE account = $1`, account); n != 1 {
		t.Fatalf("%d withdrawals", n)
	}

	t.Run("replayed assertion", func(t *testing.T) {
		k.mu.Lock()
		body, cookies := k.stepUp, k.cookie
		k.mu.Unlock()
		csrf, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('meta[name="csrf"]').content`))
		jar, _ := cookiejar.New(nil)
		base, _ := url.Parse(u)
		jar.SetCookies(base, cookies)
		// The session token rotated at the step-up: use the browser's current one.
		cur := browserCookies(t, ctx, u)
		jar.SetCookies(base, cur)
		c := &http.Client{Jar: jar}
		req, _ := http.NewRequest(http.MethodPost, u+"/portal/api/step-up", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-CSRF-Token", csrf)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatalf("replayed step-up assertion accepted: %s", msg)
		}
		if n := k.count(t, `SELECT COUNT(*) FROM withdrawals WHERE account = $1`, account); n != 1 {
			t.Fatalf("%d withdrawals after the replay", n)
		}
	})

	t.Run("phishing origin", func(t *testing.T) {
		// A second server on another port relays everything to Kabuto,
		// rewriting Origin and Referer as a real-time phishing kit does.
		target, _ := url.Parse(u)
		rp := httputil.NewSingleHostReverseProxy(target)
		inner := rp.Director
		rp.Director = func(r *http.Request) {
			inner(r)
			r.Host = target.Host
			if r.Header.Get("Origin") != "" {
				r.Header.Set("Origin", u)
			}
			r.Header.Del("Referer")
			r.Header.Del("Sec-Fetch-Site")
		}
		phish := httptest.NewServer(rp)
		defer phish.Close()
		purl := strings.Replace(phish.URL, "127.0.0.1", "localhost", 1)
		before := k.count(t, `SELECT COUNT(*) FROM login_history WHERE outcome = 'signed_in'`)
		run(t, ctx, chromedp.Click(chromedp.ID("signout")))
		waitJS(t, ctx, `location.pathname.startsWith("/portal/signin") && document.readyState == "complete" && !!document.getElementById("passkey-signin")`, "the sign-in page")
		run(t, ctx, chromedp.Navigate(purl+"/portal/signin?autofill=0&lang=en"), chromedp.WaitVisible(chromedp.ID("passkey-signin")), chromedp.Click(chromedp.ID("passkey-signin")))
		waitJS(t, ctx, `document.getElementById("status").dataset.state == "error"`, "the refusal on the phishing origin")
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); strings.Contains(loc, "/portal/home") {
			t.Fatal("signed in through the phishing origin")
		}
		if after := k.count(t, `SELECT COUNT(*) FROM login_history WHERE outcome = 'signed_in'`); after != before {
			t.Fatal("a session was made from an assertion on the phishing origin")
		}
		if n := k.count(t, `SELECT COUNT(*) FROM login_history WHERE outcome = 'passkey_refused'`); n == 0 {
			t.Fatal("the refused assertion is not in the sign-in history")
		}
		run(t, ctx, chromedp.Navigate(u+"/portal/signin?autofill=0"), chromedp.Click(chromedp.ID("passkey-signin")))
		waitJS(t, ctx, `location.pathname == "/portal/home"`, "signed in on the real origin")
	})

	t.Run("stolen cookie", func(t *testing.T) {
		// An infostealer copies every cookie into its own browser, on its
		// own network and user agent, with its own (empty) authenticator.
		stolen := browserCookies(t, ctx, u)
		ictx, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
		defer cancel()
		if err := chromedp.Do(ictx); err != nil {
			t.Fatal(err)
		}
		authenticator(t, ictx)
		run(t, ictx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			if _, err := chromedp.Call(ctx, cdpnet.Enable, cdpnet.EnableParams{}); err != nil {
				return err
			}
			if _, err := chromedp.Call(ctx, cdpnet.SetExtraHTTPHeaders, cdpnet.SetExtraHTTPHeadersParams{Headers: cdpnet.Headers{"X-Forwarded-For": "198.51.100.7"}}); err != nil {
				return err
			}
			if _, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"}); err != nil {
				return err
			}
			var ps []*cdpnet.CookieParam
			for _, c := range stolen {
				ps = append(ps, &cdpnet.CookieParam{Name: c.Name, Value: c.Value, URL: u, Path: "/", HTTPOnly: true})
			}
			_, err := chromedp.Call(ctx, cdpnet.SetCookies, cdpnet.SetCookiesParams{Cookies: ps})
			return err
		}))
		run(t, ictx, chromedp.Navigate(u+"/portal/withdraw"), chromedp.WaitVisible(chromedp.ID("amount")))
		run(t, ictx, chromedp.SendKeys(chromedp.ID("amount"), "50000"), chromedp.Click(chromedp.ID("withdraw-submit")))
		waitJS(t, ictx, `document.getElementById("result").dataset.state == "error"`, "the refused withdrawal")
		run(t, ictx, chromedp.Navigate(u+"/portal/bank"), chromedp.SendKeys(chromedp.ID("new-bank"), "Attacker Bank 999-0000001"), chromedp.Click(chromedp.ID("bank-submit")))
		waitJS(t, ictx, `document.getElementById("result").dataset.state == "error"`, "the refused bank change")
		if n := k.count(t, `SELECT COUNT(*) FROM withdrawals WHERE account = $1`, account); n != 1 {
			t.Fatalf("the stolen cookie withdrew: %d withdrawals", n)
		}
		if n := k.count(t, `SELECT COUNT(*) FROM accounts WHERE id = $1 AND bank_label LIKE 'Attacker%'`, account); n != 0 {
			t.Fatal("the stolen cookie changed the bank account")
		}
		if n := k.count(t, `SELECT COUNT(*) FROM sessions WHERE account = $1 AND jump LIKE '%network%' AND jump LIKE '%user_agent%'`, account); n == 0 {
			t.Fatal("the session's context jump was not recorded")
		}
		// An order from the jumped session also needs the passkey.
		run(t, ictx, chromedp.Navigate(u+"/portal/trade?symbol="+sym), chromedp.Click(chromedp.ID("order-submit")))
		waitJS(t, ictx, `!document.getElementById("confirm").hidden`, "the order's confirmation")
		run(t, ictx, chromedp.Click(chromedp.ID("confirm-yes")))
		waitJS(t, ictx, `document.getElementById("result").dataset.state == "error"`, "the refused order")
		if n := k.count(t, `SELECT COUNT(*) FROM orders WHERE account = $1`, account); n != 1 {
			t.Fatalf("the stolen cookie traded: %d orders", n)
		}
	})
	// The guard decided every sign-in and every action of the journey.
	for _, typ := range []string{"login", "order", "withdrawal"} {
		if n := k.count(t, `SELECT COUNT(*) FROM decisions WHERE type = $1 AND account = $2`, typ, account); n == 0 {
			t.Errorf("no %s of the journey was decided by the guard", typ)
		}
	}
}

func browserCookies(t *testing.T, ctx context.Context, u string) []*http.Cookie {
	t.Helper()
	var out []*http.Cookie
	run(t, ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		r, err := chromedp.Call(ctx, cdpnet.GetCookies, cdpnet.GetCookiesParams{URLs: []string{u}})
		if err != nil {
			return err
		}
		for _, c := range r.Cookies {
			out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
		}
		return nil
	}))
	return out
}

// TestBrowserWithoutPasskey: a customer without a passkey withdraws in
// Chromium, in Japanese and in English: before the passkey deadline with
// an emailed code (labelled not phishing-resistant); after it by enrolling
// a passkey at that moment (the virtual authenticator) and approving the
// withdrawal with it. No English refusal ever reaches the Japanese page.
func TestBrowserWithoutPasskey(t *testing.T) {
	chromium(t)
	for _, c := range []struct {
		name   string
		before bool
		lang   string
	}{{"before the deadline/ja", true, "ja"}, {"before the deadline/en", true, "en"}, {"after the deadline/ja", false, "ja"}, {"after the deadline/en", false, "en"}} {
		t.Run(c.name, func(t *testing.T) {
			k := startKabutoWith(t, func(pc *Config) {
				pc.Policy = DefaultPolicy()
				if c.before {
					pc.Policy.Deadline = time.Now().AddDate(0, 6, 0)
				}
			})
			account := "C04000" + map[bool]string{true: "1", false: "2"}[c.before] + map[string]string{"ja": "1", "en": "2"}[c.lang]
			k.customer(t, account, c.lang)
			ctx := browser(t)
			authenticator(t, ctx)
			u := k.url
			run(t, ctx, chromedp.Navigate(u+"/portal/signin?autofill=0&lang="+c.lang), chromedp.WaitVisible(chromedp.ID("password-form")),
				chromedp.SendKeys(chromedp.ID("account"), account), chromedp.SendKeys(chromedp.ID("password"), "violet-kettle-42-orbit"),
				chromedp.Submit(chromedp.ID("password-form")), chromedp.WaitVisible(chromedp.ID("code")))
			run(t, ctx, chromedp.SendKeys(chromedp.ID("code"), k.codeFor(t, account)), chromedp.Submit(chromedp.ID("second-form")))
			waitJS(t, ctx, `location.pathname == "/portal/security"`, "signed in")
			run(t, ctx, chromedp.Navigate(u+"/portal/withdraw"), chromedp.WaitVisible(chromedp.ID("amount")))
			deadline, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("interim-deadline")))
			if c.before != (strings.Contains(deadline, "メールのコードでも承認できます") || strings.Contains(deadline, "approve one with an emailed code")) {
				t.Errorf("the interim notice says %q", deadline)
			}
			run(t, ctx, chromedp.SendKeys(chromedp.ID("amount"), "12000"), chromedp.Click(chromedp.ID("withdraw-submit")))
			if c.before {
				waitJS(t, ctx, `!document.getElementById("stepup-code").hidden`, "the code step-up")
				msg, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("stepup-message")))
				if !strings.Contains(msg, map[string]string{"ja": "フィッシング耐性なし", "en": "not phishing-resistant"}[c.lang]) {
					t.Errorf("the code step-up says %q", msg)
				}
				// The withdrawal's email (sent before the dialog opened).
				if n := k.count(t, `SELECT COUNT(*) FROM outbox WHERE account = $1 AND kind = 'one_time_code'`, account); n != 2 {
					t.Fatalf("%d code emails, want the sign-in's and the withdrawal's", n)
				}
				run(t, ctx, chromedp.SendKeys(chromedp.ID("stepup-input"), k.codeFor(t, account)), chromedp.Click(chromedp.ID("stepup-submit")))
			} else {
				waitJS(t, ctx, `!document.getElementById("stepup-enrol").hidden`, "the offer to enrol a passkey")
				run(t, ctx, chromedp.Click(chromedp.ID("stepup-enrol-start")))
			}
			waitJS(t, ctx, `document.getElementById("result").dataset.state == "ok" && document.getElementById("result").textContent.includes("12,000")`, "the withdrawal")
			txt, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("result")))
			if c.lang == "ja" && (strings.Contains(txt, "confirm") || strings.Contains(txt, "passkey") || strings.Contains(txt, "withdraw")) {
				t.Errorf("English on the Japanese page: %q", txt)
			}
			if n := k.count(t, `SELECT COUNT(*) FROM withdrawals WHERE account = $1`, account); n != 1 {
				t.Fatalf("%d withdrawals", n)
			}
			if n := k.count(t, `SELECT COUNT(*) FROM passkeys WHERE account = $1`, account); n != map[bool]int{true: 0, false: 1}[c.before] {
				t.Fatalf("%d passkeys", n)
			}
		})
	}
}
