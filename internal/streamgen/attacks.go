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

// target is an instrument the attackers ramp.
type target struct {
	fam Family
	sym string
}

// victim is an account the attackers act in.
type victim struct {
	fam  Family
	c    *cust
	cred string
	tgt  *inst
}

// lookalike is a legitimate customer who does on the attack day what an
// attack does.
type lookalike struct {
	name string
	c    *cust
}

// plan is what happens on the attack day (and its eve), drawn before the
// history is generated so that the victims' and look-alikes' own activity
// can step aside on the attack day.
type plan struct {
	targets []target
	victims []*victim
	looks   []lookalike
	news    *inst // the look-alikes' news spike
	tgts    map[Family][]*inst
}

// scale returns n for 2,000 customers, scaled to the customers generated,
// at least lo.
func (g *gen) scale(n, lo int) int {
	return max(lo, int(math.Round(float64(n)*float64(g.cfg.Customers)/2000)))
}

func (g *gen) enabled(f Family) bool {
	for _, k := range g.cfg.Families {
		if k == f {
			return true
		}
	}
	return false
}

// makePlan draws the targets, victims and look-alikes.
func (g *gen) makePlan() *plan {
	rng := g.arng
	p := &plan{tgts: map[Family][]*inst{}}
	used := map[string]bool{}
	pickTarget := func(fam Family, class int, lo, hi float64) *inst {
		var cands []*inst
		for _, in := range g.byClass[class] {
			if !used[in.Symbol] && in.close >= lo && in.close <= hi {
				cands = append(cands, in)
			}
		}
		if len(cands) == 0 {
			for _, in := range g.byClass[class] {
				if !used[in.Symbol] {
					cands = append(cands, in)
				}
			}
		}
		in := cands[rng.IntN(len(cands))]
		used[in.Symbol] = true
		return in
	}
	// The news issue is drawn first, so that it is the same whichever
	// families are generated.
	p.news = pickTarget("", classThin, 180, 300)
	taken := map[*cust]bool{}
	eligible := func(pred func(c *cust) bool) *cust {
		for tries := 0; tries < 5000; tries++ {
			c := g.custs[rng.IntN(len(g.custs))]
			if taken[c] || c.kind == kindDormant || c.kind == kindDayTrader || c.opened.After(g.dates[0]) || len(c.hold) < 2 || c.worth(g)-c.cash < 1500000 {
				continue
			}
			if pred != nil && !pred(c) {
				continue
			}
			taken[c] = true
			return c
		}
		return nil
	}
	type spec struct {
		fam     Family
		victims int
		targets func() []*inst
		pred    func(c *cust) bool
		cred    func(c *cust) string
	}
	relay := func(*cust) string { return CredRelay }
	specs := []spec{
		{PhishRelay, 12, func() []*inst {
			return []*inst{pickTarget(PhishRelay, classThin, 100, 200), pickTarget(PhishRelay, classThin, 100, 200)}
		}, nil, relay},
		{SlowTarget, 6, nil, nil, func(c *cust) string {
			if c.otp == "" {
				return CredStolen
			}
			return CredRelay
		}},
		{FastPump, 24, func() []*inst {
			return []*inst{pickTarget(FastPump, classThin, 100, 200), pickTarget(FastPump, classThin, 100, 200)}
		}, func(c *cust) bool { return c.otp == "" || c.otp == event.FactorEmailOTP || rng.Float64() < 0.1 }, func(*cust) string { return CredStolen }},
		{CookieReplay, 6, func() []*inst { return []*inst{pickTarget(CookieReplay, classThin, 100, 300)} }, nil, func(*cust) string { return CredCookie }},
		{BankTakeover, 6, nil, nil, relay},
		{ForeignPump, 8, func() []*inst {
			return []*inst{pickTarget(ForeignPump, classForeignT, 0, 1e9), pickTarget(ForeignPump, classForeignT, 0, 1e9)}
		}, func(c *cust) bool { return c.foreign }, func(*cust) string { return CredStolen }},
		{CleanHistory, 6, func() []*inst {
			return []*inst{pickTarget(CleanHistory, classThin, 150, 300), pickTarget(CleanHistory, classMidThin, 800, 3000)}
		}, func(c *cust) bool { return c.opened.Year() <= 2020 && c.kind == kindActive }, relay},
	}
	for _, s := range specs {
		if !g.enabled(s.fam) {
			continue
		}
		var tg []*inst
		if s.targets != nil {
			tg = s.targets()
		}
		n := g.scale(s.victims, 2)
		for i := 0; i < n; i++ {
			c := eligible(s.pred)
			if c == nil {
				c = eligible(nil)
			}
			if c == nil {
				break
			}
			v := &victim{fam: s.fam, c: c, cred: s.cred(c)}
			switch {
			case s.fam == SlowTarget:
				v.tgt = pickTarget(SlowTarget, classMidThin, 800, 3000)
				tg = append(tg, v.tgt)
			case len(tg) > 0:
				v.tgt = tg[i%len(tg)]
			}
			if s.fam == ForeignPump {
				c.foreign = true
			}
			c.busy = true
			p.victims = append(p.victims, v)
		}
		for _, in := range tg {
			p.targets = append(p.targets, target{fam: s.fam, sym: in.Symbol})
		}
		p.tgts[s.fam] = tg
	}
	if !g.cfg.NoLookalikes {
		looks := []struct {
			name string
			n    int
			pred func(c *cust) bool
		}{
			{"new_phone", 15, nil},
			{"sell_all_withdraw", 8, nil},
			{"traveller", 10, nil},
			{"passkey_enrol", 15, nil},
			{"closing_limit", 8, func(c *cust) bool { return c.opened.Year() <= 2020 }},
		}
		for _, l := range looks {
			for i := 0; i < g.scale(l.n, 2); i++ {
				if c := eligible(l.pred); c != nil {
					c.busy = true
					p.looks = append(p.looks, lookalike{l.name, c})
				}
			}
		}
		// Day traders chase the day's movers; ordinary customers buy the news.
		var traders, others []*cust
		for _, c := range g.custs {
			switch {
			case taken[c] || c.opened.After(g.dates[0]):
			case c.kind == kindDayTrader:
				traders = append(traders, c)
			case c.kind != kindDormant:
				others = append(others, c)
			}
		}
		rng.Shuffle(len(traders), func(i, j int) { traders[i], traders[j] = traders[j], traders[i] })
		rng.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
		for _, c := range traders[:min(len(traders), g.scale(8, 2))] {
			c.busy = true
			taken[c] = true
			p.looks = append(p.looks, lookalike{"momentum", c})
		}
		for _, c := range others[:min(len(others), g.scale(40, 4))] {
			c.busy = true
			taken[c] = true
			p.looks = append(p.looks, lookalike{"news_buyer", c})
		}
		for i := 0; i < g.scale(20, 2); i++ {
			day := g.dates[len(g.dates)-1-rng.IntN(2)]
			c := g.newCustomer(len(g.custs)+i, day, rng)
			c.kind = kindInvestor
			c.hold = map[string]*position{}
			c.cash = int64(500000 + rng.IntN(4500000))
			c.busy, c.dirty = true, true
			g.late = append(g.late, c)
			p.looks = append(p.looks, lookalike{"new_customer", c})
		}
	}
	sort.SliceStable(p.victims, func(i, j int) bool { return p.victims[i].fam < p.victims[j].fam })
	return p
}

// shocks sets the attack day's price moves: the ramps of the targets and
// the look-alikes' news spike.
func (g *gen) shocks() {
	rng := g.arng
	if g.plan.news != nil && !g.cfg.NoLookalikes {
		g.plan.news.shock = append(g.plan.news.shock, shock{start: 180, rise: 45, peak: 0.2, giveBack: 0.3, volMult: 25})
	}
	for _, fam := range Families { // in order: the draws must not follow a map's
		for i, in := range g.plan.tgts[fam] {
			switch fam {
			case FastPump:
				in.shock = append(in.shock, shock{start: 60 + i*190, rise: 80, peak: 0.35 + rng.Float64()*0.1, giveBack: 0.6, volMult: 40})
			case PhishRelay:
				in.shock = append(in.shock, shock{start: 40 + rng.IntN(60), rise: 200, peak: 0.18, giveBack: 0.5, volMult: 6})
			case SlowTarget:
				in.shock = append(in.shock, shock{start: 30 + rng.IntN(60), rise: 240, peak: 0.1 + rng.Float64()*0.05, giveBack: 0.3, volMult: 2.5})
			case CookieReplay:
				in.shock = append(in.shock, shock{start: 90, rise: 120, peak: 0.25, giveBack: 0.5, volMult: 15})
			case ForeignPump:
				in.shock = append(in.shock, shock{start: 30, rise: 60, peak: 0.6, giveBack: 0.6, volMult: 50})
			case CleanHistory:
				in.shock = append(in.shock, shock{start: 150, rise: 170, peak: 0.12, giveBack: 0.2, volMult: 3})
			}
		}
	}
}

// fraud emits rs labelled as v's family's, acting with v's credential.
func (g *gen) fraud(v *victim, rs ...*event.Record) {
	l := Label{Kind: LabelRecord, Family: v.fam, Credential: v.cred, MFAPassable: v.cred == CredRelay ||
		v.cred == CredStolen && v.c.otp == event.FactorEmailOTP}
	for _, r := range rs {
		if r.Type.Action() {
			g.marks[r] = l
		}
	}
	g.emit(rs...)
}

// look emits rs labelled as the look-alike's.
func (g *gen) look(name string, rs ...*event.Record) {
	for _, r := range rs {
		if r.Type.Action() {
			g.marks[r] = Label{Kind: LabelRecord, Lookalike: name}
		}
	}
	g.emit(rs...)
}

// attackerContext returns a new attacker session's context on a fresh
// device (dev, when set, is kept across sessions), from network asn.
func attackerContext(rng *rand.Rand, dev *device, asn int64, country, ip string) actx {
	if dev.id == "" {
		*dev = newDevice(rng, false)
	}
	return actx{session: "s-" + hexID(rng, 24), device: dev.id, ua: dev.ua, channel: dev.channel, asn: asn, country: country, ip: ip}
}

// residentialProxy returns a Japanese residential address: on carrier asn
// when given, else on a random carrier.
func residentialProxy(rng *rand.Rand, asn int64) (int64, string) {
	if asn == 0 {
		asn = netinfo.CarrierASNs[rng.IntN(len(netinfo.CarrierASNs))]
	}
	return asn, carrierIP(rng, asn)
}

// hosting returns an address of a hosting or foreign network.
func hosting(rng *rand.Rand) (int64, string, string) {
	opts := []struct {
		asn     int64
		country string
	}{{16509, "US"}, {14061, "SG"}, {16276, "FR"}, {20473, "JP"}, {45102, "HK"}, {132203, "HK"}, {4134, "CN"}, {24940, "DE"}, {9009, "JP"}, {7506, "JP"}}
	o := opts[rng.IntN(len(opts))]
	return o.asn, o.country, fmt.Sprintf("%d.%d.%d.%d", 40+int(o.asn%90), int(o.asn%250), rng.IntN(256), 1+rng.IntN(254))
}

// signIn returns an attacker's sign-in as v with its credential.
func (g *gen) signIn(v *victim, a actx, t time.Time, fails int) []*event.Record {
	var out []*event.Record
	for i := 0; i < fails; i++ {
		f := a
		f.session = ""
		out = append(out, f.stamp(&event.Record{Type: event.TypeLogin, Time: t, Account: v.c.id, Method: event.FactorPassword, Factors: []string{}, OK: false}))
		t = t.Add(time.Duration(3+g.arng.IntN(20)) * time.Second)
	}
	r := &event.Record{Type: event.TypeLogin, Time: t, Account: v.c.id, Method: event.FactorPassword, Factors: []string{event.FactorPassword}, OK: true}
	// A relaying kit passes the victim's code; a stolen password passes
	// only where the sign-in asks for no code, or the code goes to a
	// mailbox the attacker holds too.
	if v.c.otp != "" && (v.cred == CredRelay || v.c.otp == event.FactorEmailOTP) {
		r.Factors = append(r.Factors, v.c.otp)
	}
	return append(out, a.stamp(r))
}

// liquidate sells v's holdings from t, largest first, at most n of them
// (0: all), one every gap, and returns the time after.
func (g *gen) liquidate(v *victim, a actx, t time.Time, n int, gap func() time.Duration, limit bool) time.Time {
	syms := v.c.symbols(g)
	if n > 0 && len(syms) > n {
		syms = syms[:n]
	}
	for _, s := range syms {
		in := g.bySym[s]
		p := v.c.hold[s]
		if in.Foreign() {
			continue
		}
		g.fraud(v, g.order(v.c, a, in, event.SideSell, p.qty, p.kind, t, g.arng, limit)...)
		t = t.Add(gap())
	}
	return t
}

// buyInto buys tgt with about share of v's cash in n orders from t.
func (g *gen) buyInto(v *victim, a actx, tgt *inst, t time.Time, share float64, n int, gap func() time.Duration, limit bool) time.Time {
	budget := int64(float64(v.c.cash) * share)
	for i := 0; i < n; i++ {
		qty := buyQty(tgt, t, budget/int64(n))
		if qty > 0 {
			g.fraud(v, g.order(v.c, a, tgt, event.SideBuy, qty, event.KindCash, t, g.arng, limit)...)
		}
		t = t.Add(gap())
	}
	return t
}

func secs(rng *rand.Rand, lo, hi int) func() time.Duration {
	return func() time.Duration { return time.Duration(lo+rng.IntN(hi-lo+1)) * time.Second }
}

// eve is the day before the attack day: the clean-history campaign's
// first sells, in the closing auction.
func (g *gen) eve(day time.Time) {
	rng := g.arng
	for _, v := range g.plan.victims {
		if v.fam != CleanHistory {
			continue
		}
		var dev device
		asn, ip := residentialProxy(rng, v.c.home)
		a := attackerContext(rng, &dev, asn, "JP", ip)
		t := day.Add(15*time.Hour + 20*time.Minute + time.Duration(rng.IntN(300))*time.Second)
		g.fraud(v, g.signIn(v, a, t, 0)...)
		g.liquidate(v, a, t.Add(time.Duration(60+rng.IntN(120))*time.Second), 1, secs(rng, 30, 90), true)
	}
}

// attackDay generates the attacks and the look-alikes.
func (g *gen) attackDay(day time.Time) {
	rng := g.arng
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	jitter := func(t time.Time, maxSec int) time.Time { return t.Add(time.Duration(rng.IntN(maxSec+1)) * time.Second) }
	for i, v := range g.plan.victims {
		var dev device
		switch v.fam {
		case PhishRelay:
			asn, ip := residentialProxy(rng, 0)
			if i%3 == 0 {
				asn, ip = residentialProxy(rng, v.c.home)
			}
			t := jitter(at(9, 15), 5*3600)
			if sinceMidnight(t) >= 11*time.Hour+20*time.Minute && sinceMidnight(t) < 12*time.Hour+30*time.Minute {
				t = t.Add(75 * time.Minute)
			}
			a := attackerContext(rng, &dev, asn, "JP", ip)
			g.fraud(v, g.signIn(v, a, t, 0)...)
			t = t.Add(time.Duration(40+rng.IntN(160)) * time.Second)
			if i%5 < 3 {
				t = g.liquidate(v, a, t, 1+rng.IntN(4), secs(rng, 20, 120), false)
			} else {
				// One sell per session, a new session per sell.
				for k := 0; k < 3 && len(v.c.hold) > 0; k++ {
					if k > 0 {
						_, ip = residentialProxy(rng, asn)
						a = attackerContext(rng, &dev, asn, "JP", ip)
						g.fraud(v, g.signIn(v, a, t, 0)...)
						t = t.Add(time.Duration(30+rng.IntN(90)) * time.Second)
					}
					t = g.liquidate(v, a, t, 1, secs(rng, 20, 60), false)
					t = t.Add(time.Duration(10+rng.IntN(30)) * time.Minute)
				}
			}
			g.buyInto(v, a, v.tgt, t.Add(time.Duration(rng.IntN(600))*time.Second), 0.85, 2+rng.IntN(3), secs(rng, 60, 600), true)
		case SlowTarget:
			asn, ip := residentialProxy(rng, v.c.home)
			if rng.IntN(2) == 0 {
				asn, ip = residentialProxy(rng, 0)
			}
			t := jitter(at(9, 20), 3600)
			sessions := 3 + rng.IntN(3)
			for k := 0; k < sessions; k++ {
				a := attackerContext(rng, &dev, asn, "JP", ip)
				g.fraud(v, g.signIn(v, a, t, 0)...)
				t = t.Add(time.Duration(60+rng.IntN(200)) * time.Second)
				if k == 0 {
					syms := v.c.symbols(g)
					if len(syms) > 1 { // a mid-sized holding, not the largest
						in := g.bySym[syms[1]]
						p := v.c.hold[syms[1]]
						g.fraud(v, g.order(v.c, a, in, event.SideSell, p.qty, p.kind, t, rng, true)...)
						t = t.Add(time.Duration(60+rng.IntN(300)) * time.Second)
					}
				}
				g.buyInto(v, a, v.tgt, t, 0.9/float64(sessions-k), 1+rng.IntN(2), secs(rng, 120, 900), true)
				t = t.Add(time.Duration(40+rng.IntN(50)) * time.Minute)
				if s := sinceMidnight(t); s >= 11*time.Hour+25*time.Minute && s < 12*time.Hour+30*time.Minute {
					t = t.Add(65 * time.Minute)
				}
				if sinceMidnight(t) >= 15*time.Hour+20*time.Minute {
					break
				}
			}
		case FastPump:
			k := 0 // v is the k-th victim of its target
			for _, w := range g.plan.victims[:i] {
				if w.fam == FastPump && w.tgt == v.tgt {
					k++
				}
			}
			in := v.tgt
			sh := in.shock[0]
			start := in.timeOf(day, sh.start)
			// The ring uses a few exits per target.
			r2 := rand.New(rand.NewPCG(g.cfg.Seed, uint64(sh.start)*31+uint64(k%4)))
			asn, country, ip := hosting(r2)
			a := attackerContext(rng, &dev, asn, country, ip)
			if rng.IntN(3) == 0 {
				a.ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36"
			}
			t := start.Add(time.Duration(k*4+rng.IntN(240)) * time.Second)
			fails := 0
			if rng.IntN(3) == 0 {
				fails = 1 + rng.IntN(3)
			}
			g.fraud(v, g.signIn(v, a, t, fails)...)
			t = t.Add(time.Duration(fails*12+15+rng.IntN(35)) * time.Second)
			t = g.liquidate(v, a, t, 0, secs(rng, 1, 4), false)
			g.buyInto(v, a, in, t.Add(time.Duration(20+rng.IntN(60))*time.Second), 0.95, 2+rng.IntN(4), secs(rng, 20, 90), rng.IntN(2) == 0)
		case CookieReplay:
			own := g.ownContext(v.c, rng)
			t := jitter(at(8, 30), 5400)
			g.emit(g.login(v.c, own, t, rng, false)...)
			a := own
			if rng.IntN(5) < 3 {
				a.asn, a.country, a.ip = hosting(rng)
			} else {
				a.asn, a.ip = residentialProxy(rng, 0)
				a.country = "JP"
			}
			t = tradingTime(day, sinceMidnight(t)+time.Duration(30+rng.IntN(150))*time.Minute, rng)
			t = g.liquidate(v, a, t, 0, secs(rng, 10, 90), false)
			g.buyInto(v, a, v.tgt, t.Add(time.Duration(rng.IntN(300))*time.Second), 0.9, 2+rng.IntN(3), secs(rng, 30, 300), false)
		case BankTakeover:
			asn, ip := residentialProxy(rng, 0)
			a := attackerContext(rng, &dev, asn, "JP", ip)
			t := tradingTime(day, 9*time.Hour+time.Duration(rng.IntN(300))*time.Minute, rng)
			g.fraud(v, g.signIn(v, a, t, 0)...)
			next := func() { t = t.Add(time.Duration(20+rng.IntN(100)) * time.Second) }
			next()
			g.fraud(v, a.stamp(&event.Record{Type: event.TypeContactChange, Time: t, Account: v.c.id, Field: "email", NewHash: "e-" + hexID(rng, 20)}))
			next()
			f := []string{event.FactorTOTP, event.FactorPasskey, event.FactorSMSOTP}[rng.IntN(3)]
			g.fraud(v, a.stamp(&event.Record{Type: event.TypeFactorAdd, Time: t, Account: v.c.id, Factor: f}))
			next()
			bank := "b-" + hexID(rng, 20)
			g.fraud(v, a.stamp(&event.Record{Type: event.TypeBankChange, Time: t, Account: v.c.id, BankHash: bank}))
			next()
			if rng.IntN(2) == 0 {
				t = g.liquidate(v, a, t, 2, secs(rng, 20, 80), false)
			}
			amt := int64(float64(v.c.cash)*0.9) / 1000 * 1000
			if amt > 0 {
				v.c.cash -= amt
				g.fraud(v, a.stamp(&event.Record{Type: event.TypeWithdrawal, Time: t, Account: v.c.id, AmountJPY: amt, BankHash: bank}))
			}
			// Persistence: back later with the authenticator it added.
			if rng.IntN(2) == 0 && len(v.c.hold) > 0 {
				t = t.Add(time.Duration(60+rng.IntN(90)) * time.Minute)
				if sinceMidnight(t) < 15*time.Hour {
					a2 := attackerContext(rng, &dev, asn, "JP", ip)
					lr := &event.Record{Type: event.TypeLogin, Time: t, Account: v.c.id, Method: event.FactorPassword, Factors: []string{event.FactorPassword, f}, OK: true}
					if f == event.FactorPasskey {
						lr.Method, lr.Factors = event.FactorPasskey, []string{event.FactorPasskey}
					}
					g.fraud(v, a2.stamp(lr))
					t = g.liquidate(v, a2, t.Add(time.Minute), 2, secs(rng, 20, 80), false)
					if amt := int64(float64(v.c.cash)*0.9) / 1000 * 1000; amt > 0 {
						v.c.cash -= amt
						g.fraud(v, a2.stamp(&event.Record{Type: event.TypeWithdrawal, Time: t, Account: v.c.id, AmountJPY: amt, BankHash: bank}))
					}
				}
			}
		case ForeignPump:
			var asn int64
			var country, ip string
			if rng.IntN(2) == 0 {
				asn, country, ip = hosting(rng)
			} else {
				asn, ip = residentialProxy(rng, 0)
				country = "JP"
			}
			a := attackerContext(rng, &dev, asn, country, ip)
			t := jitter(at(9, 30), 3000)
			g.fraud(v, g.signIn(v, a, t, 0)...)
			t = g.liquidate(v, a, t.Add(time.Duration(30+rng.IntN(120))*time.Second), 0, secs(rng, 5, 60), false)
			in := v.tgt
			bt := in.timeOf(day, in.shock[0].start).Add(time.Duration(rng.IntN(3000)) * time.Second)
			if bt.Before(t) {
				bt = t.Add(time.Minute)
			}
			g.buyInto(v, a, in, bt, 0.9, 2+rng.IntN(3), secs(rng, 30, 300), rng.IntN(2) == 0)
		case CleanHistory:
			asn, ip := residentialProxy(rng, v.c.home)
			// The lunch break: a sell queued for the afternoon open.
			a := attackerContext(rng, &dev, asn, "JP", ip)
			t := jitter(at(11, 40), 2400)
			g.fraud(v, g.signIn(v, a, t, 0)...)
			g.liquidate(v, a, t.Add(time.Duration(60+rng.IntN(200))*time.Second), 1, secs(rng, 30, 90), true)
			// Afternoon sessions: limit orders at the ask, the last in the closing auction.
			t = jitter(at(13, 0), 5400)
			for k := 0; k < 2; k++ {
				a = attackerContext(rng, &dev, asn, "JP", ip)
				g.fraud(v, g.signIn(v, a, t, 0)...)
				g.buyInto(v, a, v.tgt, t.Add(time.Duration(60+rng.IntN(200))*time.Second), 0.45, 1+rng.IntN(2), secs(rng, 120, 600), true)
				t = jitter(at(15, 22), 240)
			}
		}
	}
	g.lookalikes(day)
}

// lookalikes generates the legitimate customers who look like attacks.
func (g *gen) lookalikes(day time.Time) {
	rng := g.arng
	movers := g.plan.tgts[FastPump]
	for _, l := range g.plan.looks {
		c := l.c
		a := g.ownContext(c, rng)
		t := tradingTime(day, 9*time.Hour+time.Duration(rng.IntN(360))*time.Minute, rng)
		gap := secs(rng, 30, 400)
		switch l.name {
		case "new_phone":
			d := newDevice(rng, true)
			c.devices = append(c.devices, d)
			a.device, a.ua, a.channel = d.id, d.ua, d.channel
			a.asn, a.ip = c.mobile, cgnatIP(rng, c.mobile)
			lr := g.login(c, a, t, rng, rng.IntN(4) == 0)
			lr[len(lr)-1].Method, lr[len(lr)-1].Factors = event.FactorPassword, []string{event.FactorPassword}
			if c.otp != "" {
				lr[len(lr)-1].Factors = append(lr[len(lr)-1].Factors, c.otp)
			}
			g.look(l.name, lr...)
			t = t.Add(time.Duration(30+rng.IntN(200)) * time.Second)
			syms := c.symbols(g)
			if len(syms) > 0 {
				p := c.hold[syms[0]]
				g.look(l.name, g.order(c, a, g.bySym[syms[0]], event.SideSell, p.qty, p.kind, t, rng, false)...)
				t = t.Add(gap())
			}
			for k := 0; k < 1+rng.IntN(2); k++ {
				in := g.pick(rng, classLarge)
				g.look(l.name, g.order(c, a, in, event.SideBuy, buyQty(in, t, c.cash*4/10), event.KindCash, t, rng, false)...)
				t = t.Add(gap())
			}
		case "sell_all_withdraw":
			g.look(l.name, g.login(c, a, t, rng, false)...)
			for _, s := range c.symbols(g) {
				t = t.Add(gap())
				p := c.hold[s]
				if in := g.bySym[s]; !in.Foreign() {
					g.look(l.name, g.order(c, a, in, event.SideSell, p.qty, p.kind, t, rng, false)...)
				}
			}
			t = t.Add(gap())
			if amt := int64(float64(c.cash)*0.9) / 1000 * 1000; amt > 0 {
				c.cash -= amt
				g.look(l.name, a.stamp(&event.Record{Type: event.TypeWithdrawal, Time: t, Account: c.id, AmountJPY: amt, BankHash: c.bank}))
			}
		case "traveller":
			fr := foreignResidential[rng.IntN(len(foreignResidential))]
			a.asn, a.country, a.ip = fr.asn, fr.country, fmt.Sprintf("%d.%d.%d.%d", 60+int(fr.asn%40), int(fr.asn%200), rng.IntN(256), 1+rng.IntN(254))
			g.look(l.name, g.login(c, a, t, rng, false)...)
			t = t.Add(gap())
			if syms := c.symbols(g); len(syms) > 0 && rng.IntN(2) == 0 {
				p := c.hold[syms[0]]
				g.look(l.name, g.order(c, a, g.bySym[syms[0]], event.SideSell, p.qty, p.kind, t, rng, false)...)
			} else {
				in := g.pick(rng, classLarge)
				g.look(l.name, g.order(c, a, in, event.SideBuy, buyQty(in, t, c.cash/3), event.KindCash, t, rng, false)...)
			}
			if rng.IntN(3) == 0 && c.cash > 100000 {
				t = t.Add(gap())
				amt := c.cash / 2 / 1000 * 1000
				c.cash -= amt
				g.look(l.name, a.stamp(&event.Record{Type: event.TypeWithdrawal, Time: t, Account: c.id, AmountJPY: amt, BankHash: c.bank}))
			}
		case "passkey_enrol":
			g.look(l.name, g.login(c, a, t, rng, false)...)
			t = t.Add(gap())
			if rng.IntN(3) == 0 {
				c.email = "e-" + hexID(rng, 20)
				g.look(l.name, a.stamp(&event.Record{Type: event.TypeContactChange, Time: t, Account: c.id, Field: "email", NewHash: c.email}))
				t = t.Add(gap())
			}
			if !c.passkey {
				c.passkey = true
				c.factors = append(c.factors, event.FactorPasskey)
				c.dirty = true
			}
			g.look(l.name, a.stamp(&event.Record{Type: event.TypeFactorAdd, Time: t, Account: c.id, Factor: event.FactorPasskey}))
		case "closing_limit":
			// Lunch-break and closing-auction orders, limit at the ask, thin issues.
			t = day.Add(11*time.Hour + 40*time.Minute + time.Duration(rng.IntN(2400))*time.Second)
			g.look(l.name, g.login(c, a, t, rng, false)...)
			if syms := c.symbols(g); len(syms) > 0 {
				p := c.hold[syms[0]]
				g.look(l.name, g.order(c, a, g.bySym[syms[0]], event.SideSell, p.qty, p.kind, t.Add(gap()), rng, true)...)
			}
			t = day.Add(15*time.Hour + 22*time.Minute + time.Duration(rng.IntN(400))*time.Second)
			a2 := g.ownContext(c, rng)
			g.look(l.name, g.login(c, a2, t, rng, false)...)
			in := g.pick(rng, classThin, classMidThin)
			g.look(l.name, g.order(c, a2, in, event.SideBuy, buyQty(in, t, c.cash/2), event.KindCash, t.Add(40*time.Second), rng, true)...)
		case "momentum":
			// A day trader chases the day's movers: a ramped issue (when
			// there is one) and the news spike.
			ins := []*inst{g.plan.news}
			if len(movers) > 0 {
				ins = append(ins, movers[rng.IntN(len(movers))])
			}
			for _, in := range ins {
				if len(in.shock) == 0 {
					continue
				}
				t = in.timeOf(day, in.shock[0].start+10+rng.IntN(40)).Add(time.Duration(rng.IntN(60)) * time.Second)
				a = g.ownContext(c, rng)
				g.look(l.name, g.login(c, a, t, rng, false)...)
				t = t.Add(time.Duration(20+rng.IntN(60)) * time.Second)
				g.look(l.name, g.order(c, a, in, event.SideBuy, buyQty(in, t, int64(500000+rng.IntN(2000000))), event.KindCash, t, rng, rng.IntN(2) == 0)...)
				t = t.Add(time.Duration(5+rng.IntN(40)) * time.Minute)
				if p := c.hold[in.Symbol]; p != nil {
					g.look(l.name, g.order(c, a, in, event.SideSell, p.qty, p.kind, t, rng, false)...)
				}
			}
		case "news_buyer":
			in := g.plan.news
			t = in.timeOf(day, 180+rng.IntN(60)).Add(time.Duration(rng.IntN(60)) * time.Second)
			g.look(l.name, g.login(c, a, t, rng, false)...)
			t = t.Add(time.Duration(30+rng.IntN(120)) * time.Second)
			budget := min(c.cash, int64(200000+rng.IntN(1800000)))
			if syms := c.symbols(g); len(syms) > 0 && rng.IntN(3) == 0 {
				// Sells a large holding to buy the news.
				p := c.hold[syms[0]]
				g.look(l.name, g.order(c, a, g.bySym[syms[0]], event.SideSell, p.qty, p.kind, t, rng, false)...)
				t = t.Add(time.Duration(20+rng.IntN(120)) * time.Second)
				budget = c.cash * 8 / 10
			}
			g.look(l.name, g.order(c, a, in, event.SideBuy, buyQty(in, t, budget), event.KindCash, t, rng, rng.IntN(2) == 0)...)
		case "new_customer":
			a.device, a.ua, a.channel = c.devices[0].id, c.devices[0].ua, c.devices[0].channel
			g.look(l.name, g.login(c, a, t, rng, rng.IntN(3) == 0)...)
			for k := 0; k < 2+rng.IntN(3); k++ {
				t = t.Add(gap())
				in := g.pick(rng, classLarge, classLarge, classThin, classMidThin)
				g.look(l.name, g.order(c, a, in, event.SideBuy, buyQty(in, t, c.cash/4), event.KindCash, t, rng, rng.IntN(3) == 0)...)
			}
		}
	}
}
