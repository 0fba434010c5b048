package cases

import (
	"math"
	"sort"
	"time"
)

// Methods of compensation.
const (
	// MethodHalf is the online brokers' method (SBI, Rakuten, from 2 May
	// 2025): half the loss on the shares the fraudster bought, plus the
	// fraudulent trades' fees, plus a flat ¥10,000.
	MethodHalf = "half"
	// MethodRestore is the face-to-face brokers' method, 原状回復: the
	// account is returned to its state before the first unauthorised access.
	MethodRestore = "restore"
)

// FlatJPY is the flat sum the 50% method adds.
const FlatJPY = 10_000

// Fill is one fill of an incident's ledger. Fraudulent fills are the
// attacker's; the others are later sales of the attacker's buys (by the
// customer or the firm), which set the price those shares were sold at.
type Fill struct {
	Time       time.Time `json:"time"`
	Symbol     string    `json:"symbol"`
	Side       string    `json:"side"` // "buy" or "sell"
	Qty        int64     `json:"qty"`
	Price      float64   `json:"price"`
	FeeJPY     int64     `json:"fee_jpy"`
	Fraudulent bool      `json:"fraudulent"`
	Ref        string    `json:"ref,omitempty"`
}

// Value is the fill's quantity times its price, in yen.
func (f Fill) Value() int64 { return int64(math.Round(float64(f.Qty) * f.Price)) }

// Snapshot is an account just before the first unauthorised access.
type Snapshot struct {
	CashJPY int64            `json:"cash_jpy"`
	Shares  map[string]int64 `json:"shares"`
}

// Half is the 50% method's working.
type Half struct {
	// BoughtJPY is the value of the fraudster's buys.
	BoughtJPY int64 `json:"bought_jpy"`
	// SoldJPY is what those shares were sold for (by the fraudster or
	// later), and MarkedJPY what the rest are worth at today's prices.
	SoldJPY   int64 `json:"sold_jpy"`
	MarkedJPY int64 `json:"marked_jpy"`
	// LossJPY = BoughtJPY - SoldJPY - MarkedJPY, never below zero.
	LossJPY int64 `json:"loss_jpy"`
	HalfJPY int64 `json:"half_jpy"`
	// FeesJPY refunds the fraudulent fills' fees.
	FeesJPY int64 `json:"fees_jpy"`
	FlatJPY int64 `json:"flat_jpy"`
	// TotalJPY is what the customer is paid: HalfJPY + FeesJPY + FlatJPY,
	// or 0 when the fraudster bought nothing (holdings only sold: the cash
	// stayed in the account, and the method does not cover it).
	TotalJPY int64 `json:"total_jpy"`
}

// ComputeHalf works out the 50% method over an incident's fills, marking
// shares of the fraudster's buys still held at marks (symbol → price).
// Within a symbol, sales are matched to the fraudster's buys first in,
// first out; sales of shares the account held before (the victim's
// holdings sold) are not part of the loss.
func ComputeHalf(fills []Fill, marks map[string]float64) Half {
	var h Half
	bought := map[string]int64{} // shares of the fraudster's buys not yet matched to a sale
	for _, f := range sorted(fills) {
		if f.Fraudulent {
			h.FeesJPY += f.FeeJPY
		}
		switch {
		case f.Side == "buy" && f.Fraudulent:
			h.BoughtJPY += f.Value()
			bought[f.Symbol] += f.Qty
		case f.Side == "sell" && bought[f.Symbol] > 0:
			q := min(f.Qty, bought[f.Symbol])
			bought[f.Symbol] -= q
			h.SoldJPY += int64(math.Round(float64(q) * f.Price))
		}
	}
	for sym, q := range bought {
		h.MarkedJPY += int64(math.Round(float64(q) * marks[sym]))
	}
	if h.BoughtJPY == 0 {
		return h
	}
	h.LossJPY = max(0, h.BoughtJPY-h.SoldJPY-h.MarkedJPY)
	h.HalfJPY = (h.LossJPY + 1) / 2 // half, rounded up in the customer's favour
	h.FlatJPY = FlatJPY
	h.TotalJPY = h.HalfJPY + h.FeesJPY + h.FlatJPY
	return h
}

// Step is one trade of a restoration plan.
type Step struct {
	Symbol   string  `json:"symbol"`
	Side     string  `json:"side"` // "buy": shares sold by the fraudster bought back; "sell": the fraudster's buys sold
	Qty      int64   `json:"qty"`
	Price    float64 `json:"price"`
	ValueJPY int64   `json:"value_jpy"`
}

// Restore is the restoration method's plan and its cost.
type Restore struct {
	Steps []Step `json:"steps"`
	// CashChangeJPY is how much the incident's fills (and the later sales
	// of the fraudster's buys) changed the account's cash, fees included.
	CashChangeJPY int64 `json:"cash_change_jpy"`
	// BuyJPY and SellJPY are the plan's buys and sells at current prices.
	BuyJPY  int64 `json:"buy_jpy"`
	SellJPY int64 `json:"sell_jpy"`
	// TotalJPY is what the firm pays so that, after the plan, the account
	// holds its snapshot's shares of every symbol the incident touched and
	// its snapshot's cash: BuyJPY - SellJPY - CashChangeJPY (0 if negative).
	TotalJPY int64 `json:"total_jpy"`
}

// ComputeRestore plans the return of the account to snap for every symbol
// the incident's fills touched, at prices (symbol → current price).
func ComputeRestore(snap Snapshot, fills []Fill, prices map[string]float64) Restore {
	var r Restore
	now := map[string]int64{}
	var syms []string
	for _, f := range sorted(fills) {
		if _, ok := now[f.Symbol]; !ok {
			now[f.Symbol] = snap.Shares[f.Symbol]
			syms = append(syms, f.Symbol)
		}
		switch f.Side {
		case "buy":
			now[f.Symbol] += f.Qty
			r.CashChangeJPY -= f.Value()
		case "sell":
			now[f.Symbol] -= f.Qty
			r.CashChangeJPY += f.Value()
		}
		r.CashChangeJPY -= f.FeeJPY
	}
	sort.Strings(syms)
	for _, sym := range syms {
		d := snap.Shares[sym] - now[sym]
		if d == 0 {
			continue
		}
		st := Step{Symbol: sym, Side: "buy", Qty: d, Price: prices[sym]}
		if d < 0 {
			st.Side, st.Qty = "sell", -d
		}
		st.ValueJPY = int64(math.Round(float64(st.Qty) * st.Price))
		if st.Side == "buy" {
			r.BuyJPY += st.ValueJPY
		} else {
			r.SellJPY += st.ValueJPY
		}
		r.Steps = append(r.Steps, st)
	}
	if r.Steps == nil {
		r.Steps = []Step{}
	}
	r.TotalJPY = max(0, r.BuyJPY-r.SellJPY-r.CashChangeJPY)
	return r
}

func sorted(fills []Fill) []Fill {
	out := append([]Fill(nil), fills...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}
