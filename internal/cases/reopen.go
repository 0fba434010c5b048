package cases

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/analyst"
	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Re-verification methods and results (JSDA, 15 October 2025: a frozen
// account reopens only after the customer's identity is verified again).
const (
	MethodCallback = "callback" // a call back to the registered phone number
	MethodDocument = "document" // an identity document check
	ResultPassed   = "passed"
	ResultFailed   = "failed"
)

// Reverification is one recorded re-verification of a customer.
type Reverification struct {
	ID      string    `json:"id"`
	Account string    `json:"account"`
	Case    string    `json:"case"`
	Method  string    `json:"method"`
	Result  string    `json:"result"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Note    string    `json:"note,omitempty"`
}

// Reverify records that analyst name re-verified the customer of the
// frozen account by method, with result.
func (s *Service) Reverify(ctx context.Context, name, account, method, result, note string) (*Reverification, error) {
	if method != MethodCallback && method != MethodDocument {
		return nil, reason.E("invalid_field.verify_method", "method", method)
	}
	if result != ResultPassed && result != ResultFailed {
		return nil, reason.E("invalid_field.verify_result", "result", result)
	}
	now := s.cfg.Now()
	rv := &Reverification{ID: newID("R"), Account: account, Method: method, Result: result, By: name, At: store.FromMicros(store.Micros(now)), Note: strings.TrimSpace(note)}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		a, err := analyst.Active(ctx, tx, name)
		if err != nil {
			return err
		}
		f, err := activeFreezeTx(ctx, tx, account)
		if err != nil {
			return err
		}
		rv.Case = f.Case
		if _, err := tx.ExecContext(ctx, `INSERT INTO reverifications (id, account, case_id, method, result, done_by, done_us, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			rv.ID, account, f.Case, method, result, name, store.Micros(now), rv.Note); err != nil {
			return err
		}
		if err := s.eventTx(ctx, tx, f.Case, "reverification", rv.ID, a.Actor(), method+": "+result, now); err != nil {
			return err
		}
		return audit.AppendTx(ctx, tx, audit.Entry{Time: now, Actor: a.Actor(), Action: "customer_reverified", Subject: account,
			Detail: map[string]any{"method": method, "result": result, "case": f.Case, "reverification": rv.ID}})
	})
	if err != nil {
		return nil, err
	}
	return rv, nil
}

func activeFreezeTx(ctx context.Context, tx *sql.Tx, account string) (*Freeze, error) {
	f, err := frozenTx(ctx, tx, account)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !f.Frozen) {
		return nil, reason.E(ReasonNotFrozen, "account", account)
	}
	return f, err
}

// passedSince returns the latest passed re-verification of account done
// at or after t, or a reverification_required refusal.
func passedSince(ctx context.Context, tx *sql.Tx, account string, t time.Time) (string, error) {
	var id, result string
	err := tx.QueryRowContext(ctx, `SELECT id, result FROM reverifications WHERE account = $1 AND done_us >= $2 ORDER BY done_us DESC, id DESC LIMIT 1`,
		account, store.Micros(t)).Scan(&id, &result)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && result != ResultPassed) {
		return "", reason.E(ReasonReverificationRequired, "account", account)
	}
	return id, err
}

// Approval kinds: what needs four eyes.
const (
	KindReopen       = "reopen"
	KindCompensation = "compensation"
	KindLiftHalt     = "lift_halt"
	// KindRelease releases a withdrawal the guard held (held proceeds
	// leaving the firm).
	KindRelease = "release_proceeds"
)

// Approval statuses.
const (
	ApprovalProposed = "proposed"
	ApprovalApproved = "approved"
	ApprovalRejected = "rejected"
)

// Approval is a proposal that a second person decides.
type Approval struct {
	ID         string          `json:"id"`
	Kind       string          `json:"kind"`
	Subject    string          `json:"subject"`
	Case       string          `json:"case,omitempty"`
	ProposedBy string          `json:"proposed_by"`
	Proposed   time.Time       `json:"proposed_at"`
	Body       json.RawMessage `json:"body"`
	Status     string          `json:"status"`
	DecidedBy  string          `json:"decided_by,omitempty"`
	Decided    time.Time       `json:"decided_at,omitzero"`
	Note       string          `json:"note,omitempty"`
}

func (s *Service) proposeTx(ctx context.Context, tx *sql.Tx, a *analyst.Analyst, kind, subject, caseID string, body any, note string, now time.Time) (*Approval, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	ap := &Approval{ID: newID("P"), Kind: kind, Subject: subject, Case: caseID, ProposedBy: a.Name, Proposed: store.FromMicros(store.Micros(now)),
		Body: b, Status: ApprovalProposed, Note: strings.TrimSpace(note)}
	if _, err := tx.ExecContext(ctx, `INSERT INTO approvals (id, kind, subject, case_id, proposed_by, proposed_us, body, status, note) VALUES ($1, $2, $3, $4, $5, $6, $7, 'proposed', $8)`,
		ap.ID, kind, subject, caseID, a.Name, store.Micros(now), string(b), ap.Note); err != nil {
		return nil, err
	}
	if caseID != "" {
		if err := s.eventTx(ctx, tx, caseID, "proposed_"+kind, ap.ID, a.Actor(), ap.Note, now); err != nil {
			return nil, err
		}
	}
	return ap, audit.AppendTx(ctx, tx, audit.Entry{Time: now, Actor: a.Actor(), Action: "proposed_" + kind, Subject: subject,
		Detail: map[string]any{"approval": ap.ID, "case": caseID, "body": json.RawMessage(b)}})
}

// ProposeReopen proposes, as analyst name, that the frozen account be
// reopened. It needs a passed re-verification since the freeze; a
// supervisor other than name must approve it.
func (s *Service) ProposeReopen(ctx context.Context, name, account, note string) (*Approval, error) {
	var ap *Approval
	err := s.tx(ctx, func(tx *sql.Tx) error {
		a, err := analyst.Active(ctx, tx, name)
		if err != nil {
			return err
		}
		f, err := activeFreezeTx(ctx, tx, account)
		if err != nil {
			return err
		}
		rv, err := passedSince(ctx, tx, account, f.Since)
		if err != nil {
			return err
		}
		ap, err = s.proposeTx(ctx, tx, a, KindReopen, account, f.Case, map[string]string{"reverification": rv}, note, s.cfg.Now())
		return err
	})
	return ap, err
}

// ProposeLiftHalt proposes, as analyst name, that buying of symbol resume.
func (s *Service) ProposeLiftHalt(ctx context.Context, name, symbol, note string) (*Approval, error) {
	var ap *Approval
	err := s.tx(ctx, func(tx *sql.Tx) error {
		a, err := analyst.Active(ctx, tx, name)
		if err != nil {
			return err
		}
		var caseID string
		err = tx.QueryRowContext(ctx, `SELECT case_id FROM halts WHERE symbol = $1 AND lifted_us = 0`, symbol).Scan(&caseID)
		if errors.Is(err, sql.ErrNoRows) {
			return reason.E("invalid_field.not_halted", "symbol", symbol)
		} else if err != nil {
			return err
		}
		ap, err = s.proposeTx(ctx, tx, a, KindLiftHalt, symbol, caseID, map[string]string{}, note, s.cfg.Now())
		return err
	})
	return ap, err
}

// ProposeRelease proposes, as analyst name, that the withdrawal the guard
// held be released: the money leaves only when a supervisor other than
// name approves. Rejecting a held withdrawal needs no second person.
func (s *Service) ProposeRelease(ctx context.Context, name, withdrawal, note string) (*Approval, error) {
	now := s.cfg.Now()
	var ap *Approval
	err := s.tx(ctx, func(tx *sql.Tx) error {
		a, err := analyst.Active(ctx, tx, name)
		if err != nil {
			return err
		}
		var account, ev string
		var amount int64
		err = tx.QueryRowContext(ctx, `SELECT account, amount_jpy, event_id FROM withdrawals WHERE id = $1 AND status = 'held'`, withdrawal).Scan(&account, &amount, &ev)
		if errors.Is(err, sql.ErrNoRows) {
			return reason.E(ReasonNotHeld, "withdrawal", withdrawal)
		} else if err != nil {
			return err
		}
		var open int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM approvals WHERE kind = $1 AND subject = $2 AND status = 'proposed'`, KindRelease, withdrawal).Scan(&open); err != nil {
			return err
		}
		if open > 0 {
			return reason.E(ReasonAlreadyProposed, "withdrawal", withdrawal)
		}
		caseID, err := s.joinTx(ctx, tx, Link{Kind: "held_action", Ref: ev, Account: account, Title: "held for review: withdrawal",
			Actor: a.Actor(), Text: "withdrawal held for review"}, now)
		if err != nil {
			return err
		}
		ap, err = s.proposeTx(ctx, tx, a, KindRelease, withdrawal, caseID, map[string]any{"account": account, "amount_jpy": amount}, note, now)
		return err
	})
	return ap, err
}

// IncidentLookback is how far before a freeze the back office looks for
// factors the attacker enrolled when the case does not say when the
// incident began.
const IncidentLookback = 7 * 24 * time.Hour

// Decide approves (or rejects) proposal id as analyst name: four eyes, a
// supervisor who is not the proposer. Approving carries the proposal out
// in the same transaction: a reopening removes the factors enrolled since
// the incident began (passkeys added since then, and the TOTP secret,
// whose enrolment time is not kept), marks a fresh passkey due at the next
// sign-in and lifts the freeze; a compensation is posted to the ledger and
// the customer told; a halt is lifted.
func (s *Service) Decide(ctx context.Context, name, id string, approve bool, note string) (*Approval, error) {
	now := s.cfg.Now()
	var ap *Approval
	var after func()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		after = nil
		var err error
		ap, err = approvalTx(ctx, tx, id)
		if err != nil {
			return err
		}
		if ap.Status != ApprovalProposed {
			return reason.E(ReasonAlreadyDecided+".by", "proposal", id, "status", ap.Status, "analyst", ap.DecidedBy)
		}
		a, err := analyst.CheckFourEyes(ctx, tx, ap.ProposedBy, name)
		if err != nil {
			return err
		}
		status := ApprovalRejected
		if approve {
			status = ApprovalApproved
		}
		res, err := tx.ExecContext(ctx, `UPDATE approvals SET status = $1, decided_by = $2, decided_us = $3 WHERE id = $4 AND status = 'proposed'`,
			status, name, store.Micros(now), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return reason.E(ReasonAlreadyDecided, "proposal", id)
		}
		ap.Status, ap.DecidedBy, ap.Decided = status, name, store.FromMicros(store.Micros(now))
		detail := map[string]any{"approval": id, "proposed_by": ap.ProposedBy, "case": ap.Case, "note": strings.TrimSpace(note)}
		if approve {
			switch ap.Kind {
			case KindReopen:
				after, err = s.reopenTx(ctx, tx, a, ap, detail, now)
			case KindLiftHalt:
				if err = s.setHaltTx(ctx, tx, a.Actor(), ap.Subject, false, "", now); err == nil && s.cfg.Guard != nil {
					after = func() { s.cfg.Guard.SetHalt(ap.Subject, false) }
				}
			case KindCompensation:
				err = s.payTx(ctx, tx, a, ap, detail, now)
			case KindRelease:
				if s.cfg.Held == nil {
					err = reason.E("unavailable.brokerage")
				} else if err = s.cfg.Held.ReleaseWithdrawalTx(ctx, tx, ap.Subject, true); err == nil {
					detail["withdrawal"] = ap.Subject
				}
			default:
				err = reason.E("invalid_field.proposal_kind", "kind", ap.Kind)
			}
			if err != nil {
				return err
			}
		} else if ap.Kind == KindCompensation {
			if _, err := tx.ExecContext(ctx, `UPDATE compensations SET status = 'rejected' WHERE approval_id = $1 AND status = 'proposed'`, id); err != nil {
				return err
			}
		}
		if ap.Case != "" {
			if err := s.eventTx(ctx, tx, ap.Case, status+"_"+ap.Kind, id, a.Actor(), note, now); err != nil {
				return err
			}
		}
		return audit.AppendTx(ctx, tx, audit.Entry{Time: now, Actor: a.Actor(), Action: status + "_" + ap.Kind, Subject: ap.Subject, Detail: detail})
	})
	if err != nil {
		return nil, err
	}
	if after != nil {
		after()
	}
	return ap, nil
}

func (s *Service) reopenTx(ctx context.Context, tx *sql.Tx, a *analyst.Analyst, ap *Approval, detail map[string]any, now time.Time) (func(), error) {
	account := ap.Subject
	f, err := activeFreezeTx(ctx, tx, account)
	if err != nil {
		return nil, err
	}
	rv, err := passedSince(ctx, tx, account, f.Since)
	if err != nil {
		return nil, err
	}
	since := f.Since.Add(-IncidentLookback)
	var from int64
	if err := tx.QueryRowContext(ctx, `SELECT incident_from_us FROM cases WHERE id = $1`, f.Case).Scan(&from); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	if from != 0 && store.FromMicros(from).Before(since) {
		since = store.FromMicros(from)
	}
	removed, err := strs(ctx, tx, `SELECT id FROM passkeys WHERE account = $1 AND created_us >= $2 ORDER BY id`, account, store.Micros(since))
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM passkeys WHERE account = $1 AND created_us >= $2`, account, store.Micros(since)); err != nil {
		return nil, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE identities SET totp_secret = '', totp_last_step = 0 WHERE account = $1 AND totp_secret <> ''`, account)
	if err != nil {
		return nil, err
	}
	totp, _ := res.RowsAffected()
	res, err = tx.ExecContext(ctx, `UPDATE freezes SET lifted_us = $1, lifted_by = $2, fresh_passkey = 1 WHERE account = $3 AND lifted_us = 0`, store.Micros(now), a.Actor(), account)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil, reason.E(ReasonNotFrozen+".reopened", "account", account)
	}
	if removed == nil {
		removed = []string{}
	}
	detail["reverification"], detail["passkeys_removed"], detail["totp_removed"], detail["factors_since"] = rv, removed, totp > 0, since.UTC().Format(time.RFC3339)
	detail["fresh_passkey_due"] = true
	if s.cfg.Notify != nil {
		if err := s.cfg.Notify.Notify(ctx, tx, account, NoticeReopened, map[string]string{}); err != nil {
			return nil, err
		}
	}
	return func() {
		if s.cfg.Guard != nil {
			s.cfg.Guard.SetFrozen(account, false)
		}
	}, nil
}

func approvalTx(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id string) (*Approval, error) {
	var ap Approval
	var p, d int64
	var body string
	err := q.QueryRowContext(ctx, `SELECT id, kind, subject, case_id, proposed_by, proposed_us, body, status, decided_by, decided_us, note FROM approvals WHERE id = $1`, id).
		Scan(&ap.ID, &ap.Kind, &ap.Subject, &ap.Case, &ap.ProposedBy, &p, &body, &ap.Status, &ap.DecidedBy, &d, &ap.Note)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, reason.E(ReasonUnknownApproval, "proposal", id)
	}
	if err != nil {
		return nil, err
	}
	ap.Proposed, ap.Body = store.FromMicros(p), json.RawMessage(body)
	if d != 0 {
		ap.Decided = store.FromMicros(d)
	}
	return &ap, nil
}

// Approval returns proposal id.
func (s *Service) Approval(ctx context.Context, id string) (*Approval, error) {
	return approvalTx(ctx, s.cfg.DB, id)
}
