package surveil

import (
	"fmt"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// phoneKit is a takeover's context on a Japanese carrier: a device the
// victim never used, an address in a mobile carrier's pool.
func phoneKit(victim string, n int) actor {
	return actor{acct: victim, ip: fmt.Sprintf("126.33.9.%d", 10+n), asn: 2527, country: "JP", device: fmt.Sprintf("kit-phone-%d", n)}
}

// steadyTarget lists a mid-priced TSE Standard issue (¥1,500, 200,000
// shares a day: ¥300m) that the firm's customers buy ¥450k of every day,
// with bars over the last ten days.
func (g *gen) steadyTarget(sym string) {
	g.instrument(clock(-30, 8, 0, 0), sym, "TSE_STANDARD", 1500, 200_000)
	g.instrument(clock(0, 8, 0, 0), sym, "TSE_STANDARD", 1500, 200_000)
	for d := -10; d < 0; d++ {
		b := home(fmt.Sprintf("U%02d", -d), 40-d)
		g.fill(clock(d, 10, 0, 0), b.acct, sym, event.SideBuy, 300, 1500)
		g.bar(clock(d, 15, 30, 0), sym, 1500, 1500, 200_000)
	}
	g.bars(0, sym, func(int) (float64, int64) { return 1500, 600 })
}

// slowBuys places the victim's buys of sym from atk: one session per buy,
// qty shares each, from 10:30 every 70 minutes; it returns their times.
func (g *gen) slowBuys(victim, sym string, atk actor, buys int, qty int64) []time.Time {
	var at []time.Time
	for i := range buys {
		tb := clock(0, 10, 30, 0).Add(time.Duration(i) * 70 * time.Minute)
		if tb.Hour() == 11 && tb.Minute() > 30 || tb.Hour() == 12 && tb.Minute() < 30 {
			tb = tb.Add(time.Hour)
		}
		a := atk
		a.sess = fmt.Sprintf("atk-%s-b%d", victim, i)
		g.login(tb.Add(-2*time.Minute), a)
		g.order(tb, a, sym, event.SideBuy, qty, 1502, 0)
		g.fill(tb.Add(time.Second), victim, sym, event.SideBuy, qty, 1501)
		at = append(at, tb)
	}
	return at
}

// TestSlowTargetClass: R11 sees one victim's buying of a mid-priced issue
// in the shapes the slow campaigns take, so that the guard steps up every
// buy after the first (heat 50 or more), without a halt or a freeze (no
// hijack signal: the victim's own carrier), and sees nothing in the same
// shapes on a watchtower's first days or from the customer's own device.
//
//   - sparse profile: the victim signed in on one earlier day only (a
//     rarely used account, what a stolen password opens); its new phone
//     is no evidence of its own, but on a watchtower that has run for
//     weeks the liquidation into an issue it never held still is;
//   - half a percent: each buy is ¥1.65m, 0.55% of the traded
//     value and under five times the firm's customers' usual buying.
func TestSlowTargetClass(t *testing.T) {
	tests := []struct {
		name string
		// build writes the victim's history and sells; buys are
		// placed by slowBuys from the returned actor.
		build func(g *gen) actor
		qty   int64
		want  bool // R11 heats the issue from the second buy on
	}{
		{"sparse profile", func(g *gen) actor {
			g.account(clock(-30, 7, 0, 0), "V00", holding("7203", 3000, 2400))
			h := home("V00", 3)
			h.sess = "s-V00-old"
			g.login(clock(-2, 19, 0, 0), h)
			atk := phoneKit("V00", 1)
			atk.sess = "atk-V00-s"
			g.login(clock(0, 9, 40, 0), atk)
			g.order(clock(0, 9, 43, 0), atk, "7203", event.SideSell, 3000, 0, 2400)
			g.fill(clock(0, 9, 43, 1), "V00", "7203", event.SideSell, 3000, 2400)
			return atk
		}, 2000, true},
		{"half a percent of the traded value", func(g *gen) actor {
			g.account(clock(-30, 7, 0, 0), "V00", holding("7203", 3000, 2400))
			g.history("V00", 3)
			atk := phoneKit("V00", 1)
			atk.sess = "atk-V00-s"
			g.login(clock(0, 9, 40, 0), atk)
			g.order(clock(0, 9, 43, 0), atk, "7203", event.SideSell, 3000, 0, 2400)
			g.fill(clock(0, 9, 43, 1), "V00", "7203", event.SideSell, 3000, 2400)
			return atk
		}, 1100, true},
		{"the customer's own device", func(g *gen) actor {
			g.account(clock(-30, 7, 0, 0), "V00", holding("7203", 3000, 2400))
			g.history("V00", 3)
			h := home("V00", 3)
			h.sess = "s-V00-y"
			g.login(clock(0, 9, 40, 0), h)
			g.order(clock(0, 9, 43, 0), h, "7203", event.SideSell, 3000, 0, 2400)
			g.fill(clock(0, 9, 43, 1), "V00", "7203", event.SideSell, 3000, 2400)
			return home("V00", 3)
		}, 2000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGen()
			g.market()
			for d := -20; d < 0; d++ {
				g.bar(clock(d, 15, 30, 0), "7203", 2400, 2400, 20_000_000)
			}
			g.background(20)
			g.steadyTarget("6300")
			atk := tt.build(g)
			buys := g.slowBuys("V00", "6300", atk, 4, tt.qty)
			w := New(DefaultConfig())
			heat := map[time.Time]int{}
			var alerts []event.Alert
			for _, r := range g.stream() {
				if r.Type == event.TypeOrder && r.Side == event.SideBuy && r.Symbol == "6300" {
					heat[r.Time] = w.Heat("6300")
				}
				var d *event.Decision
				if r.Type.Action() {
					d = &event.Decision{Event: r.ID, Time: r.Time, Account: r.Account, Action: event.Allow, Policy: "test"}
				}
				alerts = append(alerts, w.Observe(r, d)...)
			}
			for i, tb := range buys[1:] {
				if got := heat[tb] >= 50; got != tt.want {
					t.Errorf("buy %d at %s: heat %d, want stepped up %v", i+2, tb.Format("15:04"), heat[tb], tt.want)
				}
			}
			for _, a := range alerts {
				if a.Action != event.AlertNone {
					t.Errorf("acted without a hijack signal: %s", a.AppendJSON(nil))
				}
			}
		})
	}
}

// TestSlowTargetColdStart: the sparse-profile shape on the watchtower's
// second day, when every profile is sparse because the watchtower is new:
// missing history is no evidence, and the issue is not heated.
func TestSlowTargetColdStart(t *testing.T) {
	g := newGen()
	g.instrument(clock(-1, 8, 0, 0), "7203", "TSE_PRIME", 2400, 20_000_000)
	g.instrument(clock(-1, 8, 0, 0), "6300", "TSE_STANDARD", 1500, 200_000)
	g.account(clock(-1, 7, 0, 0), "V00", holding("7203", 3000, 2400))
	h := home("V00", 3)
	h.sess = "s-V00-old"
	g.login(clock(-1, 19, 0, 0), h)
	g.instrument(clock(0, 8, 0, 0), "6300", "TSE_STANDARD", 1500, 200_000)
	g.bars(0, "6300", func(int) (float64, int64) { return 1500, 600 })
	phone := home("V00", 3)
	phone.device, phone.ip, phone.asn = "new-phone-V00", "126.33.9.40", 2527
	phone.sess = "s-V00-phone"
	g.login(clock(0, 9, 40, 0), phone)
	g.order(clock(0, 9, 43, 0), phone, "7203", event.SideSell, 3000, 0, 2400)
	g.fill(clock(0, 9, 43, 1), "V00", "7203", event.SideSell, 3000, 2400)
	buys := g.slowBuys("V00", "6300", phone, 3, 2000)
	w := New(DefaultConfig())
	for _, r := range g.stream() {
		if r.Type == event.TypeOrder && r.Side == event.SideBuy && r.Time.After(buys[0]) {
			if h := w.Heat("6300"); h >= 50 {
				t.Errorf("buy at %s: heat %d on a watchtower's second day", r.Time.Format("15:04"), h)
			}
		}
		var d *event.Decision
		if r.Type.Action() {
			d = &event.Decision{Event: r.ID, Time: r.Time, Account: r.Account, Action: event.Allow, Policy: "test"}
		}
		for _, a := range w.Observe(r, d) {
			if a.Kind == KindAbnormalBuying {
				t.Errorf("abnormal_buying on missing history: %s", a.AppendJSON(nil))
			}
		}
	}
}
