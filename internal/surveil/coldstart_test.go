package surveil

import (
	"fmt"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// The classes of issue 13 that the simulator's own attackers never showed:
// a slow campaign with one hijacked account per mid-priced target, the
// first twenty days after the watchtower starts from nothing, and a news
// spike on a mid-priced issue bought by customers who sold to buy it.

// carriers are big Japanese carriers whose NAT pools put many customers
// behind one address.
var carriers = []int64{2516, 4713, 17676, 9605}

// nat is the address customer i gets from its carrier's NAT pool on day d:
// four addresses per carrier, shared by everyone on it.
func nat(i, d int) (string, int64) {
	asn := carriers[i%len(carriers)]
	return fmt.Sprintf("100.64.%d.%d", i%len(carriers), (i+d)%4+1), asn
}

// mobile is customer i on day d: a PC or a phone, on its carrier.
func mobile(acct string, i, d int) actor {
	ip, asn := nat(i, d)
	dev := "pc-" + acct
	if (d/2+i)%2 == 0 {
		dev = "phone-" + acct
	}
	return actor{acct: acct, sess: fmt.Sprintf("s-%s-%d", acct, d), ip: ip, asn: asn, country: "JP", device: dev}
}

// coldGuard is the guard at a cold start: it knows no device either, flags
// every sign-in as new with a high score, and steps up every buy of a thin
// issue.
func (g *gen) coldGuard(r *event.Record, thin bool) {
	switch {
	case r.Type == event.TypeLogin:
		g.guard(r, event.Allow, 65, "new_device")
	case thin:
		g.guard(r, event.Challenge, 70, "thin_lowprice_buy", "new_device")
	}
}

// coldStart is twenty trading days that the watchtower sees from its first
// record: forty ordinary customers on carrier NAT addresses, on a PC one
// day and a phone the next, a dozen of whom buy the same thin issue on the
// first two days; and three day traders who every morning sell their large
// cap, put the proceeds into the same thin issue, sell it in the afternoon
// and buy the large cap back.
func coldStart(g *gen) {
	g.market()
	for _, s := range []string{"7777", "5101", "5102", "5103"} {
		g.instrument(clock(-30, 8, 0, 0), s, "TSE_STANDARD", 100, 50_000)
	}
	for i := range 40 {
		acct := fmt.Sprintf("O%02d", i)
		g.account(clock(-19, 7, 0, 0), acct, holding("9432", 300, 2400))
		for d := -19; d <= 0; d++ {
			if (d+i)%3 != 0 && d > -18 {
				continue
			}
			h := mobile(acct, i, d)
			t := clock(d, 9, 30+i%40, i%60)
			g.coldGuard(g.login(t, h), false)
			if d <= -18 && i < 12 {
				o := g.order(t.Add(40*time.Second), h, "7777", event.SideBuy, 2000, 0, 100)
				g.coldGuard(o, true)
				g.fill(t.Add(41*time.Second), acct, "7777", event.SideBuy, 2000, 101)
				continue
			}
			g.order(t.Add(2*time.Minute), h, "9432", event.SideBuy, 100, 0, 2400)
			g.fill(t.Add(2*time.Minute+time.Second), acct, "9432", event.SideBuy, 100, 2400)
		}
	}
	for k := range 3 {
		acct := fmt.Sprintf("D%d", k)
		g.account(clock(-19, 7, 0, 0), acct, holding("7203", 1000, 2400))
		for d := -19; d <= 0; d++ {
			thin := fmt.Sprintf("510%d", (d+19)%3+1)
			h := mobile(acct, k, d)
			h.ip, h.asn = "100.64.9.1", 2516 // the three on one NAT address
			t := clock(d, 9, 1+k, 0)
			g.coldGuard(g.login(t, h), false)
			g.order(t.Add(20*time.Second), h, "7203", event.SideSell, 1000, 0, 2400)
			g.fill(t.Add(21*time.Second), acct, "7203", event.SideSell, 1000, 2400)
			for j := range 3 {
				tb := t.Add(time.Duration(1+j) * time.Minute)
				o := g.order(tb, h, thin, event.SideBuy, 7000, 0, 100)
				g.coldGuard(o, true)
				g.fill(tb.Add(time.Second), acct, thin, event.SideBuy, 7000, 100)
			}
			ts := clock(d, 14, 0, k)
			g.order(ts, h, thin, event.SideSell, 21000, 0, 101)
			g.fill(ts.Add(time.Second), acct, thin, event.SideSell, 21000, 101)
			g.order(ts.Add(time.Minute), h, "7203", event.SideBuy, 1000, 0, 2400)
			g.fill(ts.Add(time.Minute+time.Second), acct, "7203", event.SideBuy, 1000, 2400)
		}
	}
}

// TestColdStart replays twenty days from nothing: ordinary customers
// converging on a thin issue while every device is new, day traders who
// liquidate large caps into thin issues, and carrier NAT addresses shared
// by strangers halt nothing and freeze no one.
func TestColdStart(t *testing.T) {
	g := newGen()
	coldStart(g)
	w := New(DefaultConfig())
	alerts := replayGen(w, g)
	kinds := map[string]int{}
	for _, a := range alerts {
		kinds[a.Kind]++
		if a.Action != event.AlertNone {
			t.Errorf("acted on at a cold start: %s", a.AppendJSON(nil))
		}
	}
	for _, s := range []string{"7777", "5101", "5102", "5103"} {
		if w.Halted(s) {
			t.Errorf("%s halted", s)
		}
	}
	for _, a := range []string{"O00", "O05", "D0", "D1", "D2"} {
		if w.Frozen(a) {
			t.Errorf("%s frozen", a)
		}
	}
	if kinds[KindLiquidateConcentrate] == 0 {
		t.Errorf("the day traders raised no liquidate_concentrate (%v): the stream tests nothing", kinds)
	}
}

// midTarget lists a mid-priced TSE Standard issue (¥1,500, 200,000 shares
// a day: ¥300m) that the firm's customers buy a little of every day.
func (g *gen) midTarget(sym string, path func(m int) (float64, int64)) {
	g.instrument(clock(-30, 8, 0, 0), sym, "TSE_STANDARD", 1500, 200_000)
	g.instrument(clock(0, 8, 0, 0), sym, "TSE_STANDARD", 1500, 200_000)
	for d := -10; d < 0; d++ {
		b := home(fmt.Sprintf("U%02d", -d), 40-d)
		g.fill(clock(d, 10, 0, 0), b.acct, sym, event.SideBuy, 100, 1500)
		g.bar(clock(d, 15, 30, 0), sym, 1500, 1500, 200_000)
	}
	if path == nil {
		path = func(int) (float64, int64) { return 1500, 600 }
	}
	g.bars(0, sym, path)
}

// slowVictim is one hijacked account working one mid-priced target: a
// sign-in from atk, the victim's holdings sold, then buys of the target
// spread over the day, each in a session of its own. It returns the
// times of the buy orders.
func (g *gen) slowVictim(victim, sym string, atk actor, buys int, qty int64) []time.Time {
	g.account(clock(0, 7, 0, 0), victim, holding("7203", 3000, 2400))
	g.history(victim, 3)
	atk.acct = victim
	t0 := clock(0, 9, 40, 0)
	atk.sess = "atk-" + victim + "-0"
	g.login(t0, atk)
	g.order(t0.Add(3*time.Minute), atk, "7203", event.SideSell, 3000, 0, 2400)
	g.fill(t0.Add(3*time.Minute+time.Second), victim, "7203", event.SideSell, 3000, 2400)
	var at []time.Time
	for i := range buys {
		// through the day, the lunch break left out
		tb := clock(0, 10, 30, 0).Add(time.Duration(i) * 70 * time.Minute)
		if tb.Hour() == 11 && tb.Minute() > 30 || tb.Hour() == 12 && tb.Minute() < 30 {
			tb = tb.Add(time.Hour)
		}
		a := atk
		a.sess = fmt.Sprintf("atk-%s-%d", victim, i+1)
		g.login(tb.Add(-2*time.Minute), a)
		g.order(tb, a, sym, event.SideBuy, qty, 1502, 0)
		g.fill(tb.Add(time.Second), victim, sym, event.SideBuy, qty, 1501)
		at = append(at, tb)
	}
	return at
}

// TestSlowSingleVictim: one hijacked account buys a mid-priced issue in
// sessions spread over the day. No convergence of accounts, no low price:
// the issue's own baseline sees it. From the second buy on, every buy finds
// the issue hot enough for the guard's step-up (heat 50 or more, which the
// guard reads on buys funded by sells or from a new device); a buy from a
// residential line halts nothing (a new phone at home looks the same), a
// data centre abroad with the ring selling into the buys halts the issue.
func TestSlowSingleVictim(t *testing.T) {
	tests := []struct {
		name   string
		atk    actor
		ring   bool
		halted bool
	}{
		{"residential proxy on another carrier", actor{ip: "126.33.8.20", asn: 2527, country: "JP", device: "kit-dev-1"}, false, false},
		{"hosting abroad, the ring selling into the buys", actor{ip: "198.51.100.20", asn: 16509, country: "US", device: "atk-dev-2"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGen()
			g.market()
			g.background(20)
			g.midTarget("6200", nil)
			if tt.ring {
				g.ring("RING1", "6200", 20_000, 1480)
			}
			buys := g.slowVictim("V00", "6200", tt.atk, 5, 1000)
			if tt.ring {
				for i, tb := range buys {
					r := home("RING1", 77)
					r.device, r.asn, r.sess = "ring-pc", 17676, fmt.Sprintf("s-RING1-%d", i)
					g.order(tb.Add(time.Second), r, "6200", event.SideSell, 1000, 0, 1501)
					g.fill(tb.Add(time.Second), "RING1", "6200", event.SideSell, 1000, 1501)
				}
			}
			w := New(DefaultConfig())
			heat := map[time.Time]int{}
			var alerts []event.Alert
			for _, r := range g.stream() {
				if r.Type == event.TypeOrder && r.Side == event.SideBuy && r.Symbol == "6200" {
					heat[r.Time] = w.Heat("6200")
				}
				var d *event.Decision
				if r.Type.Action() {
					d = &event.Decision{Event: r.ID, Time: r.Time, Account: r.Account, Action: event.Allow, Policy: "test"}
				}
				alerts = append(alerts, w.Observe(r, d)...)
			}
			for i, tb := range buys[1:] {
				if heat[tb] < 50 {
					t.Errorf("buy %d at %s: heat %d, want 50 or more", i+2, tb.Format("15:04"), heat[tb])
				}
			}
			found := false
			for _, a := range alerts {
				found = found || a.Kind == KindAbnormalBuying
				if a.Action == event.AlertFreezeAccounts && !tt.halted {
					t.Errorf("froze on a residential line: %s", a.AppendJSON(nil))
				}
			}
			if !found {
				t.Errorf("no %s alert", KindAbnormalBuying)
			}
			if w.Halted("6200") != tt.halted {
				t.Errorf("halted %v, want %v", w.Halted("6200"), tt.halted)
			}
		})
	}
}

// TestNewsSpikeMidPrice: news on a mid-priced issue, bought by forty
// customers on their own devices, four of whom sell everything to buy it,
// two of those from a new phone at home, and five more on the first
// days the watchtower knows them: no halt, no freeze.
func TestNewsSpikeMidPrice(t *testing.T) {
	g := newGen()
	g.market()
	g.background(20)
	path := func(m int) (float64, int64) {
		return lerp(m, 240, 260, 1500, 1800), int64(lerp(m, 239, 240, 600, 20000))
	}
	g.midTarget("6300", path)
	for i := range 45 {
		acct := fmt.Sprintf("N%02d", i)
		g.account(clock(0, 7, 0, 0), acct, holding("9432", 2000, 2400))
		h := home(acct, 300+i)
		if i < 40 {
			g.history(acct, 300+i)
		} else {
			h = mobile(acct, i, 0) // first seen today: every device new
		}
		if i%20 == 3 {
			h.device = "new-phone-" + acct
		}
		t0 := clock(0, 13, 0, 0).Add(time.Duration(i) * 40 * time.Second)
		lg := g.login(t0, h)
		if i >= 40 {
			g.coldGuard(lg, false)
		}
		wait := 30 * time.Second
		qty := int64(300)
		if i%10 == 3 || i >= 40 { // sell everything into the news
			g.order(t0.Add(wait), h, "9432", event.SideSell, 2000, 0, 2400)
			g.fill(t0.Add(wait+time.Second), acct, "9432", event.SideSell, 2000, 2400)
			wait += time.Minute
			qty = 2800
		}
		px := priceAt(path, t0.Add(wait))
		g.order(t0.Add(wait), h, "6300", event.SideBuy, qty, 0, px)
		g.fill(t0.Add(wait+time.Second), acct, "6300", event.SideBuy, qty, px+1)
	}
	w := New(DefaultConfig())
	for _, a := range replayGen(w, g) {
		if a.Action != event.AlertNone {
			t.Errorf("news spike acted on: %s", a.AppendJSON(nil))
		}
	}
	if w.Halted("6300") {
		t.Error("6300 halted")
	}
}

// TestGuardFrictionFedBack: the guard's heat comes back as guard_refused.
// Twelve long-standing customers buy a thin issue within the half hour
// from a new phone on their carrier; the guard steps up every buy (a thin
// issue, a new device, and once the issue is warm, surveillance_heat) and
// each sends the order again and fills. The refusals are the guard's
// friction, not a takeover: no halt, no freeze.
func TestGuardFrictionFedBack(t *testing.T) {
	g := newGen()
	g.market()
	g.background(20)
	g.thinTarget("4446")
	for i := range 12 {
		acct := fmt.Sprintf("F%02d", i)
		g.account(clock(0, 7, 0, 0), acct, holding("9432", 300, 2400))
		g.history(acct, 600+i)
		h := mobile(acct, i, 0)
		h.device = "new-phone-" + acct
		t0 := clock(0, 10, 0, 0).Add(time.Duration(i) * 150 * time.Second)
		g.login(t0, h)
		tb := t0.Add(20 * time.Second)
		o := g.order(tb, h, "4446", event.SideBuy, 2000, 0, 150)
		reasons := []string{"thin_lowprice_buy", "new_device"}
		if i >= 3 {
			reasons = append(reasons, "surveillance_heat")
		}
		g.guard(o, event.Challenge, 70, reasons...)
		g.order(tb.Add(30*time.Second), h, "4446", event.SideBuy, 2000, 0, 150)
		g.fill(tb.Add(31*time.Second), acct, "4446", event.SideBuy, 2000, 151)
	}
	w := New(DefaultConfig())
	for _, a := range replayGen(w, g) {
		if a.Action != event.AlertNone {
			t.Errorf("friction acted on: %s", a.AppendJSON(nil))
		}
	}
	if w.Halted("4446") {
		t.Error("4446 halted")
	}
}
