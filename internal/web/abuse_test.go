package web

// The abuse suite: each attack of issue 12 replayed over HTTP against the
// real portal (real identity service, brokerage and guard), as an attacker
// who has read the code would. Tests are named after the OWASP ASVS 4.0
// level-2 requirement they check where one applies.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"

	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/softkey"
)

// agent is one HTTP client of the portal: a browser (cookies) at an IP
// address (X-Forwarded-For, which the test portal trusts).
type agent struct {
	t  *testing.T
	k  *kabuto
	c  *http.Client
	ip string
}

type fwd struct{ ip, lang string }

func (f fwd) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.ip)
	r.Header.Set("Accept-Language", f.lang)
	return http.DefaultTransport.RoundTrip(r)
}

// agent returns a client at ip whose pages are in English.
func (k *kabuto) agent(t *testing.T, ip string) *agent { return k.agentIn(t, ip, "en") }

// agentIn returns a client at ip whose pages are in lang.
func (k *kabuto) agentIn(t *testing.T, ip, lang string) *agent {
	jar, _ := cookiejar.New(nil)
	return &agent{t: t, k: k, ip: ip, c: &http.Client{Jar: jar, Transport: fwd{ip, lang}}}
}

var metaCSRF = regexp.MustCompile(`<meta name="csrf" content="([^"]+)">`)

func (a *agent) do(req *http.Request) (int, string) {
	a.t.Helper()
	resp, err := a.c.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (a *agent) get(path string) (int, string) {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.k.url+path, nil)
	return a.do(req)
}

// csrf returns the token of the agent's browser and session.
func (a *agent) csrf() string {
	a.t.Helper()
	_, body := a.get("/portal/signup")
	m := metaCSRF.FindStringSubmatch(body)
	if m == nil {
		a.t.Fatal("no CSRF token")
	}
	return m[1]
}

func (a *agent) form(path string, v url.Values) (int, string) {
	a.t.Helper()
	v.Set("csrf", a.csrf())
	req, _ := http.NewRequest(http.MethodPost, a.k.url+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return a.do(req)
}

// api posts JSON and decodes the JSON answer.
func (a *agent) api(path string, in any) (int, map[string]any) {
	a.t.Helper()
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	req, _ := http.NewRequest(http.MethodPost, a.k.url+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", a.csrf())
	status, text := a.do(req)
	out := map[string]any{}
	json.Unmarshal([]byte(text), &out)
	return status, out
}

// customer opens an account with the password "violet-kettle-42-orbit".
func (k *kabuto) customer(t *testing.T, id, locale string) {
	t.Helper()
	ctx := context.Background()
	err := k.b.OpenAccount(ctx, broker.NewAccount{ID: id, Name: "Tanaka Taro", Locale: locale, Email: strings.ToLower(id) + "@example.jp", Phone: "090-1234-5678",
		Bank: "Mizuho 001-1234567", CashJPY: 5_000_000, Factors: []string{event.FactorPassword, event.FactorEmailOTP}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := k.id.HashPassword(ctx, "violet-kettle-42-orbit")
	if err != nil {
		t.Fatal(err)
	}
	if err := k.id.Enrol(ctx, nil, id, "", h); err != nil {
		t.Fatal(err)
	}
}

// codeFor returns the latest one-time code mailed to account.
func (k *kabuto) codeFor(t *testing.T, account string) string {
	t.Helper()
	var body string
	if err := k.db.QueryRowContext(context.Background(), `SELECT body FROM outbox WHERE kind = 'one_time_code' AND account = $1 ORDER BY created_us DESC, id DESC LIMIT 1`, account).Scan(&body); err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?:確認コード|Confirmation code): (\d{6})`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no code in %q", body)
	}
	return m[1]
}

// signIn signs a in with the password and the emailed code (or the TOTP
// of secret).
func (a *agent) signIn(account, secret string) {
	a.t.Helper()
	status, body := a.form("/portal/signin/password", url.Values{"account": {account}, "password": {"violet-kettle-42-orbit"}})
	if status != http.StatusOK || !strings.Contains(body, `id="second-form"`) {
		a.t.Fatalf("password sign-in: %d %.300s", status, body)
	}
	code, method := "", "email_otp"
	if secret != "" {
		code, method = a.k.id.TOTPCode(secret), "totp"
	} else {
		code = a.k.codeFor(a.t, account)
	}
	status, body = a.form("/portal/signin/second", url.Values{"method": {method}, "code": {code}})
	if status != http.StatusOK || strings.Contains(body, `id="second-form"`) {
		a.t.Fatalf("second factor: %d %.300s", status, body)
	}
}

// enrolPasskey registers a software passkey for the signed-in agent.
func (a *agent) enrolPasskey() *softkey.Key {
	a.t.Helper()
	status, begin := a.api("/portal/api/passkeys/begin", nil)
	if status != http.StatusOK {
		a.t.Fatalf("passkey begin: %d %v", status, begin)
	}
	var opts protocol.CredentialCreation
	remarshal(a.t, begin, &opts)
	if id, ok := opts.Response.User.ID.(string); ok { // JSON gives the handle as base64url text
		h, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil {
			a.t.Fatal(err)
		}
		opts.Response.User.ID = protocol.URLEncodedBase64(h)
	}
	key, body, err := softkey.Create(opts.Response, a.k.url)
	if err != nil {
		a.t.Fatal(err)
	}
	status, fin := a.api("/portal/api/passkeys/finish", map[string]any{"ceremony": begin["ceremony"], "credential": json.RawMessage(body), "name": "phone"})
	if status != http.StatusOK {
		a.t.Fatalf("passkey finish: %d %v", status, fin)
	}
	return key
}

// passkeySignIn signs the agent in with key and returns the status and
// answer of the finish.
func (a *agent) passkeySignIn(key *softkey.Key) (int, map[string]any) {
	a.t.Helper()
	status, begin := a.api("/portal/signin/passkey/begin", nil)
	if status != http.StatusOK {
		a.t.Fatalf("passkey sign-in begin: %d %v", status, begin)
	}
	var opts protocol.CredentialAssertion
	remarshal(a.t, begin, &opts)
	body, err := key.Get(opts.Response, a.k.url)
	if err != nil {
		a.t.Fatal(err)
	}
	return a.api("/portal/signin/passkey/finish", map[string]any{"ceremony": begin["ceremony"], "credential": json.RawMessage(body)})
}

func remarshal(t *testing.T, from any, to any) {
	t.Helper()
	b, _ := json.Marshal(from)
	if err := json.Unmarshal(b, to); err != nil {
		t.Fatal(err)
	}
}

// TestASVS_2_2_1_AntiAutomation_LockoutSparesPasskey (finding 1): a
// stranger who knows an account number fails password sign-in from many
// addresses, far past the guard's lockout of 10 failures; the owner still
// signs in with the passkey.
func TestASVS_2_2_1_AntiAutomation_LockoutSparesPasskey(t *testing.T) {
	k := startKabuto(t)
	k.customer(t, "C0100001", "ja")
	owner := k.agent(t, "192.0.2.10")
	owner.signIn("C0100001", "")
	key := owner.enrolPasskey()
	for i := range 40 {
		attacker := k.agent(t, fmt.Sprintf("198.51.%d.%d", 100+i/10, i))
		attacker.form("/portal/signin/password", url.Values{"account": {"C0100001"}, "password": {fmt.Sprint("guess-", i)}})
	}
	fresh := k.agent(t, "192.0.2.10")
	status, out := fresh.passkeySignIn(key)
	if status != http.StatusOK || out["redirect"] != "/portal/home" {
		t.Fatalf("the owner's passkey sign-in after a password flood: %d %v", status, out)
	}
}

// TestASVS_2_2_1_AntiAutomation_TOTPStepUpGuessing (finding 2): a thief
// with a session cookie guesses the TOTP of a step-up (here: removing the
// customer's self-lock). Each wrong code counts against the ceremony
// (consumed after 3), the session and the account, with back-off; the
// right code typed after the guesses no longer opens anything.
func TestASVS_2_2_1_AntiAutomation_TOTPStepUpGuessing(t *testing.T) {
	k := startKabuto(t)
	k.customer(t, "C0100002", "en")
	ctx := context.Background()
	secret, _, _ := k.id.NewTOTP("C0100002")
	if err := k.id.ConfirmTOTP(ctx, "C0100002", secret, k.id.TOTPCodeAt(secret, time.Now().Add(-30*time.Second))); err != nil {
		t.Fatal(err)
	}
	thief := k.agent(t, "192.0.2.20")
	thief.signIn("C0100002", secret)
	checked, ceremonies := 0, 0
	var last string
	for i := range 60 {
		if last == "" {
			status, out := thief.api("/portal/api/unlock", nil)
			su, _ := out["step_up"].(map[string]any)
			if status != http.StatusAccepted || su["method"] != "totp" {
				if status == http.StatusTooManyRequests {
					continue
				}
				t.Fatalf("unlock step-up: %d %v", status, out)
			}
			last = su["ceremony"].(string)
			ceremonies++
		}
		status, out := thief.api("/portal/api/step-up", map[string]any{"ceremony": last, "code": fmt.Sprintf("%06d", i)})
		switch {
		case status == http.StatusOK:
			t.Fatalf("guess %d accepted", i)
		case status == http.StatusUnauthorized && out["error"] == "unauthenticated":
			msg := fmt.Sprint(out["message"])
			if strings.Contains(msg, "the code is wrong") || strings.Contains(msg, "too many wrong codes") {
				checked++
			}
			if !strings.Contains(msg, "the code is wrong") {
				last = ""
			}
		case status == http.StatusTooManyRequests:
		default:
			t.Fatalf("guess %d: %d %v", i, status, out)
		}
	}
	if checked > 6 {
		t.Errorf("%d of 60 guesses were checked in one session; want at most 6", checked)
	}
	// The right code now: the session is in back-off, so it is not checked.
	status, out := thief.api("/portal/api/unlock", nil)
	if su, ok := out["step_up"].(map[string]any); ok {
		status, out = thief.api("/portal/api/step-up", map[string]any{"ceremony": su["ceremony"], "code": k.id.TOTPCode(secret)})
	}
	if status == http.StatusOK {
		t.Fatalf("the right code after %d guesses opened the step-up: %v", checked, out)
	}
	// A consumed ceremony stays consumed, even with the right code.
	var n int
	k.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM ceremonies WHERE kind = 'stepup_code' AND attempts > 3`).Scan(&n)
	if n != 0 {
		t.Errorf("%d ceremonies took more than 3 codes", n)
	}
}

// TestASVS_2_2_1_AntiAutomation_EmailCodeGuessing (finding 3): a thief
// with a session cookie starts step-up after step-up, each emailing the
// victim a new code, and guesses each code five times. The guesses and
// the emails are limited per account, session and network across
// ceremonies.
func TestASVS_2_2_1_AntiAutomation_EmailCodeGuessing(t *testing.T) {
	k := startKabuto(t)
	k.customer(t, "C0100003", "ja")
	thief := k.agent(t, "192.0.2.30")
	thief.signIn("C0100003", "")
	mails := func() int {
		return k.count(t, `SELECT COUNT(*) FROM outbox WHERE account = 'C0100003' AND kind = 'one_time_code'`)
	}
	before := mails()
	checked := 0
	for i := range 40 {
		status, out := thief.api("/portal/api/unlock", nil)
		su, ok := out["step_up"].(map[string]any)
		if !ok {
			if status != http.StatusTooManyRequests {
				t.Fatalf("step-up %d: %d %v", i, status, out)
			}
			continue
		}
		for j := range 5 {
			status, out := thief.api("/portal/api/step-up", map[string]any{"ceremony": su["ceremony"], "code": fmt.Sprintf("%06d", i*5+j)})
			if status == http.StatusOK {
				t.Fatalf("guess accepted: %v", out)
			}
			if msg := fmt.Sprint(out["message"]); status == http.StatusUnauthorized && (strings.Contains(msg, "the code is wrong") || strings.Contains(msg, "too many wrong codes")) {
				checked++
			}
		}
	}
	if sent := mails() - before; sent > 10 {
		t.Errorf("the victim got %d code emails; want at most 10", sent)
	}
	if checked > 6 {
		t.Errorf("%d of 200 guesses were checked; want at most 6", checked)
	}
}

// TestASVS_2_2_1_AntiAutomation_AnonymousSelfLock (finding 4): "stop
// everything" on the sign-in page, fed a list of account numbers and
// email addresses, locks a handful at most from one client; the answer
// is byte-for-byte the same whether the account exists, the contact
// matches, or a limit refused it.
func TestASVS_2_2_1_AntiAutomation_AnonymousSelfLock(t *testing.T) {
	k := startKabuto(t)
	for i := range 40 {
		k.customer(t, fmt.Sprintf("C02%05d", i), "ja")
	}
	attacker := k.agent(t, "203.0.113.66")
	pages := map[string]bool{}
	for i := range 40 {
		id := fmt.Sprintf("C02%05d", i)
		status, body := attacker.form("/portal/lock", url.Values{"account": {id}, "contact": {strings.ToLower(id) + "@example.jp"}})
		if status != http.StatusOK {
			t.Fatalf("lock %d: %d", i, status)
		}
		pages[metaCSRF.ReplaceAllString(body, "")] = true
		_, body = attacker.form("/portal/lock", url.Values{"account": {fmt.Sprintf("X9%06d", i)}, "contact": {"nobody@example.jp"}})
		pages[metaCSRF.ReplaceAllString(body, "")] = true
	}
	k.portal.Wait()
	if n := k.count(t, `SELECT COUNT(*) FROM self_locks`); n > 10 {
		t.Errorf("one client locked %d accounts; want at most 10", n)
	}
	if len(pages) != 1 {
		t.Errorf("%d different answers; want one", len(pages))
	}
	// Per target: from many clients, one account is locked once and its
	// owner gets one message, not one per request.
	for i := range 20 {
		a := k.agent(t, fmt.Sprintf("198.18.%d.1", i))
		a.form("/portal/lock", url.Values{"account": {"C0200039"}, "contact": {"c0200039@example.jp"}})
	}
	k.portal.Wait()
	if n := k.count(t, `SELECT COUNT(*) FROM outbox WHERE account = 'C0200039' AND kind = 'self_lock'`); n > 1 {
		t.Errorf("the owner got %d lock messages", n)
	}
}

// TestASVS_2_2_1_AntiAutomation_UnlockMailBombing (finding 5): "send me a
// code" on the unlock page, hammered for one account, sends a few emails,
// not one per request.
func TestASVS_2_2_1_AntiAutomation_UnlockMailBombing(t *testing.T) {
	k := startKabuto(t)
	k.customer(t, "C0100005", "ja")
	for i := range 50 {
		a := k.agent(t, fmt.Sprintf("198.19.%d.%d", i/20, i))
		if status, _ := a.form("/portal/unlock", url.Values{"account": {"C0100005"}, "send": {"1"}}); status != http.StatusOK {
			t.Fatalf("send %d: %d", i, status)
		}
	}
	k.portal.Wait()
	if n := k.count(t, `SELECT COUNT(*) FROM outbox WHERE account = 'C0100005' AND kind = 'one_time_code'`); n > 5 {
		t.Errorf("50 requests sent %d emails; want at most 5", n)
	}
}

// TestUnlockPageRevealsNothing (finding 11): the unlock page's answer to
// "send me a code" is the same page, byte for byte, for an account with
// an authenticator app, one without, and no account at all; and it is
// sent before the account is looked up, so its timing cannot tell them
// apart either (the deferred work is held until every answer is in).
func TestUnlockPageRevealsNothing(t *testing.T) {
	k := startKabuto(t)
	k.customer(t, "C0100011", "ja")
	k.customer(t, "C0100012", "ja")
	secret, _, _ := k.id.NewTOTP("C0100012")
	if err := k.id.ConfirmTOTP(context.Background(), "C0100012", secret, k.id.TOTPCode(secret)); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var once sync.Once
	k.portal.hold = func() { <-release }
	defer once.Do(func() { close(release) })
	a := k.agent(t, "192.0.2.40")
	// The account typed is echoed in the form, so the pages are compared
	// with it taken out.
	pages := map[string]bool{}
	for _, id := range []string{"C0100011", "C0100012", "C0999999"} {
		status, body := a.form("/portal/unlock", url.Values{"account": {id}, "send": {"1"}})
		if status != http.StatusOK {
			t.Fatalf("%s: %d", id, status)
		}
		pages[strings.ReplaceAll(body, id, "ACCOUNT")] = true
	}
	if len(pages) != 1 {
		t.Errorf("the unlock page differs between an account with TOTP, one without, and none (%d versions)", len(pages))
	}
	once.Do(func() { close(release) })
	k.portal.Wait()
	if n := k.count(t, `SELECT COUNT(*) FROM outbox WHERE account = 'C0100011' AND kind = 'one_time_code'`); n == 0 {
		t.Error("the customer got no code")
	}
}

// TestASVS_2_2_1_AntiAutomation_SignUpMail (finding 6): sign-up with a
// victim's address and a display name carrying a link: the name is
// refused, and a name that passes never reaches the mail; sign-ups per
// address and per client are throttled, so the victim gets a few Kabuto
// emails at most.
func TestASVS_2_2_1_AntiAutomation_SignUpMail(t *testing.T) {
	k := startKabuto(t)
	a := k.agent(t, "192.0.2.60")
	signup := func(a *agent, name, email string) (int, string) {
		return a.form("/portal/signup", url.Values{"name": {name}, "email": {email}, "phone": {"090-0000-1111"}, "bank": {"Mizuho 001-0000001"}, "password": {"violet-kettle-42-orbit"}})
	}
	for _, name := range []string{"bit.ly/kbt kabuto.shop", "Call 0120-000-000 now", "kabuto-support.example", "x:y"} {
		if status, _ := signup(a, name, "victim@example.jp"); status != http.StatusBadRequest {
			t.Errorf("display name %q: %d, want 400", name, status)
		}
	}
	for i := range 20 {
		b := k.agent(t, fmt.Sprintf("198.20.%d.1", i))
		signup(b, "Sato Yui", "victim@example.jp")
	}
	var n int
	k.db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM outbox WHERE address = 'victim@example.jp'`).Scan(&n)
	if n > 3 {
		t.Errorf("the victim's address got %d Kabuto emails from sign-ups; want at most 3", n)
	}
	rows, _ := k.db.QueryContext(context.Background(), `SELECT body FROM outbox WHERE address = 'victim@example.jp'`)
	defer rows.Close()
	for rows.Next() {
		var body string
		rows.Scan(&body)
		if strings.Contains(body, "Sato") || strings.Contains(body, "Yui") {
			t.Errorf("the display name typed at sign-up is in the email: %q", body)
			break
		}
	}
	// From one client, sign-ups to many addresses are throttled too.
	c := k.agent(t, "192.0.2.61")
	ok := 0
	for i := range 30 {
		if status, _ := signup(c, "Sato Yui", fmt.Sprintf("v%d@example.jp", i)); status == http.StatusOK {
			ok++
		}
	}
	if ok > 10 {
		t.Errorf("one client opened %d accounts in a row; want at most 10", ok)
	}
}

// approveWithPasskey signs the passkey step-up s with key and sends it.
func (a *agent) approveWithPasskey(key *softkey.Key, su map[string]any) (int, map[string]any, []byte) {
	a.t.Helper()
	var opts protocol.CredentialAssertion
	remarshal(a.t, su, &opts)
	body, err := key.Get(opts.Response, a.k.url)
	if err != nil {
		a.t.Fatal(err)
	}
	in := map[string]any{"ceremony": su["ceremony"], "credential": json.RawMessage(body)}
	status, out := a.api("/portal/api/step-up", in)
	b, _ := json.Marshal(in)
	return status, out, b
}

// TestASVS_3_7_1_StepUpRule (finding 10): one step-up rule for the
// portal and the brokerage. Before the passkey deadline a customer
// without a passkey approves a withdrawal with an emailed code (and the
// brokerage accepts it: before, it refused with English text on the
// Japanese page); bank changes need a passkey even then. After the
// deadline the portal asks the customer to enrol a passkey, then to
// approve with it. Every step-up is single-use and bound to its action.
func TestASVS_3_7_1_StepUpRule(t *testing.T) {
	for _, lang := range []string{"ja", "en"} {
		t.Run("before the deadline/"+lang, func(t *testing.T) {
			k := startKabutoWith(t, func(c *Config) { c.Policy = DefaultPolicy(); c.Policy.Deadline = time.Now().AddDate(1, 0, 0) })
			k.customer(t, "C0300001", lang)
			a := k.agentIn(t, "192.0.2.70", lang)
			a.signIn("C0300001", "")
			status, out := a.api("/portal/api/withdraw", map[string]any{"amount_jpy": 10000})
			su, _ := out["step_up"].(map[string]any)
			if status != http.StatusAccepted || su["kind"] != "code" || su["method"] != "email_otp" {
				t.Fatalf("withdrawal: %d %v", status, out)
			}
			if !strings.Contains(fmt.Sprint(su["message"]), map[string]string{"ja": "フィッシング耐性なし", "en": "not phishing-resistant"}[lang]) {
				t.Errorf("the code step-up is not labelled as not phishing-resistant: %q", su["message"])
			}
			in := map[string]any{"ceremony": su["ceremony"], "code": k.codeFor(t, "C0300001")}
			status, out = a.api("/portal/api/step-up", in)
			if status != http.StatusOK {
				t.Fatalf("approving with the emailed code: %d %v", status, out)
			}
			if status, out = a.api("/portal/api/step-up", in); status == http.StatusOK {
				t.Fatalf("the same code step-up approved twice: %v", out)
			}
			if n := k.count(t, `SELECT COUNT(*) FROM withdrawals WHERE account = 'C0300001'`); n != 1 {
				t.Fatalf("%d withdrawals", n)
			}
			// A bank change needs a passkey even before the deadline.
			status, out = a.api("/portal/api/bank", map[string]any{"value": "Attacker Bank 999-0000001"})
			if su, _ := out["step_up"].(map[string]any); status != http.StatusAccepted || su["kind"] != "enrol" {
				t.Fatalf("bank change without a passkey: %d %v", status, out)
			}
		})
		t.Run("after the deadline/"+lang, func(t *testing.T) {
			k := startKabuto(t) // DefaultPolicy: passkeys are mandatory
			k.customer(t, "C0300002", lang)
			a := k.agentIn(t, "192.0.2.71", lang)
			a.signIn("C0300002", "")
			status, out := a.api("/portal/api/withdraw", map[string]any{"amount_jpy": 20000})
			su, _ := out["step_up"].(map[string]any)
			if status != http.StatusAccepted || su["kind"] != "enrol" {
				t.Fatalf("withdrawal without a passkey after the deadline: %d %v", status, out)
			}
			if k.count(t, `SELECT COUNT(*) FROM outbox WHERE account = 'C0300002' AND kind = 'one_time_code'`) != 1 {
				t.Error("a code was sent for a withdrawal a code cannot approve")
			}
			key := a.enrolPasskey()
			status, out = a.api("/portal/api/withdraw", map[string]any{"amount_jpy": 20000})
			su, _ = out["step_up"].(map[string]any)
			if status != http.StatusAccepted || su["kind"] != "passkey" {
				t.Fatalf("withdrawal after enrolling: %d %v", status, out)
			}
			status, out, body := a.approveWithPasskey(key, su)
			if status != http.StatusOK {
				t.Fatalf("approving with the new passkey: %d %v", status, out)
			}
			// The assertion again (single use), and on another action.
			if status, out := a.api("/portal/api/step-up", json.RawMessage(body)); status == http.StatusOK {
				t.Fatalf("the passkey step-up approved twice: %v", out)
			}
			if n := k.count(t, `SELECT COUNT(*) FROM withdrawals WHERE account = 'C0300002'`); n != 1 {
				t.Fatalf("%d withdrawals", n)
			}
			// The brokerage holds to the same rule on its own: a code step-up
			// bound to the very withdrawal does not meet its passkey challenge.
			status, out = a.api("/portal/api/withdraw", map[string]any{"amount_jpy": 30000})
			if su, _ := out["step_up"].(map[string]any); status != http.StatusAccepted || su["kind"] != "passkey" {
				t.Fatalf("a passkey customer's withdrawal: %d %v", status, out)
			}
		})
	}
}
