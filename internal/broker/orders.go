package broker

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// OrderRequest is an order as a customer enters it.
type OrderRequest struct {
	Symbol     string  `json:"symbol"`
	Side       string  `json:"side"`
	Qty        int64   `json:"qty"`
	PriceType  string  `json:"price_type"`
	LimitPrice float64 `json:"limit_price,omitempty"`
	Kind       string  `json:"account_kind"`
}

// Order is an order and what became of it.
type Order struct {
	ID         string          `json:"order_id"`
	Account    string          `json:"account"`
	Symbol     string          `json:"symbol"`
	Side       string          `json:"side"`
	Qty        int64           `json:"qty"`
	PriceType  string          `json:"price_type"`
	LimitPrice float64         `json:"limit_price,omitempty"`
	Kind       string          `json:"account_kind"`
	Status     string          `json:"status"`
	FilledQty  int64           `json:"filled_qty"`
	FilledJPY  int64           `json:"filled_jpy"`
	FillPrice  float64         `json:"fill_price,omitempty"`
	ValueJPY   int64           `json:"value_jpy"`
	Created    time.Time       `json:"created"`
	Decision   *event.Decision `json:"decision,omitempty"`
}

// Order statuses.
const (
	StatusOpen      = "open"
	StatusFilled    = "filled"
	StatusCancelled = "cancelled"
	StatusHeld      = "held"
	StatusRejected  = "rejected"
)

type instrumentRow struct {
	market.Instrument
	halted bool
	reason string
}

func (b *Broker) instrument(ctx context.Context, sym string) (*instrumentRow, error) {
	var in instrumentRow
	var large, halted int64
	err := b.db.QueryRowContext(ctx, `SELECT symbol, name, market, currency, lot, adv_shares, prev_close, large_cap, buy_halted, halt_reason
		FROM instruments WHERE symbol = $1`, sym).Scan(&in.Symbol, &in.Name, &in.Market, &in.Currency, &in.Lot, &in.ADVShares,
		&in.PrevClose, &large, &halted, &in.reason)
	if isNoRows(err) {
		return nil, reason.E(reason.UnknownSymbol, "symbol", sym)
	}
	if err != nil {
		return nil, err
	}
	in.LargeCap, in.halted = store.Bool(large), store.Bool(halted)
	return &in, nil
}

type accountFlags struct{ foreign, margin bool }

func (b *Broker) accountFlags(ctx context.Context, id string) (accountFlags, error) {
	var fe, me int64
	err := b.db.QueryRowContext(ctx, `SELECT foreign_enabled, margin_enabled FROM accounts WHERE id = $1`, id).Scan(&fe, &me)
	if isNoRows(err) {
		return accountFlags{}, reason.E(reason.UnknownAccount, "account", id)
	}
	return accountFlags{store.Bool(fe), store.Bool(me)}, err
}

// checkOrder validates req against the instrument, the exchange's rules
// and the account's permissions, and returns the yen to reserve for a buy.
func (b *Broker) checkOrder(ctx context.Context, account string, req OrderRequest, now time.Time) (*instrumentRow, int64, error) {
	switch {
	case req.Side != event.SideBuy && req.Side != event.SideSell:
		return nil, 0, reason.E("invalid_field.side")
	case req.PriceType != event.PriceMarket && req.PriceType != event.PriceLimit:
		return nil, 0, reason.E("invalid_field.price_type")
	case req.Kind != event.KindCash && req.Kind != event.KindNISA && req.Kind != event.KindMargin:
		return nil, 0, reason.E("invalid_field.account_kind")
	case req.Qty <= 0:
		return nil, 0, reason.E("invalid_field.qty")
	case req.PriceType == event.PriceMarket && req.LimitPrice != 0:
		return nil, 0, reason.E("invalid_field.limit_price_market")
	case req.PriceType == event.PriceLimit && !(req.LimitPrice > 0) || math.IsInf(req.LimitPrice, 0):
		return nil, 0, reason.E("invalid_field.limit_price")
	}
	in, err := b.instrument(ctx, req.Symbol)
	if err != nil {
		return nil, 0, err
	}
	flags, err := b.accountFlags(ctx, account)
	if err != nil {
		return nil, 0, err
	}
	if req.Qty%in.Lot != 0 {
		return nil, 0, reason.E(reason.BadLot, "symbol", in.Symbol, "lot", in.Lot)
	}
	lo, hi := market.Band(in.Market, in.PrevClose)
	if req.PriceType == event.PriceLimit {
		if !market.OnTick(in.Market, req.LimitPrice) {
			return nil, 0, reason.E(reason.BadTick, "price", req.LimitPrice, "symbol", in.Symbol, "step", market.TickSize(in.Market, req.LimitPrice))
		}
		if req.LimitPrice < lo || req.LimitPrice > hi {
			return nil, 0, reason.E(reason.OutsidePriceLimit, "price", req.LimitPrice, "low", lo, "high", hi, "symbol", in.Symbol)
		}
	}
	if in.Foreign() && !flags.foreign {
		return nil, 0, reason.E(reason.ForeignNotEnabled)
	}
	if req.Kind == event.KindMargin && !flags.margin {
		return nil, 0, reason.E(reason.MarginNotEnabled)
	}
	if req.Side == event.SideBuy && in.halted {
		return nil, 0, reason.E(reason.InstrumentHalted, "symbol", in.Symbol, "why", in.reason)
	}
	if !b.x.Open(now) {
		return nil, 0, reason.E(reason.MarketClosed)
	}
	fx, _ := market.FX(in.Currency)
	var reserve int64
	if req.Side == event.SideBuy {
		// A market buy reserves at the top of today's band (as Japanese
		// brokers do) so the fill can never cost more than was reserved.
		px := req.LimitPrice
		if req.PriceType == event.PriceMarket {
			px = hi
			if math.IsInf(hi, 1) {
				q, _ := b.x.Quote(in.Symbol)
				px = q.Ask * 1.5
			}
		}
		reserve = int64(math.Ceil(float64(req.Qty) * px * fx))
	}
	return in, reserve, nil
}

// PlaceOrder places an order for the account: it checks the order, asks
// the guard, reserves cash or shares, and fills at once when marketable.
func (b *Broker) PlaceOrder(ctx context.Context, a Actor, account string, req OrderRequest, idemKey string) (*Order, error) {
	var out Order
	id, done, err := b.idempotent(ctx, a, idemKey, "order:"+account, req, &out)
	if err != nil {
		return nil, err
	}
	if done {
		return &out, nil
	}
	now := b.clock.Now()
	in, reserve, err := b.checkOrder(ctx, account, req, now)
	if err != nil {
		return nil, err
	}
	if err := b.checkGate(ctx, account, GateOp{Kind: "order", Side: req.Side, Foreign: in.Foreign()}); err != nil {
		return nil, err
	}
	q, _ := b.x.Quote(in.Symbol)
	est := req.LimitPrice
	if req.PriceType == event.PriceMarket {
		est = q.Ask
		if req.Side == event.SideSell {
			est = q.Bid
		}
	}
	fx, _ := market.FX(in.Currency)
	rec := b.record(event.TypeOrder, account, a, now)
	rec.OrderID, rec.Symbol, rec.Side, rec.Qty, rec.PriceType, rec.AccountKind = b.ids("O"), in.Symbol, req.Side, req.Qty, req.PriceType, req.Kind
	rec.LimitPrice = req.LimitPrice
	rec.ValueJPY = int64(math.Round(float64(req.Qty) * est * fx))
	out = Order{ID: rec.OrderID, Account: account, Symbol: in.Symbol, Side: req.Side, Qty: req.Qty, PriceType: req.PriceType,
		LimitPrice: req.LimitPrice, Kind: req.Kind, Status: StatusOpen, ValueJPY: rec.ValueJPY, Created: now}

	d, gerr := b.decide(ctx, a, rec)
	if gerr != nil {
		if e := reason.As(gerr); e != nil && e.Code == reason.Held {
			out.Status, out.Decision = StatusHeld, &d
			if _, err := b.once(ctx, a.Principal, id, &out, func(tx *sql.Tx) error {
				return b.insertOrder(ctx, tx, &out, 0, 0, rec)
			}); err != nil {
				return nil, err
			}
			b.publish(ctx, rec)
			return &out, gerr
		}
		b.logRefused(ctx, rec)
		return nil, gerr
	}
	out.Decision = &d
	var fill *event.Record
	replayed, err := b.once(ctx, a.Principal, id, &out, func(tx *sql.Tx) error {
		var resQty int64
		if req.Side == event.SideSell {
			resQty = req.Qty
		}
		if err := b.reserve(ctx, tx, account, req, reserve); err != nil {
			return err
		}
		if err := b.insertOrder(ctx, tx, &out, reserve, resQty, rec); err != nil {
			return err
		}
		px, err := b.x.Execute(in.Symbol, req.Side, req.Qty, req.LimitPrice, now)
		if errors.Is(err, market.ErrNotMarketable) {
			return nil // rests until the market reaches the limit
		}
		if err != nil {
			return err
		}
		fill, err = b.fill(ctx, tx, &out, px, now)
		return err
	})
	if err != nil {
		if reason.As(err) != nil {
			b.logRefused(ctx, rec)
		}
		return nil, err
	}
	if !replayed {
		b.publish(ctx, rec)
		if fill != nil {
			b.publish(ctx, fill)
		}
	}
	return &out, nil
}

// reserve sets aside the cash of a buy or the shares of a sell inside tx,
// or refuses when they are not there.
func (b *Broker) reserve(ctx context.Context, tx *sql.Tx, account string, req OrderRequest, reserveJPY int64) error {
	if req.Side == event.SideBuy {
		res, err := tx.ExecContext(ctx, `UPDATE accounts SET reserved_jpy = reserved_jpy + $1 WHERE id = $2 AND cash_jpy - reserved_jpy >= $1`, reserveJPY, account)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return reason.E("insufficient_cash.order", "needed_jpy", reason.Yen(reserveJPY))
		}
		return nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE positions SET reserved_qty = reserved_qty + $1 WHERE account = $2 AND symbol = $3 AND kind = $4 AND qty - reserved_qty >= $1`,
		req.Qty, account, req.Symbol, req.Kind)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return reason.E("insufficient_holdings.sell", "symbol", req.Symbol, "kind", reason.W("kind", req.Kind), "qty", req.Qty)
	}
	return nil
}

func (b *Broker) insertOrder(ctx context.Context, tx *sql.Tx, o *Order, reserveJPY, reserveQty int64, rec *event.Record) error {
	us := store.Micros(o.Created)
	_, err := tx.ExecContext(ctx, `INSERT INTO orders (id, account, symbol, side, qty, price_type, limit_price, kind, status, reserved_jpy, reserved_qty, value_jpy, event_id, created_us, updated_us)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)`,
		o.ID, o.Account, o.Symbol, o.Side, o.Qty, o.PriceType, o.LimitPrice, o.Kind, o.Status, reserveJPY, reserveQty, o.ValueJPY, rec.ID, us)
	if err != nil {
		return err
	}
	return b.logEvent(ctx, tx, rec)
}

// errOrderGone means an order was no longer open when a fill was applied.
var errOrderGone = errors.New("order no longer open")

// fill executes the whole of an open order at px inside tx: the
// reservation is released, cash and shares move, the ledger records both
// and the fill record is stored.
func (b *Broker) fill(ctx context.Context, tx *sql.Tx, o *Order, px float64, now time.Time) (*event.Record, error) {
	var cur string
	var reserved, reservedQty int64
	err := tx.QueryRowContext(ctx, `SELECT i.currency, o.reserved_jpy, o.reserved_qty FROM orders o JOIN instruments i ON i.symbol = o.symbol WHERE o.id = $1`,
		o.ID).Scan(&cur, &reserved, &reservedQty)
	if err != nil {
		return nil, err
	}
	fx, _ := market.FX(cur)
	value := int64(math.Round(float64(o.Qty) * px * fx))
	us := store.Micros(now)
	res, err := tx.ExecContext(ctx, `UPDATE orders SET status = 'filled', filled_qty = qty, filled_jpy = $1, reserved_jpy = 0, reserved_qty = 0, updated_us = $2
		WHERE id = $3 AND status = 'open' AND reserved_jpy = $4 AND reserved_qty = $5`, value, us, o.ID, reserved, reservedQty)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil, errOrderGone
	}
	entry := o.Side
	if o.Side == event.SideBuy {
		if value > reserved {
			return nil, fmt.Errorf("fill of %s for ¥%d exceeds its reservation of ¥%d", o.ID, value, reserved)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET cash_jpy = cash_jpy - $1, reserved_jpy = reserved_jpy - $2 WHERE id = $3`,
			value, reserved, o.Account); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO positions (account, symbol, kind, qty, cost_jpy) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (account, symbol, kind) DO UPDATE SET qty = positions.qty + excluded.qty, cost_jpy = positions.cost_jpy + excluded.cost_jpy`,
			o.Account, o.Symbol, o.Kind, o.Qty, value); err != nil {
			return nil, err
		}
		err = ledger(ctx, tx, b.ids("L"), o.Account, now, entry, o.Symbol, o.Kind, o.Qty, px, -value, o.ID)
	} else {
		if _, err := tx.ExecContext(ctx, `UPDATE positions SET cost_jpy = cost_jpy - (cost_jpy * $1) / qty, qty = qty - $1, reserved_qty = reserved_qty - $1
			WHERE account = $2 AND symbol = $3 AND kind = $4`, o.Qty, o.Account, o.Symbol, o.Kind); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET cash_jpy = cash_jpy + $1 WHERE id = $2`, value, o.Account); err != nil {
			return nil, err
		}
		err = ledger(ctx, tx, b.ids("L"), o.Account, now, entry, o.Symbol, o.Kind, -o.Qty, px, value, o.ID)
	}
	if err != nil {
		return nil, err
	}
	o.Status, o.FilledQty, o.FilledJPY, o.FillPrice = StatusFilled, o.Qty, value, px
	f := &event.Record{ID: b.ids("E"), Type: event.TypeFill, Time: now, Account: o.Account, OrderID: o.ID, Symbol: o.Symbol,
		Side: o.Side, Qty: o.Qty, Price: px, ValueJPY: value}
	return f, b.logEvent(ctx, tx, f)
}

// observe tells the guard about a fill, logging (never failing) when it cannot.
func (b *Broker) observe(ctx context.Context, r *event.Record) {
	if err := b.guard.Observe(ctx, r); err != nil {
		b.log.WarnContext(ctx, "guard could not observe record", "event", r.ID, "type", r.Type, "err", err)
	}
}
