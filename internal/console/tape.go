// Package console is the analyst console: live surveillance alerts, and
// for an instrument its price and volume over the session with the flagged
// accounts' orders and the halts marked on the chart (server-side SVG, no
// script). Analysts sign in with an admin API key; the console keeps a
// server-side session in a __Host- cookie.
package console

import (
	"sync"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// Tape keeps, per instrument, the recent one-minute bars and customer
// orders with their decisions, as the pipeline sees them.
type Tape struct {
	mu      sync.Mutex
	symbols map[string]*series
	maxBars int
	maxOrds int
}

type series struct {
	bars   []bar
	orders []order
}

type bar struct {
	t                      time.Time
	open, high, low, close float64
	volume                 int64
}

type order struct {
	T       time.Time
	Account string
	Side    string
	Qty     int64
	Value   int64
	Action  string
	Reasons []string
}

// NewTape returns a Tape keeping the last maxBars bars and maxOrders
// orders of each instrument.
func NewTape(maxBars, maxOrders int) *Tape {
	return &Tape{symbols: map[string]*series{}, maxBars: maxBars, maxOrds: maxOrders}
}

// Record is the pipeline tap: it keeps bars and orders.
func (t *Tape) Record(r *event.Record, d *event.Decision) {
	if r.Type != event.TypeBar && r.Type != event.TypeOrder {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.symbols[r.Symbol]
	if s == nil {
		s = &series{}
		t.symbols[r.Symbol] = s
	}
	switch r.Type {
	case event.TypeBar:
		s.bars = appendCapped(s.bars, bar{r.Time, r.Open, r.High, r.Low, r.Close, r.Volume}, t.maxBars)
	case event.TypeOrder:
		o := order{T: r.Time, Account: r.Account, Side: r.Side, Qty: r.Qty, Value: r.ValueJPY}
		if d != nil {
			o.Action, o.Reasons = d.Action, d.Reasons
		}
		s.orders = appendCapped(s.orders, o, t.maxOrds)
	}
}

// appendCapped appends v, keeping between max/2 and max of the newest
// entries: when full it drops the older half at once, so an append costs
// O(1) amortised.
func appendCapped[T any](s []T, v T, max int) []T {
	if len(s) >= max {
		n := copy(s, s[len(s)-max/2:])
		clear(s[n:])
		s = s[:n]
	}
	return append(s, v)
}

// snapshot returns copies of an instrument's bars and orders.
func (t *Tape) snapshot(symbol string) ([]bar, []order) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.symbols[symbol]
	if s == nil {
		return nil, nil
	}
	return append([]bar(nil), s.bars...), append([]order(nil), s.orders...)
}
