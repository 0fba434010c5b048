package broker

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Orders returns the account's orders, newest first, at most limit.
func (b *Broker) Orders(ctx context.Context, account string, limit int) ([]Order, error) {
	rows, err := b.db.QueryContext(ctx, `SELECT id, symbol, side, qty, price_type, limit_price, kind, status, filled_qty, filled_jpy, value_jpy, created_us
		FROM orders WHERE account = $1 ORDER BY created_us DESC, id DESC LIMIT $2`, account, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Order{}
	for rows.Next() {
		o := Order{Account: account}
		var us int64
		if err := rows.Scan(&o.ID, &o.Symbol, &o.Side, &o.Qty, &o.PriceType, &o.LimitPrice, &o.Kind, &o.Status, &o.FilledQty, &o.FilledJPY, &o.ValueJPY, &us); err != nil {
			return nil, err
		}
		o.Created = store.FromMicros(us)
		if o.FilledQty > 0 {
			o.FillPrice = float64(o.FilledJPY) / float64(o.FilledQty)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// CancelOrder cancels an open or held order and releases its reservation.
func (b *Broker) CancelOrder(ctx context.Context, a Actor, account, orderID, idemKey string) (*Order, error) {
	var out Order
	id, done, err := b.idempotent(ctx, a, idemKey, "cancel:"+account, orderID, &out)
	if err != nil {
		return nil, err
	}
	if done {
		return &out, nil
	}
	now := b.clock.Now()
	_, err = b.once(ctx, a.Principal, id, &out, func(tx *sql.Tx) error {
		return b.cancel(ctx, tx, account, orderID, now, &out)
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

func (b *Broker) cancel(ctx context.Context, tx *sql.Tx, account, orderID string, now time.Time, out *Order) error {
	var side, sym, kind, status string
	var resJPY, resQty, qty int64
	err := tx.QueryRowContext(ctx, `SELECT side, symbol, kind, status, reserved_jpy, reserved_qty, qty FROM orders WHERE id = $1 AND account = $2`, orderID, account).
		Scan(&side, &sym, &kind, &status, &resJPY, &resQty, &qty)
	if isNoRows(err) {
		return reason.E(reason.UnknownOrder, "order", orderID)
	}
	if err != nil {
		return err
	}
	if status != StatusOpen && status != StatusHeld {
		return reason.E("order_not_open.cancel", "order", orderID, "status", reason.W("status", status))
	}
	res, err := tx.ExecContext(ctx, `UPDATE orders SET status = 'cancelled', reserved_jpy = 0, reserved_qty = 0, updated_us = $1 WHERE id = $2 AND status = $3`,
		store.Micros(now), orderID, status)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return reason.E("order_not_open.changed", "order", orderID)
	}
	if resJPY > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET reserved_jpy = reserved_jpy - $1 WHERE id = $2`, resJPY, account); err != nil {
			return err
		}
	}
	if resQty > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE positions SET reserved_qty = reserved_qty - $1 WHERE account = $2 AND symbol = $3 AND kind = $4`, resQty, account, sym, kind); err != nil {
			return err
		}
	}
	*out = Order{ID: orderID, Account: account, Symbol: sym, Side: side, Qty: qty, Kind: kind, Status: StatusCancelled, Created: now}
	return nil
}

// SetHalt puts the instrument on the buy-halt list, or takes it off.
func (b *Broker) SetHalt(ctx context.Context, symbol string, halted bool, why string) error {
	res, err := b.db.ExecContext(ctx, `UPDATE instruments SET buy_halted = $1, halt_reason = $2 WHERE symbol = $3`, store.Int(halted), why, symbol)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return reason.E("unknown_symbol.lookup", "symbol", symbol)
	}
	return nil
}

// Halts returns the symbols whose buying is halted, with the reasons.
func (b *Broker) Halts(ctx context.Context) (map[string]string, error) {
	rows, err := b.db.QueryContext(ctx, `SELECT symbol, halt_reason FROM instruments WHERE buy_halted = 1 ORDER BY symbol`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var s, r string
		if err := rows.Scan(&s, &r); err != nil {
			return nil, err
		}
		out[s] = r
	}
	return out, rows.Err()
}

// Tick advances the market to now: it publishes the bars of every minute
// that ended and fills the resting limit orders the market reached.
func (b *Broker) Tick(ctx context.Context, now time.Time) error {
	b.tickMu.Lock()
	defer b.tickMu.Unlock()
	bars := b.x.Step(now)
	for i := range bars {
		b.publish(ctx, &bars[i])
	}
	if !b.x.Open(now) {
		return nil
	}
	rows, err := b.db.QueryContext(ctx, `SELECT id, account, symbol, side, qty, limit_price, kind, created_us FROM orders WHERE status = 'open' ORDER BY created_us, id`)
	if err != nil {
		return err
	}
	var open []Order
	for rows.Next() {
		var o Order
		var us int64
		if err := rows.Scan(&o.ID, &o.Account, &o.Symbol, &o.Side, &o.Qty, &o.LimitPrice, &o.Kind, &us); err != nil {
			rows.Close()
			return err
		}
		o.Created = store.FromMicros(us)
		open = append(open, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for i := range open {
		o := &open[i]
		q, ok := b.x.Quote(o.Symbol)
		if !ok || (o.Side == event.SideBuy && o.LimitPrice < q.Ask) || (o.Side == event.SideSell && o.LimitPrice > q.Bid) {
			continue
		}
		var f *event.Record
		err := b.db.Tx(ctx, func(tx *sql.Tx) error {
			px, err := b.x.Execute(o.Symbol, o.Side, o.Qty, o.LimitPrice, now)
			if err != nil {
				return err
			}
			f, err = b.fill(ctx, tx, o, px, now)
			return err
		})
		switch {
		case err == nil:
			b.publish(ctx, f)
		case errors.Is(err, market.ErrNotMarketable), errors.Is(err, errOrderGone):
		default:
			return err
		}
	}
	return nil
}

// Run ticks the market every interval until ctx ends.
func (b *Broker) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := b.Tick(ctx, b.clock.Now()); err != nil && ctx.Err() == nil {
				b.log.ErrorContext(ctx, "market tick failed", "err", err)
			}
		}
	}
}

// Listing is an instrument with its current quote.
type Listing struct {
	Symbol    string  `json:"symbol"`
	Name      string  `json:"name"`
	Market    string  `json:"market"`
	Currency  string  `json:"currency"`
	Lot       int64   `json:"lot"`
	ADVShares int64   `json:"adv_shares"`
	PrevClose float64 `json:"prev_close"`
	Last      float64 `json:"last"`
	Bid       float64 `json:"bid"`
	Ask       float64 `json:"ask"`
	LimitLow  float64 `json:"limit_low"`
	LimitHigh float64 `json:"limit_high,omitempty"`
	DayVolume int64   `json:"day_volume"`
	BuyHalted bool    `json:"buy_halted"`
	HaltWhy   string  `json:"halt_reason,omitempty"`
}

// Instruments lists the instruments with their quotes, optionally only
// those whose symbol or name contains q.
func (b *Broker) Instruments(ctx context.Context, q string) ([]Listing, error) {
	rows, err := b.db.QueryContext(ctx, `SELECT symbol, name, market, currency, lot, adv_shares, prev_close, buy_halted, halt_reason FROM instruments ORDER BY symbol`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Listing{}
	q = strings.ToLower(q)
	for rows.Next() {
		var l Listing
		var h int64
		if err := rows.Scan(&l.Symbol, &l.Name, &l.Market, &l.Currency, &l.Lot, &l.ADVShares, &l.PrevClose, &h, &l.HaltWhy); err != nil {
			return nil, err
		}
		if q != "" && !strings.Contains(strings.ToLower(l.Symbol+" "+l.Name), q) {
			continue
		}
		l.BuyHalted = store.Bool(h)
		if qt, ok := b.x.Quote(l.Symbol); ok {
			l.Last, l.Bid, l.Ask, l.LimitLow, l.DayVolume = qt.Last, qt.Bid, qt.Ask, qt.Low, qt.DayVolume
			if !math.IsInf(qt.High, 1) {
				l.LimitHigh = qt.High
			}
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
