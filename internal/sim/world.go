package sim

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/population"
)

// jst is Japan Standard Time.
var jst = clock.JST

// Day0 is the simulated trading day: Tuesday 15 April 2025, the month the
// FSA counted the most unauthorised accesses.
var Day0 = time.Date(2025, 4, 15, 0, 0, 0, 0, jst)

func at(h, m int) time.Time {
	return Day0.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

// Techniques of access.
const (
	TechStuffing    = "credential_stuffing"
	TechPhishing    = "realtime_phishing"
	TechInfostealer = "infostealer_cookie"
)

// Trading variants, each built to slip past one rule.
const (
	VarFull        = "full_liquidation"    // sell everything, buy the target
	VarUnderShare  = "under_sell_share"    // sell 45% of holdings (R1 wants 50%)
	VarSplit       = "split_proceeds"      // 60% of proceeds in the target (R1 wants 70%)
	VarTwoSessions = "two_sessions"        // sell, sign out, buy 70 minutes later (R1's burst expires)
	VarWalkUp      = "limit_walk_up"       // limit buys through the ask
	VarCashOnly    = "access_only"         // over the ring's capacity: look, maybe withdraw
	VarSameISP     = "same_isp_proxy"      // cookie replay via a proxy on the victim's own ISP, device and UA copied
	VarCopyDevice  = "copied_device_proxy" // cookie replay via a Japanese residential proxy, device and UA copied
)

// netw is where an actor connects from.
type netw struct {
	IP      string
	ASN     int64
	Country string
}

// wave is one liquidate-and-pump wave against one target.
type wave struct {
	Name     string
	Symbol   string
	From, To time.Time
	Fast     bool
	Foreign  bool
	Cap      int
	n        int
}

// legitAction is one thing a customer does in a session.
type legitAction struct {
	Kind   string // order, withdrawal, contact_change, bank_change
	Order  broker.OrderRequest
	Amount int64
	Field  string
	Value  string
}

// legitPlan is one legitimate session of the day.
type legitPlan struct {
	Acct    string
	Session string
	Start   time.Time
	Device  string
	UA      string
	Channel string
	Net     netw
	Acts    []legitAction
	News    bool
	Seed    uint64
}

// attackPlan is one attack session (or a pair, for VarTwoSessions).
type attackPlan struct {
	ID       string
	Acct     string
	Tech     string
	Variant  string
	Wave     int // index into world.waves; -1: none
	Start    time.Time
	Gap      time.Duration // mean pause between actions
	Net      netw
	Device   string
	UA       string
	Persist  bool // change the email
	AddTOTP  bool // add the attacker's authenticator
	Withdraw bool // change the bank and withdraw
	Victim   *legitPlan
	Seed     uint64
	// Adapt is the adaptive scenario's strategy for the session (nil in
	// campaign-2025); see adaptive.go.
	Adapt *adaptPlan
}

// noiseLogin is a credential-stuffing attempt that cannot succeed (stale
// password, or a one-time code the bot does not have).
type noiseLogin struct {
	Acct   string
	At     time.Time
	Net    netw
	Device string
	UA     string
	// PasswordOK: the password verified but the code step was not passed.
	PasswordOK bool
}

// mule is one of the ring's accounts at the brokerage.
type mule struct {
	c   population.Customer
	net netw
	dev string
}

// world is what every variant of a run shares: the universe, the acting
// customers, the history and the day's plans. It is read-only once built.
type world struct {
	seed      uint64
	customers int
	enrol     population.Enrolment
	universe  []market.Instrument
	inst      map[string]market.Instrument
	large     []market.Instrument
	thin      []market.Instrument

	people   map[string]*population.Customer // acting customers
	order    []string                        // their ids, sorted
	loginMFA map[string]bool                 // a one-time code is asked at password sign-in
	mules    []mule

	history []event.Record
	legit   []*legitPlan
	attacks []*attackPlan
	noise   []noiseLogin
	waves   []*wave
	news    string
}

func (w *world) stepsPerRun() int { return len(w.legit) + len(w.attacks) + 100 }

// lot is sym's trading unit, or 1 for an instrument the world does not
// list (a holding a server added, say), so no quantity is ever rounded
// by a lot of 0.
func (w *world) lot(sym string) int64 {
	if in, ok := w.inst[sym]; ok && in.Lot > 0 {
		return in.Lot
	}
	return 1
}

func hash64(parts ...any) uint64 {
	h := fnv.New64a()
	fmt.Fprint(h, parts...)
	return h.Sum64()
}

func rngFor(seed uint64, parts ...any) *rand.Rand {
	return rand.New(rand.NewPCG(seed, hash64(parts...)))
}

var userAgents = []string{
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/135.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.3 Safari/605.1.15",
	"Mozilla/5.0 (Linux; Android 14; SH-M26) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/135.0.0.0 Mobile Safari/537.36",
	"KabutoSecurities/5.2.1 (iPhone; iOS 18.3)",
	"KabutoSecurities/5.2.1 (Android 14)",
}

func uaFor(device string) (ua, channel string) {
	ua = userAgents[hash64("ua", device)%uint64(len(userAgents))]
	channel = event.ChannelWeb
	if ua[:5] == "Kabut" {
		channel = event.ChannelApp
	}
	return ua, channel
}

// Foreign networks of travellers (not hosting): addresses in 198.18.0.0/15,
// with their ASN and country given explicitly.
var travelNets = []netw{
	{"198.18.1.", 45430, "TH"}, {"198.18.2.", 7922, "US"}, {"198.18.3.", 4766, "KR"},
	{"198.18.4.", 3462, "TW"}, {"198.18.5.", 3215, "FR"}, {"198.18.6.", 9506, "SG"},
}

// homeNet is the customer's home broadband: their carrier (ASN) as the
// population gives it, and an address of their own. The built-in table's
// Japanese residential range (192.0.2.0/24) has only 256 addresses, which
// would put dozens of households behind each one and make every customer
// look like shared infrastructure, so each household gets a unique address
// in 100.64.0.0/10 with its carrier's ASN and country given explicitly (as
// a brokerage's IP-intelligence export would).
func homeNet(c *population.Customer) netw {
	var n int
	fmt.Sscanf(c.ID[1:], "%d", &n)
	if c.ID[0] == 'R' {
		n += 4_000_000
	}
	return netw{fmt.Sprintf("100.%d.%d.%d", 64+(n>>16)&63, (n>>8)&255, n&255), c.HomeASN, "JP"}
}

// mobileNet is a Japanese mobile carrier's address (NTT docomo; carrier-grade
// NAT, so now and then shared by customers).
func mobileNet(r *rand.Rand) netw {
	return netw{fmt.Sprintf("198.19.%d.%d", r.IntN(256), 1+r.IntN(254)), 9605, "JP"}
}

// Attack infrastructure of the built-in network table.
func dataCentre(r *rand.Rand, pool int) netw {
	i := r.IntN(pool)
	switch i % 3 {
	case 0:
		n := []struct {
			asn int64
			cc  string
		}{{16509, "US"}, {15169, "US"}, {14061, "SG"}, {16276, "FR"}}[(i/3)%4]
		base := map[int64]int{16509: 0, 15169: 64, 14061: 128, 16276: 192}[n.asn]
		return netw{fmt.Sprintf("198.51.100.%d", base+1+(i*7)%62), n.asn, n.cc}
	case 1:
		return netw{fmt.Sprintf("203.0.113.%d", 1+(i*5)%126), 45102, "HK"}
	}
	return netw{fmt.Sprintf("203.0.113.%d", 129+(i*3)%62), 4134, "CN"}
}

func residentialProxy(r *rand.Rand) netw {
	return netw{fmt.Sprintf("203.0.113.%d", 193+r.IntN(62)), 2527, "JP"}
}

// sameISP is an address on the victim's own carrier: the careful
// infostealer's proxy exit.
func sameISP(c *population.Customer, r *rand.Rand) netw {
	base := map[int64]int{4713: 0, 2516: 64, 17676: 128, 9605: 192}[c.HomeASN]
	return netw{fmt.Sprintf("192.0.2.%d", base+1+r.IntN(62)), c.HomeASN, "JP"}
}

// buildWorld makes the population, the history and the day's plans.
func buildWorld(cfg Config) (*world, error) {
	w := &world{seed: cfg.Seed, customers: cfg.Customers, enrol: cfg.Enrolment, inst: map[string]market.Instrument{},
		people: map[string]*population.Customer{}, loginMFA: map[string]bool{}}
	w.universe = market.Universe(cfg.Seed, 150)
	for _, in := range w.universe {
		w.inst[in.Symbol] = in
		switch {
		case in.LargeCap && market.Domestic(in.Market):
			w.large = append(w.large, in)
		case market.Domestic(in.Market) && in.PrevClose < 500 && !in.LargeCap:
			w.thin = append(w.thin, in)
		}
	}
	sort.Slice(w.thin, func(i, j int) bool { return w.thin[i].Symbol < w.thin[j].Symbol })
	everyone := population.Generate(cfg.Seed, cfg.Customers, w.universe, cfg.Enrolment, Day0)
	r := rngFor(cfg.Seed, "world")

	// The day's targets and the news issue.
	var band, hk, sh []market.Instrument
	for _, in := range w.thin {
		if in.PrevClose >= 100 && in.PrevClose <= 200 && in.Market == market.TSEStandard {
			band = append(band, in)
		}
	}
	for _, in := range w.universe {
		if !in.LargeCap && in.Market == market.HK {
			hk = append(hk, in)
		}
		if !in.LargeCap && in.Market == market.SH {
			sh = append(sh, in)
		}
	}
	if len(band) < 5 || len(hk) == 0 || len(sh) == 0 {
		return nil, fmt.Errorf("universe of seed %d has too few thin issues for the scenario", cfg.Seed)
	}
	r.Shuffle(len(band), func(i, j int) { band[i], band[j] = band[j], band[i] })
	w.news = band[4].Symbol
	w.waves = []*wave{
		{Name: "W1", Symbol: hk[r.IntN(len(hk))].Symbol, From: at(9, 15), To: at(9, 35), Fast: true, Foreign: true},
		{Name: "W2", Symbol: sh[r.IntN(len(sh))].Symbol, From: at(9, 40), To: at(11, 10), Foreign: true},
		{Name: "W3", Symbol: band[0].Symbol, From: at(10, 5), To: at(10, 25), Fast: true},
		{Name: "W4", Symbol: band[1].Symbol, From: at(12, 35), To: at(14, 0)},
		{Name: "W5", Symbol: band[2].Symbol, From: at(13, 10), To: at(13, 30), Fast: true},
		{Name: "W6", Symbol: band[3].Symbol, From: at(14, 0), To: at(15, 10)},
	}
	for _, wv := range w.waves {
		wv.Cap = 60
	}

	// Who acts today: a sample of the book signs in; the attackers pick
	// their victims from the whole book.
	perm := r.Perm(cfg.Customers)
	next := 0
	take := func(n int) []*population.Customer {
		out := make([]*population.Customer, 0, n)
		for ; len(out) < n && next < len(perm); next++ {
			out = append(out, &everyone[perm[next]])
		}
		return out
	}
	scale := func(share float64, lo, hi int) int { return min(max(int(float64(cfg.Customers)*share), lo), hi) }
	legitC := take(cfg.Sessions)
	dump := take(scale(0.04, 20, 20000))
	phished := take(scale(0.012, 6, 1500))
	stolen := take(scale(0.004, 3, 500))
	keep := func(cs []*population.Customer) {
		for _, c := range cs {
			cc := *c
			w.people[cc.ID] = &cc
		}
	}
	// Sign-in with a one-time code: optional at most brokers in April 2025
	// (about half had it on), on by default from the JSDA guideline of
	// October 2025.
	mfaShare := 0.45
	if cfg.Enrolment.Name == population.Enrolment2026.Name {
		mfaShare = 1
	}
	keep(legitC)
	keep(phished)
	keep(stolen)
	valid := map[string]bool{}
	for _, c := range dump {
		if r.Float64() < 0.35 { // the leaked password is still the current one
			valid[c.ID] = true
		}
	}
	for _, c := range dump {
		if valid[c.ID] {
			keep([]*population.Customer{c})
		}
	}
	for _, c := range everyone {
		if _, ok := w.people[c.ID]; ok {
			w.loginMFA[c.ID] = rngFor(cfg.Seed, "mfa", c.ID).Float64() < mfaShare
		}
	}
	everyone = nil

	w.buildMules(r)
	for id := range w.people {
		w.order = append(w.order, id)
	}
	sort.Strings(w.order)

	// Legitimate sessions.
	for i, c := range legitC {
		w.legit = append(w.legit, w.planLegit(w.people[c.ID], i))
	}
	w.planNews(r)
	// Infostealer victims signed in earlier today: their sessions are stolen.
	var victims []*legitPlan
	for i, c := range stolen {
		lp := w.planLegit(w.people[c.ID], len(legitC)+i)
		victims = append(victims, lp)
		w.legit = append(w.legit, lp)
	}
	w.planAttacks(r, dump, valid, phished, victims)
	sort.SliceStable(w.legit, func(i, j int) bool { return w.legit[i].Start.Before(w.legit[j].Start) })
	w.history = w.makeHistory(cfg.HistoryDays)
	return w, nil
}

// buildMules makes the ring's three accounts, pre-positioned in every
// domestic target over the previous week.
func (w *world) buildMules(r *rand.Rand) {
	for k := range 3 {
		c := population.Customer{}
		c.ID = fmt.Sprintf("R%07d", k+1)
		c.Name = []string{"Nakano Trading", "Ota Kenta", "Kimura Rei"}[k]
		c.Locale = "ja"
		c.Email = fmt.Sprintf("mule%d@example.net", k+1)
		c.Phone = fmt.Sprintf("080-0000-%04d", k+1)
		c.Address = "1-1-1 Shinjuku, Tokyo"
		c.Bank = fmt.Sprintf("Aeon Bank 777-%07d", k+1)
		c.Opened = Day0.AddDate(-2, 0, 0)
		c.CashJPY = 2_000_000
		c.Habit = population.Active
		c.ForeignEnabled = true
		c.Factors = []string{event.FactorPassword, event.FactorSMSOTP}
		c.Devices = []string{fmt.Sprintf("dev-%s-0", c.ID)}
		c.HomeIP, c.HomeASN = fmt.Sprintf("192.0.2.%d", 70+k), 2516
		c.Hours = [2]int{9, 15}
		for _, wv := range w.waves {
			in := w.inst[wv.Symbol]
			qty := int64(float64(in.ADVShares)*(0.8+0.4*r.Float64())) / in.Lot * in.Lot
			c.Holdings = append(c.Holdings, event.Holding{Symbol: in.Symbol, Qty: qty, CostJPY: int64(float64(qty) * in.PriceJPY(in.PrevClose) * 0.97), Kind: event.KindCash})
		}
		sort.Slice(c.Holdings, func(i, j int) bool { return c.Holdings[i].Symbol < c.Holdings[j].Symbol })
		w.people[c.ID] = &c
		w.loginMFA[c.ID] = true
		w.mules = append(w.mules, mule{c: c, net: homeNet(&c), dev: c.Devices[0]})
	}
}

// tradingMinute returns a time in TSE hours at minute m of the trading day (0..299).
func tradingMinute(m int) time.Time {
	if m < 150 {
		return at(9, 0).Add(time.Duration(m) * time.Minute)
	}
	return at(12, 30).Add(time.Duration(m-150) * time.Minute)
}

func lotsFor(in market.Instrument, budget float64) int64 {
	px := in.PriceJPY(in.PrevClose)
	lots := int64(budget / (px * float64(in.Lot)))
	return max(lots, 0) * in.Lot
}

// planLegit plans the day's session of customer c by their habit.
func (w *world) planLegit(c *population.Customer, i int) *legitPlan {
	r := rngFor(w.seed, "legit", c.ID)
	p := &legitPlan{Acct: c.ID, Session: fmt.Sprintf("S-%s-d0", c.ID), Seed: hash64(w.seed, "legit-run", c.ID)}
	// When: in the customer's usual hours if they overlap the market, else any time in session.
	lo, hi := max(c.Hours[0], 9), min(c.Hours[1], 15)
	var start time.Time
	if lo <= hi && r.IntN(10) < 8 {
		h := lo + r.IntN(hi-lo+1)
		start = at(h, r.IntN(60))
		if h == 11 && start.Minute() >= 25 {
			start = at(12, 30+r.IntN(20))
		}
		if h == 15 {
			start = at(15, r.IntN(20))
		}
	} else {
		start = tradingMinute(r.IntN(290))
	}
	p.Start = start.Add(time.Duration(r.IntN(60)) * time.Second)
	p.Device = c.Devices[0]
	if len(c.Devices) > 1 && r.IntN(10) < 3 {
		p.Device = c.Devices[1]
	}
	p.Net = homeNet(c)
	if r.IntN(100) < 15 {
		p.Net = mobileNet(r)
	}
	switch c.Habit {
	case population.PhoneSwaps:
		if r.IntN(4) == 0 {
			p.Device = fmt.Sprintf("dev-%s-new", c.ID)
		}
	case population.Traveller:
		if r.IntN(100) < 35 {
			t := travelNets[hash64("trip", c.ID)%uint64(len(travelNets))]
			p.Net = netw{fmt.Sprintf("%s%d", t.IP, 1+r.IntN(250)), t.ASN, t.Country}
		}
	}
	p.UA, p.Channel = uaFor(p.Device)
	cash := float64(c.CashJPY)
	buyLarge := func(maxV float64) {
		in := w.large[r.IntN(len(w.large))]
		budget := min(cash*0.5, maxV) * (0.3 + 0.7*r.Float64())
		if q := lotsFor(in, budget); q > 0 {
			kind := event.KindCash
			if r.IntN(2) == 0 {
				kind = event.KindNISA
			}
			p.Acts = append(p.Acts, legitAction{Kind: "order", Order: broker.OrderRequest{Symbol: in.Symbol, Side: event.SideBuy, Qty: q, PriceType: event.PriceMarket, Kind: kind}})
			cash -= float64(q) * in.PriceJPY(in.PrevClose)
		}
	}
	sellSome := func(thinOnly bool) {
		var hs []event.Holding
		for _, h := range c.Holdings {
			if in := w.inst[h.Symbol]; !thinOnly || !in.LargeCap {
				hs = append(hs, h)
			}
		}
		if len(hs) == 0 {
			return
		}
		h := hs[r.IntN(len(hs))]
		lot := w.lot(h.Symbol)
		q := (h.Qty / lot / 2) * lot
		if q == 0 {
			q = h.Qty
		}
		p.Acts = append(p.Acts, legitAction{Kind: "order", Order: broker.OrderRequest{Symbol: h.Symbol, Side: event.SideSell, Qty: q, PriceType: event.PriceMarket, Kind: h.Kind}})
	}
	buyThin := func() {
		var in market.Instrument
		for _, h := range c.Holdings {
			if x := w.inst[h.Symbol]; !x.LargeCap && market.Domestic(x.Market) {
				in = x
			}
		}
		if in.Symbol == "" || r.IntN(3) == 0 {
			in = w.thin[hash64("fav", c.ID, r.IntN(3))%uint64(len(w.thin))]
		}
		if q := lotsFor(in, min(cash*0.4, 400_000)*(0.3+0.7*r.Float64())); q > 0 {
			p.Acts = append(p.Acts, legitAction{Kind: "order", Order: broker.OrderRequest{Symbol: in.Symbol, Side: event.SideBuy, Qty: q, PriceType: event.PriceMarket, Kind: event.KindCash}})
		}
	}
	switch c.Habit {
	case population.LongTerm:
		if r.IntN(4) == 0 {
			if r.IntN(5) < 3 {
				buyLarge(1_500_000)
			} else {
				sellSome(false)
			}
		}
	case population.Active, population.PhoneSwaps:
		for range 1 + r.IntN(3) {
			if r.IntN(2) == 0 {
				buyLarge(1_000_000)
			} else {
				sellSome(false)
			}
		}
	case population.DayTrader:
		for range 2 + r.IntN(4) {
			switch r.IntN(5) {
			case 0, 1:
				buyThin()
			case 2:
				sellSome(true)
			default:
				buyLarge(800_000)
			}
		}
	case population.Traveller:
		if r.IntN(5) == 0 {
			sellSome(false)
		}
	}
	switch x := r.IntN(1000); {
	case x < 12:
		amt := int64(cash*(0.1+0.3*r.Float64())) / 1000 * 1000
		if amt > 0 {
			p.Acts = append(p.Acts, legitAction{Kind: "withdrawal", Amount: amt})
		}
	case x < 15:
		p.Acts = append(p.Acts, legitAction{Kind: "contact_change", Field: "address", Value: fmt.Sprintf("%d-%d-%d Setagaya, Tokyo", 1+r.IntN(5), 1+r.IntN(20), 1+r.IntN(30))})
	case x < 17:
		p.Acts = append(p.Acts, legitAction{Kind: "bank_change", Value: fmt.Sprintf("Sony Bank %03d-%07d", r.IntN(1000), r.IntN(10000000))})
	case x < 20:
		// A rebalance: sell everything, buy a large cap with most of it.
		p.Acts = p.Acts[:0]
		for _, h := range c.Holdings {
			p.Acts = append(p.Acts, legitAction{Kind: "order", Order: broker.OrderRequest{Symbol: h.Symbol, Side: event.SideSell, Qty: h.Qty, PriceType: event.PriceMarket, Kind: h.Kind}})
		}
		cash += float64(c.CashJPY)
		buyLarge(3_000_000)
	}
	return p
}

// planNews gives some active customers a buy of the news issue: a benign
// spike many customers buy on their own devices.
func (w *world) planNews(r *rand.Rand) {
	n := max(12, len(w.legit)/150)
	in := w.inst[w.news]
	for _, p := range w.legit {
		if n == 0 {
			break
		}
		c := w.people[p.Acct]
		if c.Habit != population.Active && c.Habit != population.DayTrader || c.CashJPY < 300_000 {
			continue
		}
		p.News = true
		p.Start = at(10, 40).Add(time.Duration(r.IntN(45*60)) * time.Second)
		if p.Start.After(at(11, 25)) {
			p.Start = at(11, 25)
		}
		q := lotsFor(in, min(float64(c.CashJPY)*0.3, 600_000))
		p.Acts = append([]legitAction{{Kind: "order", Order: broker.OrderRequest{Symbol: in.Symbol, Side: event.SideBuy, Qty: max(q, in.Lot), PriceType: event.PriceMarket, Kind: event.KindCash}}}, p.Acts...)
		n--
	}
}

func holdingsValue(w *world, c *population.Customer) float64 {
	v := 0.0
	for _, h := range c.Holdings {
		in := w.inst[h.Symbol]
		v += float64(h.Qty) * in.PriceJPY(in.PrevClose)
	}
	return v
}

// planAttacks plans the campaign: the stuffing bot's attempts, the phished
// and infostealer sessions, and the waves they are used in.
func (w *world) planAttacks(r *rand.Rand, dump []*population.Customer, valid map[string]bool, phished []*population.Customer, victims []*legitPlan) {
	n := 0
	newPlan := func(c *population.Customer, tech string) *attackPlan {
		n++
		id := fmt.Sprintf("A%05d", n)
		return &attackPlan{ID: id, Acct: c.ID, Tech: tech, Wave: -1, Seed: hash64(w.seed, "attack", id), Device: fmt.Sprintf("x-%016x", hash64(w.seed, "atkdev", id))}
	}
	var pool []*attackPlan
	botUA := userAgents[1]
	for _, c := range dump {
		net := dataCentre(r, 24)
		if r.IntN(100) < 55 {
			net = residentialProxy(r)
		}
		dev := fmt.Sprintf("x-bot-%d", r.IntN(6))
		if !valid[c.ID] || w.loginMFA[c.ID] {
			w.noise = append(w.noise, noiseLogin{Acct: c.ID, At: at(9, 0).Add(time.Duration(r.IntN(6*3600)) * time.Second), Net: net, Device: dev, UA: botUA, PasswordOK: valid[c.ID]})
			continue
		}
		p := newPlan(w.people[c.ID], TechStuffing)
		p.Net, p.UA = net, botUA
		pool = append(pool, p)
	}
	for _, c := range phished {
		p := newPlan(w.people[c.ID], TechPhishing)
		p.Net = dataCentre(r, 24)
		if r.IntN(2) == 0 {
			p.Net = residentialProxy(r)
		}
		p.UA = botUA
		pool = append(pool, p)
	}
	for _, v := range victims {
		c := w.people[v.Acct]
		p := newPlan(c, TechInfostealer)
		p.Victim = v
		p.UA = v.UA
		switch x := r.IntN(100); {
		case x < 40:
			p.Net, p.UA = dataCentre(r, 24), botUA
		case x < 75:
			p.Net, p.Device, p.Variant = residentialProxy(r), v.Device, VarCopyDevice
		default:
			p.Net, p.Device, p.Variant = sameISP(c, r), v.Device, VarSameISP
		}
		pool = append(pool, p)
	}
	// The ring uses the richest accesses first, foreign-enabled ones on
	// the Hong Kong and Shanghai waves.
	sort.SliceStable(pool, func(i, j int) bool {
		return holdingsValue(w, w.people[pool[i].Acct])+float64(w.people[pool[i].Acct].CashJPY) >
			holdingsValue(w, w.people[pool[j].Acct])+float64(w.people[pool[j].Acct].CashJPY)
	})
	for _, p := range pool {
		c := w.people[p.Acct]
		pr := rngFor(w.seed, "plan", p.ID)
		if holdingsValue(w, c) >= 300_000 {
			for k, wv := range w.waves {
				if wv.n >= wv.Cap || wv.Foreign && !c.ForeignEnabled {
					continue
				}
				if !wv.Foreign && c.ForeignEnabled && w.waves[0].n < w.waves[0].Cap {
					continue // keep foreign-enabled accounts for the foreign waves while they need them
				}
				p.Wave = k
				wv.n++
				break
			}
			if p.Wave < 0 { // foreign-enabled and the foreign waves are full
				for k, wv := range w.waves {
					if wv.n < wv.Cap && !wv.Foreign {
						p.Wave = k
						wv.n++
						break
					}
				}
			}
		}
		if p.Wave < 0 {
			p.Variant = VarCashOnly
			p.Start = at(9, 5).Add(time.Duration(pr.IntN(6*3600)) * time.Second)
			p.Withdraw = pr.IntN(3) == 0
			p.Gap = 20 * time.Second
		} else {
			wv := w.waves[p.Wave]
			p.Start = wv.From.Add(time.Duration(pr.Int64N(int64(wv.To.Sub(wv.From)))))
			p.Gap = 4 * time.Second
			if !wv.Fast {
				p.Gap = 60 * time.Second
			}
			if p.Variant == "" {
				switch x := pr.IntN(100); {
				case x < 50:
					p.Variant = VarFull
				case x < 62:
					p.Variant = VarUnderShare
				case x < 74:
					p.Variant = VarSplit
				case x < 86 && p.Tech != TechInfostealer:
					p.Variant = VarTwoSessions
				default:
					p.Variant = VarWalkUp
				}
			}
			p.Withdraw = pr.IntN(5) == 0
		}
		p.Persist = pr.IntN(4) == 0
		p.AddTOTP = pr.IntN(10) == 0
		if p.Tech == TechInfostealer {
			// The cookie is replayed while the victim's session is live.
			if p.Start.Before(p.Victim.Start.Add(5 * time.Minute)) {
				p.Victim.Start = p.Start.Add(-time.Duration(5+pr.IntN(40)) * time.Minute)
				if p.Victim.Start.Before(at(8, 30)) {
					p.Victim.Start = at(8, 30)
				}
			}
		}
		w.attacks = append(w.attacks, p)
	}
	sort.SliceStable(w.attacks, func(i, j int) bool { return w.attacks[i].Start.Before(w.attacks[j].Start) })
	sort.SliceStable(w.noise, func(i, j int) bool { return w.noise[i].At.Before(w.noise[j].At) })
}

// tradingDaysBefore returns the n weekdays before Day0, oldest first.
func tradingDaysBefore(n int) []time.Time {
	var out []time.Time
	for d := Day0.AddDate(0, 0, -1); len(out) < n; d = d.AddDate(0, 0, -1) {
		if d.Weekday() != time.Saturday && d.Weekday() != time.Sunday {
			out = append(out, d)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// makeHistory returns past sign-ins, orders and fills of the acting
// customers (and the ring's pre-positioning), in time order: what the
// guard would have learnt before the day.
func (w *world) makeHistory(days int) []event.Record {
	dates := tradingDaysBefore(days)
	var out []event.Record
	n := 0
	id := func(p string) string { n++; return fmt.Sprintf("H%s%08d", p, n) }
	for _, acct := range w.order {
		c := w.people[acct]
		if acct[0] == 'R' {
			continue
		}
		r := rngFor(w.seed, "history", acct)
		pLogin := map[population.Habit]float64{population.LongTerm: 0.12, population.Active: 0.35, population.DayTrader: 0.85, population.Traveller: 0.15, population.PhoneSwaps: 0.3}[c.Habit]
		trip := travelNets[hash64("trip", c.ID)%uint64(len(travelNets))]
		for di, d := range dates {
			if r.Float64() >= pLogin {
				continue
			}
			h := c.Hours[0] + r.IntN(c.Hours[1]-c.Hours[0]+1)
			t := d.Add(time.Duration(h)*time.Hour + time.Duration(r.IntN(3600))*time.Second)
			dev := c.Devices[0]
			if len(c.Devices) > 1 && r.IntN(10) < 3 {
				dev = c.Devices[1]
			}
			net := homeNet(c)
			if r.IntN(100) < 15 {
				net = mobileNet(r)
			}
			if c.Habit == population.Traveller && r.IntN(100) < 25 {
				net = netw{fmt.Sprintf("%s%d", trip.IP, 1+r.IntN(250)), trip.ASN, trip.Country}
			}
			ua, ch := uaFor(dev)
			sess := fmt.Sprintf("S-%s-h%d", acct, di)
			base := event.Record{Account: acct, Session: sess, IP: net.IP, ASN: net.ASN, Country: net.Country, Device: dev, UA: ua, Channel: ch}
			lg := base
			lg.ID, lg.Type, lg.Time = id("L"), event.TypeLogin, t
			lg.Method, lg.Factors, lg.OK = event.FactorPassword, w.loginFactors(c), true
			if hasPasskey(c) {
				lg.Method, lg.Factors = event.FactorPasskey, []string{event.FactorPasskey}
			}
			out = append(out, lg)
			orders := 0
			switch c.Habit {
			case population.Active, population.PhoneSwaps:
				orders = r.IntN(3)
			case population.DayTrader:
				orders = 1 + r.IntN(4)
			default:
				if r.IntN(3) == 0 {
					orders = 1
				}
			}
			for k := range orders {
				var in market.Instrument
				budget := 100_000 + r.Float64()*500_000
				if c.Habit == population.DayTrader && r.IntN(5) < 3 {
					in = w.thin[hash64("fav", c.ID, r.IntN(3))%uint64(len(w.thin))]
					budget = 50_000 + r.Float64()*250_000
				} else {
					in = w.large[r.IntN(len(w.large))]
				}
				q := max(lotsFor(in, budget), in.Lot)
				px := in.PrevClose * (0.95 + 0.1*r.Float64())
				px = market.RoundTick(in.Market, px)
				v := int64(math.Round(float64(q) * in.PriceJPY(px)))
				side := event.SideBuy
				if r.IntN(3) == 0 {
					side = event.SideSell
				}
				tt := t.Add(time.Duration(30+k*90+r.IntN(60)) * time.Second)
				o := base
				o.ID, o.Type, o.Time = id("O"), event.TypeOrder, tt
				o.OrderID, o.Symbol, o.Side, o.Qty, o.PriceType, o.AccountKind, o.ValueJPY = id("X"), in.Symbol, side, q, event.PriceMarket, event.KindCash, v
				out = append(out, o)
				out = append(out, event.Record{ID: id("F"), Type: event.TypeFill, Time: tt, Account: acct, OrderID: o.OrderID, Symbol: in.Symbol, Side: side, Qty: q, Price: px, ValueJPY: v})
			}
		}
	}
	// The ring pre-positions in every target over the week before.
	for k, m := range w.mules {
		r := rngFor(w.seed, "ring", k)
		for _, h := range m.c.Holdings {
			in := w.inst[h.Symbol]
			left := h.Qty
			for di := len(dates) - 6; di < len(dates)-1 && left > 0; di++ {
				q := min(left, (h.Qty/5)/in.Lot*in.Lot+in.Lot)
				left -= q
				t := dates[max(di, 0)].Add(time.Duration(9*3600+r.IntN(5*3600)) * time.Second)
				ua, ch := uaFor(m.dev)
				sess := fmt.Sprintf("S-%s-h%d", m.c.ID, di)
				base := event.Record{Account: m.c.ID, Session: sess, IP: m.net.IP, ASN: m.net.ASN, Country: m.net.Country, Device: m.dev, UA: ua, Channel: ch}
				lg := base
				lg.ID, lg.Type, lg.Time, lg.Method, lg.Factors, lg.OK = id("L"), event.TypeLogin, t, event.FactorPassword, []string{event.FactorPassword, event.FactorSMSOTP}, true
				px := in.PrevClose
				v := int64(math.Round(float64(q) * in.PriceJPY(px)))
				o := base
				o.ID, o.Type, o.Time = id("O"), event.TypeOrder, t.Add(40*time.Second)
				o.OrderID, o.Symbol, o.Side, o.Qty, o.PriceType, o.AccountKind, o.ValueJPY = id("X"), in.Symbol, event.SideBuy, q, event.PriceMarket, event.KindCash, v
				f := event.Record{ID: id("F"), Type: event.TypeFill, Time: o.Time, Account: m.c.ID, OrderID: o.OrderID, Symbol: in.Symbol, Side: event.SideBuy, Qty: q, Price: px, ValueJPY: v}
				out = append(out, lg, o, f)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

func hasPasskey(c *population.Customer) bool {
	for _, f := range c.Factors {
		if f == event.FactorPasskey {
			return true
		}
	}
	return false
}

// otpFactor returns the customer's one-time-code factor.
func otpFactor(c *population.Customer) string {
	for _, f := range c.Factors {
		if f == event.FactorTOTP || f == event.FactorSMSOTP || f == event.FactorEmailOTP {
			return f
		}
	}
	return event.FactorEmailOTP
}

// loginFactors are the factors of a password sign-in of c.
func (w *world) loginFactors(c *population.Customer) []string {
	if w.loginMFA[c.ID] {
		return []string{event.FactorPassword, otpFactor(c)}
	}
	return []string{event.FactorPassword}
}
