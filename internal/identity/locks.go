package identity

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"time"

	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/session"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Self-service lock scopes, Rakuten's five grades.
const (
	LockAllButFundBuys     = 1 // everything except buying investment trusts
	LockAllButFundsAndCash = 2 // everything except fund trading and withdrawals
	LockForeign            = 3 // foreign stocks only
	LockTrading            = 4 // all trading
	LockTradingAndLogin    = 5 // all trading and sign-in
)

// ScopeText describes a lock scope for a person.
func ScopeText(scope int, locale string) string {
	if scope < LockAllButFundBuys || scope > LockTradingAndLogin {
		return ""
	}
	return reason.Format(ScopeWord(scope), locale == "en")
}

// ScopeWord is scope as a refusal's parameter, worded by the catalogue's
// vocabulary (reason.Vocabulary, set "scope").
func ScopeWord(scope int) reason.Word { return reason.W("scope", strconv.Itoa(scope)) }

// Op is what a customer is about to do, as far as self-locks care.
type Op struct {
	Kind    string // "order", "withdrawal", "signin", "change"
	Foreign bool   // a foreign instrument
	Fund    bool   // an investment trust
	Side    string // "buy" or "sell"
}

// Locked reports whether a self-lock of scope stops op.
func Locked(scope int, op Op) bool {
	switch scope {
	case LockAllButFundBuys:
		return !(op.Kind == "order" && op.Fund && op.Side == "buy") && op.Kind != "signin"
	case LockAllButFundsAndCash:
		return op.Kind == "order" && !op.Fund || op.Kind == "change"
	case LockForeign:
		return op.Kind == "order" && op.Foreign
	case LockTrading:
		return op.Kind == "order"
	case LockTradingAndLogin:
		return op.Kind == "order" || op.Kind == "signin" || op.Kind == "withdrawal" || op.Kind == "change"
	}
	return false
}

// SelfLock returns the account's self-lock scope (0: none).
func (s *Service) SelfLock(ctx context.Context, account string) (int, time.Time, error) {
	var scope, us int64
	err := s.cfg.DB.QueryRowContext(ctx, `SELECT scope, set_us FROM self_locks WHERE account = $1`, account).Scan(&scope, &us)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	return int(scope), store.FromMicros(us), err
}

// SetSelfLock locks account at scope (a narrower existing lock is
// widened, never narrowed: narrowing is an unlock), notifying the
// customer in the same transaction. by says who asked ("session:…",
// "signin-page").
func (s *Service) SetSelfLock(ctx context.Context, account string, scope int, by string, c session.Client, more func(tx *sql.Tx) error) error {
	if scope < 1 || scope > 5 {
		return errors.New("identity: lock scope must be 1 to 5")
	}
	now := s.cfg.Now()
	return s.cfg.DB.Tx(ctx, func(tx *sql.Tx) error {
		var cur int64
		err := tx.QueryRowContext(ctx, `SELECT scope FROM self_locks WHERE account = $1`, account).Scan(&cur)
		same := err == nil && int(cur) == scope
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, `INSERT INTO self_locks (account, scope, set_us, set_by) VALUES ($1, $2, $3, $4)`, account, scope, store.Micros(now), by)
		case same:
			// Already locked so: nothing changes, and no second message.
		case err == nil && widens(int(cur), scope):
			_, err = tx.ExecContext(ctx, `UPDATE self_locks SET scope = $1, set_us = $2, set_by = $3 WHERE account = $4`, scope, store.Micros(now), by, account)
		}
		if err != nil {
			return err
		}
		if more != nil {
			if err := more(tx); err != nil {
				return err
			}
		}
		if same {
			return nil
		}
		a, err := s.LookupAccount(ctx, tx, account)
		if err != nil {
			return err
		}
		return s.cfg.Outbox.Enqueue(ctx, tx, s.message(a, notify.KindSelfLock, c, now, map[string]string{"Scope": ScopeText(scope, a.Locale)}), now)
	})
}

// widens reports whether scope to stops at least what from stops (5 stops
// the most; 1 stops more than 2, 3 and 4 except sign-in).
func widens(from, to int) bool {
	order := map[int]int{3: 1, 4: 2, 2: 3, 1: 4, 5: 5}
	return order[to] >= order[from]
}

// ClearSelfLock removes account's self-lock after re-verification with
// factor, notifying the customer.
func (s *Service) ClearSelfLock(ctx context.Context, account, factor string, c session.Client) error {
	now := s.cfg.Now()
	return s.cfg.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM self_locks WHERE account = $1`, account); err != nil {
			return err
		}
		a, err := s.LookupAccount(ctx, tx, account)
		if err != nil {
			return err
		}
		return s.cfg.Outbox.Enqueue(ctx, tx, s.message(a, notify.KindUnlocked, c, now, map[string]string{"Factor": factorName(factor, a.Locale)}), now)
	})
}

// MatchContact reports whether value is account's registered email or
// phone, compared through the brokerage's keyed hashes.
func (s *Service) MatchContact(ctx context.Context, account string, hash func(kind, v string) string, value string) bool {
	var eh, ph string
	if err := s.cfg.DB.QueryRowContext(ctx, `SELECT email_hash, phone_hash FROM accounts WHERE id = $1`, account).Scan(&eh, &ph); err != nil {
		return false
	}
	return hash("email", value) == eh || hash("phone", value) == ph
}
