package broker

import (
	"context"
	"database/sql"
	"time"

	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// SetHaltTx is SetHalt inside tx, for the back office, which writes the
// halt, its history and its audit entry in one transaction.
func SetHaltTx(ctx context.Context, tx *sql.Tx, symbol string, halted bool, why string) error {
	if !halted {
		why = ""
	}
	res, err := tx.ExecContext(ctx, `UPDATE instruments SET buy_halted = $1, halt_reason = $2 WHERE symbol = $3`, store.Int(halted), why, symbol)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return reason.E("unknown_symbol.lookup", "symbol", symbol)
	}
	return nil
}

// CreditTx pays amount yen into the account's cash inside tx, with its
// ledger row (a deposit whose ref says why, e.g. "compensation:…"), so a
// payment is posted exactly when the decision that makes it commits.
func (b *Broker) CreditTx(ctx context.Context, tx *sql.Tx, account string, amount int64, ref string, now time.Time) error {
	if amount <= 0 {
		return reason.E("invalid_field.credit")
	}
	res, err := tx.ExecContext(ctx, `UPDATE accounts SET cash_jpy = cash_jpy + $1 WHERE id = $2`, amount, account)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return reason.E(reason.UnknownAccount, "account", account)
	}
	return ledger(ctx, tx, b.ids("L"), account, now, "deposit", "", "", 0, 0, amount, ref)
}

// LedgerFill is a buy or sell of an account as its ledger shows it.
type LedgerFill struct {
	Time   time.Time
	Symbol string
	Side   string // "buy" or "sell"
	Qty    int64  // positive
	Price  float64
	Order  string
}

// LedgerAt returns the account's cash and shares per symbol (all kinds
// together) just before t, from its ledger, and the buys and sells from t
// up to (not including) until, oldest first.
func (b *Broker) LedgerAt(ctx context.Context, account string, t, until time.Time) (cash int64, shares map[string]int64, fills []LedgerFill, err error) {
	rows, err := b.db.QueryContext(ctx, `SELECT time_us, entry, symbol, qty, price, cash_jpy, ref FROM ledger WHERE account = $1 AND time_us < $2 ORDER BY time_us, id`,
		account, store.Micros(until))
	if err != nil {
		return 0, nil, nil, err
	}
	defer rows.Close()
	shares = map[string]int64{}
	cut := store.Micros(t)
	for rows.Next() {
		var us, q, c int64
		var entry, sym, ref string
		var px float64
		if err := rows.Scan(&us, &entry, &sym, &q, &px, &c, &ref); err != nil {
			return 0, nil, nil, err
		}
		if us < cut {
			cash += c
			if sym != "" && q != 0 {
				shares[sym] += q
			}
			continue
		}
		if entry == "buy" || entry == "sell" {
			f := LedgerFill{Time: store.FromMicros(us), Symbol: sym, Side: entry, Qty: q, Price: px, Order: ref}
			if f.Qty < 0 {
				f.Qty = -f.Qty
			}
			fills = append(fills, f)
		}
	}
	for s, q := range shares {
		if q == 0 {
			delete(shares, s)
		}
	}
	return cash, shares, fills, rows.Err()
}
