// Package audit keeps Kabuto's audit trail: an append-only log of every
// security-relevant action (sign-ins, step-ups, locks, decisions that
// refused or held an action, halts, freezes, analyst actions, key
// changes). Each entry's SHA-256 hash covers the previous entry's hash and
// its own fields, so Verify finds any entry that was edited, removed or
// inserted after the fact.
package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/store"
)

// Entry is one audited action.
type Entry struct {
	Seq     int64
	Time    time.Time
	Actor   string // who: "customer:C0000001", "analyst:yamada", "system:surveil", "apikey:key_…"
	Action  string // stable code: "login_failed", "withdrawal_held", "halt_buys", …
	Subject string // what it was done to: an account, a symbol, a key
	Detail  map[string]any
	Hash    string
}

// Log is the audit trail.
type Log struct{ db *store.DB }

// New returns the audit trail kept in db.
func New(db *store.DB) *Log { return &Log{db: db} }

const genesis = "0000000000000000000000000000000000000000000000000000000000000000"

func chain(prev string, seq int64, t int64, actor, action, subject, detail string) string {
	h := sha256.New()
	for _, f := range []string{prev, strconv.FormatInt(seq, 10), strconv.FormatInt(t, 10), actor, action, subject, detail} {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Append adds e to the trail in its own transaction.
func (l *Log) Append(ctx context.Context, e Entry) error {
	for attempt := 0; ; attempt++ {
		err := l.db.Tx(ctx, func(tx *sql.Tx) error { return AppendTx(ctx, tx, e) })
		// Two writers that took the same sequence number on PostgreSQL:
		// one wins, the other tries again on the new head. Every lost race
		// means another entry landed, so with N writers at once a writer
		// loses at most N-1 times; the cap only guards against a broken
		// database.
		if err != nil && attempt < 1000 && ctx.Err() == nil && isUniqueViolation(err) {
			continue
		}
		return err
	}
}

// AppendTx adds e to the trail inside tx, so the entry commits or rolls
// back with the action it records.
func AppendTx(ctx context.Context, tx *sql.Tx, e Entry) error {
	if e.Actor == "" || e.Action == "" {
		return errors.New("audit: an entry needs an actor and an action")
	}
	detail := "{}"
	if len(e.Detail) > 0 {
		b, err := json.Marshal(e.Detail) // map keys are sorted: deterministic
		if err != nil {
			return fmt.Errorf("audit: detail: %w", err)
		}
		detail = string(b)
	}
	var seq int64
	prev := genesis
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	seq++
	us := store.Micros(e.Time)
	h := chain(prev, seq, us, e.Actor, e.Action, e.Subject, detail)
	_, err = tx.ExecContext(ctx, `INSERT INTO audit (seq, time_us, actor, action, subject, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		seq, us, e.Actor, e.Action, e.Subject, detail, prev, h)
	return err
}

func isUniqueViolation(err error) bool {
	s := err.Error()
	return strings.Contains(s, "SQLSTATE 23505") || strings.Contains(s, "UNIQUE constraint failed")
}

// Verify walks the whole trail and returns the number of entries checked,
// or an error naming the first entry whose hash or link does not hold.
func (l *Log) Verify(ctx context.Context) (int64, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT seq, time_us, actor, action, subject, detail, prev_hash, hash FROM audit ORDER BY seq`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	prev, want := genesis, int64(1)
	var n int64
	for rows.Next() {
		var seq, us int64
		var actor, action, subject, detail, p, h string
		if err := rows.Scan(&seq, &us, &actor, &action, &subject, &detail, &p, &h); err != nil {
			return n, err
		}
		switch {
		case seq != want:
			return n, fmt.Errorf("audit: entry %d is missing (found %d next)", want, seq)
		case p != prev:
			return n, fmt.Errorf("audit: entry %d does not link to entry %d", seq, seq-1)
		case chain(p, seq, us, actor, action, subject, detail) != h:
			return n, fmt.Errorf("audit: entry %d was altered", seq)
		}
		prev, want = h, seq+1
		n++
	}
	return n, rows.Err()
}

// List returns the newest entries, optionally for one subject, at most limit.
func (l *Log) List(ctx context.Context, subject string, limit int) ([]Entry, error) {
	q := `SELECT seq, time_us, actor, action, subject, detail, hash FROM audit ORDER BY seq DESC LIMIT $1`
	args := []any{limit}
	if subject != "" {
		q = `SELECT seq, time_us, actor, action, subject, detail, hash FROM audit WHERE subject = $1 ORDER BY seq DESC LIMIT $2`
		args = []any{subject, limit}
	}
	rows, err := l.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var us int64
		var detail string
		if err := rows.Scan(&e.Seq, &us, &e.Actor, &e.Action, &e.Subject, &detail, &e.Hash); err != nil {
			return nil, err
		}
		e.Time = store.FromMicros(us)
		json.Unmarshal([]byte(detail), &e.Detail)
		out = append(out, e)
	}
	return out, rows.Err()
}
