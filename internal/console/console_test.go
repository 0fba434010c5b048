package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

type alerts []event.Alert

func (a alerts) Alerts(_ context.Context, symbol string, _ time.Time, _ int) ([]event.Alert, error) {
	var out []event.Alert
	for _, x := range a {
		if symbol == "" || x.Symbol == symbol {
			out = append(out, x)
		}
	}
	return out, nil
}

type halts map[string]string

func (h halts) Halts(context.Context) (map[string]string, error) { return h, nil }
func (h halts) SetHalt(_ context.Context, s string, on bool, why string) error {
	if on {
		h[s] = why
	} else {
		delete(h, s)
	}
	return nil
}

type reviewer struct{ decided []string }

func (r *reviewer) Held(context.Context, int) ([]broker.HeldAction, error) {
	return []broker.HeldAction{{Kind: "withdrawal", ID: "W1", Account: "C7", Summary: "withdraw", ValueJPY: 900000}}, nil
}
func (r *reviewer) ReleaseWithdrawal(_ context.Context, id string, approve bool) error {
	r.decided = append(r.decided, fmt.Sprint(id, " ", approve))
	return nil
}
func (r *reviewer) ReleaseOrder(context.Context, string, bool) (*broker.Order, error) {
	return nil, broker.ErrNotHeld
}

func TestConsole(t *testing.T) {
	db := storetest.SQLite(t)
	ctx := context.Background()
	keys := apikey.New(db)
	admin, _, _ := keys.Create(ctx, "yamada", []string{apikey.ScopeAdmin}, time.Now())
	broker, _, _ := keys.Create(ctx, "core", []string{apikey.ScopeBroker}, time.Now())
	t0 := time.Date(2025, 4, 8, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))
	tape := NewTape(100, 100)
	for i := range 60 {
		p := 84 + float64(i)/2
		tape.Record(&event.Record{Type: event.TypeBar, Time: t0.Add(time.Duration(i) * time.Minute), Symbol: "3001", Open: p, High: p + 1, Low: p, Close: p + 1, Volume: int64(1000 + 500*i)}, nil)
	}
	tape.Record(&event.Record{Type: event.TypeOrder, Time: t0.Add(20 * time.Minute), Account: "C9", Symbol: "3001", Side: "buy", Qty: 10000}, &event.Decision{Action: "allow"})
	tape.Record(&event.Record{Type: event.TypeOrder, Time: t0.Add(21 * time.Minute), Account: "C8", Symbol: "3001", Side: "buy", Qty: 10000}, &event.Decision{Action: "deny", Reasons: []string{"instrument_halted"}})
	hs := halts{}
	var guardHalts []string
	trail := audit.New(db)
	rev := &reviewer{}
	c := New(Config{Review: rev, Keys: keys, Alerts: alerts{{Alert: "a1", Time: t0.Add(20 * time.Minute), Kind: "cross_account_pump", Symbol: "3001", Accounts: []string{"C9", "C8"}, Score: 90, Action: "halt_buys"}},
		Halts: hs, GuardHalt: func(s string, on bool) { guardHalts = append(guardHalts, s) }, Tape: tape, Audit: trail})
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
	post := func(path, ck string, form url.Values) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if ck != "" {
			req.Header.Set("Cookie", ck)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if code, body := get("/console", ""); code != 401 || !strings.Contains(body, "Admin API key") {
		t.Fatalf("no session: %d", code)
	}
	if resp := post("/console/login", "", url.Values{"key": {broker}}); resp.StatusCode != 401 {
		t.Fatalf("non-admin key signed in: %d", resp.StatusCode)
	}
	resp := post("/console/login", "", url.Values{"key": {admin}, "next": {"//evil.example"}})
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/console" {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	setCookie := resp.Header.Get("Set-Cookie")
	if !strings.Contains(setCookie, "HttpOnly") || !strings.Contains(setCookie, "Secure") || !strings.Contains(setCookie, "SameSite=Strict") {
		t.Errorf("cookie attributes: %s", setCookie)
	}
	ck := strings.Split(setCookie, ";")[0]
	code, body := get("/console", ck)
	if !strings.Contains(body, `action="/console/held/withdrawal/W1"`) {
		t.Error("held withdrawal not listed")
	}
	if code != 200 || !strings.Contains(body, "cross_account_pump") || !strings.Contains(body, `href="/console/instruments/3001"`) {
		t.Fatalf("home: %d %s", code, body)
	}
	code, body = get("/console/instruments/3001", ck)
	if code != 200 || !strings.Contains(body, "<svg") || !strings.Contains(body, "<polyline") || strings.Count(body, "<path d=") != 2 || !strings.Contains(body, "HALT") {
		t.Fatalf("instrument page: %d %s", code, body)
	}
	if !strings.Contains(body, "C8 buy 10000 · deny instrument_halted") {
		t.Error("refused order not marked on the chart")
	}
	csrf := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(body)[1]
	if resp := post("/console/halts/3001", ck, url.Values{"halt": {"on"}, "why": {"ramp"}}); resp.StatusCode != 403 {
		t.Errorf("halt without CSRF token: %d", resp.StatusCode)
	}
	if resp := post("/console/halts/3001", ck, url.Values{"halt": {"on"}, "why": {"ramp"}, "csrf": {csrf}}); resp.StatusCode != 303 || hs["3001"] != "ramp" {
		t.Errorf("halt: %d %v", resp.StatusCode, hs)
	}
	// No one lifts a halt alone: the lift button proposes, and a console
	// without a back office (or an API-key session) cannot.
	if resp := post("/console/halts/3001", ck, url.Values{"halt": {"off"}, "note": {"over"}, "csrf": {csrf}}); resp.StatusCode != 403 || hs["3001"] != "ramp" || len(guardHalts) != 1 {
		t.Errorf("lift alone: %d %v %v", resp.StatusCode, hs, guardHalts)
	}
	// Releasing held money needs four eyes: the approve button proposes,
	// and without a back office (or a passkey session) it cannot.
	if resp := post("/console/held/withdrawal/W1", ck, url.Values{"decision": {"approve"}, "note": {"customer confirmed"}, "csrf": {csrf}}); resp.StatusCode != 403 || len(rev.decided) != 0 {
		t.Errorf("held withdrawal released alone: %d %v", resp.StatusCode, rev.decided)
	}
	// Every decision is confirmed with a note.
	if resp := post("/console/held/withdrawal/W1", ck, url.Values{"decision": {"reject"}, "csrf": {csrf}}); resp.StatusCode != 400 || len(rev.decided) != 0 {
		t.Errorf("rejected without a note: %d %v", resp.StatusCode, rev.decided)
	}
	if resp := post("/console/held/withdrawal/W1", ck, url.Values{"decision": {"reject"}, "note": {"not the customer"}, "csrf": {csrf}}); resp.StatusCode != 303 || fmt.Sprint(rev.decided) != "[W1 false]" {
		t.Errorf("reject held withdrawal: %d %v", resp.StatusCode, rev.decided)
	}
	if resp := post("/console/held/order/O9", ck, url.Values{"decision": {"approve"}, "note": {"ok"}, "csrf": {csrf}}); resp.StatusCode != 409 {
		t.Errorf("approve an order no longer held: %d", resp.StatusCode)
	}
	es, _ := trail.List(ctx, "", 10)
	var actions []string
	for _, e := range es {
		actions = append(actions, e.Action)
	}
	if strings.Join(actions, ",") != "withdrawal_rejected,halt_buys,console_login,console_login_failed" {
		t.Errorf("audit trail: %v", actions)
	}
}

func TestAppendCapped(t *testing.T) {
	var s []int
	for i := range 1000 {
		s = appendCapped(s, i, 100)
		if len(s) > 100 || s[len(s)-1] != i {
			t.Fatalf("after %d: len %d last %d", i, len(s), s[len(s)-1])
		}
	}
	if len(s) < 50 || s[0] != 1000-len(s) {
		t.Fatalf("kept %d from %d", len(s), s[0])
	}
}
