package console

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/analyst"
	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/cases"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// form posts a console form as the browser does (same origin, the
// session's CSRF token read from page) and returns status and body.
func (pc *passkeyConsole) form(t *testing.T, cookie, page, path string, v url.Values) (int, string) {
	t.Helper()
	_, body := pc.get(t, page, cookie)
	if m := csrfField.FindStringSubmatch(body); m != nil && v.Get("csrf") == "" {
		v.Set("csrf", m[1])
	}
	req, _ := http.NewRequest("POST", pc.url+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", pc.url)
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestCaseTriage walks the console's case pages as two analysts signed in
// with passkeys: the list by severity and money at stake, a case with its
// timeline in words, JST and amounts with separators, the campaign, 404s
// for unknown cases, campaigns and symbols, a freeze, a reopening refused
// before re-verification and to its own proposer and approved by a
// supervisor; every decision needs a note, an API-key session may not act,
// and a form without the session's token is refused.
func TestCaseTriage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		office := cases.New(cases.Config{DB: db})
		pc := newPasskeyConsole(t, db, office)
		session := func(name, role string) string {
			if _, err := pc.people.Create(ctx, name, role, "operator:test"); err != nil {
				t.Fatal(err)
			}
			code, err := IssueEnrolment(ctx, db, name, "operator:test", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			_, ck := pc.enrolPasskey(t, code)
			return ck
		}
		sato, suzuki := session("sato", analyst.RoleAnalyst), session("suzuki", analyst.RoleSupervisor)
		k1, err := office.Open(ctx, cases.Link{Kind: "alert", Ref: "a1", Account: "C0000001", Symbol: "9999", Campaign: "camp-1", Title: "pump of 9999", Severity: 60, Actor: "system:surveil", Text: "R1_liquidate_concentrate"})
		if err != nil {
			t.Fatal(err)
		}
		k2, _ := office.Open(ctx, cases.Link{Kind: "alert", Ref: "a2", Account: "C0000002", Symbol: "9999", Campaign: "camp-1", Title: "pump of 9999", Severity: 60})
		k3, _ := office.Open(ctx, cases.Link{Kind: "customer_report", Account: "C0000003", Title: "customer report", Severity: 20})
		at := time.Date(2026, 4, 1, 1, 30, 0, 0, time.UTC) // 10:30 JST
		for _, c := range []struct {
			id, account string
			qty         int64
		}{{k1, "C0000001", 1000}, {k2, "C0000002", 3000}} {
			in := cases.Incident{Accesses: []cases.Access{{Time: at, IP: "203.0.113.9"}},
				Fills: []cases.Fill{{Time: at, Symbol: "9999", Side: "buy", Qty: c.qty, Price: 1234, FeeJPY: 550, Fraudulent: true}}}
			if err := office.RecordIncident(ctx, "sato", c.id, in); err != nil {
				t.Fatal(err)
			}
		}
		// The list: same severity, so C0000002 (¥3,702,000 at stake) first.
		status, body := pc.get(t, "/console/cases", sato)
		if status != 200 || !strings.Contains(body, "¥3,702,000") || strings.Index(body, k2) > strings.Index(body, k1) || strings.Index(body, k1) > strings.Index(body, k3) {
			t.Errorf("case list: %d, want %s, %s, %s in order with amounts: %s", status, k2, k1, k3, body)
		}
		status, body = pc.get(t, "/console/cases/"+k1, sato)
		for _, want := range []string{"surveillance alert · 監視アラート", "2026-04-01 10:30:00 JST", "¥1,234,000", "camp-1", "¥550", "incident recorded"} {
			if status != 200 || !strings.Contains(body, want) {
				t.Errorf("case page: %d, no %q", status, want)
			}
		}
		status, body = pc.get(t, "/console/campaigns/camp-1", sato)
		for _, want := range []string{"C0000001", "C0000002", "203.0.113.9", "¥4,936,000", "9999"} {
			if status != 200 || !strings.Contains(body, want) {
				t.Errorf("campaign page: %d, no %q", status, want)
			}
		}
		for _, p := range []string{"/console/cases/K0000", "/console/campaigns/nope", "/console/instruments/0000"} {
			if status, body := pc.get(t, p, sato); status != 404 || !strings.Contains(body, "Not found") {
				t.Errorf("%s: %d, want a 404 page", p, status)
			}
		}
		page := "/console/cases/" + k1
		act := func(who, action string, v url.Values) (int, string) {
			t.Helper()
			return pc.form(t, who, page, page+"/"+action, v)
		}
		if status, body := act(sato, "freeze", url.Values{}); status != 400 || !strings.Contains(body, "note") {
			t.Errorf("freeze without a note: %d", status)
		}
		if status, _ := act(sato, "freeze", url.Values{"note": {"x"}, "csrf": {"0000"}}); status != 403 {
			t.Errorf("freeze with a forged token: %d", status)
		}
		// An admin API-key session sees cases but may not act: no person.
		keys := apikey.New(db)
		secret, _, _ := keys.Create(ctx, "ops", []string{apikey.ScopeAdmin}, time.Now())
		req, _ := http.NewRequest("POST", pc.url+"/console/login", strings.NewReader(url.Values{"key": {secret}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		keySession := strings.Split(resp.Header.Get("Set-Cookie"), ";")[0]
		if status, body := act(keySession, "freeze", url.Values{"note": {"suspicious"}}); status != 403 || !strings.Contains(body, "passkey") {
			t.Errorf("freeze from an API-key session: %d", status)
		}
		if status, _ := act(sato, "freeze", url.Values{"note": {"customer says the sells were not theirs"}}); status != 303 {
			t.Fatalf("freeze: %d", status)
		}
		if f, _ := office.Frozen(ctx, "C0000001"); f == nil || !f.Frozen || f.By != "analyst:sato" {
			t.Fatalf("freeze: %+v", f)
		}
		if status, body := act(sato, "reopen", url.Values{"note": {"looks fine"}}); status != 409 || !strings.Contains(body, "reverification_required") {
			t.Errorf("reopen before re-verification: %d", status)
		}
		if status, _ := act(sato, "reverify", url.Values{"method": {"callback"}, "result": {"passed"}, "note": {"called 090-…, the customer confirmed"}}); status != 303 {
			t.Fatalf("re-verification: %d", status)
		}
		if status, _ := act(sato, "reopen", url.Values{"note": {"verified by call back"}}); status != 303 {
			t.Fatalf("propose reopen: %d", status)
		}
		_, body = pc.get(t, page, sato)
		m := regexp.MustCompile(`/approvals/([A-Za-z0-9]+)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no proposal on the case page")
		}
		decide := func(who string, v url.Values) (int, string) {
			t.Helper()
			return pc.form(t, who, page, page+"/approvals/"+m[1], v)
		}
		if status, body := decide(sato, url.Values{"decision": {"approve"}, "note": {"mine"}}); status != 403 || !strings.Contains(body, "four_eyes_required") {
			t.Errorf("approved by its proposer: %d", status)
		}
		if status, _ := decide(suzuki, url.Values{"decision": {"approve"}}); status != 400 {
			t.Errorf("approval without a note: %d", status)
		}
		if status, _ := decide(suzuki, url.Values{"decision": {"approve"}, "note": {"call back checked"}}); status != 303 {
			t.Fatalf("supervisor's approval: %d", status)
		}
		if f, _ := office.Frozen(ctx, "C0000001"); f == nil || f.Frozen || f.LiftedBy != "analyst:suzuki" {
			t.Errorf("after approval: %+v", f)
		}
		_, body = pc.get(t, page, sato)
		for _, want := range []string{"reopening approved", "analyst:suzuki", "identity re-verified", "reopened · 凍結解除"} {
			if !strings.Contains(body, want) {
				t.Errorf("case page after reopening: no %q", want)
			}
		}
		// The assignee: an active analyst, set with a note, shown.
		if status, _ := act(sato, "assign", url.Values{"assignee": {"suzuki"}}); status != 400 {
			t.Errorf("assigned without a note: %d", status)
		}
		if status, _ := act(sato, "assign", url.Values{"assignee": {"mallory"}, "note": {"x"}}); status != 400 {
			t.Errorf("assigned to no analyst: %d", status)
		}
		if status, _ := act(sato, "assign", url.Values{"assignee": {"suzuki"}, "note": {"the supervisor takes it"}}); status != 303 {
			t.Fatalf("assign: %d", status)
		}
		if _, body = pc.get(t, page, sato); !strings.Contains(body, "<td>suzuki</td>") || !strings.Contains(body, "suzuki: the supervisor takes it") {
			t.Errorf("case page after assigning: no assignee")
		}
		// The incident report for the finance bureau, in both languages.
		status, body = pc.get(t, page+"/report", sato)
		for _, want := range []string{"事故報告書", "Incident report for the finance bureau", "C0000001", "2026-04-01 10:30:00 JST", "203.0.113.9",
			"不正買付 · unauthorised purchase", "¥1,234,000", "口座凍結 · Account frozen", "analyst:suzuki", "call back to the registered phone number"} {
			if status != 200 || !strings.Contains(body, want) {
				t.Errorf("incident report: %d, no %q", status, want)
			}
		}
		if status, _ := pc.get(t, "/console/cases/K0000/report", sato); status != 404 {
			t.Errorf("report of no case: %d", status)
		}
		// Lifting a halt from the instrument page proposes it; the
		// proposer cannot approve it, a supervisor can.
		if _, err := db.ExecContext(ctx, `INSERT INTO instruments (symbol, name, market, currency, lot, adv_shares, prev_close) VALUES ('9999', 'Thin', 'TSE Growth', 'JPY', 100, 1000, 100)`); err != nil {
			t.Fatal(err)
		}
		if err := office.SetHalt(ctx, "system:surveil", "9999", true, "ramp"); err != nil {
			t.Fatal(err)
		}
		ip := "/console/instruments/9999"
		halted := func(when string) {
			t.Helper()
			if hs, _ := office.Halts(ctx); hs["9999"] != "ramp" {
				t.Errorf("%s: halts %v", when, hs)
			}
		}
		if status, _ := pc.form(t, sato, ip, "/console/halts/9999", url.Values{"halt": {"off"}}); status != 400 {
			t.Errorf("lift without a note: %d", status)
		}
		if status, _ := pc.form(t, keySession, ip, "/console/halts/9999", url.Values{"halt": {"off"}, "note": {"over"}}); status != 403 {
			t.Errorf("lift from an API-key session: %d", status)
		}
		if status, _ := pc.form(t, sato, ip, "/console/halts/9999", url.Values{"halt": {"off"}, "note": {"the ramp is over"}}); status != 303 {
			t.Fatalf("lift proposal: %d", status)
		}
		halted("after the proposal")
		var apID, haltCase string
		if err := db.QueryRowContext(ctx, `SELECT id, case_id FROM approvals WHERE kind = 'lift_halt' AND subject = '9999'`).Scan(&apID, &haltCase); err != nil {
			t.Fatal(err)
		}
		hp := "/console/cases/" + haltCase
		if status, body := pc.form(t, sato, hp, hp+"/approvals/"+apID, url.Values{"decision": {"approve"}, "note": {"mine"}}); status != 403 || !strings.Contains(body, "four_eyes_required") {
			t.Errorf("lift approved by its proposer: %d", status)
		}
		halted("after the proposer's approval")
		if status, _ := pc.form(t, suzuki, hp, hp+"/approvals/"+apID, url.Values{"decision": {"approve"}, "note": {"volume is back to normal"}}); status != 303 {
			t.Fatalf("supervisor's approval of the lift: %d", status)
		}
		if hs, _ := office.Halts(ctx); len(hs) != 0 {
			t.Errorf("after the supervisor's approval: halts %v", hs)
		}
	})
}

func TestWords(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 1234: "1,234", 100000: "100,000", 1234567.5: "1,234,567.5", -2500.25: "-2,500.25", 999.99: "999.99"} {
		if got := num(in); got != want {
			t.Errorf("num(%v) = %q, want %q", in, got, want)
		}
	}
	if got := sayAll("R1_liquidate_concentrate shared_ip"); !strings.Contains(got, "holdings sold") || !strings.Contains(got, "他の検知口座と同じIPアドレス") {
		t.Errorf("sayAll: %q", got)
	}
	if got := sayAll("callback: passed"); got != "call back to the registered phone number (登録電話番号への折り返し電話): passed (確認済み)" {
		t.Errorf("sayAll: %q", got)
	}
	if got := sayAll("the customer called"); got != "the customer called" {
		t.Errorf("sayAll of plain text: %q", got)
	}
}
