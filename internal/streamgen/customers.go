package streamgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/netinfo"
)

// Kinds of ordinary customers.
const (
	kindInvestor  = iota // buys and holds; signs in a few times a week
	kindActive           // trades large and mid caps most days
	kindDayTrader        // many round trips a day, thin issues included
	kindDormant          // rarely signs in, never trades
)

// device is one of a customer's devices or browser profiles.
type device struct {
	id, ua, channel string
	mobile          bool
}

// position is one holding.
type position struct {
	qty, cost int64
	kind      string
}

// cust is one customer and everything the generator keeps of them.
type cust struct {
	id       string
	opened   time.Time
	kind     int
	cash     int64
	hold     map[string]*position
	factors  []string
	otp      string // the one-time-code factor used at sign-in ("" when none)
	passkey  bool
	devices  []device
	home     int64 // home broadband carrier
	homeIP   string
	mobile   int64 // mobile carrier
	email    string
	phone    string
	bank     string
	foreign  bool
	margin   bool
	habit    time.Duration // usual time of day to sign in
	dirty    bool          // holdings or cash changed since the last snapshot
	busy     bool          // an attack or look-alike acts for this customer today
	everHeld map[string]bool
	watch    []string // a day trader's thin issues
}

var (
	webUAs = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/134.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/135.0.0.0 Safari/537.36 Edg/135.0.0.0",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:136.0) Gecko/20100101 Firefox/136.0",
	}
	appUAs = []string{
		"KabuApp/7.4.1 (iPhone; iOS 18.3.2)",
		"KabuApp/7.4.1 (iPhone; iOS 17.7)",
		"KabuApp/7.4.0 (Android 15; Pixel 8)",
		"KabuApp/7.4.0 (Android 14; SO-51D)",
		"KabuApp/7.3.9 (Android 14; SC-52D)",
	}
	// mobileCarriers are the carriers a phone on mobile data signs in from.
	mobileCarriers = []int64{9605, 2516, 17676, 138384}
	// foreignResidential are residential and hotel networks abroad where
	// a customer travels: Comcast (US), KT (KR), True (TH), Orange (FR),
	// HKT (HK), Singtel (SG).
	foreignResidential = []struct {
		asn     int64
		country string
	}{{7922, "US"}, {4766, "KR"}, {7470, "TH"}, {3215, "FR"}, {4760, "HK"}, {7473, "SG"}}
)

// carrierIP returns an address on carrier asn; the first octets are fixed
// per carrier, so one carrier's customers share a few address ranges as
// they do in life.
func carrierIP(rng *rand.Rand, asn int64) string {
	switch asn {
	case 4713:
		return fmt.Sprintf("100.%d.%d.%d", 64+rng.IntN(16), rng.IntN(256), 1+rng.IntN(254))
	case 2516:
		return fmt.Sprintf("100.%d.%d.%d", 80+rng.IntN(16), rng.IntN(256), 1+rng.IntN(254))
	case 17676:
		return fmt.Sprintf("100.%d.%d.%d", 96+rng.IntN(16), rng.IntN(256), 1+rng.IntN(254))
	case 9605:
		return fmt.Sprintf("100.%d.%d.%d", 112+rng.IntN(16), rng.IntN(256), 1+rng.IntN(254))
	}
	return fmt.Sprintf("%d.%d.%d.%d", 110+int(asn%17), int(asn/7%256), rng.IntN(256), 1+rng.IntN(254))
}

// cgnatIP returns a mobile carrier's shared (carrier-grade NAT) address:
// few of them, each used by many customers at once.
func cgnatIP(rng *rand.Rand, asn int64) string {
	return fmt.Sprintf("%d.%d.%d.%d", 126+int(asn%3), int(asn%251), 8, 1+rng.IntN(48))
}

func hexID(rng *rand.Rand, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[rng.IntN(16)]
	}
	return string(b)
}

func newDevice(rng *rand.Rand, mobile bool) device {
	if mobile {
		return device{id: "d-" + hexID(rng, 16), ua: appUAs[rng.IntN(len(appUAs))], channel: event.ChannelApp, mobile: true}
	}
	return device{id: "d-" + hexID(rng, 16), ua: webUAs[rng.IntN(len(webUAs))], channel: event.ChannelWeb}
}

// newCustomer makes customer i, opened on opened, with holdings drawn from
// the instruments.
func (g *gen) newCustomer(i int, opened time.Time, rng *rand.Rand) *cust {
	c := &cust{id: fmt.Sprintf("K%07d", 1000000+rng.IntN(8999999)), opened: opened, hold: map[string]*position{}, everHeld: map[string]bool{}}
	for g.ids[c.id] {
		c.id = fmt.Sprintf("K%07d", 1000000+rng.IntN(8999999))
	}
	g.ids[c.id] = true
	switch x := rng.Float64(); {
	case x < 0.55:
		c.kind = kindInvestor
	case x < 0.80:
		c.kind = kindActive
	case x < 0.85:
		c.kind = kindDayTrader
		for i := 0; i < 3+rng.IntN(5); i++ {
			c.watch = append(c.watch, g.pick(rng, classThin, classThin, classMidThin).Symbol)
		}
	default:
		c.kind = kindDormant
	}
	c.factors = []string{event.FactorPassword}
	switch x := rng.Float64(); {
	case x < 0.35:
		c.otp = event.FactorSMSOTP
	case x < 0.65:
		c.otp = event.FactorEmailOTP
	case x < 0.82:
		c.otp = event.FactorTOTP
	}
	if c.otp != "" {
		c.factors = append(c.factors, c.otp)
	}
	if rng.Float64() < 0.22 {
		c.passkey = true
		c.factors = append(c.factors, event.FactorPasskey)
	}
	c.devices = append(c.devices, newDevice(rng, rng.Float64() < 0.55))
	if rng.Float64() < 0.45 {
		c.devices = append(c.devices, newDevice(rng, !c.devices[0].mobile))
	}
	c.home = netinfo.CarrierASNs[rng.IntN(len(netinfo.CarrierASNs))]
	c.homeIP = carrierIP(rng, c.home)
	c.mobile = mobileCarriers[rng.IntN(len(mobileCarriers))]
	c.email, c.phone, c.bank = "e-"+hexID(rng, 20), "p-"+hexID(rng, 20), "b-"+hexID(rng, 20)
	c.foreign = rng.Float64() < 0.18
	c.margin = c.kind == kindDayTrader || rng.Float64() < 0.05
	switch rng.IntN(4) {
	case 0:
		c.habit = 7*time.Hour + time.Duration(rng.IntN(110))*time.Minute
	case 1:
		c.habit = 19*time.Hour + time.Duration(rng.IntN(200))*time.Minute
	default:
		c.habit = 9*time.Hour + time.Duration(rng.IntN(360))*time.Minute
	}
	// Holdings: large and mid caps, some thin issues, NISA for many.
	n := 0
	switch c.kind {
	case kindInvestor:
		n = 2 + rng.IntN(5)
		c.cash = int64(100000 + rng.IntN(3000000))
	case kindActive:
		n = 3 + rng.IntN(6)
		c.cash = int64(300000 + rng.IntN(5000000))
	case kindDayTrader:
		n = rng.IntN(3)
		c.cash = int64(1000000 + rng.IntN(9000000))
	case kindDormant:
		n = rng.IntN(3)
		c.cash = int64(rng.IntN(500000))
	}
	nisa := rng.Float64() < 0.5
	for k := 0; k < n; k++ {
		in := g.pick(rng, classLarge)
		if rng.Float64() < 0.12 {
			in = g.pick(rng, classThin, classMidThin)
		}
		if c.foreign && rng.Float64() < 0.25 {
			in = g.pick(rng, classForeign)
		}
		value := 200000 + rng.Float64()*4800000
		qty := int64(math.Max(1, math.Round(value/(in.close*in.fx*float64(in.Lot))))) * in.Lot
		kind := event.KindCash
		if nisa && !in.Foreign() && rng.Float64() < 0.6 {
			kind = event.KindNISA
		}
		c.add(in, qty, in.jpy(in.close*(0.7+rng.Float64()*0.5), qty), kind)
	}
	return c
}

func (c *cust) add(in *inst, qty, cost int64, kind string) {
	p := c.hold[in.Symbol]
	if p == nil {
		p = &position{kind: kind}
		c.hold[in.Symbol] = p
	}
	p.qty += qty
	p.cost += cost
	c.everHeld[in.Symbol] = true
	c.dirty = true
}

// symbols returns the symbols c holds, largest value first.
func (c *cust) symbols(g *gen) []string {
	out := make([]string, 0, len(c.hold))
	for s := range c.hold {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		vi, vj := c.value(g, out[i]), c.value(g, out[j])
		if vi != vj {
			return vi > vj
		}
		return out[i] < out[j]
	})
	return out
}

func (c *cust) value(g *gen, sym string) int64 {
	in := g.bySym[sym]
	return in.jpy(in.close, c.hold[sym].qty)
}

// worth returns c's market value at the previous close, cash included.
func (c *cust) worth(g *gen) int64 {
	v := c.cash
	for s := range c.hold {
		v += c.value(g, s)
	}
	return v
}

// snapshot returns c's account record at t.
func (c *cust) snapshot(t time.Time) *event.Record {
	r := &event.Record{Type: event.TypeAccount, Time: t, Account: c.id, Opened: c.opened.Format(time.DateOnly), CashJPY: c.cash,
		Factors: append([]string(nil), c.factors...), EmailHash: c.email, PhoneHash: c.phone, BankHash: c.bank,
		ForeignEnabled: c.foreign, MarginEnabled: c.margin}
	syms := make([]string, 0, len(c.hold))
	for s := range c.hold {
		syms = append(syms, s)
	}
	sort.Strings(syms)
	for _, s := range syms {
		p := c.hold[s]
		r.Holdings = append(r.Holdings, event.Holding{Symbol: s, Qty: p.qty, CostJPY: p.cost, Kind: p.kind})
	}
	c.dirty = false
	return r
}

// ctx is the actor context of a session: where and on what it acts.
type actx struct {
	session, ip, country, device, ua, channel string
	asn                                       int64
}

func (a actx) stamp(r *event.Record) *event.Record {
	r.Session, r.IP, r.ASN, r.Country, r.Device, r.UA, r.Channel = a.session, a.ip, a.asn, a.country, a.device, a.ua, a.channel
	return r
}

// ownContext returns the context of c on one of their own devices, from
// home broadband (web) or mobile data or home Wi-Fi (app).
func (g *gen) ownContext(c *cust, rng *rand.Rand) actx {
	d := c.devices[rng.IntN(len(c.devices))]
	a := actx{session: "s-" + hexID(rng, 24), device: d.id, ua: d.ua, channel: d.channel, country: "JP"}
	if d.mobile && rng.Float64() < 0.6 {
		a.asn, a.ip = c.mobile, cgnatIP(rng, c.mobile)
	} else {
		a.asn, a.ip = c.home, c.homeIP
	}
	return a
}

// login returns the sign-in records of c in context a at t: now and then a
// mistyped password first, then the sign-in with c's factors.
func (g *gen) login(c *cust, a actx, t time.Time, rng *rand.Rand, typo bool) []*event.Record {
	var out []*event.Record
	if typo {
		f := a
		f.session = ""
		out = append(out, f.stamp(&event.Record{Type: event.TypeLogin, Time: t, Account: c.id, Method: event.FactorPassword,
			Factors: []string{}, OK: false}))
		t = t.Add(time.Duration(8+rng.IntN(30)) * time.Second)
	}
	r := &event.Record{Type: event.TypeLogin, Time: t, Account: c.id, OK: true}
	if c.passkey && a.channel == event.ChannelApp || c.passkey && rng.Float64() < 0.9 {
		r.Method, r.Factors = event.FactorPasskey, []string{event.FactorPasskey}
	} else {
		r.Method, r.Factors = event.FactorPassword, []string{event.FactorPassword}
		if c.otp != "" {
			r.Factors = append(r.Factors, c.otp)
		}
	}
	return append(out, a.stamp(r))
}

// order places an order of c for qty of in at t in context a and returns
// it with its fill (none when the market does not trade again today).
// limitAtAsk places a limit order at the ask instead of a market order.
func (g *gen) order(c *cust, a actx, in *inst, side string, qty int64, kind string, t time.Time, rng *rand.Rand, limitAtAsk bool) []*event.Record {
	if qty <= 0 {
		return nil
	}
	px := in.priceAt(t)
	ask := in.ask(t)
	o := &event.Record{Type: event.TypeOrder, Time: t, Account: c.id, OrderID: "o-" + hexID(rng, 20), Symbol: in.Symbol, Side: side,
		Qty: qty, PriceType: event.PriceMarket, AccountKind: kind}
	est := px
	if side == event.SideBuy {
		est = ask
	}
	if limitAtAsk {
		o.PriceType, o.LimitPrice = event.PriceLimit, ask
		if side == event.SideSell {
			o.LimitPrice = px
		}
		est = o.LimitPrice
	}
	o.ValueJPY = in.jpy(est, qty)
	out := []*event.Record{a.stamp(o)}
	at, ok := in.nextOpen(t)
	if !ok {
		return out
	}
	if at.Equal(t) {
		at = t.Add(time.Duration(300+rng.IntN(2500)) * time.Millisecond)
	}
	fp := in.priceAt(at)
	if side == event.SideBuy {
		fp = in.ask(at)
	}
	if limitAtAsk && side == event.SideBuy && fp > o.LimitPrice || limitAtAsk && side == event.SideSell && fp < o.LimitPrice {
		fp = o.LimitPrice
	}
	value := in.jpy(fp, qty)
	out = append(out, &event.Record{Type: event.TypeFill, Time: at, Account: c.id, OrderID: o.OrderID, Symbol: in.Symbol, Side: side,
		Qty: qty, Price: fp, ValueJPY: value})
	if m, open := in.minuteAt(at); m >= 0 && open {
		in.vol[m] += qty
	}
	if side == event.SideBuy {
		c.cash -= value
		c.add(in, qty, value, kind)
	} else if p := c.hold[in.Symbol]; p != nil {
		c.cash += value
		if qty >= p.qty {
			delete(c.hold, in.Symbol)
		} else {
			p.cost -= p.cost * qty / p.qty
			p.qty -= qty
		}
		c.dirty = true
	}
	return out
}

// buyQty returns how many shares of in about budget yen buys, in lots.
func buyQty(in *inst, t time.Time, budget int64) int64 {
	unit := in.ask(t) * in.fx * float64(in.Lot)
	if unit <= 0 {
		return 0
	}
	return int64(float64(budget)/unit) * in.Lot
}

// tradingTime returns a time on day inside the TSE's sessions near want.
func tradingTime(day time.Time, want time.Duration, rng *rand.Rand) time.Time {
	for want < 9*time.Hour || want >= 15*time.Hour+25*time.Minute || want >= 11*time.Hour+30*time.Minute && want < 12*time.Hour+30*time.Minute {
		want = 9*time.Hour + time.Duration(rng.IntN(380))*time.Minute
	}
	return day.Add(want + time.Duration(rng.IntN(60))*time.Second)
}

// ordinaryDay generates c's own activity on day.
func (g *gen) ordinaryDay(c *cust, day time.Time, rng *rand.Rand) {
	if day.Before(c.opened) {
		return
	}
	p := [...]float64{kindInvestor: 0.22, kindActive: 0.65, kindDayTrader: 0.93, kindDormant: 0.02}[c.kind]
	if rng.Float64() >= p {
		return
	}
	sessions := 1
	if c.kind == kindDayTrader || c.kind == kindActive && rng.Float64() < 0.3 {
		sessions = 1 + rng.IntN(3)
	}
	for s := 0; s < sessions; s++ {
		at := c.habit + time.Duration(rng.NormFloat64()*40)*time.Minute + time.Duration(s*90)*time.Minute
		if c.kind == kindDayTrader || c.kind == kindActive && rng.Float64() < 0.6 {
			at = sinceMidnight(tradingTime(day, at, rng))
		}
		if at < 6*time.Hour || at > 23*time.Hour+50*time.Minute {
			at = 8 * time.Hour
		}
		t := day.Add(at + time.Duration(rng.IntN(60))*time.Second)
		a := g.ownContext(c, rng)
		if rng.Float64() < 0.004 {
			// A new phone or browser now and then.
			d := newDevice(rng, rng.Float64() < 0.6)
			c.devices = append(c.devices, d)
			a.device, a.ua, a.channel = d.id, d.ua, d.channel
		}
		if rng.Float64() < 0.005 && c.foreign {
			fr := foreignResidential[rng.IntN(len(foreignResidential))]
			a.asn, a.country, a.ip = fr.asn, fr.country, fmt.Sprintf("%d.%d.%d.%d", 60+int(fr.asn%40), int(fr.asn%200), rng.IntN(256), 1+rng.IntN(254))
		}
		g.emit(g.login(c, a, t, rng, rng.Float64() < 0.03)...)
		t = t.Add(time.Duration(20+rng.IntN(240)) * time.Second)
		g.session(c, a, t, rng)
	}
}

// session generates what c does in one signed-in session from t.
func (g *gen) session(c *cust, a actx, t time.Time, rng *rand.Rand) {
	open := sinceMidnight(t) >= 8*time.Hour+30*time.Minute && sinceMidnight(t) < 15*time.Hour+25*time.Minute
	next := func() { t = t.Add(time.Duration(15+rng.IntN(300)) * time.Second) }
	switch {
	case c.kind == kindDormant:
	case c.kind == kindDayTrader && open:
		n := 2 + rng.IntN(5)
		for k := 0; k < n; k++ {
			// Mostly large caps; thin issues from the trader's own
			// watchlist, now and then a new one.
			in := g.pick(rng, classLarge)
			budget := int64(300000 + rng.IntN(2500000))
			if rng.Float64() < 0.35 {
				if rng.Float64() < 0.15 {
					c.watch = append(c.watch, g.pick(rng, classThin, classThin, classMidThin).Symbol)
				}
				in = g.bySym[c.watch[rng.IntN(len(c.watch))]]
				budget = int64(100000 + rng.IntN(900000))
			}
			qty := buyQty(in, t, budget)
			g.emit(g.order(c, a, in, event.SideBuy, qty, event.KindCash, t, rng, rng.Float64() < 0.4)...)
			t = t.Add(time.Duration(2+rng.IntN(40)) * time.Minute)
			if sinceMidnight(t) >= 15*time.Hour+29*time.Minute {
				break
			}
			if p := c.hold[in.Symbol]; p != nil {
				g.emit(g.order(c, a, in, event.SideSell, p.qty, p.kind, t, rng, false)...)
			}
			next()
		}
		// Now and then a day trader sells a large holding to fund the day.
		if syms := c.symbols(g); len(syms) > 0 && rng.Float64() < 0.1 {
			p := c.hold[syms[0]]
			g.emit(g.order(c, a, g.bySym[syms[0]], event.SideSell, p.qty, p.kind, t, rng, false)...)
		}
	case open && rng.Float64() < map[bool]float64{true: 0.7, false: 0.35}[c.kind == kindActive]:
		n := 1 + rng.IntN(2)
		if c.kind == kindActive {
			n += rng.IntN(3)
		}
		for k := 0; k < n; k++ {
			syms := c.symbols(g)
			if len(syms) > 0 && rng.Float64() < 0.4 {
				s := syms[rng.IntN(len(syms))]
				p := c.hold[s]
				qty := p.qty
				if rng.Float64() < 0.6 && p.qty > g.bySym[s].Lot {
					qty = (p.qty / 2) / g.bySym[s].Lot * g.bySym[s].Lot
				}
				if !g.bySym[s].Foreign() || c.foreign {
					g.emit(g.order(c, a, g.bySym[s], event.SideSell, qty, p.kind, g.lunchOrClose(t, rng), rng, rng.Float64() < 0.15)...)
				}
			} else if c.cash > 100000 {
				in := g.pick(rng, classLarge, classLarge, classLarge, classMidThin, classThin)
				if c.foreign && rng.Float64() < 0.15 {
					in = g.pick(rng, classForeign)
				}
				kind := event.KindCash
				if rng.Float64() < 0.3 && !in.Foreign() {
					kind = event.KindNISA
				}
				qty := buyQty(in, t, min(c.cash, int64(100000+rng.IntN(1500000))))
				g.emit(g.order(c, a, in, event.SideBuy, qty, kind, g.lunchOrClose(t, rng), rng, rng.Float64() < 0.3)...)
			}
			next()
		}
	}
	// Money and settings, rarely.
	switch x := rng.Float64(); {
	case x < 0.03:
		if c.cash <= 200000 {
			break
		}
		amt := int64(float64(c.cash)*(0.1+rng.Float64()*0.6)) / 1000 * 1000
		c.cash -= amt
		c.dirty = true
		next()
		g.emit(a.stamp(&event.Record{Type: event.TypeWithdrawal, Time: t, Account: c.id, AmountJPY: amt, BankHash: c.bank}))
	case x < 0.032 && !c.passkey:
		next()
		c.passkey = true
		c.factors = append(c.factors, event.FactorPasskey)
		c.dirty = true
		g.emit(a.stamp(&event.Record{Type: event.TypeFactorAdd, Time: t, Account: c.id, Factor: event.FactorPasskey}))
	case x < 0.0323:
		next()
		c.email = "e-" + hexID(rng, 20)
		c.dirty = true
		g.emit(a.stamp(&event.Record{Type: event.TypeContactChange, Time: t, Account: c.id, Field: "email", NewHash: c.email}))
	case x < 0.0328:
		next()
		g.emit(a.stamp(&event.Record{Type: event.TypePasswordChange, Time: t, Account: c.id}))
	case x < 0.033:
		next()
		c.bank = "b-" + hexID(rng, 20)
		c.dirty = true
		g.emit(a.stamp(&event.Record{Type: event.TypeBankChange, Time: t, Account: c.id, BankHash: c.bank}))
	}
}

// lunchOrClose moves one order in twenty into the lunch break (queued for
// the afternoon open) and one in twenty into the closing auction.
func (g *gen) lunchOrClose(t time.Time, rng *rand.Rand) time.Time {
	switch x := rng.Float64(); {
	case x < 0.05:
		return midnight(t).Add(11*time.Hour + 35*time.Minute + time.Duration(rng.IntN(50*60))*time.Second)
	case x < 0.10:
		return midnight(t).Add(15*time.Hour + 25*time.Minute + time.Duration(rng.IntN(4*60))*time.Second)
	}
	return t
}

// pick returns a random instrument of one of the classes.
func (g *gen) pick(rng *rand.Rand, classes ...int) *inst {
	c := classes[rng.IntN(len(classes))]
	l := g.byClass[c]
	return l[rng.IntN(len(l))]
}
