package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/analyst"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/cases"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// BackOffice is what the back office (internal/cases) did in the run with
// the defences on: the cases that the watchtower's alerts, the held
// actions and the victims' reports opened, the accounts frozen and, after
// a re-verification and a supervisor's approval, reopened, the
// compensation each victim is owed by each method, and the FSA's table
// computed by the back office from its cases, which must equal the
// simulator's own (FSAMatches).
type BackOffice struct {
	CasesOpened   int `json:"cases_opened"`
	CasesByAlert  int `json:"cases_from_alerts"`
	CasesByHold   int `json:"cases_from_held_actions"`
	Victims       int `json:"victims_reported"`
	AccountsFroze int `json:"accounts_frozen"`
	// Reopened are the victims' accounts reopened after a call back and a
	// supervisor's approval; the ring's accounts stay frozen.
	Reopened    int `json:"accounts_reopened"`
	StillFrozen int `json:"accounts_still_frozen"`
	// CompensationHalfJPY and CompensationRestoreJPY are the sums over the
	// victims of each method (proposed for a supervisor; the simulator
	// pays neither: the brokerage's ledger is in another database).
	CompensationHalfJPY    int64 `json:"compensation_half_jpy"`
	CompensationRestoreJPY int64 `json:"compensation_restore_jpy"`
	// FSA is the regulator's table for the day as the back office
	// computes it from its cases and decisions.
	FSA        FSARow `json:"fsa_table_from_back_office"`
	FSAMatches bool   `json:"fsa_matches_simulator"`
}

// The simulated back office's people: an analyst proposes, a supervisor
// approves (four eyes).
const (
	simAnalyst    = "sim-analyst"
	simSupervisor = "sim-supervisor"
)

// office is the back office of the run with the defences on, in its own
// scratch database (Kabuto's, beside the brokerage's), with the guard
// (the run's pipeline) as the one it tells of freezes and halts.
type office struct {
	s   *cases.Service
	db  *store.DB
	bk  *broker.Broker // the brokerage: its ledger and orders
	bdb *store.DB      // the brokerage's database
	err error          // the first failure; the report says so

	// seen is each attack session's first record (the unauthorised
	// access), attackOrders the attackers' order records (event id →
	// attack session), as the victims later tell the brokerage.
	seen         map[string]seenAt
	attackOrders map[string]string
}

type seenAt struct {
	t  time.Time
	ip string
}

// simGuard is the run's guard as the back office tells it of halts and
// freezes.
type simGuard struct{ s *stack }

func (g simGuard) SetHalt(symbol string, halted bool) {
	if g.s.pipe != nil {
		g.s.pipe.SetHalt(symbol, halted)
	} else {
		g.s.eng.SetHalt(symbol, halted)
	}
}

func (g simGuard) SetFrozen(account string, frozen bool) {
	if g.s.pipe != nil {
		g.s.pipe.SetFrozen(account, frozen)
	} else {
		g.s.eng.SetFrozen(account, frozen)
	}
}

// newOffice opens the back office of r in a scratch database of its own,
// lists the instruments there (halts name them) and creates its two
// people. done closes it.
func newOffice(r *run, bk *broker.Broker, bdb *store.DB) (o *office, done func(), err error) {
	db, done, err := tempDB(r.ctx, r.cfg, "kabuto-sim-office-")
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			done()
		}
	}()
	ob := broker.New(broker.Config{DB: db, Exchange: r.x, Clock: r.clock, Log: r.cfg.Log})
	if err := ob.SeedInstruments(r.ctx, r.w.universe); err != nil {
		return nil, nil, err
	}
	people := analyst.New(db, r.clock.Now)
	for _, p := range []struct{ name, role string }{{simAnalyst, analyst.RoleAnalyst}, {simSupervisor, analyst.RoleSupervisor}} {
		if _, err := people.Create(r.ctx, p.name, p.role, "operator:simulator"); err != nil {
			return nil, nil, err
		}
	}
	s := cases.New(cases.Config{DB: db, Guard: simGuard{r.g}, Now: r.clock.Now, Log: r.cfg.Log})
	return &office{s: s, db: db, bk: bk, bdb: bdb, seen: map[string]seenAt{}, attackOrders: map[string]string{}}, done, nil
}

func (o *office) fail(err error) {
	if err != nil && o.err == nil {
		o.err = err
	}
}

// alert carries out a watchtower alert through the back office, as
// kabuto serve does: the halt or the freezes, and the cases.
func (o *office) alert(ctx context.Context, a event.Alert) {
	o.fail(o.s.FromAlert(ctx, a))
}

// decided notes, from the guard's view of the stream, what the victims
// will tell the brokerage: when the attacker first acted in each session,
// from where, and which orders were the attacker's.
func (o *office) decided(r *event.Record, cur label) {
	if cur.Truth != "attack" || cur.Attack == "" {
		return
	}
	if _, ok := o.seen[cur.Attack]; !ok {
		o.seen[cur.Attack] = seenAt{t: r.Time, ip: r.IP}
	}
	if r.Type == event.TypeOrder {
		o.attackOrders[r.ID] = cur.Attack
	}
}

// held opens or joins the account's case for an action the guard held.
func (o *office) held(ctx context.Context, account string, d *event.Decision) {
	if d == nil || account == "" {
		return
	}
	_, err := o.s.Open(ctx, cases.Link{Kind: "held_action", Ref: d.Event, Account: account, Title: "held for review", Severity: d.Score,
		Actor: "system:guard", Text: strings.Join(d.Reasons, " ")})
	o.fail(err)
}

// heldCase is r.act's hook for a held action.
func (r *run) heldCase(account string, e *reason.Error) {
	if r.office != nil && !r.inHistory && e != nil {
		r.office.held(r.ctx, account, e.Decision)
	}
}

// victim is one account the attackers got into, as its customer reports it.
type victim struct {
	acct     string
	sessions map[string]bool // valid attack sessions that got in
	accesses []cases.Access
}

// close is the back office's end of the day: every customer whose account
// the attackers got into reports it; an analyst freezes the account,
// records the incident (the unauthorised accesses, and from the
// brokerage's ledger the account before the first of them and the
// attacker's fills), calls the customer back on the registered number and
// proposes the reopening, which a supervisor approves; the compensation is
// worked out by both methods; the FSA's table is computed from the cases.
func (o *office) close(r *run) *BackOffice {
	ctx := r.ctx
	end := Day0.Add(17 * time.Hour)
	if r.clock.Now().Before(end) {
		r.clock.set(end)
	}
	victims := map[string]*victim{}
	var order []string
	for _, a := range r.atk {
		if !a.valid || !a.access {
			continue // the simulator's FSA counts these alone
		}
		v := victims[a.plan.Acct]
		if v == nil {
			v = &victim{acct: a.plan.Acct, sessions: map[string]bool{}}
			victims[a.plan.Acct] = v
			order = append(order, a.plan.Acct)
		}
		v.sessions[a.plan.ID] = true
		at := seenAt{t: a.plan.Start, ip: a.plan.Net.IP}
		if s, ok := o.seen[a.plan.ID]; ok {
			at = s
		}
		v.accesses = append(v.accesses, cases.Access{Time: at.t, IP: at.ip, Ref: a.plan.ID})
	}
	sort.Strings(order)
	bo := &BackOffice{Victims: len(order)}
	prices := func(sym string) (float64, bool) {
		in, ok := r.w.inst[sym]
		q, qok := r.x.Quote(sym)
		if !ok || !qok || q.Last <= 0 {
			return 0, false
		}
		return in.PriceJPY(q.Last), true
	}
	for _, acct := range order {
		v := victims[acct]
		half, restore, err := o.settle(ctx, r, v, prices)
		if err != nil {
			o.fail(fmt.Errorf("back office, account %s: %w", acct, err))
			continue
		}
		bo.CompensationHalfJPY += half
		bo.CompensationRestoreJPY += restore
		bo.Reopened++
	}
	o.count(ctx, bo)
	months, err := o.s.FSA(ctx, Day0.Format("2006-01"), Day0.Format("2006-01"))
	o.fail(err)
	for _, m := range months {
		bo.FSA.UnauthorisedAccesses += int(m.UnauthorisedAccesses)
		bo.FSA.UnauthorisedTrades += int(m.UnauthorisedTrades)
		bo.FSA.ValueSoldJPY += m.ValueSoldJPY
		bo.FSA.ValueBoughtJPY += m.ValueBoughtJPY
	}
	return bo
}

// settle takes one victim through the back office and returns the
// compensation by each method.
func (o *office) settle(ctx context.Context, r *run, v *victim, prices cases.Prices) (half, restore int64, err error) {
	caseID, err := o.s.Report(ctx, "customer:"+v.acct, v.acct, "The customer reports sign-ins and trades that were not theirs.")
	if err != nil {
		return 0, 0, err
	}
	if _, err := o.s.Freeze(ctx, "analyst:"+simAnalyst, v.acct, "customer reported unauthorised access", cases.Link{}); err != nil {
		return 0, 0, err
	}
	in, err := o.incident(ctx, r, caseID, v)
	if err != nil {
		return 0, 0, err
	}
	if err := o.s.RecordIncident(ctx, simAnalyst, caseID, *in); err != nil {
		return 0, 0, err
	}
	if _, err := o.s.Reverify(ctx, simAnalyst, v.acct, cases.MethodCallback, cases.ResultPassed, "called back on the registered number"); err != nil {
		return 0, 0, err
	}
	ap, err := o.s.ProposeReopen(ctx, simAnalyst, v.acct, "identity verified again by call back")
	if err != nil {
		return 0, 0, err
	}
	if _, err := o.s.Decide(ctx, simSupervisor, ap.ID, true, "call back recorded; attacker's factors removed"); err != nil {
		return 0, 0, err
	}
	for _, m := range []string{cases.MethodHalf, cases.MethodRestore} {
		c, _, err := o.s.ProposeCompensation(ctx, simAnalyst, caseID, m, prices)
		if e := reason.As(err); e != nil && e.Code == cases.ReasonNothingToPay {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		if m == cases.MethodHalf {
			half = c.AmountJPY
		} else {
			restore = c.AmountJPY
		}
	}
	return half, restore, nil
}

// incident builds the victim's incident from the brokerage's ledger: the
// account just before the first unauthorised access, and the fills of the
// attacker's orders (the ones the customer says were not theirs), in yen.
func (o *office) incident(ctx context.Context, r *run, caseID string, v *victim) (*cases.Incident, error) {
	from := v.accesses[0].Time
	for _, a := range v.accesses {
		if a.Time.Before(from) {
			from = a.Time
		}
	}
	cash, shares, fills, err := o.bk.LedgerAt(ctx, v.acct, from, r.clock.Now().Add(time.Second))
	if err != nil {
		return nil, err
	}
	in := &cases.Incident{Case: caseID, Account: v.acct, Accesses: v.accesses, Fills: []cases.Fill{}, Snapshot: cases.Snapshot{CashJPY: cash, Shares: shares}}
	for _, f := range fills {
		var ev string
		err := o.bdb.QueryRowContext(ctx, `SELECT event_id FROM orders WHERE id = $1`, f.Order).Scan(&ev)
		if err != nil {
			return nil, fmt.Errorf("order %s of a fill: %w", f.Order, err)
		}
		if !v.sessions[o.attackOrders[ev]] {
			continue // the customer's own trade, or an attack session the simulator does not count
		}
		inst, ok := r.w.inst[f.Symbol]
		if !ok {
			return nil, errors.New("fill of an unknown instrument " + f.Symbol)
		}
		in.Fills = append(in.Fills, cases.Fill{Time: f.Time, Symbol: f.Symbol, Side: f.Side, Qty: f.Qty, Price: inst.PriceJPY(f.Price), Fraudulent: true, Ref: f.Order})
	}
	return in, nil
}

// count reads the cases and freezes back from the back office.
func (o *office) count(ctx context.Context, bo *BackOffice) {
	q := func(sql string, n *int) {
		o.fail(o.db.QueryRowContext(ctx, sql).Scan(n))
	}
	q(`SELECT COUNT(*) FROM cases`, &bo.CasesOpened)
	q(`SELECT COUNT(DISTINCT case_id) FROM case_events WHERE kind = 'alert'`, &bo.CasesByAlert)
	q(`SELECT COUNT(DISTINCT case_id) FROM case_events WHERE kind = 'held_action'`, &bo.CasesByHold)
	q(`SELECT COUNT(*) FROM freezes`, &bo.AccountsFroze)
	q(`SELECT COUNT(*) FROM freezes WHERE lifted_us = 0`, &bo.StillFrozen)
}

// format writes the back office's lines of the scorecard (nothing when
// the run had none).
func (bo *BackOffice) format(w io.Writer) {
	if bo == nil {
		return
	}
	same := "equals the simulator's"
	if !bo.FSAMatches {
		same = "DIFFERS from the simulator's"
	}
	fmt.Fprintf(w, "Back office (defences on): %d cases opened (%d from alerts, %d from held actions); %d victims' accounts frozen, re-verified and reopened by four eyes: %d (%d accounts still frozen)\n",
		bo.CasesOpened, bo.CasesByAlert, bo.CasesByHold, bo.Victims, bo.Reopened, bo.StillFrozen)
	fmt.Fprintf(w, "  compensation owed: %s by the 50%% method, %s by restoration; FSA table from the back office %s\n\n",
		notify.Yen(bo.CompensationHalfJPY), notify.Yen(bo.CompensationRestoreJPY), same)
}

// HalfYen is the 50% method's sum in yen with separators, for the HTML report.
func (bo *BackOffice) HalfYen() string { return notify.Yen(bo.CompensationHalfJPY) }

// RestoreYen is the restoration method's sum in yen with separators.
func (bo *BackOffice) RestoreYen() string { return notify.Yen(bo.CompensationRestoreJPY) }
