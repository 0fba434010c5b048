package web

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/session"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// sendMessage queues one message to account over email, SMS and webhook
// and returns the reference codes, by channel.
func sendMessage(t *testing.T, db *store.DB, account string, kind notify.Kind) map[string]string {
	t.Helper()
	ctx := context.Background()
	o := &notify.Outbox{Webhook: true, SMS: true}
	if err := o.Enqueue(ctx, db, notify.Message{Account: account, To: "yui@example.jp", Phone: "090-1111-2222", Kind: kind, Data: map[string]string{"Name": "佐藤 結衣"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	list, err := notify.AccountMessages(ctx, db, account, 100)
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]string{}
	for _, l := range list {
		if l.Kind == kind {
			refs[l.Channel] = l.Ref
		}
	}
	return refs
}

// visitor is a browser without a session, from one address.
type visitor struct {
	t      *testing.T
	base   string
	ip     string
	client *http.Client
}

func newVisitor(t *testing.T, base, ip string) *visitor {
	jar, _ := cookiejar.New(nil)
	return &visitor{t: t, base: base, ip: ip, client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (v *visitor) do(method, path string, form url.Values) (int, string) {
	v.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, v.base+path, body)
	req.Header.Set("X-Forwarded-For", v.ip)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := v.client.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// check submits code on the public page and returns the status and page.
func (v *visitor) check(code, lang string) (int, string) {
	v.t.Helper()
	_, page := v.do("GET", "/portal/genuine?lang="+lang, nil)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		v.t.Fatalf("no form on the page: %s", page)
	}
	return v.do("POST", "/portal/genuine?lang="+lang, url.Values{"csrf": {m[1]}, "code": {code}})
}

// TestGenuinePage: anyone can check a code without signing in; a genuine
// code tells the kind, channel and time of the message and nothing of the
// account; a made-up one says we never sent it.
func TestGenuinePage(t *testing.T) {
	k := startKabuto(t)
	refs := sendMessage(t, k.db, "C0000042", notify.KindBank)
	v := newVisitor(t, k.url, "203.0.113.7")
	for ch, ref := range refs {
		code, page := v.check(strings.ToLower(ref), "en")
		if code != 200 || !strings.Contains(page, `data-genuine="yes"`) || !strings.Contains(page, "Your withdrawal bank account changed") || !strings.Contains(page, notify.ChannelText(ch, "en")) {
			t.Fatalf("%s code %s: %d\n%s", ch, ref, code, page)
		}
		for _, secret := range []string{"C0000042", "yui@example.jp", "090-1111-2222", "佐藤"} {
			if strings.Contains(page, secret) {
				t.Fatalf("the public page shows account data %q", secret)
			}
		}
	}
	if code, page := v.check("ACDEF-GHJKM", "ja"); code != 200 || !strings.Contains(page, `data-genuine="no"`) || !strings.Contains(page, "当社は送っていません") {
		t.Fatalf("made-up code: %d\n%s", code, page)
	}
	if code, page := v.check("<script>", "en"); code != 200 || !strings.Contains(page, `data-genuine="no"`) {
		t.Fatalf("junk: %d", code)
	}
}

// TestGenuinePageLimited: a stranger who tries to find genuine codes by
// guessing gets ten checks from one address and forty from one network,
// and is then refused, even for a genuine code; another network is not
// affected.
func TestGenuinePageLimited(t *testing.T) {
	k := startKabuto(t)
	ref := sendMessage(t, k.db, "C0000042", notify.KindSignIn)[notify.ChannelEmail]
	guesser := newVisitor(t, k.url, "198.51.100.9")
	for i := range 10 {
		if code, _ := guesser.check(notify.NewRef(), "en"); code != 200 {
			t.Fatalf("check %d refused: %d", i+1, code)
		}
	}
	if code, page := guesser.check(ref, "en"); code != http.StatusTooManyRequests || strings.Contains(page, "data-genuine") {
		t.Fatalf("11th check from one address: %d", code)
	}
	// The same network, other addresses: forty checks in all, of which the
	// guesser made ten.
	others := 0
	for i := 20; i < 80; i++ {
		code, _ := newVisitor(t, k.url, "198.51.100."+itoa(int64(i))).check(notify.NewRef(), "en")
		if code == http.StatusTooManyRequests {
			break
		}
		others++
	}
	if others != 30 {
		t.Fatalf("the network made %d more checks, want 30", others)
	}
	if code, page := newVisitor(t, k.url, "192.0.2.33").check(ref, "en"); code != 200 || !strings.Contains(page, `data-genuine="yes"`) {
		t.Fatalf("another network refused: %d", code)
	}
}

// TestMessageCentre: a signed-in customer sees every message sent to them
// with its reference code, and only theirs; a stranger is sent to sign in.
func TestMessageCentre(t *testing.T) {
	k := startKabuto(t)
	mine := sendMessage(t, k.db, "C0000042", notify.KindWithdrawal)
	theirs := sendMessage(t, k.db, "C0000077", notify.KindBank)
	v := newVisitor(t, k.url, "203.0.113.7")
	if code, _ := v.do("GET", "/portal/messages", nil); code != http.StatusSeeOther {
		t.Fatalf("without a session: %d", code)
	}
	u, _ := url.Parse(k.url)
	var device string
	for _, c := range v.client.Jar.Cookies(u) {
		if c.Name == "kabuto_dev" {
			device = c.Value
		}
	}
	s, err := session.New(session.Config{DB: k.db}).Create(context.Background(), "", "C0000042", session.StrengthPhishingResistant, []string{"passkey"},
		session.Client{IP: "203.0.113.7", Network: session.NetworkOf("203.0.113.7"), Device: device})
	if err != nil {
		t.Fatal(err)
	}
	v.client.Jar.SetCookies(u, []*http.Cookie{{Name: "kabuto_sid", Value: s.Token, Path: "/"}})
	code, page := v.do("GET", "/portal/messages?lang=en", nil)
	if code != 200 {
		t.Fatalf("%d %s", code, page)
	}
	for ch, ref := range mine {
		if !strings.Contains(page, `data-ref="`+ref+`"`) {
			t.Errorf("%s message %s not listed", ch, ref)
		}
	}
	for _, ref := range theirs {
		if strings.Contains(page, ref) {
			t.Fatal("another customer's message listed")
		}
	}
	if !strings.Contains(page, "出金を受け付けました") || !strings.Contains(page, "SMS text message") {
		t.Fatalf("subject or channel missing:\n%s", page)
	}
}

// TestGenuineBrowser checks a genuine and a made-up code on the public
// page in Chromium, in Japanese and in English.
func TestGenuineBrowser(t *testing.T) {
	k := startKabuto(t)
	ref := sendMessage(t, k.db, "C0000042", notify.KindSelfLock)[notify.ChannelEmail]
	ctx := browser(t)
	cases := []struct {
		lang, code, genuine, want string
	}{
		{"ja", ref, "yes", "当社が送ったメッセージです"},
		{"ja", "ACDEF-GHJKM", "no", "この参照番号のメッセージを当社は送っていません"},
		{"en", strings.ToLower(strings.ReplaceAll(ref, "-", " ")), "yes", "We sent this message"},
		{"en", "YXWVU-TRQPN", "no", "We never sent a message with this reference"},
	}
	for _, c := range cases {
		run(t, ctx, chromedp.Navigate(k.url+"/portal/genuine?lang="+c.lang), chromedp.WaitVisible(chromedp.ID("genuine-code")),
			chromedp.SendKeys(chromedp.ID("genuine-code"), c.code), chromedp.Submit(chromedp.ID("genuine-form")))
		waitJS(t, ctx, `!!document.getElementById("genuine-result")`, "the answer")
		got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("genuine-result").dataset.genuine + "|" + document.getElementById("genuine-result").textContent + "|" + document.documentElement.lang`))
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.SplitN(got, "|", 3)
		if parts[0] != c.genuine || !strings.Contains(parts[1], c.want) || parts[2] != c.lang {
			t.Fatalf("%s %q: %q", c.lang, c.code, got)
		}
		if c.genuine == "yes" {
			kind := notify.KindText(notify.KindSelfLock, c.lang)
			if !strings.Contains(parts[1], kind) {
				t.Fatalf("%s: the kind %q not shown: %q", c.lang, kind, parts[1])
			}
		}
	}
}
