package server

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// TestTwoSurfaces: the API and the browser surface each keep their own
// defaults, through the server's real handler: the API answers every
// error as JSON, never reads a cookie and is never framed or rendered;
// pages get a CSP, same-origin referrers and no cross-site form posts.
func TestTwoSurfaces(t *testing.T) {
	db := storetest.SQLite(t)
	s := New(Config{DB: db, Keys: apikey.New(db)})
	var sawCookie string
	posted := 0
	s.Mux().HandleFunc("GET /page", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<p>page") })
	s.Mux().HandleFunc("POST /page", func(w http.ResponseWriter, r *http.Request) { posted++ })
	s.Mux().HandleFunc("GET /cookie", func(w http.ResponseWriter, r *http.Request) { sawCookie = r.Header.Get("Cookie") })
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	do := func(method, path string, h map[string]string) (*http.Response, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	for _, tt := range []struct {
		method, path string
		code         int
		reason       string
	}{
		{"GET", "/api/v1/nothing-here", 404, "not_found"},
		{"GET", "/api/", 404, "not_found"},
		{"PATCH", "/api/v1/accounts", 405, "bad_request"},
		{"GET", "/api/v1/accounts", 401, "unauthenticated"},
		{"GET", "/metrics", 401, "unauthenticated"},
		{"GET", "/api/v1//accounts", 307, "bad_request"},
	} {
		resp, body := do(tt.method, tt.path, map[string]string{"Cookie": "__Host-kabuto_console=stolen"})
		var e errorBody
		if resp.StatusCode != tt.code || json.Unmarshal([]byte(body), &e) != nil || e.Error != tt.reason || e.Message == "" {
			t.Errorf("%s %s: %d %q, want %d and JSON %s", tt.method, tt.path, resp.StatusCode, body, tt.code, tt.reason)
		}
		h := resp.Header
		if h.Get("Content-Security-Policy") != "default-src 'none'; frame-ancestors 'none'" || h.Get("Referrer-Policy") != "no-referrer" ||
			h.Get("X-Frame-Options") != "DENY" || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: headers %v", tt.method, tt.path, h)
		}
	}
	resp, body := do("GET", "/page", nil)
	h := resp.Header
	if resp.StatusCode != 200 || body != "<p>page" || h.Get("Referrer-Policy") != "same-origin" || !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		h.Get("Cross-Origin-Opener-Policy") != "same-origin" || h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("page: %d %q %v", resp.StatusCode, body, h)
	}
	if resp, _ := do("POST", "/page", map[string]string{"Sec-Fetch-Site": "cross-site"}); resp.StatusCode != 403 || posted != 0 {
		t.Errorf("cross-site form post: %d, handled %d", resp.StatusCode, posted)
	}
	if resp, _ := do("POST", "/page", map[string]string{"Sec-Fetch-Site": "same-origin"}); resp.StatusCode != 200 || posted != 1 {
		t.Errorf("same-origin form post: %d, handled %d", resp.StatusCode, posted)
	}
	if resp, body := do("GET", "/nothing-here", nil); resp.StatusCode != 404 || strings.HasPrefix(body, "{") {
		t.Errorf("page not found: %d %q", resp.StatusCode, body)
	}
	// Pages see their cookies; the API never does.
	if do("GET", "/cookie", map[string]string{"Cookie": "a=1"}); sawCookie != "a=1" {
		t.Errorf("page cookie: %q", sawCookie)
	}
}

// FuzzParseStepUp: any X-Kabuto-Step-Up value is read without a panic,
// and one accepted is a known factor and a well-formed challenge, never
// a binding echoed back.
func FuzzParseStepUp(f *testing.F) {
	for _, s := range []string{"", ":", "phishing_resistant:", "mfa:suc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"phishing_resistant:" + strings.Repeat("0", 64), "passkey:suc_x", "mfa:suc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		factor, c, err := parseStepUp(v)
		if err != nil {
			return
		}
		if (factor != "phishing_resistant" && factor != "mfa") || !strings.HasPrefix(c, "suc_") || len(c) != 47 || factor+":"+c != v {
			t.Fatalf("%q read as %q, %q", v, factor, c)
		}
	})
}
