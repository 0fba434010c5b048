package surveil

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// This file generates synthetic streams deterministically: a builder of
// records and the documented attack and look-alike shapes.

var jst = time.FixedZone("JST", 9*3600)

// day0 is the trading day of every scenario.
var day0 = time.Date(2025, 4, 15, 0, 0, 0, 0, jst)

// clock returns hh:mm:ss on day0 shifted by days.
func clock(days, h, m, s int) time.Time {
	return day0.AddDate(0, 0, days).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
}

// actor is who acts and from where.
type actor struct {
	acct, sess, ip string
	asn            int64
	country        string
	device         string
}

type gen struct {
	recs []*event.Record
	// hijackBuys are the times of hijacked buy orders per symbol.
	hijackBuys map[string][]time.Time
	n          int
	// decide overrides the guard's decision on a record (default: allow).
	decide map[*event.Record]*event.Decision
}

func newGen() *gen {
	return &gen{hijackBuys: map[string][]time.Time{}, decide: map[*event.Record]*event.Decision{}}
}

// guard makes the guard decide r with action and reasons.
func (g *gen) guard(r *event.Record, action string, score int, reasons ...string) {
	g.decide[r] = &event.Decision{Time: r.Time, Account: r.Account, Action: action, Score: score, Reasons: reasons, Policy: "test"}
}

func (g *gen) add(r *event.Record) *event.Record {
	g.recs = append(g.recs, r)
	return r
}

// stream returns the records sorted by time (stable) with ids.
func (g *gen) stream() []*event.Record {
	sort.SliceStable(g.recs, func(i, j int) bool { return g.recs[i].Time.Before(g.recs[j].Time) })
	for i, r := range g.recs {
		r.ID = fmt.Sprintf("e%d", i+1)
	}
	return g.recs
}

func (g *gen) instrument(t time.Time, sym, market string, price float64, adv int64) {
	g.add(&event.Record{Type: event.TypeInstrument, Time: t, Symbol: sym, Name: sym, Market: market, Currency: "JPY", Price: price, PriceJPY: price, ADVShares: adv, Lot: 100})
}

func (g *gen) account(t time.Time, acct string, hs ...event.Holding) {
	g.add(&event.Record{Type: event.TypeAccount, Time: t, Account: acct, Opened: "2018-04-01", CashJPY: 100000, Holdings: hs, Factors: []string{"password", "email_otp"}})
}

func holding(sym string, qty int64, px float64) event.Holding {
	return event.Holding{Symbol: sym, Qty: qty, CostJPY: int64(float64(qty) * px), Kind: event.KindCash}
}

func (a actor) rec(typ event.Type, t time.Time) *event.Record {
	return &event.Record{Type: typ, Time: t, Account: a.acct, Session: a.sess, IP: a.ip, ASN: a.asn, Country: a.country, Device: a.device, UA: "Mozilla/5.0", Channel: event.ChannelWeb}
}

func (g *gen) login(t time.Time, a actor) *event.Record {
	r := a.rec(event.TypeLogin, t)
	r.Session = ""
	r.Method, r.Factors, r.OK = event.FactorPassword, []string{"password", "email_otp"}, true
	return g.add(r)
}

// order places an order; limit 0 is a market order.
func (g *gen) order(t time.Time, a actor, sym, side string, qty int64, limit, estPrice float64) *event.Record {
	g.n++
	r := a.rec(event.TypeOrder, t)
	r.OrderID = fmt.Sprintf("O%d", g.n)
	r.Symbol, r.Side, r.Qty, r.AccountKind = sym, side, qty, event.KindCash
	r.PriceType = event.PriceMarket
	if limit > 0 {
		r.PriceType, r.LimitPrice = event.PriceLimit, limit
		estPrice = limit
	}
	r.ValueJPY = int64(float64(qty) * estPrice)
	return g.add(r)
}

func (g *gen) fill(t time.Time, acct, sym, side string, qty int64, px float64) {
	g.n++
	g.add(&event.Record{Type: event.TypeFill, Time: t, Account: acct, OrderID: fmt.Sprintf("F%d", g.n), Symbol: sym, Side: side, Qty: qty, Price: px, ValueJPY: int64(float64(qty) * px)})
}

func (g *gen) bar(t time.Time, sym string, o, c float64, vol int64) {
	h, l := math.Max(o, c), math.Min(o, c)
	g.add(&event.Record{Type: event.TypeBar, Time: t, Symbol: sym, Open: o, High: h, Low: l, Close: c, Volume: vol})
}

// session reports whether a time of day is inside TSE trading hours.
func session(t time.Time) bool {
	m := t.Hour()*60 + t.Minute()
	return m > 9*60 && m <= 11*60+30 || m > 12*60+30 && m <= 15*60+30
}

// bars emits one-minute bars for sym over a trading day, with the price and
// volume of minute m (minutes after 9:00) given by path.
func (g *gen) bars(days int, sym string, path func(m int) (float64, int64)) {
	prev := 0.0
	for m := 1; m <= 390; m++ {
		t := clock(days, 9, 0, 0).Add(time.Duration(m) * time.Minute)
		if !session(t) {
			continue
		}
		px, vol := path(m)
		px = math.Round(px)
		if prev == 0 {
			prev = px
		}
		g.bar(t, sym, prev, px, vol)
		prev = px
	}
}

// priceAt is the price of a path at a time of day0.
func priceAt(path func(m int) (float64, int64), t time.Time) float64 {
	m := int(t.Sub(clock(0, 9, 0, 0)) / time.Minute)
	p, _ := path(m + 1)
	return math.Round(p)
}

// lerp goes from a to b as m goes from m0 to m1, flat outside.
func lerp(m, m0, m1 int, a, b float64) float64 {
	switch {
	case m <= m0:
		return a
	case m >= m1:
		return b
	}
	return a + (b-a)*float64(m-m0)/float64(m1-m0)
}

// home is the customer's usual device and network.
func home(acct string, n int) actor {
	return actor{acct: acct, sess: "s-" + acct, ip: fmt.Sprintf("203.0.113.%d", n%250+1), asn: 2516, country: "JP", device: "home-" + acct}
}

// history gives acct logins from its home on earlier days.
func (g *gen) history(acct string, n int) {
	h := home(acct, n)
	for _, d := range []int{-20, -6, -2} {
		a := h
		a.sess = fmt.Sprintf("s-%s-%d", acct, d)
		g.login(clock(d, 19, n%50, 0), a)
	}
}

// hijack is the documented takeover: log in from the attacker's device and
// network, sell the victim's holding, buy the target within minutes; the
// ring's account sells into the buy at the same price.
func (g *gen) hijack(t0 time.Time, victim, heldSym string, heldQty int64, heldPx float64, target string, path func(m int) (float64, int64), atk actor, ring string, extraBuys int) {
	atk.acct = victim
	atk.sess = "atk-" + victim
	g.login(t0, atk)
	g.order(t0.Add(20*time.Second), atk, heldSym, event.SideSell, heldQty, 0, heldPx)
	g.fill(t0.Add(25*time.Second), victim, heldSym, event.SideSell, heldQty, heldPx)
	proceeds := float64(heldQty) * heldPx
	tb := t0.Add(2*time.Minute + 30*time.Second)
	px := priceAt(path, tb)
	qty := int64(proceeds*0.9/(px+2)) / 100 * 100
	g.order(tb, atk, target, event.SideBuy, qty, px+2, 0)
	g.hijackBuys[target] = append(g.hijackBuys[target], tb)
	g.fill(tb.Add(2*time.Second), victim, target, event.SideBuy, qty, px+1)
	if ring != "" {
		g.fill(tb.Add(2*time.Second), ring, target, event.SideSell, qty, px+1)
	}
	for i := range extraBuys {
		g.order(tb.Add(time.Duration(i+1)*40*time.Second), atk, target, event.SideBuy, 100, 0, px+2)
	}
}

// background adds ordinary customers trading large caps all day.
func (g *gen) background(n int) {
	syms := []string{"7203", "9432", "6758", "8306"}
	for i := range n {
		acct := fmt.Sprintf("B%03d", i)
		g.account(clock(0, 7, 0, 0), acct, holding(syms[i%4], 100, 2400))
		g.history(acct, 100+i)
		h := home(acct, 100+i)
		t := clock(0, 9, 5+i%60, i%60)
		g.login(t, h)
		g.order(t.Add(3*time.Minute), h, syms[(i+1)%4], event.SideBuy, 100, 0, 2400)
		g.fill(t.Add(3*time.Minute+time.Second), acct, syms[(i+1)%4], event.SideBuy, 100, 2400)
	}
}

// market adds the reference data and flat bars of the large caps.
func (g *gen) market() {
	for _, s := range []string{"7203", "9432", "6758", "8306"} {
		g.instrument(clock(-30, 8, 0, 0), s, "TSE_PRIME", 2400, 20_000_000)
		g.instrument(clock(0, 8, 0, 0), s, "TSE_PRIME", 2400, 20_000_000)
		g.bars(0, s, func(int) (float64, int64) { return 2400, 60000 })
	}
}

// victims creates n victims with a large-cap holding and a history.
func (g *gen) victims(prefix string, n int, qty int64) []string {
	var out []string
	for i := range n {
		v := fmt.Sprintf("%s%02d", prefix, i)
		g.account(clock(0, 7, 0, 0), v, holding("7203", qty, 2400))
		g.history(v, i)
		out = append(out, v)
	}
	return out
}

// ring pre-positions the ring's account in sym on earlier days.
func (g *gen) ring(acct, sym string, qty int64, px float64) {
	g.account(clock(-10, 7, 0, 0), acct)
	r := home(acct, 77)
	r.device, r.asn = "ring-pc", 17676
	for i, d := range []int{-3, -2} {
		t := clock(d, 10, 0, 0)
		g.login(t, r)
		g.order(t.Add(time.Minute), r, sym, event.SideBuy, qty/2, px+float64(i), 0)
		g.fill(t.Add(time.Minute+time.Second), acct, sym, event.SideBuy, qty/2, px+float64(i))
	}
}

// attackers are the hijackers' sessions: hosting and foreign networks, and
// Japanese residential proxies.
func attacker(i int) actor {
	switch i % 3 {
	case 0:
		return actor{ip: fmt.Sprintf("198.51.100.%d", 10+i), asn: 16509, country: "US", device: fmt.Sprintf("atk-dev-%d", i)}
	case 1:
		return actor{ip: fmt.Sprintf("192.0.2.%d", 10+i), asn: 17676, country: "JP", device: fmt.Sprintf("atk-dev-%d", i)}
	}
	return actor{ip: fmt.Sprintf("100.64.0.%d", 10+i), asn: 4134, country: "CN", device: fmt.Sprintf("atk-dev-%d", i)}
}

// scenario is one documented shape.
type scenario struct {
	name   string
	target string
	attack bool // must be halted; otherwise must never be
	build  func(g *gen)
}

var scenarios = []scenario{
	{"ramp_10_accounts_84_to_110", "7777", true, func(g *gen) {
		g.market()
		g.background(30)
		g.instrument(clock(-30, 8, 0, 0), "7777", "TSE_STANDARD", 82, 100_000)
		g.bars(-3, "7777", func(int) (float64, int64) { return 83, 330 })
		g.bars(-2, "7777", func(int) (float64, int64) { return 84, 330 })
		g.instrument(clock(0, 8, 0, 0), "7777", "TSE_STANDARD", 84, 100_000)
		g.ring("RING1", "7777", 700_000, 82)
		path := func(m int) (float64, int64) {
			if m <= 150 {
				return lerp(m, 30, 150, 84, 110), int64(lerp(m, 29, 30, 330, 4000))
			}
			return lerp(m, 210, 390, 110, 96), 1500
		}
		g.bars(0, "7777", path)
		vs := g.victims("V", 10, 1000)
		for i, v := range vs {
			g.hijack(clock(0, 9, 30+i*12, 0), v, "7203", 1000, 2400, "7777", path, attacker(i), "RING1", 2)
		}
	}},
	{"warrant_15_minutes_30_to_60", "9999", true, func(g *gen) {
		g.market()
		g.background(20)
		g.instrument(clock(0, 8, 0, 0), "9999", "TSE_GROWTH", 30, 2_000_000)
		path := func(m int) (float64, int64) {
			return lerp(m, 60, 75, 30, 60), int64(lerp(m, 59, 60, 6600, 120000))
		}
		g.bars(0, "9999", path)
		vs := g.victims("W", 8, 200)
		shared := actor{ip: "45.77.1.9", asn: 20473, country: "HK"}
		for i, v := range vs {
			a := shared
			a.device = fmt.Sprintf("hk-dev-%d", i)
			g.hijack(clock(0, 10, 0, 0).Add(time.Duration(i)*100*time.Second), v, "7203", 200, 2400, "9999", path, a, "", 1)
		}
	}},
	{"volume_297x_105_to_144_close_112", "6666", true, func(g *gen) {
		g.market()
		g.background(20)
		g.instrument(clock(0, 8, 0, 0), "6666", "TSE_STANDARD", 105, 20_000)
		path := func(m int) (float64, int64) {
			if m <= 60 {
				return lerp(m, 0, 60, 105, 144), 30000
			}
			return lerp(m, 60, 390, 144, 112), 20000
		}
		g.bars(0, "6666", path)
		vs := g.victims("X", 12, 500)
		for i, v := range vs {
			a := actor{ip: fmt.Sprintf("126.10.%d.%d", i, 7+i), asn: 17676, country: "JP", device: fmt.Sprintf("proxy-dev-%d", i)}
			g.hijack(clock(0, 9, 3+4*i, 0), v, "7203", 500, 2400, "6666", path, a, "", 1)
		}
	}},
	{"ramp_refused_by_guard", "3333", true, func(g *gen) {
		// The guard refuses every hijacked buy of the target (deny, hold,
		// challenge in turn), so none fills and the market never moves:
		// the attempted ramp alone must halt buying of the target.
		g.market()
		g.background(20)
		g.instrument(clock(0, 8, 0, 0), "3333", "TSE_STANDARD", 120, 100_000)
		flat := func(int) (float64, int64) { return 120, 300 }
		g.bars(0, "3333", flat)
		actions := []string{event.Deny, event.Hold, event.Challenge}
		for i, v := range g.victims("G", 6, 400) {
			// real-time phishing relayed from Japanese residential
			// addresses: a new device on another carrier, nothing foreign
			// (a different one each time), who takes their time; the
			// proceeds are split (63% into the target, under R1's 70%)
			carriers := []int64{2527, 4713, 9605}
			atk := actor{acct: v, sess: "atk-" + v, ip: fmt.Sprintf("126.33.%d.%d", i, 20+i), asn: carriers[i%3], country: "JP", device: fmt.Sprintf("kit-dev-%d", i)}
			t0 := clock(0, 10, 0, 0).Add(time.Duration(i) * 4 * time.Minute)
			g.login(t0, atk)
			g.order(t0.Add(2*time.Minute), atk, "7203", event.SideSell, 400, 0, 2400)
			g.fill(t0.Add(2*time.Minute+time.Second), v, "7203", event.SideSell, 400, 2400)
			tb := t0.Add(3*time.Minute + 30*time.Second)
			o := g.order(tb, atk, "3333", event.SideBuy, 5000, 0, 121)
			g.guard(o, actions[i%3], 75, "thin_lowprice_buy", "new_device")
			g.hijackBuys["3333"] = append(g.hijackBuys["3333"], tb)
		}
	}},
	{"news_spike_known_customers", "4444", false, func(g *gen) {
		g.market()
		g.background(20)
		g.instrument(clock(0, 8, 0, 0), "4444", "TSE_STANDARD", 150, 300_000)
		path := func(m int) (float64, int64) {
			return lerp(m, 240, 260, 150, 185), int64(lerp(m, 239, 240, 1000, 20000))
		}
		g.bars(0, "4444", path)
		for i := range 40 {
			acct := fmt.Sprintf("N%02d", i)
			if i%2 == 0 {
				g.account(clock(0, 7, 0, 0), acct, holding("4444", 1000, 140), holding("9432", 300, 2400))
			} else {
				g.account(clock(0, 7, 0, 0), acct, holding("9432", 300, 2400))
			}
			g.history(acct, 300+i)
			h := home(acct, 300+i)
			if i%13 == 5 { // a new phone at home
				h.device = "phone-" + acct
			}
			t := clock(0, 13, 0, 0).Add(time.Duration(i) * 40 * time.Second)
			g.login(t, h)
			wait := time.Duration(30+i%4*30) * time.Second
			if i == 7 || i == 21 { // rebalancers: sell everything into the news
				g.order(t.Add(wait), h, "9432", event.SideSell, 300, 0, 2400)
				g.fill(t.Add(wait+time.Second), acct, "9432", event.SideSell, 300, 2400)
				wait += time.Minute
			}
			px := priceAt(path, t.Add(wait))
			qty := int64(2000)
			if i == 7 || i == 21 {
				qty = int64(720000/(px+3)) / 100 * 100
			}
			g.order(t.Add(wait), h, "4444", event.SideBuy, qty, 0, px)
			g.fill(t.Add(wait+time.Second), acct, "4444", event.SideBuy, qty, px+1)
			g.order(t.Add(wait+20*time.Second), h, "4444", event.SideBuy, 100, px+3, 0)
		}
	}},
	{"day_trader_thin_stocks", "5001", false, func(g *gen) {
		g.market()
		g.background(20)
		for k := range 6 {
			sym := fmt.Sprintf("500%d", k+1)
			base := float64(200 + 40*k)
			g.instrument(clock(0, 8, 0, 0), sym, "TSE_STANDARD", base, 50_000)
			start := 20 + 50*k
			g.bars(0, sym, func(m int) (float64, int64) {
				return lerp(m, start, start+20, base, base*1.14), int64(lerp(m, start-1, start, 200, 2500))
			})
		}
		g.account(clock(0, 7, 0, 0), "DT1", holding("7203", 100, 2400), holding("5006", 500, 400))
		g.history("DT1", 9)
		h := home("DT1", 9)
		g.login(clock(0, 8, 55, 0), h)
		for k := range 6 {
			sym := fmt.Sprintf("500%d", k+1)
			base := float64(200 + 40*k)
			t := clock(0, 9, 0, 0).Add(time.Duration(20+50*k+8) * time.Minute)
			if k == 2 { // liquidate and go all in on a new name
				g.order(t.Add(-time.Minute), h, "7203", event.SideSell, 100, 0, 2400)
				g.fill(t.Add(-time.Minute+time.Second), "DT1", "7203", event.SideSell, 100, 2400)
				g.order(t.Add(-time.Minute), h, "5006", event.SideSell, 500, 0, 400)
				g.fill(t.Add(-time.Minute+time.Second), "DT1", "5006", event.SideSell, 500, 400)
			}
			for j := range 4 {
				tj := t.Add(time.Duration(j) * 50 * time.Second)
				px := math.Round(base * (1 + 0.14*float64(8+j)/20))
				g.order(tj, h, sym, event.SideBuy, 1000, 0, px)
				g.fill(tj.Add(time.Second), "DT1", sym, event.SideBuy, 1000, px+1)
			}
			ts := t.Add(15 * time.Minute)
			g.order(ts, h, sym, event.SideSell, 4000, 0, base*1.14)
			g.fill(ts.Add(time.Second), "DT1", sym, event.SideSell, 4000, math.Round(base*1.14))
		}
	}},
}

// replay feeds a stream to w the way the live system would: buy orders for
// a halted symbol are denied (and still observed).
func replay(w *Watch, recs []*event.Record) []event.Alert { return replayWith(w, recs, nil) }

// replayGen replays g's stream with the guard's decisions g.decide.
func replayGen(w *Watch, g *gen) []event.Alert { return replayWith(w, g.stream(), g.decide) }

func replayWith(w *Watch, recs []*event.Record, decide map[*event.Record]*event.Decision) []event.Alert {
	var out []event.Alert
	for _, r := range recs {
		var d *event.Decision
		if r.Type.Action() {
			d = &event.Decision{Event: r.ID, Time: r.Time, Account: r.Account, Action: event.Allow, Policy: "test"}
			if o := decide[r]; o != nil {
				c := *o
				c.Event = r.ID
				d = &c
			}
			if r.Type == event.TypeOrder && r.Side == event.SideBuy && w.Halted(r.Symbol) {
				d.Action, d.Reasons = event.Deny, []string{"instrument_halted"}
			}
		}
		out = append(out, w.Observe(r, d)...)
	}
	return out
}
