package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/analyst"
	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/cases"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/guard"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// runUntilStopped runs `kabuto args…` until stop is called, and returns
// once it answers /healthz (serve) or printed ready (demo).
func runUntilStopped(t *testing.T, ready func(out string) bool, args ...string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errs syncBuffer
	done := make(chan int, 1)
	go func() { done <- Run(ctx, args, &out, &errs) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			if code != 0 || t.Failed() {
				t.Errorf("%s exited %d: %s", args[0], code, errs.String())
			}
		case <-time.After(15 * time.Second):
			t.Errorf("%s did not shut down", args[0])
		}
	}
	t.Cleanup(stop)
	start := time.Now()
	for !ready(out.String()) {
		select {
		case code := <-done:
			t.Fatalf("%s exited %d: %s", args[0], code, errs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s not ready after 30 s: %s", args[0], errs.String())
		}
	}
	return stop
}

func serveOn(t *testing.T, dir string) (base string, stop func()) {
	addr := freeAddr(t)
	base = "http://" + addr
	healthy := func(string) bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	return base, runUntilStopped(t, healthy, "serve", "--addr", addr, "--data", dir, "--log-level", "warn", "--warm-days", "0", "--market-hours", "always")
}

func reasonsOf(m map[string]any) []string {
	var out []string
	if d, ok := m["decision"].(map[string]any); ok {
		if rs, ok := d["reasons"].([]any); ok {
			for _, r := range rs {
				out = append(out, r.(string))
			}
		}
	}
	return out
}

// TestFreezeSurvivesRestart freezes an account through the API of a real
// `kabuto serve`, restarts it on the same data, and finds every action of
// the account still refused with account_frozen, and the account's GET
// showing the freeze and its case. Before the back office a freeze lived
// in the guard's memory only, and the restarted server let the order through.
func TestFreezeSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kabuto demo and serve")
	}
	dir := t.TempDir()
	stopDemo := runUntilStopped(t, func(out string) bool { return strings.Contains(out, "Kabuto demo is running") },
		"demo", "--addr", freeAddr(t), "--data", dir, "--customers", "20", "--log-level", "warn")
	stopDemo()
	var out, errs syncBuffer
	if code := Run(context.Background(), []string{"apikey", "--create", "ops", "--scopes", "broker,events,admin", "--data", dir, "--log-level", "warn"}, &out, &errs); code != 0 {
		t.Fatalf("apikey: %s", errs.String())
	}
	admin := regexp.MustCompile(`secret: (\S+)`).FindStringSubmatch(out.String())[1]
	out = syncBuffer{}
	if code := Run(context.Background(), []string{"apikey", "--create", "app", "--scopes", "broker", "--data", dir, "--log-level", "warn"}, &out, &errs); code != 0 {
		t.Fatalf("apikey: %s", errs.String())
	}
	brokerKey := regexp.MustCompile(`secret: (\S+)`).FindStringSubmatch(out.String())[1]

	base, stop := serveOn(t, dir)
	api := base + "/api/v1"
	order := `{"symbol":"7203","side":"buy","qty":100,"price_type":"market","account_kind":"cash"}`
	if code, m := call(t, "POST", api+"/accounts/C0000002/orders", brokerKey, "before", order, customer); code >= 500 || slices.Contains(reasonsOf(m), "account_frozen") {
		t.Fatalf("order before the freeze: %d %v", code, m)
	}
	// The careless integrator and the stranger.
	abuse := []struct {
		name, key, idem, acct, body string
		status                      int
		code                        string
	}{
		{"no key", "", "f0", "C0000002", `{"reason":"x"}`, 401, "unauthenticated"},
		{"broker scope", brokerKey, "f0", "C0000002", `{"reason":"x"}`, 403, "forbidden"},
		{"no idempotency key", admin, "", "C0000002", `{"reason":"x"}`, 400, "idempotency_key_required"},
		{"no reason", admin, "f1", "C0000002", `{}`, 400, "invalid_field"},
		{"unknown field", admin, "f1", "C0000002", `{"reason":"x","until":"never"}`, 400, "invalid_field"},
		{"unknown account", admin, "f1", "C9999999", `{"reason":"x"}`, 404, "unknown_account"},
	}
	for _, a := range abuse {
		if code, m := call(t, "POST", api+"/accounts/"+a.acct+"/freeze", a.key, a.idem, a.body); code != a.status || m["error"] != a.code {
			t.Errorf("%s: %d %v, want %d %s", a.name, code, m, a.status, a.code)
		}
	}
	code, fr := call(t, "POST", api+"/accounts/C0000002/freeze", admin, "freeze-1", `{"reason":"customer called: sales not theirs"}`)
	if code != 200 || fr["frozen"] != true || fr["case"] == "" {
		t.Fatalf("freeze: %d %v", code, fr)
	}
	if code, again := call(t, "POST", api+"/accounts/C0000002/freeze", admin, "freeze-1", `{"reason":"customer called: sales not theirs"}`); code != 200 || again["case"] != fr["case"] || again["frozen_at"] != fr["frozen_at"] {
		t.Errorf("retried freeze: %d %v", code, again)
	}
	if code, m := call(t, "POST", api+"/accounts/C0000002/freeze", admin, "freeze-1", `{"reason":"something else"}`); code != 422 || m["error"] != "idempotency_key_reused" {
		t.Errorf("key reused for another request: %d %v", code, m)
	}
	check := func(when string) {
		t.Helper()
		code, m := call(t, "POST", api+"/accounts/C0000002/orders", brokerKey, "o-"+when, order, customer)
		if code != 403 || !slices.Contains(reasonsOf(m), "account_frozen") {
			t.Errorf("%s: order of the frozen account: %d %v", when, code, m)
		}
		code, m = call(t, "POST", api+"/accounts/C0000002/withdrawals", brokerKey, "w-"+when, `{"amount_jpy":1000}`, customer)
		if code != 403 || !slices.Contains(reasonsOf(m), "account_frozen") {
			t.Errorf("%s: withdrawal of the frozen account: %d %v", when, code, m)
		}
		code, m = call(t, "GET", api+"/accounts/C0000002", brokerKey, "", "")
		if code != 200 || m["frozen"] != true || m["case"] != fr["case"] {
			t.Errorf("%s: account GET: %d frozen=%v case=%v", when, code, m["frozen"], m["case"])
		}
		code, m = call(t, "GET", api+"/accounts/C0000001", brokerKey, "", "")
		if code != 200 || m["frozen"] != false {
			t.Errorf("%s: another account: %d frozen=%v", when, code, m["frozen"])
		}
		if code, m := call(t, "POST", api+"/accounts/C0000001/orders", brokerKey, "other-"+when, order, customer); code >= 500 || slices.Contains(reasonsOf(m), "account_frozen") {
			t.Errorf("%s: another account's order: %d %v", when, code, m)
		}
	}
	check("before restart")
	stop()
	base, _ = serveOn(t, dir)
	api = base + "/api/v1"
	check("after restart")
	db, err := store.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	var body string
	err = db.QueryRowContext(context.Background(), `SELECT COUNT(*), MAX(body) FROM outbox WHERE account = 'C0000002' AND kind = 'account_frozen' AND channel = 'email'`).Scan(&n, &body)
	if err != nil || n != 1 || strings.Contains(body, "http") || strings.Contains(body, "www.") {
		t.Errorf("the customer's notice of the freeze: %d, %v\n%s", n, err, body)
	}
}

// TestHaltLiftedAnywhereIsLiftedInTheGuard: the watchtower halts buying
// of a thin issue (in the guard and, through the back office, the
// brokerage's list); an admin lifts it through the API; buys go through
// again. Before the back office the API lifted the brokerage's list only
// and the guard kept refusing with instrument_halted.
func TestHaltLiftedAnywhereIsLiftedInTheGuard(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		base, _, a := startEventsServer(t, ctx, db, 20, log)
		admin, _, err := a.keys.Create(ctx, "ops", []string{apikey.ScopeAdmin}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		err = a.broker.OpenAccount(ctx, broker.NewAccount{ID: "C1", Name: "Sato", Email: "c1@example.jp", Phone: "090-0000-0001",
			Bank: "Mizuho 001-1234567", CashJPY: 5_000_000, Opened: time.Now().AddDate(-3, 0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		sym := a.broker.Exchange().Symbols()[0]
		for _, s := range a.broker.Exchange().Symbols() {
			if strings.HasPrefix(s, "7203") {
				sym = s
			}
		}
		// The watchtower's halt, as the pipeline applies it.
		al := event.Alert{Alert: "T-1", Time: time.Now(), Kind: "walk_up", Symbol: sym, Accounts: []string{"C1"}, Score: 95, Action: event.AlertHaltBuys, Campaign: "T-C"}
		a.pipe.Risk.SetHalt(sym, true)
		a.pipe.OnAlert(ctx, al)
		api := base + "/api/v1"
		order := `{"symbol":"` + sym + `","side":"buy","qty":100,"price_type":"market","account_kind":"cash"}`
		code, m := call(t, "POST", api+"/accounts/C1/orders", admin, "o1", order, customer)
		if code != 403 && code != 409 && code != 400 {
			t.Fatalf("buy of a halted issue: %d %v", code, m)
		}
		code, m = call(t, "GET", api+"/halts", admin, "", "")
		if hs, _ := m["halts"].(map[string]any); code != 200 || hs[sym] == nil {
			t.Fatalf("halt list: %d %v", code, m)
		}
		// The abuse: an admin key lifting the halt alone, directly. Four
		// eyes or nothing: refused, and the halt holds in the list and
		// in the guard.
		if code, m := call(t, "DELETE", api+"/halts/"+sym, admin, "lift-1", ""); code != 403 || m["error"] != "four_eyes_required" {
			t.Errorf("an admin key lifted a halt alone: %d %v", code, m)
		}
		if code, m := call(t, "GET", api+"/halts", admin, "", ""); code != 200 || m["halts"].(map[string]any)[sym] == nil {
			t.Errorf("halt list after the refused lift: %d %v", code, m)
		}
		if code, m := call(t, "POST", api+"/accounts/C1/orders", admin, "o2", order, customer); code == 201 || (m["error"] != "instrument_halted" && !slices.Contains(reasonsOf(m), "instrument_halted")) {
			t.Errorf("a buy went through after the refused lift: %d %v", code, m)
		}
		// Lifting by four eyes: an analyst proposes, a supervisor approves.
		people := analyst.New(db, nil)
		keyOf := func(name, role string) string {
			an, err := people.Create(ctx, name, role, "operator:test")
			if err != nil {
				t.Fatal(err)
			}
			secret, _, err := a.keys.Create(ctx, an.Actor(), []string{apikey.ScopeAdmin}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return secret
		}
		sato, suzuki := keyOf("sato", analyst.RoleAnalyst), keyOf("suzuki", analyst.RoleSupervisor)
		code, prop := call(t, "POST", api+"/halts/"+sym+"/lift", sato, "l1", `{"note":"ramp over"}`)
		if code != 201 {
			t.Fatalf("lift proposal: %d %v", code, prop)
		}
		if code, m := call(t, "POST", api+"/approvals/"+prop["id"].(string), sato, "l2", `{"decision":"approve"}`); code != 403 || m["error"] != "four_eyes_required" {
			t.Errorf("lift approved by its proposer: %d %v", code, m)
		}
		if code, m := call(t, "POST", api+"/accounts/C1/orders", admin, "o4", order, customer); code == 201 || (m["error"] != "instrument_halted" && !slices.Contains(reasonsOf(m), "instrument_halted")) {
			t.Errorf("a buy went through before the approval: %d %v", code, m)
		}
		if code, m := call(t, "POST", api+"/approvals/"+prop["id"].(string), suzuki, "l3", `{"decision":"approve"}`); code != 200 {
			t.Fatalf("lift approval: %d %v", code, m)
		}
		code, m = call(t, "POST", api+"/accounts/C1/orders", admin, "o5", order, customer)
		if code != 201 && (code != 403 || m["error"] != "step_up_required" || slices.Contains(reasonsOf(m), "instrument_halted")) {
			t.Errorf("buy after the approved lift: %d %v", code, m)
		}
		// Halting through the API reaches the guard too.
		if code, m := call(t, "PUT", api+"/halts/"+sym, admin, "halt-2", `{"reason":"ramp"}`); code != 200 {
			t.Fatalf("halt: %d %v", code, m)
		}
		if code, _ := call(t, "POST", api+"/accounts/C1/orders", admin, "o3", order, customer); code == 201 {
			t.Error("a buy went through the API's halt")
		}
		// A supervisor's own key cannot lift alone either: DELETE with an
		// analyst's key is a proposal, which its proposer cannot approve.
		code, prop = call(t, "DELETE", api+"/halts/"+sym, suzuki, "lift-2", "")
		if code != 202 || prop["status"] != "proposed" || prop["kind"] != "lift_halt" {
			t.Fatalf("DELETE with a supervisor's key: %d %v", code, prop)
		}
		if code, m := call(t, "POST", api+"/approvals/"+prop["id"].(string), suzuki, "l4", `{"decision":"approve"}`); code != 403 || m["error"] != "four_eyes_required" {
			t.Errorf("the supervisor approved their own lift: %d %v", code, m)
		}
		if code, m := call(t, "POST", api+"/accounts/C1/orders", admin, "o6", order, customer); code == 201 || (m["error"] != "instrument_halted" && !slices.Contains(reasonsOf(m), "instrument_halted")) {
			t.Errorf("a buy went through a supervisor's lone lift: %d %v", code, m)
		}
		if code, m := call(t, "GET", api+"/cases?campaign=T-C", admin, "", ""); code != 200 || len(m["cases"].([]any)) != 2 {
			t.Errorf("the alert's cases: %d %v", code, m)
		}
	})
}

// TestAnalystCommand creates, lists and disables analysts from the
// terminal, refuses bad input with a usage error, and audits each change
// with the operator.
func TestAnalystCommand(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) (int, string, string) {
		var out, errs syncBuffer
		code := Run(context.Background(), append(append([]string{"analyst"}, args...), "--data", dir, "--log-level", "warn"), &out, &errs)
		return code, out.String(), errs.String()
	}
	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--create", "sato", "--role", "analyst"}, 0, "created analyst sato (analyst)"},
		{[]string{"--create", "suzuki", "--role", "supervisor"}, 0, "created analyst suzuki (supervisor)"},
		{[]string{"--create", "sato", "--role", "admin"}, 1, ""},    // exists
		{[]string{"--create", "kato", "--role", "root"}, 2, ""},     // no such role
		{[]string{"--create", "kato"}, 2, ""},                       // no role
		{[]string{"--create", "Kato!", "--role", "analyst"}, 1, ""}, // bad name
		{[]string{"--disable", "sato", "--role", "analyst"}, 2, ""}, // role without create
		{[]string{"--list", "--disable", "sato"}, 2, ""},            // two at once
		{[]string{}, 2, ""}, // nothing
		{[]string{"--disable", "sato"}, 0, "disabled analyst sato"}, //
		{[]string{"--disable", "sato"}, 1, ""},                      // already
		{[]string{"--list"}, 0, "suzuki  supervisor"},               //
	} {
		code, out, errs := run(c.args...)
		if code != c.code || !strings.Contains(out, c.out) {
			t.Errorf("analyst %v = %d %q %q, want %d %q", c.args, code, out, errs, c.code, c.out)
		}
	}
	var out, errs syncBuffer
	Run(context.Background(), []string{"audit", "--list", "10", "--data", dir, "--log-level", "warn"}, &out, &errs)
	if !strings.Contains(out.String(), "analyst_disabled") || !strings.Contains(out.String(), "operator:") {
		t.Errorf("audit trail: %s %s", out.String(), errs.String())
	}
}

// TestFSAStatsAPI asks the real server for the regulator's table, as JSON
// and as CSV, from an incident recorded in a case; bad months get 400
// bad_month, and only admin keys may ask.
func TestFSAStatsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		base, events, a := startEventsServer(t, ctx, db, 20, log)
		admin, _, err := a.keys.Create(ctx, "ops", []string{apikey.ScopeAdmin}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := analyst.New(db, nil).Create(ctx, "sato", analyst.RoleAnalyst, "operator:test"); err != nil {
			t.Fatal(err)
		}
		office := cases.New(cases.Config{DB: db})
		caseID, err := office.Open(ctx, cases.Link{Kind: "customer_report", Account: "C1", Title: "not me"})
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2025, 4, 30, 23, 50, 0, 0, time.FixedZone("JST", 9*3600))
		err = office.RecordIncident(ctx, "sato", caseID, cases.Incident{
			Accesses: []cases.Access{{Time: t0}, {Time: t0.Add(20 * time.Minute)}},
			Fills: []cases.Fill{{Time: t0.Add(time.Minute), Symbol: "7203", Side: "sell", Qty: 200, Price: 2800, Fraudulent: true},
				{Time: t0.Add(30 * time.Minute), Symbol: "9999", Side: "buy", Qty: 5000, Price: 130, Fraudulent: true}},
			Snapshot: cases.Snapshot{CashJPY: 100_000, Shares: map[string]int64{"7203": 200}}})
		if err != nil {
			t.Fatal(err)
		}
		api := base + "/api/v1/stats/fsa"
		code, m := call(t, "GET", api+"?from=2025-04&to=2025-05", admin, "", "")
		ms, _ := m["months"].([]any)
		if code != 200 || len(ms) != 2 {
			t.Fatalf("fsa: %d %v", code, m)
		}
		apr, may := ms[0].(map[string]any), ms[1].(map[string]any)
		if apr["month"] != "2025-04" || apr["unauthorised_accesses"] != 1.0 || apr["unauthorised_trades"] != 1.0 || apr["value_sold_jpy"] != 560000.0 || apr["value_bought_jpy"] != 0.0 {
			t.Errorf("April = %v", apr)
		}
		if may["month"] != "2025-05" || may["unauthorised_accesses"] != 1.0 || may["unauthorised_trades"] != 1.0 || may["value_bought_jpy"] != 650000.0 {
			t.Errorf("May = %v", may)
		}
		req, _ := http.NewRequest("GET", api+"?from=2025-04&to=2025-05", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Accept", "text/csv")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := "month,unauthorised_accesses,unauthorised_trades,value_sold_jpy,value_bought_jpy\n2025-04,1,1,560000,0\n2025-05,1,1,0,650000\n"
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || string(body) != want {
			t.Errorf("csv: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		for _, q := range []string{"", "?from=2025-04", "?from=2025-13&to=2026-01", "?from=2025-05&to=2025-04", "?from=April&to=May", "?from=2025-04&to=2025-05-01"} {
			if code, m := call(t, "GET", api+q, admin, "", ""); code != 400 || m["error"] != "bad_month" {
				t.Errorf("fsa%s: %d %v", q, code, m)
			}
		}
		if code, m := call(t, "GET", api+"?from=2025-04&to=2025-05", events, "", ""); code != 403 {
			t.Errorf("events key: %d %v", code, m)
		}
	})
}

// TestReopenAndCompensateThroughTheAPI walks the four-eyes flow against a
// real `kabuto serve` with analysts' personal keys: a reopening without
// re-verification, with a system's key, approved by its own proposer or by
// an analyst is refused and the account stays frozen; a supervisor's
// approval after a passed call back reopens it. A compensation is refused
// to its proposer and paid once on a supervisor's approval.
func TestReopenAndCompensateThroughTheAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kabuto demo and serve")
	}
	dir := t.TempDir()
	stopDemo := runUntilStopped(t, func(out string) bool { return strings.Contains(out, "Kabuto demo is running") },
		"demo", "--addr", freeAddr(t), "--data", dir, "--customers", "5", "--log-level", "warn")
	stopDemo()
	secret := func(args ...string) string {
		t.Helper()
		var out, errs syncBuffer
		if code := Run(context.Background(), append(args, "--data", dir, "--log-level", "warn"), &out, &errs); code != 0 {
			t.Fatalf("%v: %s", args, errs.String())
		}
		return regexp.MustCompile(`secret: (\S+)`).FindStringSubmatch(out.String())[1]
	}
	system := secret("apikey", "--create", "ops", "--scopes", "broker,events,admin")
	brokerKey := secret("apikey", "--create", "app", "--scopes", "broker")
	sato := secret("analyst", "--create", "sato", "--role", "analyst")
	kato := secret("analyst", "--create", "kato", "--role", "analyst")
	suzuki := secret("analyst", "--create", "suzuki", "--role", "supervisor")
	base, _ := serveOn(t, dir)
	api := base + "/api/v1"
	code, fr := call(t, "POST", api+"/accounts/C0000002/freeze", system, "fz", `{"reason":"customer called"}`)
	if code != 200 {
		t.Fatalf("freeze: %d %v", code, fr)
	}
	caseID := fr["case"].(string)
	if code, m := call(t, "POST", api+"/accounts/C0000002/reports", system, "rep1", `{"text":"the customer did not sell their holdings"}`); code != 201 || m["case"] != caseID {
		t.Errorf("customer report: %d %v, want case %s", code, m, caseID)
	}
	if code, m := call(t, "POST", api+"/accounts/C0000002/reports", system, "rep2", `{"text":""}`); code != 400 {
		t.Errorf("empty report: %d %v", code, m)
	}
	order := `{"symbol":"7203","side":"buy","qty":100,"price_type":"market","account_kind":"cash"}`
	stillFrozen := func(when string) {
		t.Helper()
		code, m := call(t, "POST", api+"/accounts/C0000002/orders", system, "o-"+when, order, customer)
		if code != 403 || !slices.Contains(reasonsOf(m), "account_frozen") {
			t.Fatalf("%s: the account is not refused: %d %v", when, code, m)
		}
	}
	steps := []struct {
		name, key, path, idem, body string
		status                      int
		code                        string
	}{
		{"reopen without re-verification", sato, "/accounts/C0000002/reopen", "r0", `{}`, 409, "reverification_required"},
		{"re-verification with a system's key", system, "/accounts/C0000002/reverifications", "v0", `{"method":"callback","result":"passed"}`, 403, "analyst_key_required"},
		{"re-verification by email", sato, "/accounts/C0000002/reverifications", "v1", `{"method":"email","result":"passed"}`, 400, "invalid_field"},
		{"failed call back", sato, "/accounts/C0000002/reverifications", "v2", `{"method":"callback","result":"failed","note":"no answer"}`, 201, ""},
		{"reopen after a failed call back", sato, "/accounts/C0000002/reopen", "r1", `{}`, 409, "reverification_required"},
		{"passed call back", sato, "/accounts/C0000002/reverifications", "v3", `{"method":"callback","result":"passed","note":"called the registered number"}`, 201, ""},
	}
	for _, s := range steps {
		if code, m := call(t, "POST", api+s.path, s.key, s.idem, s.body); code != s.status || (s.code != "" && m["error"] != s.code) {
			t.Fatalf("%s: %d %v, want %d %s", s.name, code, m, s.status, s.code)
		}
	}
	code, prop := call(t, "POST", api+"/accounts/C0000002/reopen", sato, "r2", `{"note":"verified by call back"}`)
	if code != 201 || prop["status"] != "proposed" {
		t.Fatalf("proposal: %d %v", code, prop)
	}
	approval := api + "/approvals/" + prop["id"].(string)
	for _, s := range []struct {
		name, key, code string
	}{{"the proposer", sato, "four_eyes_required"}, {"another analyst", kato, "four_eyes_required"}, {"a system's key", system, "analyst_key_required"}} {
		if code, m := call(t, "POST", approval, s.key, "a-"+s.name, `{"decision":"approve"}`); code != 403 || m["error"] != s.code {
			t.Errorf("approved by %s: %d %v", s.name, code, m)
		}
		stillFrozen("after approval by " + s.name)
	}
	code, ok := call(t, "POST", approval, suzuki, "a-ok", `{"decision":"approve","note":"checked"}`)
	if code != 200 || ok["status"] != "approved" || ok["decided_by"] != "suzuki" {
		t.Fatalf("supervisor's approval: %d %v", code, ok)
	}
	if code, again := call(t, "POST", approval, suzuki, "a-ok", `{"decision":"approve","note":"checked"}`); code != 200 || again["decided_at"] != ok["decided_at"] {
		t.Errorf("retried approval: %d %v", code, again)
	}
	if code, m := call(t, "POST", approval, suzuki, "a-2", `{"decision":"approve"}`); code != 409 || m["error"] != "already_decided" {
		t.Errorf("second approval: %d %v", code, m)
	}
	if code, m := call(t, "POST", api+"/accounts/C0000002/orders", system, "o-open", order, customer); slices.Contains(reasonsOf(m), "account_frozen") || code >= 500 {
		t.Errorf("after reopening: %d %v", code, m)
	}
	if code, m := call(t, "GET", api+"/accounts/C0000002", system, "", ""); code != 200 || m["frozen"] != false {
		t.Errorf("account after reopening: %d frozen=%v", code, m["frozen"])
	}

	// Compensation of the case's incident.
	db, err := store.Open(context.Background(), "", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	from, until := time.Now().Add(-time.Minute).Format(time.RFC3339), time.Now().Add(time.Minute).Format(time.RFC3339)
	if code, m := call(t, "GET", api+"/cases/"+caseID+"/incident-draft?from="+from+"&until="+until, system, "", ""); code != 200 || m["account"] != "C0000002" {
		t.Errorf("incident draft: %d %v", code, m)
	}
	if code, m := call(t, "GET", api+"/cases/"+caseID+"/incident-draft?from=yesterday&until="+until, system, "", ""); code != 400 {
		t.Errorf("incident draft of a bad window: %d %v", code, m)
	}
	t0 := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	incident := `{"accesses":[{"time":"` + t0 + `","ip":"203.0.113.9"}],"fills":[{"time":"` + t0 + `","symbol":"7203","side":"buy","qty":1000,"price":1000000,"fee_jpy":550,"fraudulent":true}],"snapshot":{"cash_jpy":100000,"shares":{}}}`
	if code, m := call(t, "PUT", api+"/cases/"+caseID+"/incident", system, "i0", incident); code != 403 || m["error"] != "analyst_key_required" {
		t.Errorf("incident with a system's key: %d %v", code, m)
	}
	if code, m := call(t, "PUT", api+"/cases/"+caseID+"/incident", sato, "i1", `{"fills":[{"time":"`+t0+`","symbol":"7203","side":"short","qty":1,"price":1,"fraudulent":true}]}`); code != 400 {
		t.Errorf("incident with a bad fill: %d %v", code, m)
	}
	if code, m := call(t, "PUT", api+"/cases/"+caseID+"/incident", sato, "i2", incident); code != 200 {
		t.Fatalf("incident: %d %v", code, m)
	}
	code, prop = call(t, "POST", api+"/cases/"+caseID+"/compensations", sato, "c1", `{"method":"half"}`)
	comp, _ := prop["compensation"].(map[string]any)
	if code != 201 || comp["amount_jpy"] == nil {
		t.Fatalf("compensation proposal: %d %v", code, prop)
	}
	amount := int64(comp["amount_jpy"].(float64))
	approval = api + "/approvals/" + prop["approval"].(map[string]any)["id"].(string)
	_, before := call(t, "GET", api+"/accounts/C0000002", system, "", "")
	if code, m := call(t, "POST", approval, sato, "p-1", `{"decision":"approve"}`); code != 403 || m["error"] != "four_eyes_required" {
		t.Errorf("paid by its proposer: %d %v", code, m)
	}
	if code, m := call(t, "POST", approval, suzuki, "p-2", `{"decision":"approve"}`); code != 200 {
		t.Fatalf("payment: %d %v", code, m)
	}
	_, after := call(t, "GET", api+"/accounts/C0000002", system, "", "")
	if paid := int64(after["cash_jpy"].(float64) - before["cash_jpy"].(float64)); paid != amount || amount < 10_550 {
		t.Errorf("paid %d, proposed %d", paid, amount)
	}
	if code, m := call(t, "POST", api+"/cases/"+caseID+"/compensations", sato, "c2", `{"method":"restore"}`); code != 409 || m["error"] != "already_paid" {
		t.Errorf("a second compensation: %d %v", code, m)
	}
	code, c := call(t, "GET", api+"/cases/"+caseID, system, "", "")
	if comps, _ := c["compensations"].([]any); code != 200 || len(comps) != 1 || comps[0].(map[string]any)["status"] != "paid" {
		t.Errorf("case: %d %v", code, c)
	}
	// The incident report for the finance bureau: the account, the
	// unauthorised access and trade with its value, the actions taken by
	// whom, the compensation.
	if code, m := call(t, "GET", api+"/cases/"+caseID+"/report", brokerKey, "", ""); code != 403 {
		t.Errorf("report with a broker key: %d %v", code, m)
	}
	if code, m := call(t, "GET", api+"/cases/K0000/report", system, "", ""); code != 404 || m["error"] != "unknown_case" {
		t.Errorf("report of no case: %d %v", code, m)
	}
	code, rep := call(t, "GET", api+"/cases/"+caseID+"/report", system, "", "")
	if code != 200 || rep["account"] != "C0000002" || rep["incident_recorded"] != true {
		t.Fatalf("report: %d %v", code, rep)
	}
	trades, _ := rep["unauthorised_trades"].([]any)
	accesses, _ := rep["unauthorised_accesses"].([]any)
	totals, _ := rep["totals"].(map[string]any)
	if len(trades) != 1 || trades[0].(map[string]any)["value_jpy"] != 1e9 || len(accesses) != 1 || accesses[0].(map[string]any)["ip"] != "203.0.113.9" ||
		totals["value_bought_jpy"] != 1e9 || totals["unauthorised_trades"] != 1.0 || rep["first_unauthorised_access"] == nil {
		t.Errorf("report's incident: trades %v accesses %v totals %v", trades, accesses, totals)
	}
	kinds := map[string]string{}
	for _, e := range rep["actions_taken"].([]any) {
		kinds[e.(map[string]any)["kind"].(string)] = e.(map[string]any)["actor"].(string)
	}
	if kinds["freeze"] == "" || kinds["reverification"] != "analyst:sato" || kinds["approved_reopen"] != "analyst:suzuki" || kinds["approved_compensation"] != "analyst:suzuki" || kinds["customer_report"] == "" {
		t.Errorf("report's actions: %v", kinds)
	}
	if fz, _ := rep["freeze"].(map[string]any); fz["reopened_by"] != "analyst:suzuki" || len(rep["reverifications"].([]any)) != 2 {
		t.Errorf("report's freeze %v and re-verifications %v", rep["freeze"], rep["reverifications"])
	}
	if comps, _ := rep["compensations"].([]any); len(comps) != 1 || comps[0].(map[string]any)["status"] != "paid" || comps[0].(map[string]any)["amount_jpy"] != float64(amount) {
		t.Errorf("report's compensation: %v", rep["compensations"])
	}
	var notices int
	db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM outbox WHERE account = 'C0000002' AND kind IN ('account_reopened', 'compensation_paid') AND channel = 'email'`).Scan(&notices)
	if notices != 2 {
		t.Errorf("%d notices of the reopening and the payment, want 2", notices)
	}
}

// holdWithdrawals is the guard holding every withdrawal for an analyst
// (as it does when the account holds proceeds of flagged trades).
type holdWithdrawals struct{ guard.Guard }

func (g holdWithdrawals) Decide(ctx context.Context, r *event.Record) (event.Decision, error) {
	if r.Type == event.TypeWithdrawal {
		return event.Decision{Event: r.ID, Time: r.Time, Account: r.Account, Action: event.Hold, Score: 70, Reasons: []string{"proceeds_held"}, Policy: "test"}, nil
	}
	return g.Guard.Decide(ctx, r)
}

// TestReleaseHeldWithdrawalNeedsFourEyes: the guard holds a withdrawal;
// releasing it (the money leaving) is proposed by an analyst and approved
// by a supervisor who is not the proposer, against the real server. The
// proposer, another analyst and a system's key cannot release it, and the
// money stays until the supervisor approves; the audit trail names both.
func TestReleaseHeldWithdrawalNeedsFourEyes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		base, _, a := startEventsServer(t, ctx, db, 20, log)
		system, _, err := a.keys.Create(ctx, "ops", []string{apikey.ScopeAdmin, apikey.ScopeBroker}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		err = a.broker.OpenAccount(ctx, broker.NewAccount{ID: "C1", Name: "Sato", Email: "c1@example.jp", Phone: "090-0000-0001",
			Bank: "Mizuho 001-1234567", CashJPY: 5_000_000, Opened: time.Now().AddDate(-3, 0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		people := analyst.New(db, nil)
		keyOf := func(name, role string) string {
			an, err := people.Create(ctx, name, role, "operator:test")
			if err != nil {
				t.Fatal(err)
			}
			secret, _, err := a.keys.Create(ctx, an.Actor(), []string{apikey.ScopeAdmin}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return secret
		}
		sato, kato, suzuki := keyOf("sato", analyst.RoleAnalyst), keyOf("kato", analyst.RoleAnalyst), keyOf("suzuki", analyst.RoleSupervisor)
		a.broker.SetGuard(holdWithdrawals{a.pipe})
		api := base + "/api/v1"
		code, m := call(t, "POST", api+"/accounts/C1/withdrawals", system, "w1", `{"amount_jpy":800000}`, customer)
		if code != 202 && code != 403 && code != 409 {
			t.Fatalf("withdrawal: %d %v", code, m)
		}
		var wid, status string
		if err := db.QueryRowContext(ctx, `SELECT id, status FROM withdrawals WHERE account = 'C1'`).Scan(&wid, &status); err != nil || status != "held" {
			t.Fatalf("the withdrawal is not held: %q %v (%d %v)", status, err, code, m)
		}
		cash := func() int64 {
			acct, err := a.broker.Account(ctx, "C1")
			if err != nil {
				t.Fatal(err)
			}
			return acct.CashJPY
		}
		held := func(when string) {
			t.Helper()
			var st string
			db.QueryRowContext(ctx, `SELECT status FROM withdrawals WHERE id = $1`, wid).Scan(&st)
			if st != "held" || cash() != 5_000_000 {
				t.Errorf("%s: withdrawal %s, cash %d: the money left", when, st, cash())
			}
		}
		release := api + "/withdrawals/" + wid + "/release"
		if code, m := call(t, "POST", release, system, "p0", `{"note":"x"}`); code != 403 || m["error"] != "analyst_key_required" {
			t.Errorf("release proposed with a system's key: %d %v", code, m)
		}
		if code, m := call(t, "POST", api+"/withdrawals/W-nope/release", sato, "p1", `{"note":"x"}`); code != 409 || m["error"] != "not_held" {
			t.Errorf("release of no held withdrawal: %d %v", code, m)
		}
		code, prop := call(t, "POST", release, sato, "p2", `{"note":"the customer confirmed the sale by call back"}`)
		if code != 201 || prop["kind"] != "release_proceeds" || prop["case"] == "" {
			t.Fatalf("release proposal: %d %v", code, prop)
		}
		if code, m := call(t, "POST", release, kato, "p3", `{"note":"again"}`); code != 409 || m["error"] != "already_proposed" {
			t.Errorf("a second proposal: %d %v", code, m)
		}
		// The held withdrawal's case gets an assignee, with a note.
		caseAPI := api + "/cases/" + prop["case"].(string)
		for _, s := range []struct {
			name, key, body string
			status          int
			code            string
		}{
			{"a system's key", system, `{"assignee":"kato","note":"x"}`, 403, "analyst_key_required"},
			{"no note", sato, `{"assignee":"kato"}`, 400, "invalid_field"},
			{"no such analyst", sato, `{"assignee":"mallory","note":"x"}`, 400, "invalid_field"},
		} {
			if code, m := call(t, "PUT", caseAPI+"/assignee", s.key, "as-"+s.name, s.body); code != s.status || m["error"] != s.code {
				t.Errorf("assign with %s: %d %v", s.name, code, m)
			}
		}
		if code, m := call(t, "PUT", caseAPI+"/assignee", sato, "as-ok", `{"assignee":"kato","note":"kato knows the customer"}`); code != 200 || m["assignee"] != "kato" {
			t.Errorf("assign: %d %v", code, m)
		}
		if code, m := call(t, "GET", caseAPI, system, "", ""); code != 200 || m["case"].(map[string]any)["assignee"] != "kato" {
			t.Errorf("the case after assigning: %d %v", code, m)
		}
		approval := api + "/approvals/" + prop["id"].(string)
		for _, s := range []struct{ who, key, code string }{{"the proposer", sato, "four_eyes_required"}, {"another analyst", kato, "four_eyes_required"}, {"a system's key", system, "analyst_key_required"}} {
			if code, m := call(t, "POST", approval, s.key, "a-"+s.who, `{"decision":"approve","note":"ok"}`); code != 403 || m["error"] != s.code {
				t.Errorf("released by %s: %d %v", s.who, code, m)
			}
			held("after approval by " + s.who)
		}
		if code, m := call(t, "POST", approval, suzuki, "a-ok", `{"decision":"approve","note":"call back recorded"}`); code != 200 || m["status"] != "approved" {
			t.Fatalf("supervisor's approval: %d %v", code, m)
		}
		db.QueryRowContext(ctx, `SELECT status FROM withdrawals WHERE id = $1`, wid).Scan(&status)
		if status != "sent" || cash() != 4_200_000 {
			t.Errorf("after the approval: withdrawal %s, cash %d", status, cash())
		}
		if code, m := call(t, "POST", approval, suzuki, "a-again", `{"decision":"approve","note":"again"}`); code != 409 {
			t.Errorf("approved twice: %d %v", code, m)
		}
		es, err := a.audit.List(ctx, wid, 10)
		if err != nil || len(es) < 2 || es[0].Action != "approved_release_proceeds" || es[0].Actor != "analyst:suzuki" || es[0].Detail["proposed_by"] != "sato" {
			t.Errorf("audit of the release: %+v %v", es, err)
		}
	})
}
