// Package cases is the back office: the one place where accounts are
// frozen and reopened and buying of instruments is halted and resumed, the
// cases that alerts, held actions and customer reports open or join, the
// four-eyes approvals (reopening, compensation, lifting a surveillance
// halt), the incidents' ledgers with both compensation methods, and the
// regulator's monthly figures.
//
// Every change writes its state, its audit entry and its case in one
// transaction, and tells the guard: a restriction (freeze, halt) before the
// transaction, so it holds at once and also if the write fails (fail
// closed); a release (reopen, lift) only after the commit. Load reads the
// state back into the guard when a node starts.
package cases

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/analyst"
	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Reason codes of the back office.
const (
	// ReasonAccountFrozen is the code of every action of a frozen account
	// (the guard's reason, too).
	ReasonAccountFrozen = "account_frozen"
	// ReasonNotFrozen: reopening an account that is not frozen.
	ReasonNotFrozen = "account_not_frozen"
	// ReasonReverificationRequired: reopening without a passed
	// re-verification recorded since the freeze.
	ReasonReverificationRequired = "reverification_required"
	// ReasonUnknownCase, ReasonUnknownApproval: no such case or proposal.
	ReasonUnknownCase     = "unknown_case"
	ReasonUnknownApproval = "unknown_approval"
	// ReasonAlreadyDecided: the proposal was approved or rejected before.
	ReasonAlreadyDecided = "already_decided"
	// ReasonNoIncident: compensation asked for a case without an incident.
	ReasonNoIncident = "no_incident"
	// ReasonAlreadyPaid: the case's compensation was paid before.
	ReasonAlreadyPaid = "already_paid"
	// ReasonNothingToPay: the method leaves nothing to pay for the incident.
	ReasonNothingToPay = "nothing_to_pay"
	// ReasonNotHeld: releasing a withdrawal that is not held for review.
	ReasonNotHeld = "not_held"
	// ReasonAlreadyProposed: the same release is waiting for a supervisor.
	ReasonAlreadyProposed = "already_proposed"
	// ReasonBadMonth: a month that is not YYYY-MM, or a range that runs
	// backwards or is too long.
	ReasonBadMonth = "bad_month"
)

// Guard is the guard's view of halts and freezes: what it refuses.
type Guard interface {
	SetHalt(symbol string, halted bool)
	SetFrozen(account string, frozen bool)
}

// Sessions ends sessions: a frozen account keeps none.
type Sessions interface {
	RevokeAll(ctx context.Context, ex interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}, account, keep string) error
}

// Ledger is the brokerage's ledger as the back office needs it.
type Ledger interface {
	// CreditTx pays amount into account inside tx, with its ledger row.
	CreditTx(ctx context.Context, tx *sql.Tx, account string, amount int64, ref string, now time.Time) error
	// LedgerAt returns the account's cash and shares just before t and
	// its buys and sells from t until until.
	LedgerAt(ctx context.Context, account string, t, until time.Time) (cash int64, shares map[string]int64, fills []broker.LedgerFill, err error)
}

// Releaser releases a withdrawal the guard held, inside tx (the
// brokerage's ReleaseWithdrawalTx).
type Releaser interface {
	ReleaseWithdrawalTx(ctx context.Context, tx *sql.Tx, id string, approve bool) error
}

// Config configures a Service.
type Config struct {
	DB       *store.DB
	Guard    Guard    // nil: no guard to tell (tests of storage alone)
	Sessions Sessions // nil: sessions are not ended
	Ledger   Ledger   // nil: compensation cannot be paid
	Notify   Notifier // nil: customers are not told
	Held     Releaser // nil: held withdrawals cannot be released here
	Now      func() time.Time
	Log      *slog.Logger
}

// Service is the back office.
type Service struct {
	cfg Config
}

// New returns the back office over cfg.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = clock.Real{}.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{cfg: cfg}
}

func newID(prefix string) string {
	var b [10]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// seqID returns an id that sorts after the ids made before it in this
// process, so entries of one instant keep their order.
func seqID(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%s%016x%s", prefix, clock.Real{}.Now().UnixNano(), hex.EncodeToString(b[:]))
}

// tx runs fn in a transaction, again when two writers of the audit trail
// took the same sequence number on PostgreSQL (one wins, the other retries
// on the new head).
func (s *Service) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := s.cfg.DB.Tx(ctx, fn)
		if err != nil && attempt < 50 && ctx.Err() == nil && isUniqueViolation(err) {
			continue
		}
		return err
	}
}

func isUniqueViolation(err error) bool {
	s := err.Error()
	return strings.Contains(s, "SQLSTATE 23505") || strings.Contains(s, "UNIQUE constraint failed")
}

// Case is an investigation of one account (or of one instrument).
type Case struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	Account  string    `json:"account,omitempty"`
	Symbol   string    `json:"symbol,omitempty"`
	Campaign string    `json:"campaign,omitempty"`
	Status   string    `json:"status"`
	Title    string    `json:"title"`
	Severity int       `json:"severity"`
	Assignee string    `json:"assignee,omitempty"`
	Opened   time.Time `json:"opened"`
	Updated  time.Time `json:"updated"`
	// IncidentFrom is the first unauthorised access, once known.
	IncidentFrom time.Time `json:"incident_from,omitzero"`
}

// Case statuses.
const (
	StatusOpen   = "open"
	StatusClosed = "closed"
)

// Link is what opens or joins a case: an alert, a held action, a customer
// report, a freeze, a halt.
type Link struct {
	Kind     string // "alert", "held_action", "customer_report", "freeze", "halt", "note", …
	Ref      string // the alert id, held action id, …; a link with the same kind and ref joins once
	Account  string // the case's account, or "" for an instrument's case
	Symbol   string
	Campaign string
	Title    string
	Severity int
	Actor    string
	Text     string
}

// joinTx opens the case of l's account (or, without an account, of its
// instrument) or joins the open one, inside tx, and returns its id.
func (s *Service) joinTx(ctx context.Context, tx *sql.Tx, l Link, now time.Time) (string, error) {
	var id, campaign string
	var sev int
	var err error
	if l.Account != "" {
		err = tx.QueryRowContext(ctx, `SELECT id, campaign, severity FROM cases WHERE account = $1 AND status = 'open' ORDER BY opened_us LIMIT 1`, l.Account).Scan(&id, &campaign, &sev)
	} else {
		err = tx.QueryRowContext(ctx, `SELECT id, campaign, severity FROM cases WHERE account = '' AND symbol = $1 AND status = 'open' ORDER BY opened_us LIMIT 1`, l.Symbol).Scan(&id, &campaign, &sev)
	}
	us := store.Micros(now)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		id = newID("K")
		title := l.Title
		if title == "" {
			title = l.Kind
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO cases (id, kind, account, symbol, campaign, status, title, severity, opened_us, updated_us)
			VALUES ($1, $2, $3, $4, $5, 'open', $6, $7, $8, $9)`, id, l.Kind, l.Account, l.Symbol, l.Campaign, title, l.Severity, us, us)
	case err == nil:
		if l.Ref != "" {
			var one int
			e := tx.QueryRowContext(ctx, `SELECT 1 FROM case_events WHERE case_id = $1 AND kind = $2 AND ref = $3`, id, l.Kind, l.Ref).Scan(&one)
			if e == nil {
				return id, nil
			} else if !errors.Is(e, sql.ErrNoRows) {
				return "", e
			}
		}
		if campaign == "" {
			campaign = l.Campaign
		}
		_, err = tx.ExecContext(ctx, `UPDATE cases SET updated_us = $1, campaign = $2, severity = $3 WHERE id = $4`, us, campaign, max(sev, l.Severity), id)
	}
	if err != nil {
		return "", err
	}
	return id, s.eventTx(ctx, tx, id, l.Kind, l.Ref, l.Actor, l.Text, now)
}

func (s *Service) eventTx(ctx context.Context, tx *sql.Tx, caseID, kind, ref, actor, text string, now time.Time) error {
	if actor == "" {
		actor = "system"
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO case_events (id, case_id, time_us, kind, ref, actor, text) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		seqID("V"), caseID, store.Micros(now), kind, ref, actor, text)
	return err
}

// Open opens a case for l or joins the open one of its account or
// instrument, and returns the case id. Alerts, held actions and customer
// reports come in here.
func (s *Service) Open(ctx context.Context, l Link) (string, error) {
	if l.Account == "" && l.Symbol == "" {
		return "", reason.E("invalid_field.case_subject")
	}
	var id string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = s.joinTx(ctx, tx, l, s.cfg.Now())
		return err
	})
	return id, err
}

const caseCols = `id, kind, account, symbol, campaign, status, title, severity, assignee, opened_us, updated_us, incident_from_us`

func scanCase(row interface{ Scan(...any) error }) (*Case, error) {
	var c Case
	var o, u, f int64
	if err := row.Scan(&c.ID, &c.Kind, &c.Account, &c.Symbol, &c.Campaign, &c.Status, &c.Title, &c.Severity, &c.Assignee, &o, &u, &f); err != nil {
		return nil, err
	}
	c.Opened, c.Updated = store.FromMicros(o), store.FromMicros(u)
	if f != 0 {
		c.IncidentFrom = store.FromMicros(f)
	}
	return &c, nil
}

// Case returns the case id.
func (s *Service) Case(ctx context.Context, id string) (*Case, error) {
	c, err := scanCase(s.cfg.DB.QueryRowContext(ctx, `SELECT `+caseCols+` FROM cases WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, reason.E(ReasonUnknownCase, "case", id)
	}
	return c, err
}

// Cases returns cases, open ones first by severity, at most limit; with
// campaign set, only that campaign's (the cases of one campaign are linked
// by it).
func (s *Service) Cases(ctx context.Context, campaign string, limit int) ([]Case, error) {
	q := `SELECT ` + caseCols + ` FROM cases ORDER BY status DESC, severity DESC, opened_us LIMIT $1`
	args := []any{limit}
	if campaign != "" {
		q = `SELECT ` + caseCols + ` FROM cases WHERE campaign = $1 ORDER BY status DESC, severity DESC, opened_us LIMIT $2`
		args = []any{campaign, limit}
	}
	rows, err := s.cfg.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Case{}
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}

// Assign makes assignee (an active analyst, or "" for nobody) the case's
// assignee, as analyst name, with a note: the case's timeline and the
// audit trail name both.
func (s *Service) Assign(ctx context.Context, name, caseID, assignee, note string) (*Case, error) {
	assignee, note = strings.TrimSpace(assignee), strings.TrimSpace(note)
	if note == "" || len(note) > 2000 {
		return nil, reason.E("invalid_field.note")
	}
	now := s.cfg.Now()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		a, err := analyst.Active(ctx, tx, name)
		if err != nil {
			return err
		}
		if assignee != "" {
			if _, err := analyst.Active(ctx, tx, assignee); err != nil {
				return reason.E("invalid_field.assignee", "name", assignee)
			}
		}
		res, err := tx.ExecContext(ctx, `UPDATE cases SET assignee = $1, updated_us = $2 WHERE id = $3`, assignee, store.Micros(now), caseID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return reason.E(ReasonUnknownCase, "case", caseID)
		}
		text := assignee + ": " + note
		if assignee == "" {
			text = "nobody: " + note
		}
		if err := s.eventTx(ctx, tx, caseID, "assigned", assignee, a.Actor(), text, now); err != nil {
			return err
		}
		return audit.AppendTx(ctx, tx, audit.Entry{Time: now, Actor: a.Actor(), Action: "case_assigned", Subject: caseID,
			Detail: map[string]any{"assignee": assignee, "note": note}})
	})
	if err != nil {
		return nil, err
	}
	return s.Case(ctx, caseID)
}

// Entry is one line of a case's timeline.
type Entry struct {
	Time  time.Time `json:"time"`
	Kind  string    `json:"kind"`
	Ref   string    `json:"ref,omitempty"`
	Actor string    `json:"actor"`
	Text  string    `json:"text,omitempty"`
}

// Timeline returns what opened and joined the case, oldest first.
func (s *Service) Timeline(ctx context.Context, caseID string) ([]Entry, error) {
	rows, err := s.cfg.DB.QueryContext(ctx, `SELECT time_us, kind, ref, actor, text FROM case_events WHERE case_id = $1 ORDER BY time_us, id`, caseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		var us int64
		if err := rows.Scan(&us, &e.Kind, &e.Ref, &e.Actor, &e.Text); err != nil {
			return nil, err
		}
		e.Time = store.FromMicros(us)
		out = append(out, e)
	}
	return out, rows.Err()
}

// HeldTx opens or joins the account's case when the guard held the
// customer action r for an analyst, inside the transaction that stores
// the held action, so no held action is without a case.
func (s *Service) HeldTx(ctx context.Context, tx *sql.Tx, r *event.Record) error {
	if !r.Type.Action() || r.Account == "" {
		return nil
	}
	var n int
	err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM orders WHERE event_id = $1 AND status = 'held') + (SELECT COUNT(*) FROM withdrawals WHERE event_id = $1 AND status = 'held')`, r.ID).Scan(&n)
	if err != nil || n == 0 {
		return err
	}
	_, err = s.joinTx(ctx, tx, Link{Kind: "held_action", Ref: r.ID, Account: r.Account, Symbol: r.Symbol, Title: "held for review: " + string(r.Type),
		Actor: "system:guard", Text: string(r.Type) + " held for review"}, s.cfg.Now())
	return err
}

// Report opens or joins the account's case for a customer's report (the
// customer called or wrote: "that was not me").
func (s *Service) Report(ctx context.Context, by, account, text string) (string, error) {
	text = strings.TrimSpace(text)
	if account == "" || text == "" || len(text) > 2000 {
		return "", reason.E("invalid_field.report")
	}
	return s.Open(ctx, Link{Kind: "customer_report", Account: account, Title: "customer report", Severity: 80, Actor: by, Text: text})
}
