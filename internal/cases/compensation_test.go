package cases

import (
	"reflect"
	"testing"
	"time"
)

// The worked examples of the README. Before the first unauthorised
// access the account held ¥100,000 and 200 shares of 7203. The fraudster
// sold the 200 shares at ¥2,800 (fee ¥550) and bought 5,000 shares of the
// thin issue 9999 at ¥130 (fee ¥550). Today 7203 trades at ¥2,900.
var (
	t0       = time.Date(2025, 4, 14, 10, 0, 0, 0, time.UTC)
	snapshot = Snapshot{CashJPY: 100_000, Shares: map[string]int64{"7203": 200}}
	attack   = []Fill{
		{Time: t0.Add(time.Minute), Symbol: "7203", Side: "sell", Qty: 200, Price: 2800, FeeJPY: 550, Fraudulent: true},
		{Time: t0.Add(2 * time.Minute), Symbol: "9999", Side: "buy", Qty: 5000, Price: 130, FeeJPY: 550, Fraudulent: true},
	}
	// Example 1: the customer later sold the 5,000 shares of 9999 at ¥88.
	soldLater = append(append([]Fill(nil), attack...),
		Fill{Time: t0.Add(48 * time.Hour), Symbol: "9999", Side: "sell", Qty: 5000, Price: 88})
)

func TestCompensationWorkedExamples(t *testing.T) {
	prices := map[string]float64{"7203": 2900, "9999": 95}
	cases := []struct {
		name    string
		fills   []Fill
		half    Half
		restore Restore
	}{
		{
			// 50%: bought ¥650,000, sold at ¥440,000: loss ¥210,000; half
			// ¥105,000 + fees ¥1,100 + ¥10,000 = ¥116,100.
			// Restoration: buy back 200 × 7203 at ¥2,900 = ¥580,000; the
			// incident left the cash ¥348,900 higher (560,000 + 440,000 -
			// 650,000 - 1,100): the firm pays ¥231,100.
			name:  "thin issue sold later at a loss",
			fills: soldLater,
			half:  Half{BoughtJPY: 650_000, SoldJPY: 440_000, LossJPY: 210_000, HalfJPY: 105_000, FeesJPY: 1100, FlatJPY: 10_000, TotalJPY: 116_100},
			restore: Restore{Steps: []Step{{Symbol: "7203", Side: "buy", Qty: 200, Price: 2900, ValueJPY: 580_000}},
				CashChangeJPY: 348_900, BuyJPY: 580_000, TotalJPY: 231_100},
		},
		{
			// Still held, marked at today's ¥95: loss 650,000 - 475,000 =
			// ¥175,000; 87,500 + 1,100 + 10,000 = ¥98,600. Restoration: buy
			// back 7203 (¥580,000), sell the 5,000 × 9999 (¥475,000); the
			// incident took ¥91,100 of cash: the firm pays ¥196,100.
			name:  "thin issue still held",
			fills: attack,
			half:  Half{BoughtJPY: 650_000, MarkedJPY: 475_000, LossJPY: 175_000, HalfJPY: 87_500, FeesJPY: 1100, FlatJPY: 10_000, TotalJPY: 98_600},
			restore: Restore{Steps: []Step{{Symbol: "7203", Side: "buy", Qty: 200, Price: 2900, ValueJPY: 580_000}, {Symbol: "9999", Side: "sell", Qty: 5000, Price: 95, ValueJPY: 475_000}},
				CashChangeJPY: -91_100, BuyJPY: 580_000, SellJPY: 475_000, TotalJPY: 196_100},
		},
		{
			// Holdings only sold: the cash stayed in the account; the 50%
			// method pays nothing, restoration pays the rise since the sale.
			name:  "holdings only sold",
			fills: attack[:1],
			half:  Half{FeesJPY: 550},
			restore: Restore{Steps: []Step{{Symbol: "7203", Side: "buy", Qty: 200, Price: 2900, ValueJPY: 580_000}},
				CashChangeJPY: 559_450, BuyJPY: 580_000, TotalJPY: 20_550},
		},
		{
			// The price recovered above the buys: no loss, the fees and the
			// flat sum are still paid; restoration owes nothing beyond the
			// plan (selling 9999 at ¥140 covers buying 7203 back).
			name:  "no loss",
			fills: append(append([]Fill(nil), attack...), Fill{Time: t0.Add(time.Hour), Symbol: "9999", Side: "sell", Qty: 5000, Price: 140}),
			half:  Half{BoughtJPY: 650_000, SoldJPY: 700_000, FeesJPY: 1100, FlatJPY: 10_000, TotalJPY: 11_100},
			restore: Restore{Steps: []Step{{Symbol: "7203", Side: "buy", Qty: 200, Price: 2900, ValueJPY: 580_000}},
				CashChangeJPY: 608_900, BuyJPY: 580_000, TotalJPY: 0},
		},
		{
			name:    "nothing happened",
			restore: Restore{Steps: []Step{}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ComputeHalf(c.fills, prices); got != c.half {
				t.Errorf("half:\n got %+v\nwant %+v", got, c.half)
			}
			if got := ComputeRestore(snapshot, c.fills, prices); !reflect.DeepEqual(got, c.restore) {
				t.Errorf("restore:\n got %+v\nwant %+v", got, c.restore)
			}
		})
	}
}

// TestRestoreReturnsTheSnapshot checks the restoration's promise: after
// the plan and the payment, cash and shares are the snapshot's.
func TestRestoreReturnsTheSnapshot(t *testing.T) {
	prices := map[string]float64{"7203": 2500, "9999": 60}
	for _, fills := range [][]Fill{attack, soldLater, attack[:1]} {
		cash := snapshot.CashJPY
		shares := map[string]int64{"7203": snapshot.Shares["7203"]}
		for _, f := range fills {
			sign := int64(1)
			if f.Side == "sell" {
				sign = -1
			}
			shares[f.Symbol] += sign * f.Qty
			cash += -sign*f.Value() - f.FeeJPY
		}
		r := ComputeRestore(snapshot, fills, prices)
		for _, st := range r.Steps {
			if st.Side == "buy" {
				shares[st.Symbol] += st.Qty
				cash -= st.ValueJPY
			} else {
				shares[st.Symbol] -= st.Qty
				cash += st.ValueJPY
			}
		}
		cash += r.TotalJPY
		if cash < snapshot.CashJPY || shares["7203"] != 200 || shares["9999"] != 0 {
			t.Errorf("after restoring: cash %d shares %v (plan %+v)", cash, shares, r)
		}
	}
}
