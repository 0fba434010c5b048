// Package stepup keeps the step-up challenges Kabuto issues to an
// integrating brokerage. When the guard asks for a step-up on an action
// sent through the API, the answer carries a challenge: a random server
// nonce bound to that exact action (its broker.Binding: kind, account,
// session, amount and destination, or the order's instrument, side,
// quantity and terms), to the API key that asked and to a deadline. The
// brokerage runs the step-up with its customer and sends the action again
// with X-Kabuto-Step-Up: <factor>:<challenge>. The server spends the
// challenge the first time it is presented, whatever then happens, so a
// header kept and sent again opens nothing. Only a hash of each challenge
// is stored; several processes share the table, and spending is one
// conditional UPDATE, so exactly one request spends a challenge.
package stepup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Prefix starts every challenge.
const Prefix = "suc_"

// TTL is how long a challenge may wait for its step-up.
const TTL = 5 * time.Minute

// ErrInvalid means the challenge is unknown, spent, expired, or was
// issued to another caller, account or session.
var ErrInvalid = errors.New("stepup: challenge unknown, spent, expired or not yours")

// Store issues and spends challenges.
type Store struct {
	db  *store.DB
	now func() time.Time
}

// New returns a Store on db; now is the clock (nil: clock.Real).
func New(db *store.DB, now func() time.Time) *Store {
	if now == nil {
		now = clock.Real{}.Now
	}
	return &Store{db: db, now: now}
}

// Challenge is an issued challenge.
type Challenge struct {
	Value   string    // the challenge the brokerage sends back; shown once
	Factor  string    // the factor asked for
	Expires time.Time // after this it opens nothing
}

// For names whom a challenge is issued to and for what.
type For struct {
	Principal string // e.g. "apikey:key_…"
	Account   string
	Session   string
	Binding   string // broker.Binding of the action
}

// Issue makes a challenge for the action f, asking for factor.
func (s *Store) Issue(ctx context.Context, f For, factor string) (Challenge, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Challenge{}, err
	}
	c := Challenge{Value: Prefix + base64.RawURLEncoding.EncodeToString(b[:]), Factor: factor}
	now := s.now()
	c.Expires = now.Add(TTL)
	// Spent and expired challenges are kept an hour for the record, then dropped.
	if _, err := s.db.ExecContext(ctx, `DELETE FROM step_up_challenges WHERE expires_us < $1`, store.Micros(now.Add(-time.Hour))); err != nil {
		return Challenge{}, err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO step_up_challenges (id, principal, account, session, binding, factor, issued_us, expires_us)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, hash(c.Value), f.Principal, f.Account, f.Session, f.Binding, factor, store.Micros(now), store.Micros(c.Expires))
	if err != nil {
		return Challenge{}, err
	}
	return c, nil
}

// Spend spends the challenge value presented by f's caller for f's
// account and session, and returns the binding of the action it was
// issued for. It succeeds at most once per challenge, across processes;
// a challenge presented by another principal, for another account or
// session, or after its deadline, is spent too and returns ErrInvalid.
func (s *Store) Spend(ctx context.Context, value string, f For) (binding string, err error) {
	if !Valid(value) {
		return "", ErrInvalid
	}
	now := store.Micros(s.now())
	var principal, account, session string
	err = s.db.QueryRowContext(ctx, `UPDATE step_up_challenges SET used_us = $1
		WHERE id = $2 AND used_us = 0 AND expires_us > $1
		RETURNING principal, account, session, binding`, now, hash(value)).Scan(&principal, &account, &session, &binding)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrInvalid
	}
	if err != nil {
		return "", err
	}
	if principal != f.Principal || account != f.Account || session != f.Session {
		return "", ErrInvalid
	}
	return binding, nil
}

// Valid reports whether v has the form of a challenge.
func Valid(v string) bool {
	rest, ok := strings.CutPrefix(v, Prefix)
	if !ok || len(rest) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}

func hash(v string) string {
	h := sha256.Sum256([]byte(v))
	return hex.EncodeToString(h[:])
}
