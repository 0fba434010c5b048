package cases

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/analyst"
	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/session"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// guardView records what the guard was told.
type guardView struct {
	mu     sync.Mutex
	halted map[string]bool
	frozen map[string]bool
}

func newGuard() *guardView {
	return &guardView{halted: map[string]bool{}, frozen: map[string]bool{}}
}
func (g *guardView) SetHalt(s string, h bool)   { g.mu.Lock(); g.halted[s] = h; g.mu.Unlock() }
func (g *guardView) SetFrozen(a string, f bool) { g.mu.Lock(); g.frozen[a] = f; g.mu.Unlock() }
func (g *guardView) isFrozen(a string) bool     { g.mu.Lock(); defer g.mu.Unlock(); return g.frozen[a] }
func (g *guardView) isHalted(s string) bool     { g.mu.Lock(); defer g.mu.Unlock(); return g.halted[s] }

// notices records the customer notices queued.
type notices struct {
	mu   sync.Mutex
	sent []string
}

func (n *notices) Notify(_ context.Context, _ *sql.Tx, account, kind string, data map[string]string) error {
	n.mu.Lock()
	n.sent = append(n.sent, account+" "+kind+" "+data["Amount"])
	n.mu.Unlock()
	return nil
}

type fixture struct {
	db       *store.DB
	b        *broker.Broker
	s        *Service
	g        *guardView
	n        *notices
	sessions *session.Store
	now      time.Time
}

var open = time.Date(2025, 4, 14, 9, 30, 0, 0, clock.JST)

func newFixture(t *testing.T, db *store.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{db: db, g: newGuard(), n: &notices{}, now: open}
	ins := []market.Instrument{
		{Symbol: "9999", Name: "Thin (sim)", Market: market.TSEStandard, Currency: "JPY", Lot: 100, ADVShares: 200000, PrevClose: 130},
		{Symbol: "7203", Name: "Toyota Motor", Market: market.TSEPrime, Currency: "JPY", Lot: 100, ADVShares: 28000000, PrevClose: 2800, LargeCap: true},
	}
	f.b = broker.New(broker.Config{DB: db, Exchange: market.NewExchange(ins, 1, market.Hours{Always: true}, time.Now()), HashKey: []byte("k")})
	if err := f.b.SeedInstruments(ctx, ins); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"A1", "A2"} {
		err := f.b.OpenAccount(ctx, broker.NewAccount{ID: id, Name: "Sato Hanako", Email: id + "@example.jp", Phone: "090-1234-5678",
			Bank: "Mizuho 001-1234567", CashJPY: 100_000, Opened: open.AddDate(-6, 0, 0),
			Holdings: []event.Holding{{Symbol: "7203", Qty: 200, CostJPY: 500000, Kind: "cash"}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	clock := func() time.Time { return f.now }
	f.sessions = session.New(session.Config{DB: db, Now: clock})
	f.s = New(Config{DB: db, Guard: f.g, Sessions: f.sessions, Ledger: f.b, Notify: f.n, Now: clock})
	people := analyst.New(db, clock)
	for _, p := range []struct{ name, role string }{{"sato", analyst.RoleAnalyst}, {"kato", analyst.RoleAnalyst}, {"suzuki", analyst.RoleSupervisor}, {"ito", analyst.RoleAdmin}} {
		if _, err := people.Create(ctx, p.name, p.role, "operator:test"); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func codeOf(err error) string {
	if e := reason.As(err); e != nil {
		return e.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func (f *fixture) audits(t *testing.T, subject string) []audit.Entry {
	t.Helper()
	es, err := audit.New(f.db).List(context.Background(), subject, 100)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestFreezeIsDurableAndEndsSessions: a freeze refuses in the guard at
// once, ends the account's sessions, is audited, opens a case, and a new
// node reads it back at start.
func TestFreezeIsDurableAndEndsSessions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		if _, err := f.sessions.Create(ctx, "", "A1", "phishing_resistant", nil, session.Client{IP: "192.0.2.1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.sessions.Create(ctx, "", "A2", "phishing_resistant", nil, session.Client{IP: "192.0.2.2"}); err != nil {
			t.Fatal(err)
		}
		fr, err := f.s.Freeze(ctx, "apikey:key_1", "A1", "customer called: not me", Link{})
		if err != nil {
			t.Fatal(err)
		}
		if !fr.Frozen || fr.Case == "" || !f.g.isFrozen("A1") {
			t.Fatalf("freeze = %+v, guard frozen %v", fr, f.g.isFrozen("A1"))
		}
		if ss, _ := f.sessions.List(ctx, "A1"); len(ss) != 0 {
			t.Errorf("A1 keeps %d sessions after the freeze", len(ss))
		}
		if ss, _ := f.sessions.List(ctx, "A2"); len(ss) != 1 {
			t.Errorf("A2's session ended too: %d left", len(ss))
		}
		again, err := f.s.Freeze(ctx, "system:surveil", "A1", "alert", Link{})
		if err != nil || again.Case != fr.Case || again.By != "apikey:key_1" {
			t.Errorf("second freeze = %+v, %v; want the first one unchanged", again, err)
		}
		es := f.audits(t, "A1")
		if len(es) != 1 || es[0].Action != "account_frozen" || es[0].Actor != "apikey:key_1" {
			t.Errorf("audit = %+v", es)
		}
		if c, err := f.s.Case(ctx, fr.Case); err != nil || c.Account != "A1" || c.Status != StatusOpen {
			t.Errorf("case = %+v, %v", c, err)
		}
		for _, bad := range []struct{ acct, why string }{{"", "x"}, {"A1", "  "}} {
			if _, err := f.s.Freeze(ctx, "apikey:key_1", bad.acct, bad.why, Link{}); codeOf(err) != reason.InvalidField {
				t.Errorf("Freeze(%q, %q) = %v", bad.acct, bad.why, err)
			}
		}
		// A node starting on the same database.
		g2 := newGuard()
		n, h, err := New(Config{DB: db, Guard: g2}).Load(ctx)
		if err != nil || n != 1 || h != 0 || !g2.isFrozen("A1") || g2.isFrozen("A2") {
			t.Errorf("Load = %d, %d, %v; frozen A1 %v A2 %v", n, h, err, g2.isFrozen("A1"), g2.isFrozen("A2"))
		}
	})
}

// TestHaltLiftedEverywhere: a halt written through the service is in the
// brokerage's list, the guard and the history; lifting it lifts it in all
// three, and a starting node reads back only halts in force.
func TestHaltLiftedEverywhere(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		if err := f.s.SetHalt(ctx, "analyst:sato", "9999", true, "ramp"); err != nil {
			t.Fatal(err)
		}
		hs, _ := f.b.Halts(ctx)
		if hs["9999"] != "ramp" || !f.g.isHalted("9999") {
			t.Fatalf("halts %v, guard %v", hs, f.g.isHalted("9999"))
		}
		g2 := newGuard()
		if _, h, err := New(Config{DB: db, Guard: g2}).Load(ctx); err != nil || h != 1 || !g2.isHalted("9999") {
			t.Fatalf("Load: %d halts, %v", h, err)
		}
		// No one lifts a halt alone, not even through the service.
		if err := f.s.SetHalt(ctx, "apikey:key_1", "9999", false, ""); codeOf(err) != "four_eyes_required" {
			t.Errorf("a halt lifted in one call: %v", err)
		}
		if hs, _ = f.b.Halts(ctx); hs["9999"] == "" || !f.g.isHalted("9999") {
			t.Fatalf("after the refused lift: halts %v, guard %v", hs, f.g.isHalted("9999"))
		}
		ap, err := f.s.ProposeLiftHalt(ctx, "sato", "9999", "ramp over")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Decide(ctx, "suzuki", ap.ID, true, "checked the tape"); err != nil {
			t.Fatal(err)
		}
		hs, _ = f.b.Halts(ctx)
		if len(hs) != 0 || f.g.isHalted("9999") {
			t.Errorf("after lifting: halts %v, guard %v", hs, f.g.isHalted("9999"))
		}
		g3 := newGuard()
		if _, h, _ := New(Config{DB: db, Guard: g3}).Load(ctx); h != 0 || g3.isHalted("9999") {
			t.Errorf("a lifted halt came back at start")
		}
		if err := f.s.SetHalt(ctx, "analyst:sato", "NOPE", true, "x"); codeOf(err) != reason.UnknownSymbol {
			t.Errorf("halting an unknown symbol: %v", err)
		}
		var lifted int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM halts WHERE symbol = '9999' AND lifted_us <> 0 AND lifted_by = 'analyst:suzuki'`).Scan(&lifted)
		if lifted != 1 {
			t.Errorf("halt history: %d lifted rows", lifted)
		}
		es := f.audits(t, "9999")
		// Newest first: the approval and the lift name the supervisor, the
		// proposal and the halt the analyst.
		if len(es) != 4 || es[0].Action != "approved_lift_halt" || es[0].Detail["proposed_by"] != "sato" || es[1].Action != "halt_lifted" || es[1].Actor != "analyst:suzuki" ||
			es[2].Action != "proposed_lift_halt" || es[2].Actor != "analyst:sato" || es[3].Actor != "analyst:sato" {
			t.Errorf("audit = %+v", es)
		}
	})
}

// TestReopenNeedsReverificationAndFourEyes attacks the reopening: without
// re-verification, after a failed one, approved by the proposer, by an
// analyst, by an admin, twice; only a supervisor other than the proposer,
// after a passed re-verification, reopens, and the attacker's factors go.
func TestReopenNeedsReverificationAndFourEyes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		// The customer's own passkey (a year old) and the attacker's (added
		// an hour before the freeze), and a TOTP secret.
		for _, pk := range []struct {
			id  string
			age time.Duration
		}{{"pk-own", 365 * 24 * time.Hour}, {"pk-attacker", time.Hour}} {
			if _, err := db.ExecContext(ctx, `INSERT INTO passkeys (id, account, name, public_key, created_us) VALUES ($1, 'A1', 'k', 'x', $2)`,
				pk.id, store.Micros(open.Add(-pk.age))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO identities (account, user_handle, totp_secret, created_us) VALUES ('A1', 'h1', 'SECRET', 0)`); err != nil {
			t.Fatal(err)
		}
		fr, err := f.s.Freeze(ctx, "analyst:sato", "A1", "sold everything, bought 9999", Link{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.ProposeReopen(ctx, "sato", "A1", ""); codeOf(err) != ReasonReverificationRequired {
			t.Fatalf("reopen without re-verification: %v", err)
		}
		if _, err := f.s.ProposeReopen(ctx, "sato", "A2", ""); codeOf(err) != ReasonNotFrozen {
			t.Fatalf("reopen of an account not frozen: %v", err)
		}
		if _, err := f.s.Reverify(ctx, "sato", "A1", "email", ResultPassed, ""); codeOf(err) != reason.InvalidField {
			t.Errorf("an email is no re-verification: %v", err)
		}
		if _, err := f.s.Reverify(ctx, "nobody", "A1", MethodCallback, ResultPassed, ""); codeOf(err) != analyst.ReasonUnknownAnalyst {
			t.Errorf("a stranger re-verified: %v", err)
		}
		f.now = f.now.Add(time.Hour)
		if _, err := f.s.Reverify(ctx, "sato", "A1", MethodCallback, ResultFailed, "no answer"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.ProposeReopen(ctx, "sato", "A1", ""); codeOf(err) != ReasonReverificationRequired {
			t.Fatalf("reopen after a failed re-verification: %v", err)
		}
		f.now = f.now.Add(time.Hour)
		rv, err := f.s.Reverify(ctx, "sato", "A1", MethodCallback, ResultPassed, "called 090-…-5678, customer confirmed")
		if err != nil || rv.Case != fr.Case {
			t.Fatal(rv, err)
		}
		ap, err := f.s.ProposeReopen(ctx, "sato", "A1", "customer verified")
		if err != nil {
			t.Fatal(err)
		}
		for _, who := range []struct{ name, want string }{
			{"sato", analyst.ReasonFourEyes},          // the proposer
			{"kato", analyst.ReasonFourEyes},          // an analyst
			{"ito", analyst.ReasonFourEyes},           // an admin
			{"mallory", analyst.ReasonUnknownAnalyst}, // nobody
		} {
			if _, err := f.s.Decide(ctx, who.name, ap.ID, true, ""); codeOf(err) != who.want {
				t.Errorf("approved by %s: %v, want %s", who.name, err, who.want)
			}
			if !f.g.isFrozen("A1") {
				t.Fatalf("the guard unfroze A1 after a refused approval by %s", who.name)
			}
		}
		if st, _ := f.s.Frozen(ctx, "A1"); !st.Frozen {
			t.Fatal("refused approvals reopened the account")
		}
		f.now = f.now.Add(time.Minute)
		done, err := f.s.Decide(ctx, "suzuki", ap.ID, true, "ok")
		if err != nil || done.Status != ApprovalApproved || done.DecidedBy != "suzuki" {
			t.Fatalf("supervisor's approval: %+v, %v", done, err)
		}
		if f.g.isFrozen("A1") {
			t.Error("the guard still refuses A1 after the reopening")
		}
		st, _ := f.s.Frozen(ctx, "A1")
		if st.Frozen || !st.FreshPasskey || st.LiftedBy != "analyst:suzuki" {
			t.Errorf("after reopening: %+v", st)
		}
		var keys []string
		rows, _ := db.QueryContext(ctx, `SELECT id FROM passkeys WHERE account = 'A1'`)
		for rows.Next() {
			var k string
			rows.Scan(&k)
			keys = append(keys, k)
		}
		rows.Close()
		if len(keys) != 1 || keys[0] != "pk-own" {
			t.Errorf("passkeys after reopening: %v, want only the customer's own", keys)
		}
		var totp string
		db.QueryRowContext(ctx, `SELECT totp_secret FROM identities WHERE account = 'A1'`).Scan(&totp)
		if totp != "" {
			t.Error("the TOTP secret survived the reopening")
		}
		if _, err := f.s.Decide(ctx, "suzuki", ap.ID, true, ""); codeOf(err) != ReasonAlreadyDecided {
			t.Errorf("approving twice: %v", err)
		}
		if due, _ := f.s.FreshPasskeyDue(ctx, "A1"); !due {
			t.Error("no fresh passkey due")
		}
		if err := f.s.PasskeyEnrolled(ctx, "A1"); err != nil {
			t.Fatal(err)
		}
		if due, _ := f.s.FreshPasskeyDue(ctx, "A1"); due {
			t.Error("fresh passkey still due after enrolment")
		}
		es := f.audits(t, "A1")
		var reopened *audit.Entry
		for i := range es {
			if es[i].Action == "approved_reopen" {
				reopened = &es[i]
			}
		}
		if reopened == nil || reopened.Actor != "analyst:suzuki" || reopened.Detail["proposed_by"] != "sato" || reopened.Detail["reverification"] != rv.ID {
			t.Errorf("the reopening's audit entry = %+v", reopened)
		}
		if len(f.n.sent) != 2 || f.n.sent[0] != "A1 account_frozen " || f.n.sent[1] != "A1 account_reopened " {
			t.Errorf("notices = %q", f.n.sent)
		}
		// A freeze after the reopening needs a new re-verification.
		f.now = f.now.Add(time.Hour)
		if _, err := f.s.Freeze(ctx, "system:surveil", "A1", "again", Link{}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.ProposeReopen(ctx, "sato", "A1", ""); codeOf(err) != ReasonReverificationRequired {
			t.Errorf("an old re-verification reopened a new freeze: %v", err)
		}
	})
}

func (f *fixture) prices(sym string) (float64, bool) {
	p, ok := map[string]float64{"7203": 2900, "9999": 95}[sym]
	return p, ok
}

// TestCompensationPaidOnceWithFourEyes pays the README's first worked
// example through the service: proposed by an analyst, refused to the
// proposer, approved by a supervisor, posted to the ledger once, the
// customer told; a second proposal for the case is refused.
func TestCompensationPaidOnceWithFourEyes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		fr, err := f.s.Freeze(ctx, "analyst:sato", "A1", "takeover", Link{})
		if err != nil {
			t.Fatal(err)
		}
		in := Incident{Accesses: []Access{{Time: t0, IP: "203.0.113.9"}}, Fills: soldLater, Snapshot: snapshot}
		if err := f.s.RecordIncident(ctx, "sato", fr.Case, in); err != nil {
			t.Fatal(err)
		}
		got, err := f.s.Incident(ctx, fr.Case)
		if err != nil || len(got.Fills) != 3 || got.Snapshot.CashJPY != 100_000 || got.Snapshot.Shares["7203"] != 200 || len(got.Accesses) != 1 {
			t.Fatalf("incident read back = %+v, %v", got, err)
		}
		c, ap, err := f.s.ProposeCompensation(ctx, "sato", fr.Case, MethodHalf, f.prices)
		if err != nil || c.AmountJPY != 116_100 {
			t.Fatalf("50%% method = %+v, %v", c, err)
		}
		r, _, err := f.s.ProposeCompensation(ctx, "kato", fr.Case, MethodRestore, f.prices)
		if err != nil || r.AmountJPY != 231_100 {
			t.Fatalf("restoration = %+v, %v", r, err)
		}
		before, _ := f.b.Account(ctx, "A1")
		if _, err := f.s.Decide(ctx, "sato", ap.ID, true, ""); codeOf(err) != analyst.ReasonFourEyes {
			t.Fatalf("the proposer paid: %v", err)
		}
		if a, _ := f.b.Account(ctx, "A1"); a.CashJPY != before.CashJPY {
			t.Fatal("a refused approval moved money")
		}
		if _, err := f.s.Decide(ctx, "suzuki", ap.ID, true, "per policy"); err != nil {
			t.Fatal(err)
		}
		after, _ := f.b.Account(ctx, "A1")
		if after.CashJPY-before.CashJPY != 116_100 {
			t.Errorf("paid %d, want 116,100", after.CashJPY-before.CashJPY)
		}
		cash, _, err := f.b.LedgerTotals(ctx, "A1")
		if err != nil || cash != after.CashJPY {
			t.Errorf("ledger %d, balance %d", cash, after.CashJPY)
		}
		// The restoration proposal for the same case can no longer be paid.
		var rap string
		db.QueryRowContext(ctx, `SELECT approval_id FROM compensations WHERE id = $1`, r.ID).Scan(&rap)
		if _, err := f.s.Decide(ctx, "suzuki", rap, true, ""); codeOf(err) != ReasonAlreadyPaid {
			t.Errorf("second payment of a case: %v", err)
		}
		if a, _ := f.b.Account(ctx, "A1"); a.CashJPY != after.CashJPY {
			t.Error("the case was paid twice")
		}
		if _, _, err := f.s.ProposeCompensation(ctx, "sato", fr.Case, MethodHalf, f.prices); codeOf(err) != ReasonAlreadyPaid {
			t.Errorf("proposing after payment: %v", err)
		}
		if err := f.s.RecordIncident(ctx, "sato", fr.Case, in); codeOf(err) != ReasonAlreadyPaid {
			t.Errorf("rewriting a paid incident: %v", err)
		}
		if len(f.n.sent) != 2 || f.n.sent[1] != "A1 compensation_paid ¥116,100" {
			t.Errorf("notices = %q", f.n.sent)
		}
		cs, err := f.s.Compensations(ctx, fr.Case)
		if err != nil || len(cs) != 2 {
			t.Fatalf("compensations = %+v, %v", cs, err)
		}
		// Restoration of the second account, whose thin issue is still held.
		fr2, _ := f.s.Freeze(ctx, "analyst:sato", "A2", "takeover", Link{})
		if err := f.s.RecordIncident(ctx, "sato", fr2.Case, Incident{Accesses: []Access{{Time: t0}}, Fills: attack, Snapshot: snapshot}); err != nil {
			t.Fatal(err)
		}
		r2, ap2, err := f.s.ProposeCompensation(ctx, "sato", fr2.Case, MethodRestore, f.prices)
		if err != nil || r2.AmountJPY != 196_100 || len(r2.Restore.Steps) != 2 {
			t.Fatalf("restoration of A2 = %+v, %v", r2, err)
		}
		if _, err := f.s.Decide(ctx, "suzuki", ap2.ID, false, "use the 50% method"); err != nil {
			t.Fatal(err)
		}
		if a, _ := f.b.Account(ctx, "A2"); a.CashJPY != 100_000 {
			t.Errorf("a rejected compensation paid: %d", a.CashJPY)
		}
		if _, _, err := f.s.ProposeCompensation(ctx, "sato", fr2.Case, "double", f.prices); codeOf(err) != reason.InvalidField {
			t.Errorf("unknown method: %v", err)
		}
		noPrice := func(string) (float64, bool) { return 0, false }
		if _, _, err := f.s.ProposeCompensation(ctx, "sato", fr2.Case, MethodHalf, noPrice); codeOf(err) != reason.UnknownSymbol {
			t.Errorf("compensation without prices: %v", err)
		}
	})
}

// TestFSATable computes the regulator's table from two incidents.
func TestFSATable(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		fr1, _ := f.s.Freeze(ctx, "analyst:sato", "A1", "takeover", Link{})
		fr2, _ := f.s.Freeze(ctx, "analyst:sato", "A2", "takeover", Link{})
		// A1 in April (JST), with the later, legitimate sale in May.
		if err := f.s.RecordIncident(ctx, "sato", fr1.Case, Incident{Accesses: []Access{{Time: t0}, {Time: t0.Add(time.Minute)}}, Fills: soldLater, Snapshot: snapshot}); err != nil {
			t.Fatal(err)
		}
		// A2 on 30 April 23:30 JST = 30 April 14:30 UTC, and 1 May 00:10 JST (30 April UTC).
		late := time.Date(2025, 4, 30, 14, 30, 0, 0, time.UTC)
		fills := []Fill{{Time: late, Symbol: "7203", Side: "sell", Qty: 100, Price: 2800, Fraudulent: true},
			{Time: late.Add(40 * time.Minute), Symbol: "9999", Side: "buy", Qty: 1000, Price: 120, Fraudulent: true}}
		if err := f.s.RecordIncident(ctx, "sato", fr2.Case, Incident{Accesses: []Access{{Time: late}}, Fills: fills, Snapshot: snapshot}); err != nil {
			t.Fatal(err)
		}
		got, err := f.s.FSA(ctx, "2025-03", "2025-05")
		if err != nil {
			t.Fatal(err)
		}
		want := []Month{
			{Month: "2025-03"},
			{Month: "2025-04", UnauthorisedAccesses: 3, UnauthorisedTrades: 3, ValueSoldJPY: 560_000 + 280_000, ValueBoughtJPY: 650_000},
			{Month: "2025-05", UnauthorisedTrades: 1, ValueBoughtJPY: 120_000},
		}
		if len(got) != len(want) {
			t.Fatalf("months = %+v", got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("month %d = %+v, want %+v", i, got[i], want[i])
			}
		}
		for _, bad := range [][2]string{{"2025-13", "2025-12"}, {"2025-1", "2025-02"}, {"2025-05", "2025-04"}, {"", "2025-04"}, {"1999-12", "2000-01"}, {"2000-01", "2010-02"}, {"2025-04", "2025-04x"}} {
			if _, err := f.s.FSA(ctx, bad[0], bad[1]); codeOf(err) != ReasonBadMonth {
				t.Errorf("FSA(%q, %q) = %v, want bad_month", bad[0], bad[1], err)
			}
		}
	})
}

// TestAlertsOpenLinkedCases: a campaign's alert freezes its accounts and
// halts its instrument through the service, each account's case and the
// instrument's case linked by the campaign; a second alert joins them.
func TestAlertsOpenLinkedCases(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		al := event.Alert{Alert: "AL1", Time: open, Kind: "convergence", Symbol: "9999", Accounts: []string{"A1", "A2"}, Score: 90,
			Action: event.AlertFreezeAccounts, Campaign: "CP1"}
		if err := f.s.FromAlert(ctx, al); err != nil {
			t.Fatal(err)
		}
		al2 := al
		al2.Alert, al2.Action, al2.Kind = "AL2", event.AlertHaltBuys, "walk_up"
		if err := f.s.FromAlert(ctx, al2); err != nil {
			t.Fatal(err)
		}
		if err := f.s.FromAlert(ctx, al2); err != nil { // delivered twice
			t.Fatal(err)
		}
		cs, err := f.s.Cases(ctx, "CP1", 10)
		if err != nil || len(cs) != 3 {
			t.Fatalf("campaign cases = %+v, %v", cs, err)
		}
		if !f.g.isFrozen("A1") || !f.g.isFrozen("A2") || !f.g.isHalted("9999") {
			t.Error("the alert's actions are not in the guard")
		}
		st, _ := f.s.Frozen(ctx, "A2")
		if st == nil || !st.Frozen || st.By != "system:surveil" {
			t.Errorf("A2's freeze = %+v", st)
		}
		tl, err := f.s.Timeline(ctx, st.Case)
		if err != nil || len(tl) != 2 || tl[0].Ref != "AL1" || tl[1].Ref != "AL2" {
			t.Errorf("A2's timeline = %+v, %v", tl, err)
		}
		all, _ := f.s.Cases(ctx, "", 10)
		if len(all) != 3 {
			t.Errorf("%d cases in all, want 3", len(all))
		}
		if _, err := f.s.Open(ctx, Link{Kind: "customer_report"}); codeOf(err) != reason.InvalidField {
			t.Errorf("a case of nothing: %v", err)
		}
		if _, err := f.s.Case(ctx, "nope"); codeOf(err) != ReasonUnknownCase {
			t.Errorf("unknown case: %v", err)
		}
		_ = errors.New
	})
}

// FuzzParseMonths: the month range of the regulator's figures is outside
// input; it never panics and what it accepts is a forward range of whole
// months.
func FuzzParseMonths(f *testing.F) {
	for _, s := range [][2]string{{"2025-01", "2025-06"}, {"2025-13", "x"}, {"0000-00", "9999-99"}, {"2025-04", "2025-03"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, from, to string) {
		a, b, err := ParseMonths(from, to)
		if err != nil {
			if codeOf(err) != ReasonBadMonth {
				t.Fatalf("error %v without bad_month", err)
			}
			return
		}
		if !a.Before(b) || a.Day() != 1 || b.Day() != 1 || a.Format("2006-01") != from {
			t.Fatalf("ParseMonths(%q, %q) = %v, %v", from, to, a, b)
		}
	})
}

// TestIncidentDraftedFromTheLedger: the fraudster's sell and buy go
// through the reference brokerage; the draft of the incident finds the
// snapshot before the first access and both fills in the ledger, and the
// compensation proposed from it is the 50% method over those fills.
func TestIncidentDraftedFromTheLedger(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		start := time.Now()
		act := broker.Actor{Principal: "test", Session: "S-attacker", IP: "203.0.113.9", Channel: "web"}
		if _, err := f.b.PlaceOrder(ctx, act, "A1", broker.OrderRequest{Symbol: "7203", Side: "sell", Qty: 200, PriceType: "market", Kind: "cash"}, "k1"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.b.PlaceOrder(ctx, act, "A1", broker.OrderRequest{Symbol: "9999", Side: "buy", Qty: 1000, PriceType: "market", Kind: "cash"}, "k2"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO login_history (id, account, time_us, method, factors, ok, outcome, ip, asn, country, ua, device, session)
			VALUES ('L1', 'A1', $1, 'password', 'password', 1, 'ok', '203.0.113.9', 0, 'XX', 'x', 'x', 'S-attacker')`, store.Micros(start)); err != nil {
			t.Fatal(err)
		}
		fr, err := f.s.Freeze(ctx, "analyst:sato", "A1", "takeover", Link{})
		if err != nil {
			t.Fatal(err)
		}
		in, err := f.s.DraftIncident(ctx, fr.Case, start, time.Now().Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if in.Snapshot.CashJPY != 100_000 || in.Snapshot.Shares["7203"] != 200 || len(in.Fills) != 2 || len(in.Accesses) != 1 || in.Accesses[0].Ref != "S-attacker" {
			t.Fatalf("draft = %+v", in)
		}
		sell, buy := in.Fills[0], in.Fills[1]
		if sell.Side != "sell" || sell.Qty != 200 || buy.Side != "buy" || buy.Symbol != "9999" || buy.Qty != 1000 || !buy.Fraudulent || buy.Price <= 0 {
			t.Fatalf("fills = %+v", in.Fills)
		}
		if err := f.s.RecordIncident(ctx, "sato", fr.Case, *in); err != nil {
			t.Fatal(err)
		}
		c, _, err := f.s.ProposeCompensation(ctx, "sato", fr.Case, MethodHalf, f.prices)
		if err != nil {
			t.Fatal(err)
		}
		want := ComputeHalf(in.Fills, map[string]float64{"7203": 2900, "9999": 95})
		if c.AmountJPY != want.TotalJPY || c.Half.BoughtJPY != buy.Value() {
			t.Errorf("compensation %+v, want %+v", c.Half, want)
		}
		if _, err := f.s.DraftIncident(ctx, fr.Case, start, start); codeOf(err) != reason.InvalidField {
			t.Errorf("an empty window: %v", err)
		}
	})
}

// holdAll holds every action for an analyst.
type holdAll struct{}

func (holdAll) Decide(_ context.Context, r *event.Record) (event.Decision, error) {
	return event.Decision{Event: r.ID, Account: r.Account, Action: event.Hold, Score: 70, Reasons: []string{"test_hold"}}, nil
}

func (holdAll) Observe(context.Context, *event.Record) error { return nil }

// TestHeldActionsAndReportsOpenCases: an action the guard holds opens the
// account's case in the transaction that stores it; a customer's report
// joins the same case.
func TestHeldActionsAndReportsOpenCases(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		ins := []market.Instrument{{Symbol: "7203", Name: "Toyota Motor", Market: market.TSEPrime, Currency: "JPY", Lot: 100, ADVShares: 28000000, PrevClose: 2800, LargeCap: true}}
		b := broker.New(broker.Config{DB: db, Exchange: market.NewExchange(ins, 1, market.Hours{Always: true}, time.Now()), HashKey: []byte("k"), Guard: holdAll{},
			InTx: f.s.HeldTx})
		act := broker.Actor{Principal: "test", Session: "S1", IP: "192.0.2.1", Channel: "web"}
		w, err := b.Withdraw(ctx, act, "A1", 5000, "w1")
		if err == nil || w == nil || w.Status != broker.StatusHeld {
			t.Fatalf("withdrawal = %+v, %v; want held", w, err)
		}
		cs, err := f.s.Cases(ctx, "", 10)
		if err != nil || len(cs) != 1 || cs[0].Account != "A1" || cs[0].Kind != "held_action" {
			t.Fatalf("cases = %+v, %v", cs, err)
		}
		id, err := f.s.Report(ctx, "apikey:callcentre", "A1", "the customer did not ask for this withdrawal")
		if err != nil || id != cs[0].ID {
			t.Fatalf("report joined %q, %v; want %s", id, err, cs[0].ID)
		}
		tl, _ := f.s.Timeline(ctx, id)
		if len(tl) != 2 || tl[0].Kind != "held_action" || tl[1].Kind != "customer_report" {
			t.Errorf("timeline = %+v", tl)
		}
		if _, err := f.s.Report(ctx, "apikey:callcentre", "A1", " "); codeOf(err) != reason.InvalidField {
			t.Errorf("an empty report: %v", err)
		}
		// An allowed action opens nothing.
		if _, err := f.b.Withdraw(ctx, act, "A2", 5000, "w2"); err != nil {
			t.Fatal(err)
		}
		if cs, _ := f.s.Cases(ctx, "", 10); len(cs) != 1 {
			t.Errorf("%d cases after an allowed withdrawal", len(cs))
		}
	})
}

// TestLiftingASurveillanceHaltNeedsFourEyes: a halt the watchtower set
// is lifted on a proposal approved by a supervisor other than the
// proposer; until then the guard keeps refusing buys.
func TestLiftingASurveillanceHaltNeedsFourEyes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		if err := f.s.FromAlert(ctx, event.Alert{Alert: "AL9", Kind: "walk_up", Symbol: "9999", Score: 95, Action: event.AlertHaltBuys}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.ProposeLiftHalt(ctx, "sato", "7203", ""); codeOf(err) != reason.InvalidField {
			t.Errorf("lifting a halt not in force: %v", err)
		}
		ap, err := f.s.ProposeLiftHalt(ctx, "sato", "9999", "the ramp is over")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.Decide(ctx, "sato", ap.ID, true, ""); codeOf(err) != analyst.ReasonFourEyes {
			t.Errorf("lifted by its proposer: %v", err)
		}
		if !f.g.isHalted("9999") {
			t.Fatal("the guard lifted the halt on a refused approval")
		}
		if _, err := f.s.Decide(ctx, "suzuki", ap.ID, true, "agreed"); err != nil {
			t.Fatal(err)
		}
		hs, _ := f.b.Halts(ctx)
		if f.g.isHalted("9999") || len(hs) != 0 {
			t.Errorf("after approval: guard %v, list %v", f.g.isHalted("9999"), hs)
		}
		es := f.audits(t, "9999")
		if len(es) < 2 || es[0].Action != "approved_lift_halt" || es[1].Action != "halt_lifted" || es[1].Actor != "analyst:suzuki" {
			t.Errorf("audit = %+v", es)
		}
	})
}
