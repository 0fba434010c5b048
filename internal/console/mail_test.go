package console

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/maildomain"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// TestMailPosture: the console shows the latest check of each configured
// mail domain with its fixes, and warns on its home page while a domain's
// DMARC is not reject; a stranger without a session sees none of it.
func TestMailPosture(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	keys := apikey.New(db)
	admin, _, _ := keys.Create(ctx, "yamada", []string{apikey.ScopeAdmin}, time.Now())
	c := New(Config{Keys: keys, Alerts: alerts{}, Halts: halts{}, DB: db})
	mux := http.NewServeMux()
	c.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path, ck string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if ck != "" {
			req.Header.Set("Cookie", ck)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	req, _ := http.NewRequest("POST", srv.URL+"/console/login", strings.NewReader(url.Values{"key": {admin}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %v %v", resp, err)
	}
	ck := strings.Split(resp.Header.Get("Set-Cookie"), ";")[0]

	if code, body := get("/console/mail", ck); code != 200 || !strings.Contains(body, `id="mail-none"`) {
		t.Fatalf("no checks yet: %d %s", code, body)
	}
	if _, body := get("/console", ck); strings.Contains(body, "mail-warning") {
		t.Fatal("a warning without any check")
	}
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	for _, r := range []maildomain.Report{
		{Domain: "kabuto.test", Sending: true, Checked: t0, DMARCPolicy: "reject", Findings: []maildomain.Finding{{Check: "dmarc", Level: "ok", Found: "v=DMARC1; p=reject"}}},
		{Domain: "kabuto-login.test", Checked: t0, DMARCPolicy: "none", Findings: []maildomain.Finding{{Check: "dmarc", Level: "fail", Found: "p=none", Why: "forged mail is delivered", Fix: `_dmarc.kabuto-login.test. TXT "v=DMARC1; p=reject"`}}},
	} {
		if err := maildomain.Save(ctx, db, r); err != nil {
			t.Fatal(err)
		}
	}
	code, body := get("/console/mail", ck)
	for _, want := range []string{`data-domain="kabuto.test"`, `data-domain="kabuto-login.test"`, "DMARC p=none", `_dmarc.kabuto-login.test. TXT &#34;v=DMARC1; p=reject&#34;`, `id="mail-warning"`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("mail page lacks %q: %d %s", want, code, body)
		}
	}
	if _, body := get("/console", ck); !strings.Contains(body, `id="mail-warning"`) || !strings.Contains(body, "kabuto-login.test") || strings.Contains(body, "kabuto.test,") {
		t.Fatalf("home page: %s", body)
	}
	// Fixed: the warning goes.
	maildomain.Save(ctx, db, maildomain.Report{Domain: "kabuto-login.test", Checked: t0.Add(time.Hour), DMARCPolicy: "reject"})
	if _, body := get("/console", ck); strings.Contains(body, "mail-warning") {
		t.Fatal("the warning stayed after the fix")
	}
	if code, body := get("/console/mail", ""); code != http.StatusUnauthorized || strings.Contains(body, "kabuto-login.test") {
		t.Fatalf("a stranger: %d", code)
	}
}
