package console

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// TestASVS5_1_5_ConsoleNextStaysOnOrigin: the sign-in form's next is a
// path of the console or nothing; nothing a browser could read as another
// host gets through (before: /\t/evil.example did, since browsers drop
// the tab and read //evil.example).
func TestASVS5_1_5_ConsoleNextStaysOnOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"":                            "/console",
		"/console":                    "/console",
		"/console/instruments/7203":   "/console/instruments/7203",
		"/console/instruments/A%20B":  "/console/instruments/A%20B",
		"/\t/evil.example":            "/console",
		"/console/\t/evil.example":    "/console",
		"//evil":                      "/console",
		"/\\evil":                     "/console",
		"\\\\evil":                    "/console",
		"/console//evil":              "/console",
		"/console/..//evil":           "/console",
		"/console/../../x":            "/console",
		"/console/%2F%2Fevil":         "/console",
		"/console/%5Cevil":            "/console",
		"https://evil.example/":       "/console",
		"javascript:alert(1)":         "/console",
		"/console\n/evil":             "/console",
		"/console?next=//evil":        "/console",
		"/console#//evil":             "/console",
		"/consolex":                   "/console",
		"/portal/signin":              "/console",
		"/console/instruments/%zz":    "/console",
		"/console/instruments/7203\r": "/console",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzSafeNext: whatever comes in, what safeNext lets through resolves,
// against the console's own URL, to the same origin and under /console,
// with nothing a browser would strip or reinterpret (controls, spaces,
// backslashes).
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/console", "/\t/evil.example", "//evil", "/\\evil", "/console/instruments/7203", "/console/%2e%2e/x", "/console/.."} {
		f.Add(s)
	}
	base, _ := url.Parse("https://kabuto.example/console/instruments/7203")
	f.Fuzz(func(t *testing.T, in string) {
		got := safeNext(in)
		if got == "/console" {
			return
		}
		if got != in {
			t.Fatalf("safeNext(%q) = %q: neither the input nor the console", in, got)
		}
		if strings.ContainsAny(got, "\\ \t\r\n\x00?#:@") || strings.Contains(got, "//") {
			t.Fatalf("safeNext(%q) let through %q", in, got)
		}
		ref, err := url.Parse(got)
		if err != nil {
			t.Fatalf("safeNext(%q) = %q, not a URL: %v", in, got, err)
		}
		u := base.ResolveReference(ref)
		if u.Host != base.Host || u.Scheme != base.Scheme || (u.Path != "/console" && !strings.HasPrefix(u.Path, "/console/")) {
			t.Fatalf("safeNext(%q) = %q resolves to %s", in, got, u)
		}
	})
}

// TestConsoleOrigin: a POST is let through only from the console's own
// origin: Origin exactly this origin (never "null"), and Sec-Fetch-Site
// same-origin when the browser sends it.
func TestConsoleOrigin(t *testing.T) {
	for _, tt := range []struct {
		origin, site string
		tls          bool
		ok           bool
	}{
		{"", "", false, true}, // no browser
		{"http://kabuto.example", "same-origin", false, true},
		{"http://kabuto.example", "", false, true},
		{"https://kabuto.example", "same-origin", false, true}, // behind a proxy that ends TLS
		{"https://kabuto.example", "same-origin", true, true},
		{"http://kabuto.example", "same-origin", true, false}, // a plain-HTTP page posting to the TLS server
		{"null", "same-origin", false, false},
		{"null", "", false, false},
		{"", "cross-site", false, false},
		{"", "same-site", false, false},
		{"http://kabuto.example", "cross-site", false, false},
		{"http://evil.example", "", false, false},
		{"http://kabuto.example.evil.example", "", false, false},
		{"http://kabuto.example@evil.example", "", false, false},
		{"http://kabuto.example/x", "", false, false},
		{"ftp://kabuto.example", "", false, false},
	} {
		r := httptest.NewRequest("POST", "http://kabuto.example/console/login", nil)
		if tt.origin != "" {
			r.Header.Set("Origin", tt.origin)
		}
		if tt.site != "" {
			r.Header.Set("Sec-Fetch-Site", tt.site)
		}
		if tt.tls {
			r.TLS = &tls.ConnectionState{}
		} else {
			r.TLS = nil
		}
		if got := sameOrigin(r); got != tt.ok {
			t.Errorf("Origin %q Sec-Fetch-Site %q TLS %v: %v, want %v", tt.origin, tt.site, tt.tls, got, tt.ok)
		}
	}
}

// TestASVS2_2_1_ConsoleSignInThrottled: an anonymous client guessing
// admin keys is slowed down after five failures, doubling, without the
// key being checked while it waits, and its failures reach the audit
// trail in aggregate (at the 1st, 2nd, 4th… failure) instead of one entry
// each (before: 200 guesses, 200 entries, no wait). Another client, the
// analyst, signs in meanwhile.
func TestASVS2_2_1_ConsoleSignInThrottled(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		keys := apikey.New(db)
		admin, _, _ := keys.Create(ctx, "yamada", []string{apikey.ScopeAdmin}, time.Now())
		now := time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)
		trail := audit.New(db)
		c := New(Config{Keys: keys, Audit: trail, DB: db, Alerts: alerts{}, Halts: halts{}, Tape: NewTape(10, 10), Now: func() time.Time { return now }})
		mux := http.NewServeMux()
		c.Mount(mux)
		login := func(key, ip string) *http.Response {
			r := httptest.NewRequest("POST", "/console/login", strings.NewReader(url.Values{"key": {key}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.RemoteAddr = net.JoinHostPort(ip, "40000")
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			return w.Result()
		}
		refused := 0
		for i := range 200 {
			resp := login("kb_guess_"+strings.Repeat("x", i%7+5), "203.0.113.9")
			switch resp.StatusCode {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				refused++
				if resp.Header.Get("Retry-After") == "" {
					t.Fatal("429 without Retry-After")
				}
			default:
				t.Fatalf("guess %d: %d", i, resp.StatusCode)
			}
			now = now.Add(100 * time.Millisecond)
		}
		if refused < 150 {
			t.Errorf("only %d of 200 guesses refused unchecked", refused)
		}
		// The right key from the guessing client waits too...
		if resp := login(admin, "203.0.113.9"); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("right key from the throttled client: %d", resp.StatusCode)
		}
		// ...but the analyst elsewhere signs in, and so does an IPv6 neighbour
		// outside the guesser's /64.
		if resp := login(admin, "198.51.100.7"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("analyst from another client: %d", resp.StatusCode)
		}
		es, _ := trail.List(ctx, "", 1000)
		failed := 0
		for _, e := range es {
			if e.Action == "console_login_failed" {
				failed++
			}
		}
		if failed > 8 {
			t.Errorf("%d audit entries for one client's failures", failed)
		}
		// IPv6: one /64 is one client.
		for i := range 10 {
			login("kb_guess_v6_xxxxx", "2001:db8:1:2::"+string(rune('a'+i)))
		}
		if resp := login("kb_guess_v6_xxxxx", "2001:db8:1:2::ff"); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("the same /64 from another address: %d", resp.StatusCode)
		}
		if resp := login(admin, "2001:db8:1:3::1"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("another /64: %d", resp.StatusCode)
		}
		// The wait ends (at most 15 minutes after the last failure).
		now = now.Add(16 * time.Minute)
		if resp := login(admin, "203.0.113.9"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("right key after the wait: %d", resp.StatusCode)
		}
		// Many clients, one failure each: the trail gets a bounded number of
		// entries, then counts of all.
		es, _ = trail.List(ctx, "", 1000)
		before := len(es)
		for i := range 300 {
			login("kb_guess_many_xxxxx", "192.0.2."+strconv.Itoa(i%250))
			if i == 249 {
				now = now.Add(time.Second)
			}
		}
		es, _ = trail.List(ctx, "", 1000)
		if n := len(es) - before; n > 40 {
			t.Errorf("300 failures from 250 clients: %d audit entries", n)
		}
	})
}
