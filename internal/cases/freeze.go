package cases

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/analyst"
	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Freeze is an account's freeze.
type Freeze struct {
	Account string    `json:"account"`
	Frozen  bool      `json:"frozen"`
	Case    string    `json:"case"`
	Reason  string    `json:"reason"`
	By      string    `json:"frozen_by"`
	Since   time.Time `json:"frozen_at"`
	// Lifted and LiftedBy are set once the account was reopened.
	Lifted   time.Time `json:"reopened_at,omitzero"`
	LiftedBy string    `json:"reopened_by,omitempty"`
	// FreshPasskey: the customer must enrol a passkey afresh at the next
	// sign-in (set when the account is reopened).
	FreshPasskey bool `json:"fresh_passkey_due,omitempty"`
}

const maxReason = 500

// Freeze freezes account: every action of the account is refused with
// account_frozen until it is reopened through the four-eyes flow, every
// session of the account ends, and the freeze opens or joins the account's
// case, and the customer is told (without a link). by is who froze it ("analyst:…", "apikey:…", "system:surveil").
// Freezing a frozen account changes nothing and returns the freeze.
func (s *Service) Freeze(ctx context.Context, by, account, why string, l Link) (*Freeze, error) {
	why = strings.TrimSpace(why)
	switch {
	case account == "":
		return nil, reason.E("invalid_field.freeze_account")
	case why == "":
		return nil, reason.E("invalid_field.freeze_reason")
	case len(why) > maxReason:
		return nil, reason.E("invalid_field.reason_length", "max", maxReason)
	}
	// The guard refuses at once, and keeps refusing if the write fails.
	if s.cfg.Guard != nil {
		s.cfg.Guard.SetFrozen(account, true)
	}
	now := s.cfg.Now()
	var out *Freeze
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if l.Kind == "" {
			l.Kind = "freeze"
		}
		l.Account, l.Actor = account, by
		if l.Title == "" {
			l.Title = "account frozen: " + why
		}
		if l.Text == "" {
			l.Text = why
		}
		caseID, err := s.joinTx(ctx, tx, l, now)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO freezes (account, case_id, reason, frozen_by, frozen_us) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (account) DO UPDATE SET case_id = excluded.case_id, reason = excluded.reason, frozen_by = excluded.frozen_by,
				frozen_us = excluded.frozen_us, lifted_us = 0, lifted_by = '', fresh_passkey = 0
			WHERE freezes.lifted_us <> 0`, account, caseID, why, by, store.Micros(now))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 { // already frozen
			out, err = frozenTx(ctx, tx, account)
			return err
		}
		if s.cfg.Sessions != nil {
			if err := s.cfg.Sessions.RevokeAll(ctx, tx, account, ""); err != nil {
				return err
			}
		}
		if err := audit.AppendTx(ctx, tx, audit.Entry{Time: now, Actor: by, Action: "account_frozen", Subject: account,
			Detail: map[string]any{"reason": why, "case": caseID}}); err != nil {
			return err
		}
		out = &Freeze{Account: account, Frozen: true, Case: caseID, Reason: why, By: by, Since: store.FromMicros(store.Micros(now))}
		if s.cfg.Notify != nil {
			return s.cfg.Notify.Notify(ctx, tx, account, NoticeFrozen, map[string]string{})
		}
		return nil
	})
	if err != nil {
		s.cfg.Log.ErrorContext(ctx, "freeze not stored; the guard keeps the account frozen until restart", "account", account, "err", err)
		return nil, err
	}
	return out, nil
}

func frozenTx(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, account string) (*Freeze, error) {
	f := Freeze{Account: account}
	var since, lifted, fresh int64
	err := q.QueryRowContext(ctx, `SELECT case_id, reason, frozen_by, frozen_us, lifted_us, lifted_by, fresh_passkey FROM freezes WHERE account = $1`, account).
		Scan(&f.Case, &f.Reason, &f.By, &since, &lifted, &f.LiftedBy, &fresh)
	if err != nil {
		return nil, err
	}
	f.Since, f.Frozen, f.FreshPasskey = store.FromMicros(since), lifted == 0, fresh != 0
	if lifted != 0 {
		f.Lifted = store.FromMicros(lifted)
	}
	return &f, nil
}

// Frozen returns the account's freeze (current or last), or nil when it
// was never frozen.
func (s *Service) Frozen(ctx context.Context, account string) (*Freeze, error) {
	f, err := frozenTx(ctx, s.cfg.DB, account)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return f, err
}

// FreshPasskeyDue reports whether the account, reopened after a freeze,
// must enrol a passkey afresh at its next sign-in. The front door asks it
// and calls PasskeyEnrolled once done.
func (s *Service) FreshPasskeyDue(ctx context.Context, account string) (bool, error) {
	f, err := s.Frozen(ctx, account)
	return err == nil && f != nil && f.FreshPasskey, err
}

// PasskeyEnrolled records that the reopened account enrolled its fresh passkey.
func (s *Service) PasskeyEnrolled(ctx context.Context, account string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE freezes SET fresh_passkey = 0 WHERE account = $1 AND fresh_passkey = 1`, account)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		return audit.AppendTx(ctx, tx, audit.Entry{Time: s.cfg.Now(), Actor: "customer:" + account, Action: "fresh_passkey_enrolled", Subject: account})
	})
}

// Load tells the guard every freeze and halt in force, as a node starts.
func (s *Service) Load(ctx context.Context) (frozen, halted int, err error) {
	if s.cfg.Guard == nil {
		return 0, 0, errors.New("cases: no guard to load into")
	}
	accts, err := strs(ctx, s.cfg.DB, `SELECT account FROM freezes WHERE lifted_us = 0`)
	if err != nil {
		return 0, 0, err
	}
	syms, err := strs(ctx, s.cfg.DB, `SELECT symbol FROM instruments WHERE buy_halted = 1`)
	if err != nil {
		return 0, 0, err
	}
	for _, a := range accts {
		s.cfg.Guard.SetFrozen(a, true)
	}
	for _, sym := range syms {
		s.cfg.Guard.SetHalt(sym, true)
	}
	return len(accts), len(syms), nil
}

// strs reads one column of strings, from the database or a transaction.
func strs(ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, q string, args ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// SetHalt halts buying of symbol, writing the brokerage's halt list, the
// halt's history, the instrument's case and the audit entry in one
// transaction, and tells the guard. by is who did it. Lifting (halted
// false) is refused with four_eyes_required, whoever asks: a halt is lifted
// only by a proposal (ProposeLiftHalt) a supervisor approves (Decide).
func (s *Service) SetHalt(ctx context.Context, by, symbol string, halted bool, why string) error {
	if !halted {
		return reason.E(analyst.ReasonFourEyes+".lift_halt", "symbol", symbol)
	}
	why = strings.TrimSpace(why)
	if why == "" {
		return reason.E("invalid_field.halt_reason")
	}
	if len(why) > maxReason {
		return reason.E("invalid_field.reason_length", "max", maxReason)
	}
	if s.cfg.Guard != nil {
		s.cfg.Guard.SetHalt(symbol, true)
	}
	now := s.cfg.Now()
	return s.tx(ctx, func(tx *sql.Tx) error { return s.setHaltTx(ctx, tx, by, symbol, true, why, now) })
}

func (s *Service) setHaltTx(ctx context.Context, tx *sql.Tx, by, symbol string, halted bool, why string, now time.Time) error {
	if err := broker.SetHaltTx(ctx, tx, symbol, halted, why); err != nil {
		return err
	}
	us := store.Micros(now)
	action := "halt_lifted"
	if halted {
		action = "halt_buys"
		caseID, err := s.joinTx(ctx, tx, Link{Kind: "halt", Symbol: symbol, Title: "buying of " + symbol + " halted", Actor: by, Text: why}, now)
		if err != nil {
			return err
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM halts WHERE symbol = $1 AND lifted_us = 0`, symbol).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			_, err = tx.ExecContext(ctx, `INSERT INTO halts (id, symbol, case_id, reason, set_by, set_us) VALUES ($1, $2, $3, $4, $5, $6)`,
				newID("H"), symbol, caseID, why, by, us)
		}
		if err != nil {
			return err
		}
	} else if _, err := tx.ExecContext(ctx, `UPDATE halts SET lifted_by = $1, lifted_us = $2 WHERE symbol = $3 AND lifted_us = 0`, by, us, symbol); err != nil {
		return err
	}
	return audit.AppendTx(ctx, tx, audit.Entry{Time: now, Actor: by, Action: action, Subject: symbol, Detail: map[string]any{"why": why}})
}

// Halts returns the symbols whose buying is halted, with the reasons.
func (s *Service) Halts(ctx context.Context) (map[string]string, error) {
	rows, err := s.cfg.DB.QueryContext(ctx, `SELECT symbol, halt_reason FROM instruments WHERE buy_halted = 1 ORDER BY symbol`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var sym, why string
		if err := rows.Scan(&sym, &why); err != nil {
			return nil, err
		}
		out[sym] = why
	}
	return out, rows.Err()
}

// Halter is the halt list as one actor (the console) changes it.
type Halter struct {
	S  *Service
	By string
}

// Halts returns the halts in force.
func (h Halter) Halts(ctx context.Context) (map[string]string, error) { return h.S.Halts(ctx) }

// SetHalt halts or lifts, as h.By.
func (h Halter) SetHalt(ctx context.Context, symbol string, halted bool, why string) error {
	return h.S.SetHalt(ctx, h.By, symbol, halted, why)
}

// FromAlert carries out a surveillance alert: it halts buying of the
// instrument or freezes the accounts as the alert says, and opens or joins
// a case for each account and for the instrument, linked by the campaign.
// Halts and freezes of alerts are in the guard already (the pipeline
// applied them); this makes them durable, audited and seen.
func (s *Service) FromAlert(ctx context.Context, al event.Alert) error {
	const by = "system:surveil"
	why := fmt.Sprintf("surveillance %s %s (score %d)", al.Kind, al.Alert, al.Score)
	var errs []error
	if al.Action == event.AlertHaltBuys && al.Symbol != "" {
		errs = append(errs, s.SetHalt(ctx, by, al.Symbol, true, why))
	}
	for _, acct := range al.Accounts {
		l := Link{Kind: "alert", Ref: al.Alert, Account: acct, Symbol: al.Symbol, Campaign: al.Campaign, Severity: al.Score,
			Title: "surveillance " + al.Kind, Actor: by, Text: why}
		if al.Action == event.AlertFreezeAccounts {
			_, err := s.Freeze(ctx, by, acct, why, l)
			errs = append(errs, err)
			continue
		}
		_, err := s.Open(ctx, l)
		errs = append(errs, err)
	}
	if al.Symbol != "" {
		_, err := s.Open(ctx, Link{Kind: "alert", Ref: al.Alert, Symbol: al.Symbol, Campaign: al.Campaign, Severity: al.Score,
			Title: "surveillance " + al.Kind + " on " + al.Symbol, Actor: by, Text: why})
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
