package broker

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"unicode/utf8"

	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Idem is the idempotency of one mutating call: the caller's key and a
// fingerprint of what was asked.
type Idem struct {
	Key  string
	hash string
}

// NewIdem returns the idempotency of a call asking op with args, or an
// error when the key is missing or malformed.
func NewIdem(key, op string, args any) (Idem, error) {
	if key == "" {
		return Idem{}, reason.E(reason.IdempotencyKeyRequired)
	}
	if len(key) > 128 || !utf8.ValidString(key) {
		return Idem{}, reason.E("idempotency_key_required.too_long")
	}
	b, _ := json.Marshal(args)
	h := sha256.Sum256(append([]byte(op+"\x00"), b...))
	return Idem{Key: key, hash: hex.EncodeToString(h[:16])}, nil
}

// idempotent parses the call's key and looks for an earlier call with it:
// done is true when out now holds that call's response, and nothing must
// run again.
func (b *Broker) idempotent(ctx context.Context, a Actor, key, op string, args, out any) (id Idem, done bool, err error) {
	if id, err = NewIdem(key, op, args); err != nil {
		return id, false, err
	}
	done, err = b.replay(ctx, b.db, a.Principal, id, out)
	return id, done, err
}

// replay returns the stored response of an earlier call with the same key.
func (b *Broker) replay(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, principal string, id Idem, out any) (bool, error) {
	var hash, resp string
	err := q.QueryRowContext(ctx, `SELECT request_hash, response FROM idempotency WHERE principal = $1 AND idem_key = $2`, principal, id.Key).Scan(&hash, &resp)
	if isNoRows(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if hash != id.hash {
		return false, reason.E(reason.IdempotencyKeyReused)
	}
	return true, json.Unmarshal([]byte(resp), out)
}

// claim records the key inside tx together with the call's response. It
// reports false when a concurrent call with the same key committed first;
// the caller then rolls back and replays.
func claim(ctx context.Context, tx *sql.Tx, principal string, id Idem, resp any, now int64) (bool, error) {
	body, err := json.Marshal(resp)
	if err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO idempotency (principal, idem_key, request_hash, status, response, created_us)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (principal, idem_key) DO NOTHING`,
		principal, id.Key, id.hash, 200, string(body), now)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// errDuplicate aborts a transaction whose idempotency key was taken by a
// concurrent call.
var errDuplicate = errors.New("idempotency key taken meanwhile")

// once runs fn in a transaction that also claims the key with the
// response fn left in out. When a concurrent call with the same key
// committed first, fn's work is rolled back and out holds that call's
// response instead. Callers check replay first, before asking the guard.
func (b *Broker) once(ctx context.Context, principal string, id Idem, out any, fn func(tx *sql.Tx) error) (replayed bool, err error) {
	err = b.db.Tx(ctx, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		ok, err := claim(ctx, tx, principal, id, out, store.Micros(b.clock.Now()))
		if err != nil {
			return err
		}
		if !ok {
			return errDuplicate
		}
		return nil
	})
	if err == errDuplicate {
		ok, err := b.replay(ctx, b.db, principal, id, out)
		if err == nil && !ok {
			err = reason.E("idempotency_key_reused.in_progress")
		}
		return ok, err
	}
	return false, err
}
