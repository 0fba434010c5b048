package sim

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// The adaptive scenario (`--scenario adaptive`): the campaign's accesses
// (the same dump, phishing kit and stolen cookies as campaign-2025) in the
// hands of attackers who know the policy in force and search for the
// cheapest way past it. Before the day, they rehearse: a seeded search
// plays probe runs of the whole day against the real guard and watchtower
// (fresh brokerage, engine and watchtower each time, with the policy and
// thresholds that will be in force), each probe run trying several
// strategies at once on different victims and different target issues,
// and keeps what extracted the most value (sold and bought, yen, as a
// share of what the victims held). On the day, each attack session plays
// the strategy that got most through among those its victim allows (a
// foreign issue needs an account enabled for foreign stocks; the clean
// history strategy needs a victim with one), the cheaper on a tie.

// Search budget: probeRounds rounds of probesPerRound probe runs (run two
// at a time), each trying up to candidatesPerProbe strategies.
const (
	probeRounds        = 3
	probesPerRound     = 2
	candidatesPerProbe = 7
	// minProbeSessions is the fewest probe sessions a strategy needs for
	// its result to be used on the day.
	minProbeSessions = 3
	// cleanHistoryLogins is how many sign-ins in the history make a
	// victim's history "long and clean" (every day of it for most).
	cleanHistoryLogins = 8
)

// Networks an adaptive attacker signs in from.
const (
	netProxy      = "proxy"       // a Japanese residential proxy
	netOwnCarrier = "own_carrier" // an address on the victim's own carrier
)

// Target classes.
const (
	targetThin    = "thin"    // a ¥80-300 small cap, as the 2025 ramps
	targetMid     = "mid"     // a mid-priced domestic issue, above R2's price
	targetForeign = "foreign" // a Hong Kong, Shanghai or US issue
)

// Timings.
const (
	timingNormal = "normal"
	timingLunch  = "lunch" // sign in in the lunch break, act at the reopen
	timingClose  = "close" // buy in the closing auction's last minutes
)

// strategy is one point of the attackers' search space.
type strategy struct {
	Net       string        // netProxy or netOwnCarrier
	SellShare float64       // share of the holdings' value sold
	OneSell   bool          // sell only the largest holding
	PerSell   bool          // a new session for each sell, and one for the buys
	Sessions  int           // the sells spread over this many sessions through the day
	Dwell     time.Duration // wait after sign-in before the first order
	Target    string        // targetThin, targetMid or targetForeign
	BuyShare  float64       // share of the cash put in the target
	Limit     bool          // limit orders at the touch (sell at the bid, buy at the ask)
	Timing    string        // timingNormal, timingLunch or timingClose
	Clean     bool          // only victims with long clean histories
	Pace      time.Duration // mean pause between orders
}

// String names every parameter, for the report.
func (s strategy) String() string {
	return fmt.Sprintf("net=%s sell=%.0f%% one_sell=%v per_sell=%v sessions=%d dwell=%s target=%s buy=%.0f%% limit=%v timing=%s clean=%v pace=%s",
		s.Net, s.SellShare*100, s.OneSell, s.PerSell, s.Sessions, s.Dwell, s.Target, s.BuyShare*100, s.Limit, s.Timing, s.Clean, s.Pace)
}

// cost is what the strategy costs the attacker: sessions to open (each a
// relayed code to get again), hours of waiting, value left behind.
func (s strategy) cost() float64 {
	c := float64(s.Sessions)
	if s.PerSell {
		c += 3
	}
	c += s.Dwell.Hours() + s.Pace.Hours()*4
	c += (1 - s.SellShare) * 4
	c += (1 - s.BuyShare) * 4
	if s.OneSell {
		c += 2
	}
	if s.Clean {
		c++
	}
	if s.Net == netOwnCarrier {
		c += 0.5
	}
	if s.Timing != timingNormal {
		c += 0.5
	}
	return c
}

// knowledge is what the attackers read off the policy in force and the
// watchtower's configuration.
type knowledge struct {
	r1Sell, r1Concentrate float64       // liquidate_concentrate: sold share, proceeds share
	newCtxWindow          time.Duration // new_context_sell: the session's age it looks at
	newCtxShare           float64       // new_context_sell: sold share
	fastAge               time.Duration // fast_liquidation: the session's age
	targetMaxPrice        float64       // R2: the price under which an issue is a target
}

var cmpRE = regexp.MustCompile(`([a-z_.]+)\s*(>=|<=|<|>)\s*([0-9.]+)`)

// ruleNumber returns the number rule id compares variable with in the
// policy, or def when the rule or the comparison is not there.
func ruleNumber(p *risk.Policy, id, variable string, def float64) float64 {
	for _, r := range p.Rules {
		if r.ID != id {
			continue
		}
		for _, m := range cmpRE.FindAllStringSubmatch(r.When, -1) {
			if m[1] == variable {
				if v, err := strconv.ParseFloat(m[3], 64); err == nil {
					return v
				}
			}
		}
	}
	return def
}

func learn(p *risk.Policy, wc surveil.Config) knowledge {
	k := knowledge{
		r1Sell:         math.Min(ruleNumber(p, "liquidate_concentrate", "session.sold_share", 0.5), wc.LiquidateShare),
		r1Concentrate:  math.Min(ruleNumber(p, "liquidate_concentrate", "session.symbol_buy_share", 0.7), wc.ConcentrateShare),
		newCtxWindow:   time.Duration(ruleNumber(p, "new_context_sell", "session.age_s", 3600)) * time.Second,
		newCtxShare:    ruleNumber(p, "new_context_sell", "account.new_context_sold_share", ruleNumber(p, "new_context_sell", "session.sold_share", 0.3)),
		fastAge:        time.Duration(ruleNumber(p, "fast_liquidation", "session.age_s", 900)) * time.Second,
		targetMaxPrice: wc.TargetMaxPriceJPY,
	}
	if k.r1Sell <= 0 {
		k.r1Sell = 0.5
	}
	if k.r1Concentrate <= 0 {
		k.r1Concentrate = 0.7
	}
	if k.targetMaxPrice <= 0 {
		k.targetMaxPrice = 500
	}
	return k
}

// evasion is a named change to a strategy.
type evasion struct {
	name  string
	apply func(*strategy, knowledge)
}

// evasions are the single evasions the search starts from.
var evasions = []evasion{
	{"own_carrier", func(s *strategy, _ knowledge) { s.Net = netOwnCarrier }},
	{"one_sell", func(s *strategy, _ knowledge) { s.OneSell = true }},
	{"session_per_sell", func(s *strategy, _ knowledge) { s.PerSell = true }},
	{"split_over_day", func(s *strategy, _ knowledge) { s.Sessions = 3 }},
	{"mid_price_target", func(s *strategy, _ knowledge) { s.Target = targetMid }},
	{"limit_at_touch", func(s *strategy, _ knowledge) { s.Limit = true }},
	{"lunch_break", func(s *strategy, _ knowledge) { s.Timing = timingLunch }},
	{"closing_auction", func(s *strategy, _ knowledge) { s.Timing = timingClose }},
	{"foreign_issue", func(s *strategy, _ knowledge) { s.Target = targetForeign }},
	{"clean_history", func(s *strategy, _ knowledge) { s.Clean = true }},
	{"under_sell_share", func(s *strategy, k knowledge) { s.SellShare = math.Max(k.r1Sell-0.05, 0.1) }},
	{"under_new_context_share", func(s *strategy, k knowledge) { s.SellShare = math.Max(k.newCtxShare-0.05, 0.1) }},
	{"split_proceeds", func(s *strategy, k knowledge) { s.BuyShare = math.Max(k.r1Concentrate-0.1, 0.1) }},
	{"dwell_past_windows", func(s *strategy, k knowledge) { s.Dwell = max(k.newCtxWindow, k.fastAge) + time.Minute }},
	{"slow_pace", func(s *strategy, _ knowledge) { s.Pace = 20 * time.Minute }},
}

func baseline() strategy {
	return strategy{Net: netProxy, SellShare: 1, Sessions: 1, Target: targetThin, BuyShare: 0.97, Timing: timingNormal, Pace: 5 * time.Second}
}

// candidate is a strategy the search tried.
type candidate struct {
	name  string
	strat strategy
	round int
	probe probeScore
	tech  map[string]probeScore // the probe by technique of access
}

type probeScore struct {
	sessions        int
	stakeJPY        int64 // the victims' holdings and cash
	sold, bought    int64
	stoppedBy       map[string]int
	alertKinds      map[string]int
	attemptedValue  int64
	throughSessions int // sessions that moved any value
}

// through is the value the candidate's probe sessions moved (sold and
// bought) over twice their victims' stake, which a full liquidation into
// the target would move: 1 is everything.
func (c *candidate) through() float64 { return c.probe.through() }

func (p probeScore) through() float64 {
	if p.stakeJPY <= 0 {
		return 0
	}
	return float64(p.sold+p.bought) / float64(2*p.stakeJPY)
}

// applies reports whether the strategy can be played on p's victim.
func (s strategy) applies(w *world, p *attackPlan, clean map[string]int) bool {
	c := w.people[p.Acct]
	if s.Target == targetForeign && !c.ForeignEnabled {
		return false
	}
	if s.Clean && clean[p.Acct] < cleanHistoryLogins {
		return false
	}
	return true
}

// adaptive is the state of the search.
type adaptive struct {
	cfg   *Config
	w     *world
	k     knowledge
	clean map[string]int // sign-ins in the history, by account
	pool  []*attackPlan  // the campaign's trading sessions
	thin  []string       // target issues by class
	mid   []string
	frgn  []string
	tried []*candidate
	byKey map[string]*candidate
}

func newAdaptive(cfg *Config, w *world) (*adaptive, error) {
	a := &adaptive{cfg: cfg, w: w, k: learn(cfg.policy(), cfg.watch()), clean: map[string]int{}, byKey: map[string]*candidate{}}
	for i := range w.history {
		if rec := &w.history[i]; rec.Type == event.TypeLogin && rec.OK {
			a.clean[rec.Account]++
		}
	}
	for _, p := range w.attacks {
		if p.Wave >= 0 {
			a.pool = append(a.pool, p)
		}
	}
	skip := map[string]bool{w.news: true}
	for _, wv := range w.waves {
		skip[wv.Symbol] = true // the ring is pre-positioned there; a fresh issue carries no history
	}
	for _, in := range w.universe {
		switch {
		case skip[in.Symbol] || in.LargeCap:
		case market.Domestic(in.Market) && in.PrevClose >= 80 && in.PrevClose <= 300:
			a.thin = append(a.thin, in.Symbol)
		case market.Domestic(in.Market) && in.PrevClose > a.k.targetMaxPrice && in.PrevClose <= 10000:
			a.mid = append(a.mid, in.Symbol)
		case !market.Domestic(in.Market):
			a.frgn = append(a.frgn, in.Symbol)
		}
	}
	for _, l := range [][]string{a.thin, a.mid, a.frgn} {
		sort.Strings(l)
	}
	if len(a.pool) == 0 || len(a.thin) == 0 || len(a.mid) == 0 || len(a.frgn) == 0 {
		return nil, fmt.Errorf("adaptive: the world of seed %d has no trading sessions or too few issues to target", w.seed)
	}
	return a, nil
}

// nameOf names a strategy by the evasions it plays, in the order of
// evasions ("baseline": none).
func (a *adaptive) nameOf(s strategy) string {
	var parts []string
	for _, e := range evasions {
		b, t := baseline(), s
		e.apply(&b, a.k)
		e.apply(&t, a.k)
		if b != baseline() && t == s {
			parts = append(parts, e.name)
		}
	}
	if len(parts) == 0 {
		return "baseline"
	}
	return strings.Join(parts, "+")
}

func (a *adaptive) add(s strategy, round int) *candidate {
	name := a.nameOf(s)
	key := s.String()
	if c, ok := a.byKey[key]; ok {
		return c
	}
	c := &candidate{name: name, strat: s, round: round}
	a.byKey[key] = c
	a.tried = append(a.tried, c)
	return c
}

// plans rewrites the pool for the candidates cs: each session plays the
// applicable candidate with the fewest sessions so far (pick nil), or the
// candidate pick chooses. It returns a world whose waves are the target
// issues bought.
func (a *adaptive) plans(cs []*candidate, pick func(p *attackPlan) *candidate) *world {
	w := *a.w
	w.waves = nil
	w.attacks = make([]*attackPlan, 0, len(a.w.attacks))
	count := map[*candidate]int{}
	waveOf := map[string]int{}
	inPool := map[*attackPlan]bool{}
	for _, p := range a.pool {
		inPool[p] = true
	}
	idx := map[*candidate]int{}
	for i, c := range cs {
		idx[c] = i
	}
	if pick != nil {
		for i, c := range a.tried {
			idx[c] = i // on the day, each strategy on a thin issue has its own
		}
	}
	var trading []*attackPlan
	for _, p0 := range a.w.attacks {
		p := *p0
		p.Wave = -1
		if !inPool[p0] {
			w.attacks = append(w.attacks, &p)
			continue
		}
		var c *candidate
		if pick != nil {
			c = pick(p0)
		} else {
			for _, x := range cs {
				if x.strat.applies(a.w, p0, a.clean) && (c == nil || count[x] < count[c]) {
					c = x
				}
			}
		}
		if c == nil {
			p.Variant, p.Withdraw = VarCashOnly, false
			w.attacks = append(w.attacks, &p)
			continue
		}
		count[c]++
		p.Variant = c.name
		p.Adapt = &adaptPlan{Evasion: c.name, Strat: c.strat, Target: a.target(c, idx[c], p0)}
		trading = append(trading, &p)
		w.attacks = append(w.attacks, &p)
	}
	syms := map[string]bool{}
	for _, p := range trading {
		syms[p.Adapt.Target] = true
	}
	for _, s := range sortedKeys(syms) {
		waveOf[s] = len(w.waves)
		in := a.w.inst[s]
		w.waves = append(w.waves, &wave{Name: fmt.Sprintf("T%d", len(w.waves)+1), Symbol: s, From: at(9, 0), To: at(15, 30), Foreign: !market.Domestic(in.Market), Cap: math.MaxInt})
	}
	for _, p := range trading {
		p.Wave = waveOf[p.Adapt.Target]
	}
	return &w
}

// target picks the issue a session of candidate c (the i-th of its probe
// run, or of the day) buys: a thin issue shared by every session of the
// candidate, as a ramp needs; a mid-priced or foreign one of the session's
// own, one victim per target.
func (a *adaptive) target(c *candidate, i int, p *attackPlan) string {
	switch c.strat.Target {
	case targetMid:
		return a.mid[hash64(a.w.seed, "mid", p.ID)%uint64(len(a.mid))]
	case targetForeign:
		return a.frgn[hash64(a.w.seed, "foreign", p.ID)%uint64(len(a.frgn))]
	}
	return a.thin[i%len(a.thin)]
}

// probe plays the candidates, split over probesPerRound runs played at
// once, all on, and scores each.
func (a *adaptive) probe(ctx context.Context, cs []*candidate, prog *progress) error {
	groups := make([][]*candidate, probesPerRound)
	for i, c := range cs {
		groups[i%probesPerRound] = append(groups[i%probesPerRound], c)
	}
	res := make([]*runResult, len(groups))
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(a.cfg.Workers, 1))
	for i, g := range groups {
		if len(g) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			res[i], errs[i] = runVariant(ctx, a.cfg, a.plans(g, nil), Variant{Name: "probe", Layers: AllOn}, nil, nil, prog)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return err
		}
		if res[i] == nil {
			continue
		}
		by := map[string]*candidate{}
		for _, c := range groups[i] {
			by[c.name] = c
			c.probe = probeScore{stoppedBy: map[string]int{}, alertKinds: map[string]int{}}
			c.tech = map[string]probeScore{}
		}
		for name, e := range scoreEvasions(a.w, res[i], byEvasion) {
			if c := by[name]; c != nil {
				c.probe = e
			}
		}
		for key, e := range scoreEvasions(a.w, res[i], byEvasionTech) {
			name, tech, _ := strings.Cut(key, "|")
			if c := by[name]; c != nil {
				c.tech[tech] = e
			}
		}
	}
	return nil
}

// search runs the rounds and returns the candidates tried, best first.
func (a *adaptive) search(ctx context.Context, prog *progress) error {
	rng := rngFor(a.w.seed, "adaptive-search")
	base := baseline()
	round := []*candidate{a.add(base, 1)}
	for _, e := range evasions {
		s := base
		e.apply(&s, a.k)
		round = append(round, a.add(s, 1))
	}
	for r := 1; r <= probeRounds; r++ {
		if r > 1 {
			round = a.next(r, rng)
		}
		if len(round) == 0 {
			break
		}
		if err := a.probe(ctx, round, prog); err != nil {
			return err
		}
		best := a.ranked()[0]
		a.cfg.Log.Info("adaptive search", "round", r, "tried", len(round), "best", best.name, "through", fmt.Sprintf("%.2f%%", best.through()*100))
	}
	return nil
}

// ranked returns the candidates tried on enough sessions, most value
// through first, the cheaper on a tie.
func (a *adaptive) ranked() []*candidate {
	out := make([]*candidate, 0, len(a.tried))
	for _, c := range a.tried {
		if c.probe.sessions >= minProbeSessions {
			out = append(out, c)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		ti, tj := out[i].through(), out[j].through()
		if math.Abs(ti-tj) > 1e-9 {
			return ti > tj
		}
		return out[i].strat.cost() < out[j].strat.cost()
	})
	if len(out) == 0 {
		return a.tried[:1]
	}
	return out
}

// next makes round r's candidates: the best so far combined with the
// evasions that got value through on their own, and seeded mutations of
// the best few.
func (a *adaptive) next(r int, rng *rand.Rand) []*candidate {
	budget := probesPerRound * candidatesPerProbe
	ranked := a.ranked()
	var out []*candidate
	seen := map[*candidate]bool{}
	push := func(s strategy) {
		if len(out) >= budget {
			return
		}
		if _, ok := a.byKey[s.String()]; ok {
			return
		}
		c := a.add(s, r)
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	// Combine: the best with each single evasion in turn, those that got
	// most through on their own first.
	best := ranked[0]
	single := func(e evasion) float64 {
		s := baseline()
		e.apply(&s, a.k)
		if c := a.byKey[s.String()]; c != nil {
			return c.through()
		}
		return 0
	}
	order := append([]evasion(nil), evasions...)
	sort.SliceStable(order, func(i, j int) bool { return single(order[i]) > single(order[j]) })
	for _, e := range order {
		s := best.strat
		e.apply(&s, a.k)
		push(s)
		if len(out) >= budget/2 {
			break
		}
	}
	// Mutate: one or two evasions more on one of the best three, at random.
	for tries := 0; len(out) < budget && tries < 200; tries++ {
		par := ranked[rng.IntN(min(3, len(ranked)))]
		s := par.strat
		for range 1 + rng.IntN(2) {
			evasions[rng.IntN(len(evasions))].apply(&s, a.k)
		}
		push(s)
	}
	return out
}

// choose returns, for each trading session of the day, the candidate that
// got most through among those its victim allows, with its technique of
// access where the probes tried it on enough sessions, the cheaper on a
// tie.
func (a *adaptive) choose(p *attackPlan) *candidate {
	var best *candidate
	for _, c := range a.ranked() {
		if !c.strat.applies(a.w, p, a.clean) {
			continue
		}
		t, ok := c.tech[p.Tech]
		if !ok || t.sessions < minProbeSessions {
			continue
		}
		if best == nil || t.through() > best.tech[p.Tech].through()+1e-9 ||
			math.Abs(t.through()-best.tech[p.Tech].through()) <= 1e-9 && c.strat.cost() < best.strat.cost() {
			best = c
		}
	}
	if best != nil && best.tech[p.Tech].through() > 0 {
		return best
	}
	if best != nil && a.tried[0].strat.applies(a.w, p, a.clean) {
		return a.tried[0] // nothing got through for the technique: the baseline, the cheapest
	}
	for _, c := range a.ranked() {
		if c.strat.applies(a.w, p, a.clean) {
			return c
		}
	}
	return nil
}

// adaptPlan is one attack session's strategy in the adaptive scenario.
type adaptPlan struct {
	Evasion string
	Strat   strategy
	Target  string // the issue it buys
}

func byEvasion(p *attackPlan) string     { return p.Adapt.Evasion }
func byEvasionTech(p *attackPlan) string { return p.Adapt.Evasion + "|" + p.Tech }

// scoreEvasions sums a run's attack sessions by key (the evasion they
// played, say).
func scoreEvasions(w *world, res *runResult, key func(*attackPlan) string) map[string]probeScore {
	out := map[string]probeScore{}
	haltKind := map[string]string{}
	frozeKind := map[string]string{}
	byAcct := map[string]map[string]int{}
	bySym := map[string]map[string]int{}
	for _, al := range res.alerts {
		if al.Action == event.AlertHaltBuys && al.Symbol != "" && haltKind[al.Symbol] == "" {
			haltKind[al.Symbol] = al.Kind
		}
		if al.Symbol != "" {
			if bySym[al.Symbol] == nil {
				bySym[al.Symbol] = map[string]int{}
			}
			bySym[al.Symbol][al.Kind]++
		}
		for _, acct := range al.Accounts {
			if al.Action == event.AlertFreezeAccounts && frozeKind[acct] == "" {
				frozeKind[acct] = al.Kind
			}
			if byAcct[acct] == nil {
				byAcct[acct] = map[string]int{}
			}
			byAcct[acct][al.Kind]++
		}
	}
	seenSym := map[string]map[string]bool{}
	for _, st := range res.atk {
		p := st.plan
		if p.Adapt == nil || !st.valid {
			continue
		}
		kk := key(p)
		e := out[kk]
		if e.stoppedBy == nil {
			e.stoppedBy, e.alertKinds = map[string]int{}, map[string]int{}
		}
		c := w.people[p.Acct]
		e.sessions++
		e.stakeJPY += int64(holdingsValue(w, c)) + c.CashJPY
		e.sold += st.sold
		e.bought += st.bought
		e.attemptedValue += st.attemptSell + st.attemptBuy
		if st.sold+st.bought > 0 {
			e.throughSessions++
		}
		for _, why := range stopReasons(st, haltKind, frozeKind) {
			e.stoppedBy[why]++
		}
		for k, n := range byAcct[p.Acct] {
			e.alertKinds[k] += n
		}
		if seenSym[kk] == nil {
			seenSym[kk] = map[string]bool{}
		}
		if sym := p.Adapt.Target; !seenSym[kk][sym] {
			seenSym[kk][sym] = true
			for k, n := range bySym[sym] {
				e.alertKinds[k] += n
			}
		}
		out[kk] = e
	}
	return out
}

// stopReasons names what stopped a session: the reason codes of the
// decision that refused it (prefixed with the action stopped), the alert
// kind that halted its target or froze its account, or the front door's
// refusal.
func stopReasons(st *atkStats, haltKind, frozeKind map[string]string) []string {
	if st.stoppedAt == "" {
		return nil
	}
	where, why, _ := strings.Cut(st.stoppedAt, ":")
	var out []string
	for _, r := range strings.Split(why, "+") {
		switch {
		case r == "":
		case r == reason.InstrumentHalted || where == "target_halted":
			k := haltKind[st.plan.Adapt.Target]
			if k == "" {
				k = "unknown"
			}
			out = append(out, "halt:"+k)
		case r == "account_frozen":
			k := frozeKind[st.plan.Acct]
			if k == "" {
				k = "unknown"
			}
			out = append(out, where+":account_frozen(freeze:"+k+")")
		default:
			out = append(out, where+":"+r)
		}
	}
	if where == "target_halted" && len(out) == 0 {
		k := haltKind[st.plan.Adapt.Target]
		if k == "" {
			k = "unknown"
		}
		out = append(out, "halt:"+k)
	}
	if len(out) == 0 {
		out = append(out, where)
	}
	return out
}

// adaptiveSession plays one session of the adaptive scenario: its
// strategy's sign-ins, sells and buys, each refusal recorded with the
// reasons the guard gave.
func (r *run) adaptiveSession(st *atkStats) {
	p := st.plan
	ap := p.Adapt
	s := ap.Strat
	c := r.w.people[p.Acct]
	r.prog.add(1)
	wv := r.w.waves[p.Wave]
	lbl := label{Truth: "attack", Technique: p.Tech, Variant: ap.Evasion, Attack: p.ID, Wave: wv.Name, Target: wv.Symbol}
	rng := rand.New(rand.NewPCG(p.Seed, 3))
	sess := "S-" + p.ID
	if p.Tech == TechInfostealer {
		sess = p.Victim.Session
		if !r.sessionOK[sess] {
			return // no live session to steal
		}
	}
	st.valid = true
	if p.Tech == TechInfostealer {
		st.access = true // the stolen cookie is the session, for every phase
	}
	net := residentialProxy(rng)
	if s.Net == netOwnCarrier {
		net = sameISP(c, rng)
	}
	dev, ua := p.Device, p.UA
	w := &who{a: actor("sim:"+sess, sess, net, dev, ua), acct: c.ID, c: c, lbl: lbl, atk: st, rng: rng}

	var starts []time.Time
	phase := 0
	var sells []adaptSell
	var run func()
	run = func() {
		k := phase
		phase++
		if k > 0 && p.Tech != TechInfostealer {
			// A new session: the stuffed password again, or the victim
			// phished again (who falls for it half the time).
			if p.Tech == TechPhishing && rng.IntN(2) == 0 {
				st.stoppedAt = "second_login:victim_not_phished_again"
				return
			}
			id := fmt.Sprintf("S-%s-%d", p.ID, k)
			w.a = actor("sim:"+id, id, net, dev, ua)
		}
		if p.Tech != TechInfostealer && !r.adaptLogin(w, st) {
			return
		}
		if k == 0 {
			var err error
			if sells, err = r.planSells(w, s, wv.Symbol); err != nil {
				return
			}
			n := max(s.Sessions, 1)
			if s.PerSell {
				n = len(sells) + 1
			}
			starts = adaptStarts(p, s, n, r.clock.Now())
		}
		acts := r.phaseActs(w, st, s, sells, k, len(starts), wv)
		t := r.clock.Now().Add(s.Dwell)
		if k == 0 && s.Timing == timingLunch && t.Before(at(12, 30)) {
			t = at(12, 30).Add(time.Duration(5+rng.IntN(30)) * time.Second)
		}
		if k == len(starts)-1 && s.Timing == timingClose && t.Before(at(15, 25)) {
			t = at(15, 25).Add(time.Duration(rng.IntN(60)) * time.Second)
		}
		var step func(i int)
		step = func(i int) {
			if i >= len(acts) {
				if phase < len(starts) {
					r.at(inSession(maxTime(starts[phase], r.clock.Now().Add(time.Minute))), run)
				}
				return
			}
			if !acts[i]() {
				return
			}
			r.at(inSession(r.clock.after(time.Duration(float64(s.Pace)*(0.5+rng.Float64())))), func() { step(i + 1) })
		}
		r.at(inSession(t), func() { step(0) })
	}
	t0 := adaptStart(p, s)
	if p.Tech == TechInfostealer && t0.Before(p.Start) {
		t0 = p.Start // the cookie is stolen from a session live by then
	}
	r.at(t0, run)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// adaptStart is the first sign-in time of the strategy.
func adaptStart(p *attackPlan, s strategy) time.Time {
	h := hash64(p.Seed, "adapt-start")
	switch {
	case s.Timing == timingLunch:
		return at(11, 32).Add(time.Duration(h%(45*60)) * time.Second)
	case s.Timing == timingClose && s.Sessions <= 1 && !s.PerSell:
		return at(15, 8).Add(time.Duration(h%(10*60)) * time.Second)
	case s.Sessions > 1 || s.PerSell:
		// Several sessions need the day: start in the morning.
		return at(9, 5).Add(time.Duration(h%(50*60)) * time.Second)
	}
	// Late enough a start that the orders, after the dwell, would miss the
	// close moves to the latest that leaves time for them.
	if latest := at(15, 10).Add(-s.Dwell); p.Start.After(latest) {
		return inSession(latest.Add(-time.Duration(h%(30*60)) * time.Second))
	}
	return p.Start
}

// adaptStarts are the sign-in times of the strategy's n sessions, the
// first at t0: spread through the rest of the day (25 minutes apart for a
// session per sell, 90 for a split over the day), the last in time for
// the close when the strategy buys there.
func adaptStarts(p *attackPlan, s strategy, n int, t0 time.Time) []time.Time {
	end := at(15, 15)
	spacing := 90 * time.Minute
	if s.PerSell {
		spacing = 25 * time.Minute
	}
	if n > 1 && t0.Add(spacing*time.Duration(n-1)).After(end) {
		spacing = max(end.Sub(t0)/time.Duration(n-1), 5*time.Minute)
	}
	out := make([]time.Time, n)
	out[0] = t0
	for i := 1; i < n; i++ {
		out[i] = inSession(t0.Add(spacing * time.Duration(i)))
	}
	if s.Timing == timingClose && n > 1 {
		out[n-1] = maxTime(out[n-1], at(15, 12).Add(time.Duration(hash64(p.Seed, "close")%(8*60))*time.Second))
	}
	return out
}

// perSellSessions bounds the sessions of a session-per-sell strategy: up
// to perSellSessions-1 sells, each in its own session, and the buys.
const perSellSessions = 5

// adaptSell is one sell an adaptive attacker plans.
type adaptSell struct {
	sym, kind string
	qty       int64
	each      float64
}

// planSells reads the victim's holdings and picks the sells of the
// strategy: the largest holdings first, up to its share of their value.
func (r *run) planSells(w *who, s strategy, target string) ([]adaptSell, error) {
	acc, err := r.b.Account(r.ctx, w.acct)
	if err != nil {
		return nil, err
	}
	pos := append([]broker.Position(nil), acc.Positions...)
	sort.Slice(pos, func(i, j int) bool {
		if pos[i].ValueJPY != pos[j].ValueJPY {
			return pos[i].ValueJPY > pos[j].ValueJPY
		}
		return pos[i].Symbol+pos[i].Kind < pos[j].Symbol+pos[j].Kind
	})
	var total int64
	for _, ps := range pos {
		total += ps.ValueJPY
	}
	room := int64(float64(total) * s.SellShare)
	var out []adaptSell
	for _, ps := range pos {
		free := ps.Qty - ps.ReservedQty
		if free <= 0 || ps.Symbol == target || room <= 0 {
			continue
		}
		each := float64(ps.ValueJPY) / float64(max(ps.Qty, 1))
		q := free
		if v := int64(float64(free) * each); v > room {
			lot := r.w.lot(ps.Symbol)
			q = int64(float64(room)/each) / lot * lot
		}
		if q <= 0 {
			continue
		}
		out = append(out, adaptSell{ps.Symbol, ps.Kind, q, each})
		room -= int64(float64(q) * each)
		if s.OneSell || s.PerSell && len(out) >= perSellSessions-1 {
			break
		}
	}
	return out, nil
}

// phaseActs are the orders of the strategy's k-th session of n.
func (r *run) phaseActs(w *who, st *atkStats, s strategy, sells []adaptSell, k, n int, wv *wave) []func() bool {
	var acts []func() bool
	for i, sl := range sells {
		if i%n != k {
			continue // another session's sell (a session per sell: sell i in session i, the buys last)
		}
		acts = append(acts, func() bool { return r.adaptSell(w, st, s, sl) })
	}
	if k == n-1 {
		acts = append(acts, func() bool { return r.adaptBuys(w, st, s, wv) })
	}
	return acts
}

// adaptAct runs one brokerage call and records, when the guard stopped
// it, where and the reasons of the refusing decision.
func (r *run) adaptAct(w *who, st *atkStats, where string, call func(a broker.Actor) error) (outcome, bool) {
	var why []string
	o := r.act(w, func(a broker.Actor) error {
		err := call(a)
		if e := reason.As(err); e != nil && e.Decision != nil {
			why = append(why[:0], e.Decision.Reasons...)
		}
		return err
	})
	switch {
	case o.halted:
		st.stoppedAt = "target_halted:" + reason.InstrumentHalted
		return o, false
	case o.challenged && o.stepFailed || o.held || o.denied:
		st.stoppedAt = where + ":" + strings.Join(why, "+")
		return o, false
	}
	return o, true
}

// adaptLogin signs the attacker in and records the reasons of a refusal.
func (r *run) adaptLogin(w *who, st *atkStats) bool {
	before := make(map[string]int, len(r.attackReasons))
	for k, v := range r.attackReasons {
		before[k] = v
	}
	// The password from the dump, or the password and code the victim
	// types on the phishing kit.
	o := r.signIn(w, r.fd.password(w.acct), st.plan.Tech == TechPhishing)
	if o.ok {
		st.access = true
		return true
	}
	var why []string
	if o.code != "" && o.code != "invalid_credentials" {
		why = append(why, "front_door_"+o.code) // refused before the guard was asked: lockout, throttle, passkey only
	} else {
		for _, k := range sortedKeys(r.attackReasons) {
			if r.attackReasons[k] > before[k] && strings.HasPrefix(k, "login/") {
				_, rc, _ := strings.Cut(strings.TrimPrefix(k, "login/"), "/")
				if rc != "invalid_credentials" {
					why = append(why, rc)
				}
			}
		}
	}
	if len(why) == 0 {
		why = []string{"front_door_code_not_relayed"}
	}
	st.stoppedAt = "login:" + strings.Join(why, "+")
	return false
}

func (r *run) adaptSell(w *who, st *atkStats, s strategy, sl adaptSell) bool {
	in, known := r.w.inst[sl.sym]
	q, _ := r.b.Quote(sl.sym)
	if known {
		st.attemptSell += yen(sl.qty, q.Bid, in)
	} else {
		st.attemptSell += int64(math.Round(float64(sl.qty) * sl.each))
	}
	req := broker.OrderRequest{Symbol: sl.sym, Side: event.SideSell, Qty: sl.qty, PriceType: event.PriceMarket, Kind: sl.kind}
	if s.Limit && known && q.Bid > 0 {
		lo, _ := market.Band(in.Market, in.PrevClose)
		req.PriceType, req.LimitPrice = event.PriceLimit, math.Max(market.RoundTick(in.Market, q.Bid), lo)
	}
	var ord *broker.Order
	o, ok := r.adaptAct(w, st, "sell", func(a broker.Actor) error {
		var err error
		ord, err = r.b.PlaceOrder(r.ctx, a, w.acct, req, r.key(st.plan.ID))
		return err
	})
	if o.ok && ord != nil && ord.Status == broker.StatusFilled {
		st.sold += ord.FilledJPY
		st.trades++
	}
	return ok
}

// adaptBuys buys the target with the strategy's share of the cash, in one
// to three orders.
func (r *run) adaptBuys(w *who, st *atkStats, s strategy, wv *wave) bool {
	halts, err := r.b.Halts(r.ctx)
	if err != nil {
		return false
	}
	if _, halted := halts[wv.Symbol]; halted {
		st.stoppedAt = "target_halted:" + reason.InstrumentHalted
		return false
	}
	acc, err := r.b.Account(r.ctx, w.acct)
	if err != nil {
		return false
	}
	in := r.w.inst[wv.Symbol]
	fx := in.PriceJPY(1)
	q, _ := r.b.Quote(wv.Symbol)
	_, hi := market.Band(in.Market, in.PrevClose)
	if math.IsInf(hi, 1) {
		hi = q.Ask * 1.5
	}
	px := hi
	if s.Limit && q.Ask > 0 {
		px = math.Min(market.RoundTick(in.Market, q.Ask), hi)
	}
	lot := r.w.lot(wv.Symbol)
	qty := int64(float64(acc.AvailableJPY)*s.BuyShare/(px*fx)) / lot * lot
	if qty <= 0 {
		return false
	}
	n := int64(1 + w.rng.IntN(3))
	each := max(qty/n/lot*lot, lot)
	var parts []int64
	for left := qty; left > 0; {
		part := min(each, left)
		if left-part < lot {
			part = left
		}
		left -= part
		parts = append(parts, part)
	}
	var buy func(i int)
	buy = func(i int) {
		part := parts[i]
		q, _ := r.b.Quote(wv.Symbol)
		req := broker.OrderRequest{Symbol: wv.Symbol, Side: event.SideBuy, Qty: part, PriceType: event.PriceMarket, Kind: event.KindCash}
		if s.Limit && q.Ask > 0 {
			req.PriceType, req.LimitPrice = event.PriceLimit, math.Min(market.RoundTick(in.Market, q.Ask), hi)
		}
		st.attemptBuy += yen(part, q.Ask, in)
		var ord *broker.Order
		o, ok := r.adaptAct(w, st, "buy", func(a broker.Actor) error {
			var err error
			ord, err = r.b.PlaceOrder(r.ctx, a, w.acct, req, r.key(st.plan.ID))
			return err
		})
		r.hijackedBuy(st, wv.Symbol, q.Ask, part, o.ok, ord)
		if !ok || i+1 >= len(parts) {
			return
		}
		r.at(inSession(r.clock.after(time.Duration(float64(s.Pace)*(0.5+w.rng.Float64())))), func() { buy(i + 1) })
	}
	buy(0)
	return true
}

// EvasionScore is what one strategy of the adaptive attackers got
// through: in the rehearsal (probe runs against the same guard and
// watchtower) and on the day, with what stopped it.
type EvasionScore struct {
	// Name is the evasions it combines, "+"-joined ("baseline": none).
	Name string `json:"name"`
	// Params are the strategy's parameters.
	Params string `json:"params"`
	// Round is the search round it was tried in.
	Round int `json:"round"`
	// Probe* are its probe runs' figures: sessions, the victims' holdings
	// and cash at stake, value sold and bought, and the share that got
	// through (sold and bought over twice the stake: 1 is a full
	// liquidation into the target).
	ProbeSessions    int     `json:"probe_sessions"`
	ProbeStakeJPY    int64   `json:"probe_stake_jpy"`
	ProbeSoldJPY     int64   `json:"probe_sold_jpy"`
	ProbeBoughtJPY   int64   `json:"probe_bought_jpy"`
	ProbeThroughRate float64 `json:"probe_through_ratio"`
	// StoppedBy counts, over its probe sessions, what stopped them: the
	// action and the reason codes of the refusing decision
	// ("sell:new_context_sell"), "halt:KIND" for a buy halt raised by an
	// alert of KIND, or the front door's refusal.
	StoppedBy map[string]int `json:"stopped_by"`
	// AlertKinds counts the alerts of its probe runs that named its
	// accounts or its target issues.
	AlertKinds map[string]int `json:"alert_kinds"`
	// Day* are the all-on run's figures for the sessions that chose it.
	DaySessions  int            `json:"day_sessions"`
	DaySoldJPY   int64          `json:"day_sold_jpy"`
	DayBoughtJPY int64          `json:"day_bought_jpy"`
	DayStoppedBy map[string]int `json:"day_stopped_by"`
}

// adaptWorld runs the search and returns the day's world, every session
// on its best strategy, with the strategies tried.
func adaptWorld(ctx context.Context, cfg *Config, w *world, prog *progress) (*world, *adaptive, error) {
	a, err := newAdaptive(cfg, w)
	if err != nil {
		return nil, nil, err
	}
	if err := a.search(ctx, prog); err != nil {
		return nil, nil, err
	}
	return a.plans(nil, a.choose), a, nil
}

// evasionScores lists the strategies tried, best first, with the all-on
// run's figures for those played on the day.
func (a *adaptive) evasionScores(on *runResult) []EvasionScore {
	day := map[string]probeScore{}
	if on != nil {
		day = scoreEvasions(a.w, on, byEvasion)
	}
	var out []EvasionScore
	listed := map[*candidate]bool{}
	for _, c := range append(a.ranked(), a.tried...) {
		if listed[c] {
			continue
		}
		listed[c] = true
		e := EvasionScore{Name: c.name, Params: c.strat.String(), Round: c.round, ProbeSessions: c.probe.sessions, ProbeStakeJPY: c.probe.stakeJPY,
			ProbeSoldJPY: c.probe.sold, ProbeBoughtJPY: c.probe.bought, ProbeThroughRate: ratio(float64(c.probe.sold+c.probe.bought), float64(2*c.probe.stakeJPY)),
			StoppedBy: c.probe.stoppedBy, AlertKinds: c.probe.alertKinds, DayStoppedBy: map[string]int{}}
		if e.StoppedBy == nil {
			e.StoppedBy, e.AlertKinds = map[string]int{}, map[string]int{}
		}
		if d, ok := day[c.name]; ok {
			e.DaySessions, e.DaySoldJPY, e.DayBoughtJPY, e.DayStoppedBy = d.sessions, d.sold, d.bought, d.stoppedBy
		}
		out = append(out, e)
	}
	return out
}

// formatEvasions writes the evasions table of the scorecard.
func formatEvasions(w io.Writer, evs []EvasionScore) {
	if len(evs) == 0 {
		return
	}
	fmt.Fprintf(w, "\nAdaptive attackers: %d strategies tried in the rehearsal, best first\n", len(evs))
	fmt.Fprintf(w, "  %6s %10s %10s %8s %6s %10s %10s   %s\n", "probes", "sold", "bought", "through", "day", "day sold", "day bought", "evasion")
	fmt.Fprintf(w, "  %6s %10s %10s %8s %6s %10s %10s     %s\n", "", "", "", "", "", "", "", "stopped by (probe sessions)")
	for _, e := range evs {
		fmt.Fprintf(w, "  %6d %10s %10s %8s %6d %10s %10s   %s\n", e.ProbeSessions, yenM(e.ProbeSoldJPY), yenM(e.ProbeBoughtJPY), pct(e.ProbeThroughRate),
			e.DaySessions, yenM(e.DaySoldJPY), yenM(e.DayBoughtJPY), e.Name)
		fmt.Fprintf(w, "  %6s %10s %10s %8s %6s %10s %10s     %s\n", "", "", "", "", "", "", "", topKinds(e.StoppedBy, 4))
	}
}

// topKinds names the n commonest keys of m with their counts.
func topKinds(m map[string]int, n int) string {
	keys := sortedKeys(m)
	sort.SliceStable(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	if len(keys) > n {
		keys = keys[:n]
	}
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}
