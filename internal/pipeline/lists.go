package pipeline

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"time"

	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Lists keeps the guard's lists in the database and in the engine: an
// edit is written (with an audit entry) in one transaction and then takes
// effect for the next decision; Load puts the stored lists back into a
// fresh engine at start.
type Lists struct {
	db  *store.DB
	eng *risk.Engine
}

// NewLists returns the lists of eng, kept in db.
func NewLists(db *store.DB, eng *risk.Engine) *Lists { return &Lists{db: db, eng: eng} }

var listName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// Load reads the stored lists into the engine.
func (l *Lists) Load(ctx context.Context) (int, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT list, kind, value FROM list_entries ORDER BY list, kind, value`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var name, kind, value string
		if err := rows.Scan(&name, &kind, &value); err != nil {
			return n, err
		}
		if _, err := l.eng.Lists().Add(name, risk.ListKind(kind), value); err != nil {
			return n, fmt.Errorf("stored list entry %s/%s/%s: %w", name, kind, value, err)
		}
		n++
	}
	return n, rows.Err()
}

// ListEntry is a stored list entry.
type ListEntry struct {
	List    string    `json:"list"`
	Kind    string    `json:"kind"`
	Value   string    `json:"value"`
	Note    string    `json:"note"`
	AddedBy string    `json:"added_by"`
	Added   time.Time `json:"added"`
}

// Entries returns the stored entries, optionally of one list.
func (l *Lists) Entries(ctx context.Context, list string) ([]ListEntry, error) {
	rows, err := l.db.QueryContext(ctx, `SELECT list, kind, value, note, added_by, added_us FROM list_entries WHERE $1 = '' OR list = $1 ORDER BY list, kind, value`, list)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ListEntry{}
	for rows.Next() {
		var e ListEntry
		var us int64
		if err := rows.Scan(&e.List, &e.Kind, &e.Value, &e.Note, &e.AddedBy, &us); err != nil {
			return nil, err
		}
		e.Added = store.FromMicros(us)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Add puts value on the list, by who and why, and reports whether it was new.
func (l *Lists) Add(ctx context.Context, list, kind, value, note, by string, now time.Time) (bool, error) {
	return l.edit(ctx, list, kind, value, note, by, now, true)
}

// Remove takes value off the list and reports whether it was there.
func (l *Lists) Remove(ctx context.Context, list, kind, value, by string, now time.Time) (bool, error) {
	return l.edit(ctx, list, kind, value, "", by, now, false)
}

func (l *Lists) edit(ctx context.Context, list, kind, value, note, by string, now time.Time, add bool) (bool, error) {
	if !listName.MatchString(list) {
		return false, reason.E("invalid_field.list_name")
	}
	// Check the entry against a scratch list first: nothing is stored
	// that the engine would refuse.
	if _, err := risk.NewLists().Add(list, risk.ListKind(kind), value); err != nil {
		return false, reason.E("invalid_field.list_entry", "detail", err.Error())
	}
	var changed bool
	err := l.db.Tx(ctx, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		if add {
			res, err = tx.ExecContext(ctx, `INSERT INTO list_entries (list, kind, value, note, added_by, added_us) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (list, kind, value) DO NOTHING`, list, kind, value, note, by, store.Micros(now))
		} else {
			res, err = tx.ExecContext(ctx, `DELETE FROM list_entries WHERE list = $1 AND kind = $2 AND value = $3`, list, kind, value)
		}
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		if changed = n > 0; !changed {
			return nil
		}
		action := "list_add"
		if !add {
			action = "list_remove"
		}
		return audit.AppendTx(ctx, tx, audit.Entry{Time: now, Actor: by, Action: action, Subject: list + "/" + kind + "/" + value, Detail: map[string]any{"note": note}})
	})
	if err != nil {
		return false, err
	}
	if add {
		_, err = l.eng.Lists().Add(list, risk.ListKind(kind), value)
	} else {
		_, err = l.eng.Lists().Remove(list, risk.ListKind(kind), value)
	}
	return changed, err
}
