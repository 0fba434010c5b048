// Package analyst keeps the back office's people: personal analyst
// accounts with a role (analyst: triage, notes, proposals; supervisor:
// approvals; admin: people, keys and policy), created and disabled from
// the terminal, each change written to the audit trail with the person who
// made it. The four-eyes rule (a second person, a supervisor, who is not
// the proposer) is checked here, in one place.
package analyst

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"time"

	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Roles an analyst may hold.
const (
	RoleAnalyst    = "analyst"    // triage, notes, proposals
	RoleSupervisor = "supervisor" // approves what an analyst proposes
	RoleAdmin      = "admin"      // people, keys, policy
)

// Reason codes of the back office's people.
const (
	// ReasonUnknownAnalyst: no such analyst, or the analyst is disabled.
	ReasonUnknownAnalyst = "unknown_analyst"
	// ReasonFourEyes: the approver is the proposer, or lacks the supervisor role.
	ReasonFourEyes = "four_eyes_required"
)

// Analyst is one person of the back office.
type Analyst struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	Created   time.Time `json:"created"`
	CreatedBy string    `json:"created_by"`
	Disabled  time.Time `json:"disabled,omitzero"`
}

// Actor is how the analyst appears in the audit trail: "analyst:NAME".
func (a *Analyst) Actor() string { return "analyst:" + a.Name }

// Active reports whether the analyst may act.
func (a *Analyst) Active() bool { return a.Disabled.IsZero() }

// Store keeps analysts.
type Store struct {
	db    *store.DB
	trail *audit.Log
	now   func() time.Time
}

// New returns the analysts kept in db; now may be nil (clock.Real).
func New(db *store.DB, now func() time.Time) *Store {
	if now == nil {
		now = clock.Real{}.Now
	}
	return &Store{db: db, trail: audit.New(db), now: now}
}

var namePattern = regexp.MustCompile(`^[a-z][a-z0-9._-]{1,39}$`)

// ValidRole reports whether r is a role.
func ValidRole(r string) bool {
	return r == RoleAnalyst || r == RoleSupervisor || r == RoleAdmin
}

// Create adds an analyst with role; by names who did it ("operator:…" from
// the terminal, "analyst:…" from the console).
func (s *Store) Create(ctx context.Context, name, role, by string) (*Analyst, error) {
	if !namePattern.MatchString(name) {
		return nil, reason.E("invalid_field.analyst_name", "name", name)
	}
	if !ValidRole(role) {
		return nil, reason.E("invalid_field.analyst_role", "role", role)
	}
	now := s.now()
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO analysts (name, role, created_us, created_by) VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING`,
			name, role, store.Micros(now), by)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return reason.E("invalid_field.analyst_exists", "name", name)
		}
		return audit.AppendTx(ctx, tx, audit.Entry{Time: now, Actor: by, Action: "analyst_created", Subject: "analyst:" + name, Detail: map[string]any{"role": role}})
	})
	if err != nil {
		return nil, err
	}
	return &Analyst{Name: name, Role: role, Created: store.FromMicros(store.Micros(now)), CreatedBy: by}, nil
}

// Disable stops the analyst from acting; the record and its history stay.
func (s *Store) Disable(ctx context.Context, name, by string) error {
	now := s.now()
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE analysts SET disabled_us = $1 WHERE name = $2 AND disabled_us = 0`, store.Micros(now), name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return reason.E(ReasonUnknownAnalyst+".lookup", "name", name)
		}
		return audit.AppendTx(ctx, tx, audit.Entry{Time: now, Actor: by, Action: "analyst_disabled", Subject: "analyst:" + name})
	})
}

// List returns every analyst, active or not, by name.
func (s *Store) List(ctx context.Context) ([]Analyst, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, role, created_us, created_by, disabled_us FROM analysts ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Analyst{}
	for rows.Next() {
		a, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, rows.Err()
}

func scan(row interface{ Scan(...any) error }) (*Analyst, error) {
	var a Analyst
	var c, d int64
	if err := row.Scan(&a.Name, &a.Role, &c, &a.CreatedBy, &d); err != nil {
		return nil, err
	}
	a.Created = store.FromMicros(c)
	if d != 0 {
		a.Disabled = store.FromMicros(d)
	}
	return &a, nil
}

// Querier is a *sql.DB or *sql.Tx.
type Querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Active returns the active analyst name, read through q (a transaction
// when the answer must hold until it commits).
func Active(ctx context.Context, q Querier, name string) (*Analyst, error) {
	a, err := scan(q.QueryRowContext(ctx, `SELECT name, role, created_us, created_by, disabled_us FROM analysts WHERE name = $1`, name))
	if errors.Is(err, sql.ErrNoRows) || (err == nil && !a.Active()) {
		return nil, reason.E(ReasonUnknownAnalyst, "name", name)
	}
	return a, err
}

// Get returns the active analyst name.
func (s *Store) Get(ctx context.Context, name string) (*Analyst, error) {
	return Active(ctx, s.db, name)
}

// CheckFourEyes returns nil when approver may approve what proposer
// proposed: an active supervisor who is not the proposer.
func CheckFourEyes(ctx context.Context, q Querier, proposer, approver string) (*Analyst, error) {
	a, err := Active(ctx, q, approver)
	if err != nil {
		return nil, err
	}
	if a.Name == proposer {
		return nil, reason.E(ReasonFourEyes+".proposer", "analyst", approver)
	}
	if a.Role != RoleSupervisor {
		return nil, reason.E(ReasonFourEyes+".role", "analyst", approver, "role", a.Role)
	}
	return a, nil
}
