package notify

import (
	"maps"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// TestNoticeOf: which executed actions a customer is told of, with what
// data, in Japanese and in English; the unusual-order rule at its edges.
func TestNoticeOf(t *testing.T) {
	bank := "Mizuho •••-•••4567"
	for _, c := range []struct {
		name     string
		act      Action
		kind     Kind // "" for no notice
		previous bool
		ja, en   map[string]string
	}{
		{"withdrawal sent", Action{Type: event.TypeWithdrawal, Status: "sent", Bank: bank, AmountJPY: 120_000}, KindWithdrawal, false,
			map[string]string{"Amount": "¥120,000", "Bank": bank, "Status": "送金手続き済み"},
			map[string]string{"Amount": "¥120,000", "Bank": bank, "Status": "sent to your bank"}},
		{"withdrawal held", Action{Type: event.TypeWithdrawal, Status: "held", Bank: bank, AmountJPY: 120_000}, KindHeld, false,
			map[string]string{"Amount": "¥120,000", "Bank": bank, "Order": bank + " への出金"},
			map[string]string{"Amount": "¥120,000", "Bank": bank, "Order": "a withdrawal to " + bank}},
		{"bank change", Action{Type: event.TypeBankChange, Bank: bank}, KindBank, false,
			map[string]string{"Bank": bank}, map[string]string{"Bank": bank}},
		{"email change tells the old address", Action{Type: event.TypeContactChange, Field: "email"}, KindContact, true,
			map[string]string{"Field": "メールアドレス"}, map[string]string{"Field": "email address"}},
		{"phone change", Action{Type: event.TypeContactChange, Field: "phone"}, KindContact, false,
			map[string]string{"Field": "電話番号"}, map[string]string{"Field": "phone number"}},
		{"held order", Action{Type: event.TypeOrder, Status: "held", Symbol: "7203", Side: "sell", Qty: 100, AmountJPY: 270_000}, KindHeld, false,
			map[string]string{"Amount": "¥270,000", "Order": "7203 売り 100株"},
			map[string]string{"Amount": "¥270,000", "Order": "sell 100 shares of 7203"}},
		{"large order", Action{Type: event.TypeOrder, Status: "open", Symbol: "7203", Side: "sell", Qty: 1100, AmountJPY: UnusualValueJPY}, KindUnusualOrder, false,
			map[string]string{"Amount": "¥3,000,000", "Order": "7203 売り 1100株"},
			map[string]string{"Amount": "¥3,000,000", "Order": "sell 1100 shares of 7203"}},
		{"just under large", Action{Type: event.TypeOrder, Status: "open", Symbol: "7203", Side: "sell", Qty: 1100, AmountJPY: UnusualValueJPY - 1}, "", false, nil, nil},
		{"cheap thin buy", Action{Type: event.TypeOrder, Status: "open", Symbol: "9999", Side: "buy", Qty: 6000, AmountJPY: 504_000}, KindUnusualOrder, false,
			map[string]string{"Amount": "¥504,000", "Order": "9999 買い 6000株"},
			map[string]string{"Amount": "¥504,000", "Order": "buy 6000 shares of 9999"}},
		{"cheap buy under the floor", Action{Type: event.TypeOrder, Status: "open", Symbol: "9999", Side: "buy", Qty: 5000, AmountJPY: CheapBuyValueJPY - 1}, "", false, nil, nil},
		{"buy at the cheap price line", Action{Type: event.TypeOrder, Status: "open", Symbol: "9999", Side: "buy", Qty: 1000, AmountJPY: 1000 * CheapPriceJPY}, "", false, nil, nil},
		{"cheap sell", Action{Type: event.TypeOrder, Status: "open", Symbol: "9999", Side: "sell", Qty: 6000, AmountJPY: 504_000}, "", false, nil, nil},
		{"zero quantity", Action{Type: event.TypeOrder, Status: "open", Symbol: "9999", Side: "buy", AmountJPY: 504_000}, "", false, nil, nil},
		{"sign-in", Action{Type: event.TypeLogin}, "", false, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, ok := NoticeOf(c.act)
			if ok != (c.kind != "") || n.Kind != c.kind || n.ToPrevious != c.previous {
				t.Fatalf("NoticeOf = %+v, %v; want kind %q, to previous %v", n, ok, c.kind, c.previous)
			}
			if !ok {
				return
			}
			if got := n.Data("ja"); !maps.Equal(got, c.ja) {
				t.Errorf("ja data = %v, want %v", got, c.ja)
			}
			if got := n.Data("en"); !maps.Equal(got, c.en) {
				t.Errorf("en data = %v, want %v", got, c.en)
			}
		})
	}
}
