package notify

import "github.com/kabuto-sec/kabuto/internal/event"

// Action is what a customer's action left in the brokerage, as far as the
// customer's notice of it cares. The brokerage reads it inside the
// action's transaction (broker.ActionOf); NoticeOf decides the notice.
type Action struct {
	Type      event.Type
	Status    string // a withdrawal's or an order's status: "sent", "held", …
	Bank      string // the bank account, already masked (withdrawal, bank change)
	Field     string // the contact detail changed: "email", "phone" or "address"
	Symbol    string // an order's issue
	Side      string // an order's side: "buy" or "sell"
	Qty       int64  // an order's quantity
	AmountJPY int64  // a withdrawal's amount, an order's value
}

// Notice is the message an action deserves: its kind, and its data once
// the customer's language is known.
type Notice struct {
	Kind Kind
	// ToPrevious sends the notice to the email address the account had
	// before the action: an email change tells the old address, since the
	// new one may be the attacker's.
	ToPrevious bool
	data       map[string]string
	words      func(data map[string]string, locale string)
}

// Data returns the notice's template data with the parts written in the
// customer's language filled in for locale ("ja" or "en").
func (n Notice) Data(locale string) map[string]string {
	d := make(map[string]string, len(n.data)+1)
	for k, v := range n.data {
		d[k] = v
	}
	if n.words != nil {
		n.words(d, locale)
	}
	return d
}

// Unusual-order rule: an order of UnusualValueJPY or more, or a buy of
// CheapBuyValueJPY or more of an issue priced under CheapPriceJPY a
// share (the thin, cheap stocks the 2025 ramps used), is told to the
// customer at once.
const (
	UnusualValueJPY  = 3_000_000
	CheapBuyValueJPY = 500_000
	CheapPriceJPY    = 500
)

// NoticeOf returns the notice a customer gets of an executed action: a
// withdrawal (or its hold), a bank or contact change, a held order, or an
// unusual order. Other actions, and ordinary orders, get none (false).
func NoticeOf(a Action) (Notice, bool) {
	switch a.Type {
	case event.TypeWithdrawal:
		n := Notice{Kind: KindWithdrawal, data: map[string]string{"Amount": Yen(a.AmountJPY), "Bank": a.Bank}}
		n.words = func(d map[string]string, loc string) { d["Status"] = Word(a.Status, loc) }
		if a.Status == "held" {
			n.Kind = KindHeld
			n.words = func(d map[string]string, loc string) { d["Order"] = WithdrawalText(a.Bank, loc) }
		}
		return n, true
	case event.TypeBankChange:
		return Notice{Kind: KindBank, data: map[string]string{"Bank": a.Bank}}, true
	case event.TypeContactChange:
		return Notice{Kind: KindContact, ToPrevious: a.Field == "email",
			words: func(d map[string]string, loc string) { d["Field"] = Word(a.Field, loc) }}, true
	case event.TypeOrder:
		order := func(d map[string]string, loc string) { d["Order"] = OrderText(a.Symbol, a.Side, a.Qty, loc) }
		data := map[string]string{"Amount": Yen(a.AmountJPY)}
		if a.Status == "held" {
			return Notice{Kind: KindHeld, data: data, words: order}, true
		}
		if unusualOrder(a) {
			return Notice{Kind: KindUnusualOrder, data: data, words: order}, true
		}
	}
	return Notice{}, false
}

// unusualOrder reports whether an order is large, or a buy of a cheap,
// thin stock (the 2025 ramp targets).
func unusualOrder(a Action) bool {
	if a.AmountJPY >= UnusualValueJPY {
		return true
	}
	return a.Side == event.SideBuy && a.Qty > 0 && a.AmountJPY/a.Qty < CheapPriceJPY && a.AmountJPY >= CheapBuyValueJPY
}
