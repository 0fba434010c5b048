package broker

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// HeldAction is an order or withdrawal the guard held for an analyst.
type HeldAction struct {
	Kind      string    `json:"kind"` // "order" or "withdrawal"
	ID        string    `json:"id"`
	Account   string    `json:"account"`
	Summary   string    `json:"summary"`
	ValueJPY  int64     `json:"value_jpy"`
	Created   time.Time `json:"created"`
	EventID   string    `json:"event"`
	Symbol    string    `json:"symbol,omitempty"`
	AmountJPY int64     `json:"amount_jpy,omitempty"`
}

// Held lists the actions waiting for an analyst, oldest first.
func (b *Broker) Held(ctx context.Context, limit int) ([]HeldAction, error) {
	rows, err := b.db.QueryContext(ctx, `SELECT 'order', id, account, side || ' ' || CAST(qty AS TEXT) || ' ' || symbol, value_jpy, created_us, event_id, symbol, 0
		FROM orders WHERE status = 'held'
		UNION ALL
		SELECT 'withdrawal', id, account, 'withdraw', amount_jpy, created_us, event_id, '', amount_jpy
		FROM withdrawals WHERE status = 'held'
		ORDER BY 6 LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []HeldAction{}
	for rows.Next() {
		var h HeldAction
		var us int64
		if err := rows.Scan(&h.Kind, &h.ID, &h.Account, &h.Summary, &h.ValueJPY, &us, &h.EventID, &h.Symbol, &h.AmountJPY); err != nil {
			return nil, err
		}
		h.Created = store.FromMicros(us)
		out = append(out, h)
	}
	return out, rows.Err()
}

// ErrNotHeld means the action was not (or no longer) waiting for review.
var ErrNotHeld = reason.E("order_not_open.not_held")

// ReleaseWithdrawal carries out (approve) or refuses a held withdrawal.
// The reserved cash leaves or is freed in the same transaction.
func (b *Broker) ReleaseWithdrawal(ctx context.Context, id string, approve bool) error {
	return b.db.Tx(ctx, func(tx *sql.Tx) error { return b.ReleaseWithdrawalTx(ctx, tx, id, approve) })
}

// ReleaseWithdrawalTx is ReleaseWithdrawal inside tx, so the back office
// releases a withdrawal in the transaction of the approval that allows it.
func (b *Broker) ReleaseWithdrawalTx(ctx context.Context, tx *sql.Tx, id string, approve bool) error {
	now := b.clock.Now()
	{
		var account string
		var amount int64
		err := tx.QueryRowContext(ctx, `SELECT account, amount_jpy FROM withdrawals WHERE id = $1 AND status = 'held'`, id).Scan(&account, &amount)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotHeld
		}
		if err != nil {
			return err
		}
		status := "rejected"
		if approve {
			status = "sent"
		}
		res, err := tx.ExecContext(ctx, `UPDATE withdrawals SET status = $1 WHERE id = $2 AND status = 'held'`, status, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotHeld
		}
		if !approve {
			_, err = tx.ExecContext(ctx, `UPDATE accounts SET reserved_jpy = reserved_jpy - $1 WHERE id = $2`, amount, account)
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET cash_jpy = cash_jpy - $1, reserved_jpy = reserved_jpy - $1 WHERE id = $2`, amount, account); err != nil {
			return err
		}
		return ledger(ctx, tx, b.ids("L"), account, now, "withdrawal", "", "", 0, 0, -amount, id)
	}
}

// ReleaseOrder carries out (approve) or refuses a held order. An approved
// order is checked against cash and holdings again and fills at today's
// price, or rests when a limit is not reached.
func (b *Broker) ReleaseOrder(ctx context.Context, id string, approve bool) (*Order, error) {
	now := b.clock.Now()
	var o Order
	var us int64
	err := b.db.QueryRowContext(ctx, `SELECT account, symbol, side, qty, price_type, limit_price, kind, value_jpy, created_us FROM orders WHERE id = $1 AND status = 'held'`, id).
		Scan(&o.Account, &o.Symbol, &o.Side, &o.Qty, &o.PriceType, &o.LimitPrice, &o.Kind, &o.ValueJPY, &us)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotHeld
	}
	if err != nil {
		return nil, err
	}
	o.ID, o.Created = id, store.FromMicros(us)
	if !approve {
		res, err := b.db.ExecContext(ctx, `UPDATE orders SET status = 'rejected', updated_us = $1 WHERE id = $2 AND status = 'held'`, store.Micros(now), id)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil, ErrNotHeld
		}
		o.Status = StatusRejected
		return &o, nil
	}
	req := OrderRequest{Symbol: o.Symbol, Side: o.Side, Qty: o.Qty, PriceType: o.PriceType, LimitPrice: o.LimitPrice, Kind: o.Kind}
	_, reserve, err := b.checkOrder(ctx, o.Account, req, now)
	if err != nil {
		return nil, err
	}
	var fill *event.Record
	err = b.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE orders SET status = 'open', reserved_jpy = $1, reserved_qty = $2, updated_us = $3 WHERE id = $4 AND status = 'held'`,
			reserve, map[bool]int64{true: o.Qty, false: 0}[o.Side == event.SideSell], store.Micros(now), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotHeld
		}
		if err := b.reserve(ctx, tx, o.Account, req, reserve); err != nil {
			return err
		}
		px, err := b.x.Execute(o.Symbol, o.Side, o.Qty, o.LimitPrice, now)
		if errors.Is(err, market.ErrNotMarketable) {
			o.Status = StatusOpen
			return nil
		}
		if err != nil {
			return err
		}
		fill, err = b.fill(ctx, tx, &o, px, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	if fill != nil {
		b.publish(ctx, fill)
	}
	return &o, nil
}
