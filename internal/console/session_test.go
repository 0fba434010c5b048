package console

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/server"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// consoleServer is the console on the real server's browser surface, with
// a clock the test moves.
type consoleServer struct {
	url   string
	admin string
	now   *time.Time
}

func newConsoleServer(t *testing.T) *consoleServer {
	t.Helper()
	db := storetest.SQLite(t)
	keys := apikey.New(db)
	admin, _, err := keys.Create(context.Background(), "yamada", []string{apikey.ScopeAdmin}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
	s := server.New(server.Config{DB: db, Keys: keys, Log: discard()})
	New(Config{Keys: keys, DB: db, Alerts: alerts{}, Halts: halts{}, Tape: NewTape(10, 10), CheckKey: s.CheckKey, Log: discard(),
		Now: func() time.Time { return now }}).Mount(s.Mux())
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &consoleServer{url: srv.URL, admin: admin, now: &now}
}

func (c *consoleServer) do(t *testing.T, method, path, cookie string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.url+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// signIn signs in and returns the session cookie ("name=value") and the
// full Set-Cookie header.
func (c *consoleServer) signIn(t *testing.T, preset string) (string, string) {
	t.Helper()
	resp, _ := c.do(t, "POST", "/console/login", preset, url.Values{"key": {c.admin}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	set := resp.Header.Get("Set-Cookie")
	return strings.Split(set, ";")[0], set
}

// TestASVS3_2_1_ConsoleNewSessionAtSignIn: sign-in makes a new session
// token; a token planted before (session fixation) is not adopted, and
// two sign-ins never share one.
func TestASVS3_2_1_ConsoleNewSessionAtSignIn(t *testing.T) {
	c := newConsoleServer(t)
	planted := "__Host-kabuto_console=" + strings.Repeat("a", 64)
	ck1, _ := c.signIn(t, planted)
	ck2, _ := c.signIn(t, "")
	if ck1 == planted || ck1 == ck2 {
		t.Fatalf("session tokens %q, %q (planted %q)", ck1, ck2, planted)
	}
	if resp, _ := c.do(t, "GET", "/console", planted, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the planted token opens the console: %d", resp.StatusCode)
	}
}

// TestASVS3_2_2_ConsoleTokenEntropy: session tokens carry at least 64 bits
// of randomness (they carry 256: 32 random bytes, hex).
func TestASVS3_2_2_ConsoleTokenEntropy(t *testing.T) {
	c := newConsoleServer(t)
	seen := map[string]bool{}
	for range 20 {
		ck, _ := c.signIn(t, "")
		v := strings.TrimPrefix(ck, "__Host-kabuto_console=")
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(v) || seen[v] {
			t.Fatalf("token %q", v)
		}
		seen[v] = true
	}
}

// TestASVS3_4_1to5_ConsoleCookieAttributes: the session cookie is __Host-
// (3.4.4), Secure (3.4.1), HttpOnly (3.4.2), SameSite=Strict (3.4.3) and
// Path=/ (3.4.5), and never in a URL (3.1.1).
func TestASVS3_4_1to5_ConsoleCookieAttributes(t *testing.T) {
	c := newConsoleServer(t)
	ck, set := c.signIn(t, "")
	for _, want := range []string{"__Host-kabuto_console=", "Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(set, want) {
			t.Errorf("Set-Cookie %q lacks %s", set, want)
		}
	}
	if strings.Contains(set, "Domain=") {
		t.Errorf("Set-Cookie %q names a domain", set)
	}
	_, page := c.do(t, "GET", "/console", ck, nil)
	if v := strings.TrimPrefix(ck, "__Host-kabuto_console="); strings.Contains(page, v) {
		t.Error("the session token is in the page")
	}
}

// TestASVS3_3_1_ConsoleSignOutEndsSession: after sign-out the token opens
// nothing, even replayed by a cookie thief.
func TestASVS3_3_1_ConsoleSignOutEndsSession(t *testing.T) {
	c := newConsoleServer(t)
	ck, _ := c.signIn(t, "")
	_, page := c.do(t, "GET", "/console", ck, nil)
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		t.Fatal("no CSRF token")
	}
	if resp, _ := c.do(t, "POST", "/console/logout", ck, url.Values{"csrf": {csrf[1]}}); resp.StatusCode != http.StatusSeeOther ||
		!strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign-out: %d %q", resp.StatusCode, resp.Header.Get("Set-Cookie"))
	}
	if resp, _ := c.do(t, "GET", "/console", ck, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("token after sign-out: %d", resp.StatusCode)
	}
}

// TestASVS3_3_2_ConsoleSessionTimeouts: a session ends after 30 minutes
// idle and after 8 hours however busy (ASVS level 2: 30 minutes idle, 12
// hours at most).
func TestASVS3_3_2_ConsoleSessionTimeouts(t *testing.T) {
	c := newConsoleServer(t)
	ck, _ := c.signIn(t, "")
	*c.now = c.now.Add(29 * time.Minute)
	if resp, _ := c.do(t, "GET", "/console", ck, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after 29 idle minutes: %d", resp.StatusCode)
	}
	*c.now = c.now.Add(31 * time.Minute)
	if resp, _ := c.do(t, "GET", "/console", ck, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("after 31 idle minutes: %d", resp.StatusCode)
	}
	ck, _ = c.signIn(t, "")
	for range 8 * 60 / 20 {
		*c.now = c.now.Add(20 * time.Minute)
		c.do(t, "GET", "/console", ck, nil)
	}
	*c.now = c.now.Add(time.Minute)
	if resp, _ := c.do(t, "GET", "/console", ck, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("busy session after 8 hours: %d", resp.StatusCode)
	}
}

// TestASVS4_2_2_ConsoleCrossSiteForms: a signed-in analyst's browser
// posting a form from another site (its cookie would not be sent with
// SameSite=Strict, but should it be) is refused by the origin checks, as
// is a form without the session's CSRF token.
func TestASVS4_2_2_ConsoleCrossSiteForms(t *testing.T) {
	c := newConsoleServer(t)
	ck, _ := c.signIn(t, "")
	_, page := c.do(t, "GET", "/console", ck, nil)
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(page)[1]
	post := func(h map[string]string, form url.Values) int {
		req, _ := http.NewRequest("POST", c.url+"/console/halts/7203", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Cookie", ck)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	form := url.Values{"halt": {"on"}, "csrf": {csrf}}
	for name, h := range map[string]map[string]string{
		"cross-site":    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		"same-site":     {"Sec-Fetch-Site": "same-site"},
		"other origin":  {"Origin": "https://evil.example"},
		"opaque origin": {"Origin": "null"},
	} {
		if code := post(h, form); code != http.StatusForbidden {
			t.Errorf("%s: %d", name, code)
		}
	}
	if code := post(map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": c.url}, url.Values{"halt": {"on"}}); code != http.StatusForbidden {
		t.Errorf("no CSRF token: %d", code)
	}
	if code := post(map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": c.url}, form); code != http.StatusSeeOther {
		t.Errorf("the console's own form: %d", code)
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
