package cases

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"math"
	"sort"
	"time"

	"github.com/kabuto-sec/kabuto/internal/analyst"
	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Notices the back office sends customers (notify kinds; Japanese and
// English, never a link).
const (
	NoticeFrozen       = "account_frozen"
	NoticeReopened     = "account_reopened"
	NoticeCompensation = "compensation_paid"
)

// Notifier queues a notice to the customer of account inside tx.
type Notifier interface {
	Notify(ctx context.Context, tx *sql.Tx, account, kind string, data map[string]string) error
}

// Access is one unauthorised access of an incident.
type Access struct {
	Time time.Time `json:"time"`
	IP   string    `json:"ip,omitempty"`
	Ref  string    `json:"ref,omitempty"` // the session or sign-in it was
}

// Incident is what happened to one account: its unauthorised accesses,
// the fills (the fraudster's, and later sales of what they bought), and
// the account just before the first access.
type Incident struct {
	Case     string   `json:"case"`
	Account  string   `json:"account"`
	Accesses []Access `json:"accesses"`
	Fills    []Fill   `json:"fills"`
	Snapshot Snapshot `json:"snapshot"`
}

// From is the time of the first unauthorised access (or the first fill).
func (in *Incident) From() time.Time {
	var t time.Time
	for _, a := range in.Accesses {
		if t.IsZero() || a.Time.Before(t) {
			t = a.Time
		}
	}
	for _, f := range in.Fills {
		if t.IsZero() || f.Time.Before(t) {
			t = f.Time
		}
	}
	return t
}

func (in *Incident) check() error {
	if len(in.Accesses) == 0 && len(in.Fills) == 0 {
		return reason.E("invalid_field.incident_empty")
	}
	for i, f := range in.Fills {
		if f.Side != "buy" && f.Side != "sell" {
			return reason.E("invalid_field.fill_side", "fill", i, "side", f.Side)
		}
		if f.Symbol == "" || f.Qty <= 0 || !(f.Price > 0) || math.IsInf(f.Price, 0) || f.FeeJPY < 0 || f.Time.IsZero() {
			return reason.E("invalid_field.fill", "fill", i)
		}
	}
	for i, a := range in.Accesses {
		if a.Time.IsZero() {
			return reason.E("invalid_field.access", "access", i)
		}
	}
	if in.Snapshot.CashJPY < 0 {
		return reason.E("invalid_field.snapshot_cash")
	}
	for sym, q := range in.Snapshot.Shares {
		if q < 0 || sym == "" {
			return reason.E("invalid_field.snapshot_shares")
		}
	}
	return nil
}

// RecordIncident records, as analyst name, the incident of the case's
// account (replacing what was recorded before, while nothing was paid).
func (s *Service) RecordIncident(ctx context.Context, name, caseID string, in Incident) error {
	if err := in.check(); err != nil {
		return err
	}
	now := s.cfg.Now()
	return s.tx(ctx, func(tx *sql.Tx) error {
		a, err := analyst.Active(ctx, tx, name)
		if err != nil {
			return err
		}
		var account string
		err = tx.QueryRowContext(ctx, `SELECT account FROM cases WHERE id = $1`, caseID).Scan(&account)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && account == "") {
			return reason.E(ReasonUnknownCase+".account", "case", caseID)
		} else if err != nil {
			return err
		}
		var paid int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM compensations WHERE case_id = $1 AND status = 'paid'`, caseID).Scan(&paid); err != nil {
			return err
		}
		if paid > 0 {
			return reason.E(ReasonAlreadyPaid+".closed", "case", caseID)
		}
		for _, t := range []string{"incident_accesses", "incident_fills", "incident_snapshots"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+t+` WHERE case_id = $1`, caseID); err != nil {
				return err
			}
		}
		for _, x := range in.Accesses {
			if _, err := tx.ExecContext(ctx, `INSERT INTO incident_accesses (id, case_id, account, time_us, ip, ref) VALUES ($1, $2, $3, $4, $5, $6)`,
				newID("A"), caseID, account, store.Micros(x.Time), x.IP, x.Ref); err != nil {
				return err
			}
		}
		for _, f := range in.Fills {
			if _, err := tx.ExecContext(ctx, `INSERT INTO incident_fills (id, case_id, account, time_us, symbol, side, qty, price, fee_jpy, fraudulent, ref)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
				newID("F"), caseID, account, store.Micros(f.Time), f.Symbol, f.Side, f.Qty, f.Price, f.FeeJPY, store.Int(f.Fraudulent), f.Ref); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO incident_snapshots (case_id, symbol, qty, cash_jpy) VALUES ($1, '', 0, $2)`, caseID, in.Snapshot.CashJPY); err != nil {
			return err
		}
		for sym, q := range in.Snapshot.Shares {
			if _, err := tx.ExecContext(ctx, `INSERT INTO incident_snapshots (case_id, symbol, qty, cash_jpy) VALUES ($1, $2, $3, 0)`, caseID, sym, q); err != nil {
				return err
			}
		}
		from := in.From()
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET incident_from_us = $1, updated_us = $2 WHERE id = $3`, store.Micros(from), store.Micros(now), caseID); err != nil {
			return err
		}
		if err := s.eventTx(ctx, tx, caseID, "incident", "", a.Actor(), fmt.Sprintf("%d unauthorised accesses, %d fills", len(in.Accesses), len(in.Fills)), now); err != nil {
			return err
		}
		return audit.AppendTx(ctx, tx, audit.Entry{Time: now, Actor: a.Actor(), Action: "incident_recorded", Subject: account,
			Detail: map[string]any{"case": caseID, "accesses": len(in.Accesses), "fills": len(in.Fills), "from": from.UTC().Format(time.RFC3339)}})
	})
}

// Incident returns the case's recorded incident.
func (s *Service) Incident(ctx context.Context, caseID string) (*Incident, error) {
	return incidentTx(ctx, s.cfg.DB, caseID)
}

type querier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	QueryRowContext(context.Context, string, ...any) *sql.Row
}

func incidentTx(ctx context.Context, q querier, caseID string) (*Incident, error) {
	in := &Incident{Case: caseID, Accesses: []Access{}, Fills: []Fill{}, Snapshot: Snapshot{Shares: map[string]int64{}}}
	err := q.QueryRowContext(ctx, `SELECT account FROM cases WHERE id = $1`, caseID).Scan(&in.Account)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, reason.E(ReasonUnknownCase, "case", caseID)
	} else if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT symbol, qty, cash_jpy FROM incident_snapshots WHERE case_id = $1`, caseID)
	if err != nil {
		return nil, err
	}
	n := 0
	for rows.Next() {
		var sym string
		var qty, cash int64
		if err := rows.Scan(&sym, &qty, &cash); err != nil {
			rows.Close()
			return nil, err
		}
		n++
		if sym == "" {
			in.Snapshot.CashJPY = cash
		} else {
			in.Snapshot.Shares[sym] = qty
		}
	}
	rows.Close()
	if n == 0 {
		return nil, reason.E(ReasonNoIncident, "case", caseID)
	}
	rows, err = q.QueryContext(ctx, `SELECT time_us, ip, ref FROM incident_accesses WHERE case_id = $1 ORDER BY time_us, id`, caseID)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var a Access
		var us int64
		if err := rows.Scan(&us, &a.IP, &a.Ref); err != nil {
			rows.Close()
			return nil, err
		}
		a.Time = store.FromMicros(us)
		in.Accesses = append(in.Accesses, a)
	}
	rows.Close()
	rows, err = q.QueryContext(ctx, `SELECT time_us, symbol, side, qty, price, fee_jpy, fraudulent, ref FROM incident_fills WHERE case_id = $1 ORDER BY time_us, id`, caseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var f Fill
		var us, fr int64
		if err := rows.Scan(&us, &f.Symbol, &f.Side, &f.Qty, &f.Price, &f.FeeJPY, &fr, &f.Ref); err != nil {
			return nil, err
		}
		f.Time, f.Fraudulent = store.FromMicros(us), fr != 0
		in.Fills = append(in.Fills, f)
	}
	return in, rows.Err()
}

// DraftIncident drafts the incident of the case's account from the
// records, for an analyst to check and record: the cash and shares just
// before from (the first unauthorised access) from the brokerage's
// ledger, every fill from then until until (all marked fraudulent: the
// analyst unmarks the customer's own and marks later sales of the
// fraudster's buys as not fraudulent), and the successful sign-ins of the
// window as the accesses.
func (s *Service) DraftIncident(ctx context.Context, caseID string, from, until time.Time) (*Incident, error) {
	if s.cfg.Ledger == nil {
		return nil, reason.E("unavailable.ledger")
	}
	if !from.Before(until) {
		return nil, reason.E("invalid_field.incident_window")
	}
	c, err := s.Case(ctx, caseID)
	if err != nil {
		return nil, err
	}
	if c.Account == "" {
		return nil, reason.E(ReasonUnknownCase+".account", "case", caseID)
	}
	cash, shares, fills, err := s.cfg.Ledger.LedgerAt(ctx, c.Account, from, until)
	if err != nil {
		return nil, err
	}
	in := &Incident{Case: caseID, Account: c.Account, Accesses: []Access{}, Fills: []Fill{}, Snapshot: Snapshot{CashJPY: cash, Shares: shares}}
	for _, f := range fills {
		in.Fills = append(in.Fills, Fill{Time: f.Time, Symbol: f.Symbol, Side: f.Side, Qty: f.Qty, Price: f.Price, Fraudulent: true, Ref: f.Order})
	}
	rows, err := s.cfg.DB.QueryContext(ctx, `SELECT time_us, ip, session FROM login_history WHERE account = $1 AND ok = 1 AND time_us >= $2 AND time_us < $3 ORDER BY time_us`,
		c.Account, store.Micros(from), store.Micros(until))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var a Access
		var us int64
		if err := rows.Scan(&us, &a.IP, &a.Ref); err != nil {
			return nil, err
		}
		a.Time = store.FromMicros(us)
		in.Accesses = append(in.Accesses, a)
	}
	return in, rows.Err()
}

// Compensation is a proposed or paid compensation of a case.
type Compensation struct {
	ID        string `json:"id"`
	Case      string `json:"case"`
	Account   string `json:"account"`
	Method    string `json:"method"`
	AmountJPY int64  `json:"amount_jpy"`
	// Half or Restore is the working of the method.
	Half     *Half    `json:"half,omitempty"`
	Restore  *Restore `json:"restore,omitempty"`
	Approval string   `json:"approval"`
	Status   string   `json:"status"`
}

// Prices gives current prices for marking and restoring.
type Prices func(symbol string) (float64, bool)

// ProposeCompensation works out, as analyst name, the compensation of the
// case's incident by method at current prices, and proposes it for a
// supervisor's approval. Nothing is paid until then.
func (s *Service) ProposeCompensation(ctx context.Context, name, caseID, method string, prices Prices) (*Compensation, *Approval, error) {
	if method != MethodHalf && method != MethodRestore {
		return nil, nil, reason.E("invalid_field.compensation_method", "method", method)
	}
	now := s.cfg.Now()
	var c *Compensation
	var ap *Approval
	err := s.tx(ctx, func(tx *sql.Tx) error {
		a, err := analyst.Active(ctx, tx, name)
		if err != nil {
			return err
		}
		in, err := incidentTx(ctx, tx, caseID)
		if err != nil {
			return err
		}
		var paid int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM compensations WHERE case_id = $1 AND status = 'paid'`, caseID).Scan(&paid); err != nil {
			return err
		}
		if paid > 0 {
			return reason.E(ReasonAlreadyPaid, "case", caseID)
		}
		marks := map[string]float64{}
		for _, f := range in.Fills {
			if _, ok := marks[f.Symbol]; ok {
				continue
			}
			p, ok := prices(f.Symbol)
			if !ok || !(p > 0) {
				return reason.E(reason.UnknownSymbol+".no_price", "symbol", f.Symbol)
			}
			marks[f.Symbol] = p
		}
		c = &Compensation{ID: newID("C"), Case: caseID, Account: in.Account, Method: method, Status: "proposed"}
		if method == MethodHalf {
			h := ComputeHalf(in.Fills, marks)
			c.Half, c.AmountJPY = &h, h.TotalJPY
		} else {
			r := ComputeRestore(in.Snapshot, in.Fills, marks)
			c.Restore, c.AmountJPY = &r, r.TotalJPY
		}
		if c.AmountJPY <= 0 {
			return reason.E(ReasonNothingToPay, "method", method)
		}
		ap, err = s.proposeTx(ctx, tx, a, KindCompensation, caseID, caseID, map[string]any{"compensation": c.ID, "method": method, "amount_jpy": c.AmountJPY}, "", now)
		if err != nil {
			return err
		}
		c.Approval = ap.ID
		detail, err := json.Marshal(c)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO compensations (id, case_id, account, method, amount_jpy, detail, approval_id, status) VALUES ($1, $2, $3, $4, $5, $6, $7, 'proposed')`,
			c.ID, caseID, in.Account, method, c.AmountJPY, string(detail), ap.ID)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return c, ap, nil
}

// payTx posts the approved compensation to the ledger and tells the
// customer, inside the approval's transaction.
func (s *Service) payTx(ctx context.Context, tx *sql.Tx, a *analyst.Analyst, ap *Approval, detail map[string]any, now time.Time) error {
	if s.cfg.Ledger == nil {
		return reason.E("unavailable.ledger_pay")
	}
	var id, caseID, account, method string
	var amount int64
	err := tx.QueryRowContext(ctx, `SELECT id, case_id, account, method, amount_jpy FROM compensations WHERE approval_id = $1`, ap.ID).Scan(&id, &caseID, &account, &method, &amount)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE compensations SET status = 'paid', paid_us = $1 WHERE id = $2 AND status = 'proposed'
		AND NOT EXISTS (SELECT 1 FROM compensations c2 WHERE c2.case_id = $3 AND c2.status = 'paid')`, store.Micros(now), id, caseID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return reason.E(ReasonAlreadyPaid, "case", caseID)
	}
	if err := s.cfg.Ledger.CreditTx(ctx, tx, account, amount, "compensation:"+id, now); err != nil {
		return err
	}
	detail["compensation"], detail["method"], detail["amount_jpy"], detail["account"] = id, method, amount, account
	if s.cfg.Notify != nil {
		return s.cfg.Notify.Notify(ctx, tx, account, NoticeCompensation, map[string]string{"Amount": Yen(amount), "Method": method})
	}
	return nil
}

// Yen writes n yen with thousands separators: ¥1,234,567 (notify.Yen,
// the one way Kabuto writes yen).
func Yen(n int64) string { return notify.Yen(n) }

// Compensations returns the case's compensations, newest first.
func (s *Service) Compensations(ctx context.Context, caseID string) ([]Compensation, error) {
	rows, err := s.cfg.DB.QueryContext(ctx, `SELECT detail, status FROM compensations WHERE case_id = $1`, caseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Compensation{}
	for rows.Next() {
		var d, st string
		if err := rows.Scan(&d, &st); err != nil {
			return nil, err
		}
		var c Compensation
		if err := json.Unmarshal([]byte(d), &c); err != nil {
			return nil, err
		}
		c.Status = st
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, rows.Err()
}
