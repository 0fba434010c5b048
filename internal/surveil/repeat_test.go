package surveil

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// The shapes of the 2025 campaign that get past R3's three accounts: one
// hijacked account ramps the target over several orders (the first one
// stepped up with a relayed code and sent again), selling less than R1's
// half of the holdings; and the customers around a benign news spike, some
// of them on their phone's carrier network, some sending an order again
// after a step-up.

// proxyKit is the phishing kit's exit: a Japanese residential proxy on a
// big carrier (So-net), a browser profile the victim never used.
func proxyKit(victim string, n int) actor {
	return actor{acct: victim, sess: "atk-" + victim, ip: fmt.Sprintf("203.0.113.%d", 200+n), asn: 2527, country: "JP", device: fmt.Sprintf("kit-dev-%d", n)}
}

// thinTarget lists a thin ¥150 TSE Standard issue with flat bars.
func (g *gen) thinTarget(sym string) {
	g.instrument(clock(-30, 8, 0, 0), sym, "TSE_STANDARD", 150, 60_000)
	g.instrument(clock(0, 8, 0, 0), sym, "TSE_STANDARD", 150, 60_000)
	g.bars(0, sym, func(int) (float64, int64) { return 150, 200 })
}

// steppedBuy is a hijacked buy the guard steps up (thin issue, new device):
// the kit relays the code and the order is sent again, and fills. Both
// orders are hijacked buys the guard was asked about.
func (g *gen) steppedBuy(t time.Time, atk actor, sym string, qty int64, px float64) {
	o := g.order(t, atk, sym, event.SideBuy, qty, 0, px)
	g.guard(o, event.Challenge, 40, "thin_lowprice_buy", "new_device")
	g.order(t, atk, sym, event.SideBuy, qty, 0, px)
	g.fill(t.Add(time.Second), atk.acct, sym, event.SideBuy, qty, px)
	g.hijackBuys[sym] = append(g.hijackBuys[sym], t, t)
}

// plainBuy is a hijacked buy the guard lets through.
func (g *gen) plainBuy(t time.Time, atk actor, sym string, qty int64, px float64) {
	g.order(t, atk, sym, event.SideBuy, qty, 0, px)
	g.fill(t.Add(time.Second), atk.acct, sym, event.SideBuy, qty, px)
	g.hijackBuys[sym] = append(g.hijackBuys[sym], t)
}

// ringSell: the ring's account sells into a hijacked buy moments later,
// at the buyer's price, unless the guard refuses it (a frozen account).
func (g *gen) ringSell(t time.Time, ring, sym string, qty int64, px float64, frozen bool) {
	r := home(ring, 77)
	r.device, r.asn, r.sess = "ring-pc", 17676, "s-"+ring+"-d0"
	o := g.order(t, r, sym, event.SideSell, qty, 0, px)
	if frozen {
		g.guard(o, event.Deny, 90, "account_frozen")
		return
	}
	g.fill(t, ring, sym, event.SideSell, qty, px)
}

var repeatScenarios = []scenario{
	{"one_account_three_buys_ring_sells", "2222", true, func(g *gen) {
		// under_sell_share: 40% of the holdings sold (R1 wants half),
		// the target bought in three orders, the ring selling into each
		g.market()
		g.background(20)
		g.thinTarget("2222")
		g.ring("RING1", "2222", 60_000, 148)
		g.account(clock(0, 7, 0, 0), "V00", holding("7203", 500, 2400))
		g.history("V00", 0)
		atk := proxyKit("V00", 1)
		t0 := clock(0, 13, 0, 0)
		g.login(t0, atk)
		g.order(t0.Add(90*time.Second), atk, "7203", event.SideSell, 200, 0, 2400)
		g.fill(t0.Add(90*time.Second), "V00", "7203", event.SideSell, 200, 2400)
		tb := t0.Add(3 * time.Minute)
		g.steppedBuy(tb, atk, "2222", 3000, 151)
		g.ringSell(tb.Add(4*time.Second), "RING1", "2222", 2100, 151, false)
		tb = tb.Add(70 * time.Second)
		g.plainBuy(tb, atk, "2222", 3000, 151)
		g.ringSell(tb.Add(4*time.Second), "RING1", "2222", 2100, 151, false)
	}},
	{"one_account_three_buys_frozen_ring_tries_to_sell", "2223", true, func(g *gen) {
		// The ring's seller was caught on another issue in the morning
		// (R7) and frozen; in the afternoon it tries to sell a second
		// target into one hijacked account's buys, and is refused: no
		// print matches, but the ring is at work all the same.
		g.market()
		g.background(20)
		g.thinTarget("2223")
		g.thinTarget("2224")
		g.ring("RING1", "2224", 60_000, 148)
		g.ring("RING1", "2223", 60_000, 148)
		g.account(clock(0, 7, 0, 0), "W00", holding("7203", 500, 2400))
		g.history("W00", 1)
		morning := proxyKit("W00", 2)
		tm := clock(0, 10, 0, 0)
		g.login(tm, morning)
		g.steppedBuy(tm.Add(2*time.Minute), morning, "2224", 3000, 151)
		g.ringSell(tm.Add(2*time.Minute+4*time.Second), "RING1", "2224", 2100, 151, false)

		g.account(clock(0, 7, 0, 0), "V00", holding("7203", 500, 2400))
		g.history("V00", 0)
		atk := proxyKit("V00", 1)
		t0 := clock(0, 13, 0, 0)
		g.login(t0, atk)
		g.order(t0.Add(90*time.Second), atk, "7203", event.SideSell, 200, 0, 2400)
		g.fill(t0.Add(90*time.Second), "V00", "7203", event.SideSell, 200, 2400)
		tb := t0.Add(3 * time.Minute)
		g.steppedBuy(tb, atk, "2223", 3000, 151)
		g.ringSell(tb.Add(4*time.Second), "RING1", "2223", 2100, 151, true)
		tb = tb.Add(70 * time.Second)
		g.plainBuy(tb, atk, "2223", 3000, 151)
		g.ringSell(tb.Add(4*time.Second), "RING1", "2223", 2100, 151, true)
	}},
	{"liquidation_into_target_over_three_buys", "2225", false, func(g *gen) {
		// full liquidation from a new device on a residential carrier,
		// the proceeds put into the target a third at a time: R1 holds
		// from the third order on, never on any one order; no ring in
		// sight, and no hijack signal (a customer's new phone and a
		// rebalance look the same). Not halted: the heat has the
		// guard step up the buys that follow (TestLiquidationSteppedUp).
		g.market()
		g.background(20)
		g.thinTarget("2225")
		g.account(clock(0, 7, 0, 0), "V00", holding("7203", 1000, 2400))
		g.history("V00", 0)
		atk := proxyKit("V00", 1)
		t0 := clock(0, 13, 0, 0)
		g.login(t0, atk)
		g.order(t0.Add(20*time.Second), atk, "7203", event.SideSell, 1000, 0, 2400)
		g.fill(t0.Add(20*time.Second), "V00", "7203", event.SideSell, 1000, 2400)
		for i := range 3 {
			g.plainBuy(t0.Add(2*time.Minute+time.Duration(i)*50*time.Second), atk, "2225", 5000, 151)
		}
	}},
	{"news_spike_phones_carriers_and_step_ups", "4445", false, func(g *gen) {
		// A benign news spike: sixteen long-standing customers buy the
		// issue within the half hour, most from home, five from their
		// phone on the mobile carrier's network (new to the account;
		// carrier-grade NAT addresses), buying within seconds of signing
		// in; the guard steps up their thin-issue buys and they send the
		// order again. One of them is on a new phone too and buys three
		// times. None of it is a ramp through hijacked accounts.
		g.market()
		g.background(20)
		g.instrument(clock(0, 8, 0, 0), "4445", "TSE_STANDARD", 150, 300_000)
		path := func(m int) (float64, int64) {
			return lerp(m, 100, 130, 150, 200), int64(lerp(m, 99, 100, 1000, 20000))
		}
		g.bars(0, "4445", path)
		for i := range 16 {
			acct := fmt.Sprintf("M%02d", i)
			g.account(clock(0, 7, 0, 0), acct, holding("9432", 300, 2400))
			g.history(acct, 500+i)
			h := home(acct, 500+i)
			mobile := i%3 == 1
			if mobile {
				h.ip, h.asn = fmt.Sprintf("198.19.%d.%d", i, 7+i), 9605 // NTT Docomo
			}
			if i == 4 {
				h.device = "new-phone-" + acct
			}
			t := clock(0, 10, 40, 0).Add(time.Duration(i) * 100 * time.Second)
			g.login(t, h)
			tb := t.Add(25 * time.Second)
			px := priceAt(path, tb)
			o := g.order(tb, h, "4445", event.SideBuy, 1500, 0, px)
			if mobile {
				g.guard(o, event.Challenge, 40, "thin_lowprice_buy")
				g.order(tb, h, "4445", event.SideBuy, 1500, 0, px)
			}
			g.fill(tb.Add(time.Second), acct, "4445", event.SideBuy, 1500, px+1)
			if i == 4 {
				g.order(tb.Add(80*time.Second), h, "4445", event.SideBuy, 500, 0, px+2)
				g.fill(tb.Add(81*time.Second), acct, "4445", event.SideBuy, 500, px+3)
			}
		}
	}},
}

// TestRepeatBuys: a target is halted within 60 seconds of its third
// hijacked buy when fewer than three accounts place them, given evidence
// that the buys are a ramp (the ring's seller selling or trying to sell
// into them), and the alerts say why; the news spike, and one account's
// liquidation from a new device on a carrier, are never acted on.
func TestRepeatBuys(t *testing.T) {
	want := map[string][]string{
		"one_account_three_buys_ring_sells":                {"R3_repeat_buys", "R7_matched_prints"},
		"one_account_three_buys_frozen_ring_tries_to_sell": {"R3_repeat_buys", "R7_ring_attempt"},
	}
	for _, sc := range repeatScenarios {
		t.Run(sc.name, func(t *testing.T) {
			if halt := runScenario(t, sc); halt == nil {
				return
			}
			// the target's alerts, the halting one first among them,
			// say why
			g := newGen()
			sc.build(g)
			var reasons []string
			for _, a := range replayGen(New(DefaultConfig()), g) {
				if a.Symbol == sc.target {
					reasons = append(reasons, a.Reasons...)
				}
			}
			for _, r := range want[sc.name] {
				if !slices.Contains(reasons, r) {
					t.Errorf("the alerts on %s give %v, lacking %s", sc.target, reasons, r)
				}
			}
		})
	}
}

// TestLiquidationSteppedUp: one account liquidating into a thin issue from
// a new device on a carrier is not halted (no hijack signal), but from its
// second buy on the issue is hot enough (50) for the guard to step up buys
// funded by sells or made from a new device.
func TestLiquidationSteppedUp(t *testing.T) {
	for _, sc := range repeatScenarios {
		if sc.name != "liquidation_into_target_over_three_buys" {
			continue
		}
		g := newGen()
		sc.build(g)
		w := New(DefaultConfig())
		buys := g.hijackBuys[sc.target]
		heat := map[time.Time]int{}
		for _, r := range g.stream() {
			if r.Type == event.TypeOrder && r.Side == event.SideBuy && r.Symbol == sc.target {
				heat[r.Time] = w.Heat(sc.target)
			}
			d := &event.Decision{Action: event.Allow}
			if !r.Type.Action() {
				d = nil
			}
			for _, a := range w.Observe(r, d) {
				if a.Action != event.AlertNone {
					t.Errorf("acted on: %s", a.AppendJSON(nil))
				}
			}
		}
		for _, tb := range buys[1:] {
			if heat[tb] < 50 {
				t.Errorf("buy at %s: heat %d, want 50 or more", tb.Format("15:04:05"), heat[tb])
			}
		}
	}
}

// TestOneSuspectRepeatingIsNoRamp: one first-ever buyer whose session
// looks hijacked buying a thin issue three times, with neither the ring
// nor a liquidation behind it, is left to the analyst (and the guard).
func TestOneSuspectRepeatingIsNoRamp(t *testing.T) {
	g := newGen()
	g.market()
	g.thinTarget("2226")
	g.account(clock(0, 7, 0, 0), "V00", holding("7203", 500, 2400))
	g.history("V00", 0)
	atk := proxyKit("V00", 1)
	t0 := clock(0, 13, 0, 0)
	g.login(t0, atk)
	g.steppedBuy(t0.Add(3*time.Minute), atk, "2226", 3000, 151)
	g.plainBuy(t0.Add(4*time.Minute), atk, "2226", 3000, 151)
	w := New(DefaultConfig())
	for _, a := range replayGen(w, g) {
		if a.Action != event.AlertNone {
			t.Errorf("acted on: %s", a.AppendJSON(nil))
		}
	}
}
