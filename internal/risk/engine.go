package risk

import (
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
)

// Hit is one rule that fired in a decision.
type Hit struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
	Weight int    `json:"weight,omitempty"`
	Action Action `json:"action,omitempty"`
}

// Result is the engine's answer to one customer action, with what it was
// made from.
type Result struct {
	// Decision is the live policy's decision (spec fields).
	Decision event.Decision
	// Features holds the value of every variable the applicable rules of
	// the live and shadow policies read, by variable name: bool, int64,
	// float64 or string.
	Features map[string]any
	// Rules lists every live rule that fired, in policy order.
	Rules []Hit
	// Shadow is the shadow policy's decision, when one is set: recorded,
	// never enforced.
	Shadow *event.Decision
	// ShadowRules lists the shadow rules that fired.
	ShadowRules []Hit
	// Errors lists rules whose expression failed to evaluate (they count
	// as not fired), as "rule id: message".
	Errors []string
}

// Reason codes the engine itself gives, outside any policy.
const (
	ReasonNotAnAction = "not_an_action" // Decide was given a record that is not a customer action
	ReasonNoPolicy    = "no_policy"     // the engine has no policy
)

// Engine is the guard's risk engine: it keeps per-account, per-session and
// per-instrument state from the stream, computes features for each customer
// action and evaluates the live (and shadow) policy over them. An Engine is
// safe for concurrent use; per-account state is sharded under 256 locks.
type Engine struct {
	live   atomic.Pointer[Policy]
	shadow atomic.Pointer[Policy]
	lists  *Lists
	inst   instruments
	shards [numShards]shard
	pool   sync.Pool
	errs   atomic.Uint64
	// start is the stream time (unix s) of the first record the engine
	// saw: the start of every profile's history.
	start atomic.Int64
}

// NewEngine returns an engine deciding with p (the built-in policy when p is nil).
func NewEngine(p *Policy) *Engine {
	if p == nil {
		p = BuiltinPolicy()
	}
	e := &Engine{lists: NewLists()}
	e.inst.index = map[string]uint32{}
	e.live.Store(p)
	e.pool.New = func() any {
		s := &evalState{}
		s.act.vals = make([]ref.Val, len(variables))
		s.act.f = &s.f
		return s
	}
	return e
}

// SetPolicy atomically replaces the live policy; a nil p is ignored.
func (e *Engine) SetPolicy(p *Policy) {
	if p != nil {
		e.live.Store(p)
	}
}

// Policy returns the live policy.
func (e *Engine) Policy() *Policy { return e.live.Load() }

// SetShadow sets the shadow policy, evaluated beside the live one and
// recorded in Result.Shadow but never enforced; nil clears it.
func (e *Engine) SetShadow(p *Policy) { e.shadow.Store(p) }

// Shadow returns the shadow policy, or nil.
func (e *Engine) Shadow() *Policy { return e.shadow.Load() }

// Lists returns the engine's run-time editable lists.
func (e *Engine) Lists() *Lists { return e.lists }

// EvalErrors returns how many rule evaluations have failed so far.
func (e *Engine) EvalErrors() uint64 { return e.errs.Load() }

// SetHeat sets the surveillance heat (clamped to 0..100) of symbol.
func (e *Engine) SetHeat(symbol string, heat int) {
	heat = min(max(heat, 0), 100)
	e.inst.mu.Lock()
	_, in := e.inst.ensure(symbol)
	in.heat = int64(heat)
	e.inst.mu.Unlock()
}

// SetHalt halts (or resumes) buying of symbol: while halted, buy orders
// are refused with the reason instrument_halted.
func (e *Engine) SetHalt(symbol string, halted bool) {
	e.inst.mu.Lock()
	_, in := e.inst.ensure(symbol)
	in.halted = halted
	e.inst.mu.Unlock()
}

// SetFrozen freezes (or unfreezes) account: while frozen, every action is
// denied with the reason account_frozen.
func (e *Engine) SetFrozen(account string, frozen bool) {
	k := hash64(account)
	sh := &e.shards[k%numShards]
	sh.mu.Lock()
	p := sh.get(k, true)
	if frozen {
		p.flags |= flagFrozen
	} else {
		p.flags &^= flagFrozen
	}
	sh.mu.Unlock()
}

const flagFrozen uint8 = 1 << 7

// Accounts returns how many accounts the engine holds state for.
func (e *Engine) Accounts() int {
	n := 0
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		n += len(sh.slab)
		sh.mu.Unlock()
	}
	return n
}

// Compact releases the transient session state of accounts idle for 24
// hours before now (stream time).
func (e *Engine) Compact(now time.Time) {
	cut := now.Unix() - 86400
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		for j := range sh.slab {
			if a := sh.slab[j].act; a != nil && a.last < cut {
				sh.slab[j].act = nil
			}
		}
		sh.mu.Unlock()
	}
}

// evalState is the per-decision scratch space, pooled.
type evalState struct {
	f    features
	act  activation
	hits []Hit
	sh   []Hit
}

// activation resolves CEL variables from the features, boxing each value
// at most once per decision.
type activation struct {
	f    *features
	vals []ref.Val
}

// ResolveName implements interpreter.Activation.
func (a *activation) ResolveName(name string) (any, bool) {
	i, ok := varIndex[name]
	if !ok {
		return nil, false
	}
	v := a.vals[i]
	if v == nil {
		v = variables[i].get(a.f)
		a.vals[i] = v
	}
	return v, true
}

// Parent implements interpreter.Activation.
func (a *activation) Parent() interpreter.Activation { return nil }

// Decide decides the customer action r: it computes the features, evaluates
// the live policy (and the shadow policy, if set), then learns from r and
// the live decision. A record that is not a customer action is denied with
// the reason not_an_action. Decide never reads the wall clock: all ages are
// measured in stream time (r.Time).
func (e *Engine) Decide(r *event.Record) Result {
	var res Result
	e.DecideInto(r, &res, true)
	return res
}

// DecideInto is Decide writing into res, reusing its slices and map, for
// callers that decide in a loop (replay). With withFeatures false the feature
// map is left empty.
func (e *Engine) DecideInto(r *event.Record, res *Result, withFeatures bool) {
	p := e.live.Load()
	ti := typeIndex(r.Type)
	res.Decision = event.Decision{Event: r.ID, Time: r.Time, Account: r.Account, Action: event.Deny}
	res.Rules, res.ShadowRules, res.Shadow, res.Errors = res.Rules[:0], res.ShadowRules[:0], nil, res.Errors[:0]
	clear(res.Features)
	if p == nil {
		res.Decision.Reasons = []string{ReasonNoPolicy}
		return
	}
	res.Decision.Policy = p.Version
	if ti < 0 {
		res.Decision.Reasons = []string{ReasonNotAnAction}
		return
	}
	e.seen(r.Time)
	shadow := e.shadow.Load()
	st := e.pool.Get().(*evalState)
	f := &st.f
	*f = features{}
	clear(st.act.vals)

	ls := e.lists.load()
	in := input{nowS: r.Time.Unix(), nowN: r.Time.UnixNano()}
	in.net, in.addr, _ = netKey(r.IP)
	if r.Device != "" {
		in.dev = hash64(r.Device)
	}
	if r.UA != "" {
		in.ua = hash64(r.UA)
	}
	if r.Session != "" {
		in.sess = hash64(r.Session)
	}
	in.cc = country2(r.Country)
	f.fromLists(r, ls, in.addr)

	k := hash64(r.Account)
	sh := &e.shards[k%numShards]
	sh.mu.Lock()
	prof := sh.get(k, true)
	e.inst.mu.RLock()
	e.compute(f, r, prof, &in, ls)
	e.inst.mu.RUnlock()

	st.hits = st.hits[:0]
	res.Decision.Action, res.Decision.Factor, res.Decision.Score, res.Decision.Reasons, st.hits = p.evaluate(ti, &st.act, f, st.hits, e, &res.Errors)
	e.learn(prof, r, f, &in, res.Decision.Action)
	sh.mu.Unlock()

	res.Rules = append(res.Rules, st.hits...)
	if shadow != nil {
		d := event.Decision{Event: r.ID, Time: r.Time, Account: r.Account, Policy: shadow.Version}
		st.sh = st.sh[:0]
		d.Action, d.Factor, d.Score, d.Reasons, st.sh = shadow.evaluate(ti, &st.act, f, st.sh, e, &res.Errors)
		res.Shadow = &d
		res.ShadowRules = append(res.ShadowRules, st.sh...)
	}
	if withFeatures {
		if res.Features == nil {
			res.Features = make(map[string]any, len(p.varsType[ti])+4)
		}
		for _, i := range p.varsType[ti] {
			res.Features[variables[i].Name] = f.varValue(i)
		}
		if shadow != nil {
			for _, i := range shadow.varsType[ti] {
				res.Features[variables[i].Name] = f.varValue(i)
			}
		}
	}
	e.pool.Put(st)
}

// evaluate runs the rules of action type ti and maps the result to a
// decision; f gives the session's factors and context, for the factor a
// challenge asks for.
func (p *Policy) evaluate(ti int, a *activation, f *features, hits []Hit, e *Engine, errs *[]string) (action, factor string, score int, reasons []string, _ []Hit) {
	sum, direct, allowed := 0, 0, false
	for _, r := range p.byType[ti] {
		out, _, err := r.prg.Eval(a)
		if err != nil {
			e.errs.Add(1)
			*errs = append(*errs, r.ID+": "+err.Error())
			continue
		}
		if out != types.True {
			continue
		}
		hits = append(hits, Hit{ID: r.ID, Reason: r.Reason, Weight: r.Weight, Action: r.Action})
		switch {
		case r.Action == "":
			sum += r.Weight
		case r.Action == ActionAllow:
			allowed = true
		default:
			direct = max(direct, r.Action.severity())
		}
	}
	score = min(max(sum, 0), 100)
	final := p.Thresholds.action(score)
	if allowed {
		final = ActionAllow
	}
	if direct > final.severity() {
		final = bySeverity[direct]
		score = max(score, min(p.Thresholds.floor(final), 100))
	}
	action, factor = final.split()
	if factor == event.FactorMFA && (p.prType[ti] || p.prNC[ti] && f.sessNewContext) && !f.sessPR {
		factor = event.FactorPhishingResistant
	}
	n := 0
	for _, h := range hits {
		if h.Weight > 0 || h.Action != "" {
			n++
		}
	}
	reasons = make([]string, 0, n)
	for _, h := range hits {
		if (h.Weight > 0 || h.Action != "") && !containsStr(reasons, h.Reason) {
			reasons = append(reasons, h.Reason)
		}
	}
	return action, factor, score, reasons, hits
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// input holds the hashed identifiers of one record.
type input struct {
	nowS, nowN         int64
	net, dev, ua, sess uint64
	addr               netipAddr
	cc                 uint16
	inst               uint32
	instOK             bool
	slot               int    // session slot, -1 none
	key                uint64 // orderKey of an order, when computed; 0 not yet
}

// orderKey identifies an order within its session the way the brokerage
// binds a step-up to it: issue, side, quantity, price type, limit price and
// account kind.
func orderKey(r *event.Record, sess uint64) uint64 {
	h := mix64(hash64(r.Symbol) ^ sess)
	h = mix64(h ^ uint64(r.Qty))
	h = mix64(h ^ math.Float64bits(r.LimitPrice))
	h = mix64(h ^ hash64(r.Side))
	h = mix64(h ^ hash64(r.PriceType)<<1)
	return nonZero(mix64(h ^ hash64(r.AccountKind)<<2))
}

func (f *features) fromLists(r *event.Record, ls *listSnap, addr netipAddr) {
	f.blockedIP, f.allowedIP, f.watchedIP = ls.block.hasIP(addr), ls.allow.hasIP(addr), ls.watch.hasIP(addr)
	f.blockedASN, f.allowedASN, f.watchedASN = ls.block.hasASN(r.ASN), ls.allow.hasASN(r.ASN), ls.watch.hasASN(r.ASN)
	f.devBlocked, f.devAllowed, f.devWatched = ls.block.hasDevice(r.Device), ls.allow.hasDevice(r.Device), ls.watch.hasDevice(r.Device)
	f.hosting, f.residential = ls.hosting.hasASN(r.ASN), ls.resid.hasASN(r.ASN)
	if r.Type == event.TypeOrder {
		f.instBlocked, f.instAllowed, f.instWatched = ls.block.hasInstrument(r.Symbol), ls.allow.hasInstrument(r.Symbol), ls.watch.hasInstrument(r.Symbol)
	}
}

// jst is the offset of Japan Standard Time, in seconds.
const jst = clock.JSTOffset

func ageSince(now, t int64) int64 {
	if t == 0 {
		return never
	}
	return max(now-t, 0)
}

func ratio(a, b float64) float64 {
	if b <= 0 || math.IsNaN(a) || math.IsNaN(b) {
		return 0
	}
	return a / b
}

// holdingsValue returns the market value of p's holdings (instruments read-locked).
func (e *Engine) holdingsValue(p *profile) int64 {
	var v float64
	for _, h := range p.holdings {
		if int(h.inst) < len(e.inst.list) {
			v += float64(h.qty) * e.inst.list[h.inst].priceJPY
		}
	}
	return int64(v)
}

// compute fills f from the record and the account's state (shard locked,
// instruments read-locked), one named step at a time: the action itself,
// the account's profile, its session, then what the action type adds.
func (e *Engine) compute(f *features, r *event.Record, p *profile, in *input, ls *listSnap) {
	actionFeatures(f, r, in)
	e.accountFeatures(f, r, p, in)
	act := liveActivity(p, in)
	in.slot = -1
	if r.Type == event.TypeLogin {
		loginFeatures(f, r)
	} else {
		sessionFeatures(f, r, act, in)
	}
	e.typeFeatures(f, r, p, act, in)
}

// actionFeatures fills the action.* and net.* values read from the record
// alone: type, channel, hour of day in JST, country and ASN.
func actionFeatures(f *features, r *event.Record, in *input) {
	f.typ, f.channel = string(r.Type), r.Channel
	f.hour = ((in.nowS+jst)%86400 + 86400) % 86400 / 3600
	f.country, f.asn = r.Country, r.ASN
	f.foreignNet = r.Country != "" && r.Country != "JP"
}

// accountFeatures fills the account.* values: what the profile knows of
// the account (age, frozen), whether this device, network, ASN, country
// and hour are familiar, its trading habits, recent changes and balances.
func (e *Engine) accountFeatures(f *features, r *event.Record, p *profile, in *input) {
	f.acctKnown = p.flags&flagSnapshot != 0 || p.firstSeen != 0
	f.frozen = p.flags&flagFrozen != 0
	f.ageDays = accountAgeDays(p, in.nowS)
	f.maturityDays = e.maturityDays(p, in.nowS)
	contextFeatures(f, r, p, in)
	habitFeatures(f, p, in)
	f.contactAge, f.factorAge, f.bankAge = ageSince(in.nowS, p.contactChange), ageSince(in.nowS, p.factorChange), ageSince(in.nowS, p.bankChange)
	f.holdingsJPY, f.cashJPY = e.holdingsValue(p), p.cash
	f.valueJPY = f.holdingsJPY + f.cashJPY
	f.passkeyEnrolled = p.factors&factorBit(event.FactorPasskey) != 0
	f.bankKnown = p.bank != 0
}

// seen notes the stream time of a record, the first of which starts the
// history of every profile.
func (e *Engine) seen(t time.Time) {
	if e.start.Load() == 0 {
		e.start.CompareAndSwap(0, t.Unix())
	}
}

// maturityDays returns the days of history the engine has seen of the
// account: whole days since the engine's first record (as the profile
// keeps it, so that a profile carried to another engine in a snapshot
// keeps its history), or since the account was opened (or first seen,
// without a snapshot) if later.
func (e *Engine) maturityDays(p *profile, now int64) int64 {
	from := p.watched
	if from == 0 {
		from = e.start.Load()
	}
	switch {
	case p.openedDay != 0:
		from = max(from, int64(p.openedDay)*86400)
	case p.firstSeen != 0:
		from = max(from, p.firstSeen)
	}
	return max(now-from, 0) / 86400
}

// accountAgeDays returns the days since the account was opened (from its
// snapshot), or else since it was first seen; 0 when neither is known.
func accountAgeDays(p *profile, now int64) int64 {
	switch {
	case p.openedDay != 0:
		return max(now/86400-int64(p.openedDay), 0)
	case p.firstSeen != 0:
		return max(now-p.firstSeen, 0) / 86400
	}
	return 0
}

// contextFeatures fills whether the action's device, network, ASN,
// country and hour of day are ones the account used before, and how many
// devices it knows.
func contextFeatures(f *features, r *event.Record, p *profile, in *input) {
	f.knownDevice = mruHas(p.devices[:], in.dev)
	f.knownNetwork = mruHas(p.nets[:], in.net)
	f.knownASN = mruHas(p.asns[:], uint32(r.ASN))
	f.knownCountry = in.cc == 0 || r.Country == "JP" || mruHas(p.countries[:], in.cc)
	today := dayOf(in.nowS)
	if d, ok := mruDay(p.devices[:], p.devDay[:], in.dev); ok {
		f.devEstablished = today >= d
	}
	if d, ok := mruDay(p.nets[:], p.netDay[:], in.net); ok {
		f.netEstablished = today >= d
	}
	f.ownContext = anyEstablished(p.devices[:], p.devDay[:], today) || anyEstablished(p.nets[:], p.netDay[:], today)
	for _, d := range p.devices {
		if d != 0 {
			f.deviceCount++
		}
	}
	f.loginCount = int64(p.logins)
	h := f.hour
	f.usualHour = int(p.hours[h])+int(p.hours[(h+1)%24])+int(p.hours[(h+23)%24]) >= 2
}

// habitFeatures fills the account's failed sign-ins (within 24 hours of
// the last) and its trading habits: orders, usual order value, low-priced,
// foreign and margin trading, and what the snapshot enables.
func habitFeatures(f *features, p *profile, in *input) {
	if in.nowS-p.failedLast <= 86400 {
		f.failedLogins = int64(p.failed)
	}
	f.lowpriceDays = int64(p.lowpriceDays)
	f.orderCount = int64(p.orders)
	if p.orders > 0 {
		f.usualOrder = int64(math.Exp(float64(p.usualOrderLog)))
	}
	f.foreignTrades, f.marginOrders = int64(p.foreignTrades), int64(p.marginOrders)
	f.foreignEnabled, f.marginEnabled = p.flags&flagForeign != 0, p.flags&flagMargin != 0
}

// liveActivity returns the account's transient activity, first clearing
// it when the account has been idle for more than 24 hours; nil when
// there is none.
func liveActivity(p *profile, in *input) *activity {
	act := p.act
	if act != nil && in.nowS-act.last > 86400 {
		*act = activity{}
	}
	return act
}

// loginFeatures fills the login.* values and the session.* values of the
// session this login opens: its factors and whether its device and
// network are new to the account.
func loginFeatures(f *features, r *event.Record) {
	f.loginOK, f.loginMethod, f.loginFactors = r.OK, r.Method, int64(len(r.Factors))
	f.loginPasskey = r.Method == event.FactorPasskey || containsStr(r.Factors, event.FactorPasskey)
	f.sessKnown = true
	f.sessPR, f.sessMFA = f.loginPasskey, len(r.Factors) >= 2
	newContextFeatures(f)
}

// newContextFeatures fills the session's new-device, new-network and
// new-context values from the account's context features, for a session
// first seen now.
func newContextFeatures(f *features) {
	f.sessNewDevice = !f.knownDevice
	f.sessNewNetwork = !f.knownNetwork && !f.knownASN
	f.sessNetKnown = f.knownNetwork
	f.sessNewContext = !f.sessPR && !f.devEstablished && !f.netEstablished
}

// sessionFeatures fills the session.* values of an action other than a
// login: from the session's state when the engine tracks it (setting
// in.slot), else as a session first seen now.
func sessionFeatures(f *features, r *event.Record, act *activity, in *input) {
	s := findSession(act, in)
	if s == nil {
		newContextFeatures(f)
		return
	}
	trackedSessionFeatures(f, r, s, in)
}

// findSession returns the tracked session of the action and sets in.slot
// to its slot, or returns nil (in.slot unchanged).
func findSession(act *activity, in *input) *session {
	if act == nil || in.sess == 0 {
		return nil
	}
	for i := range act.sessions {
		if act.sessions[i].id == in.sess {
			in.slot = i
			return &act.sessions[i]
		}
	}
	return nil
}

// trackedSessionFeatures fills the session.* values from the tracked
// session s: its age, factors, sign-in context, and whether the action
// comes from another device, user agent, network, ASN or country than
// the sign-in (a context jump or a network move).
func trackedSessionFeatures(f *features, r *event.Record, s *session, in *input) {
	f.sessKnown = s.known
	f.sessAge = max(in.nowN-s.start, 0) / 1e9
	if s.first != 0 {
		f.firstAction = max(s.first-s.start, 0) / 1e9
	} else {
		f.firstAction = f.sessAge
	}
	f.actions = int64(s.actions)
	f.sessPR = s.factors&factorBit(event.FactorPasskey) != 0
	f.sessMFA = bitsCount(s.factors) >= 2
	f.sessNewDevice, f.sessNewNetwork, f.sessNetKnown = s.newDevice, s.newNet, s.netKnown
	f.sessNewContext = s.newContext
	f.deviceChanged = s.device != 0 && in.dev != 0 && s.device != in.dev
	f.uaChanged = s.ua != 0 && in.ua != 0 && s.ua != in.ua
	f.ipChanged = s.net != 0 && in.net != 0 && s.net != in.net
	f.asnChanged = s.asn != 0 && r.ASN != 0 && s.asn != uint32(r.ASN)
	f.countryChanged = s.country != 0 && in.cc != 0 && s.country != in.cc
	f.jump = s.jumped || f.deviceChanged || f.uaChanged || f.countryChanged || (f.asnChanged && !f.knownASN)
	// A move to a network the account never used (or back to the one
	// the session first moved to), even inside the sign-in's ASN.
	f.netMoved = f.ipChanged && (!f.knownNetwork || in.net == s.movedNet)
}

// typeFeatures fills the values only some action types have: an order's,
// a withdrawal's, a contact change's field and a factor change's factor.
func (e *Engine) typeFeatures(f *features, r *event.Record, p *profile, act *activity, in *input) {
	switch r.Type {
	case event.TypeOrder:
		e.orderFeatures(f, r, p, act, in)
	case event.TypeWithdrawal:
		e.withdrawalFeatures(f, r, p, act, in)
	case event.TypeContactChange:
		f.field = r.Field
	case event.TypeFactorAdd, event.TypeFactorRemove:
		f.factor = r.Factor
	}
}

// withdrawalFeatures fills the withdrawal.* values, the burst the
// withdrawal follows and the value sold from new contexts before it.
func (e *Engine) withdrawalFeatures(f *features, r *event.Record, p *profile, act *activity, in *input) {
	f.amount = r.AmountJPY
	f.knownBank = p.bank != 0 && p.bank == hash64(r.BankHash)
	if p.cash > 0 {
		f.cashShare = float64(r.AmountJPY) / float64(p.cash)
	} else {
		f.cashShare = 1
	}
	e.burstFeatures(f, act, in, false, 0)
	newContextSoldFeatures(f, p, in)
}

// orderFeatures fills the order.* and instrument.* values of an order, the
// account's history with its issue, whether it retries a challenged order,
// and the burst as it would be with this order included.
func (e *Engine) orderFeatures(f *features, r *event.Record, p *profile, act *activity, in *input) {
	f.side, f.buy, f.sell = r.Side, r.Side == event.SideBuy, r.Side == event.SideSell
	f.value, f.qty = r.ValueJPY, r.Qty
	f.margin, f.nisa = r.AccountKind == event.KindMargin, r.AccountKind == event.KindNISA
	f.marketOrder = r.PriceType == event.PriceMarket
	f.symbol = r.Symbol
	f.advShare = 1
	idx, inst := e.inst.lookup(r.Symbol)
	if inst != nil {
		instrumentFeatures(f, r, p, idx, inst, in)
	} else if f.price == 0 && r.Qty > 0 {
		f.price = float64(r.ValueJPY) / float64(r.Qty)
	}
	if f.usualOrder > 0 {
		f.valueRatio = float64(r.ValueJPY) / float64(f.usualOrder)
	}
	if act != nil && act.chal != 0 && in.nowS-act.chalAt <= retryWindow {
		in.key = orderKey(r, in.sess)
		f.retry = in.key == act.chal
	}
	e.burstFeatures(f, act, in, true, r.ValueJPY)
	newContextSoldFeatures(f, p, in)
	newContextBoughtFeatures(f, p, r, in)
}

// atRisk reports whether the action's session is in a new context that
// means something (the customer has an established device or network of
// its own to differ from, or the profile has a week of history: a dormant
// account), or is used from a network the account never used after its
// sign-in (a stolen cookie replayed through a proxy). A session of a profile in its first week with nothing
// established is new only because the guard knows nothing yet, and its
// sells are not value at risk (no history is not evidence).
func atRisk(f *features) bool {
	return f.sessNewContext && (f.ownContext || f.maturityDays >= establishDays) || f.netMoved
}

// newContextSoldFeatures fills the value at risk from new contexts: the
// account's sells from new-context sessions over the last week, this one
// included when it is a sell of such a session (and not a retry), against
// the holdings when the first of them was made, and the most the account
// sold in one day from its established contexts.
func newContextSoldFeatures(f *features, p *profile, in *input) {
	f.maxDaySold = p.maxDaySold
	prev, base := int64(0), f.holdingsJPY
	if p.ncAt != 0 && in.nowS-p.ncAt <= newContextWindow {
		// the holdings when the first of them was made, or what they are
		// now with those sells added back, if more (bought since)
		prev, base = p.ncSold, max(p.ncBase, f.holdingsJPY+p.ncSold)
	}
	f.ncSold = prev
	if f.sell && atRisk(f) && !f.retry {
		f.ncSold += f.value
	}
	if base > 0 {
		f.ncShare = float64(f.ncSold) / float64(base)
	} else if f.ncSold > 0 {
		f.ncShare = 1
	}
}

// newContextBoughtFeatures fills where value at risk goes with cash: the
// account's buys from sessions at risk (atRisk) of issues it had not held
// or traded before them, over the last week, this one included when it is
// such a buy (and not a retry), against the cash when the first of them
// was made (0 when the cash is unknown: no balance is not evidence). A
// later part of the same buy counts although the first part's fill made
// the issue held.
func newContextBoughtFeatures(f *features, p *profile, r *event.Record, in *input) {
	prev, base := int64(0), f.cashJPY
	live := p.nbAt != 0 && in.nowS-p.nbAt <= newContextWindow
	if live {
		// the cash when the first of them was made, or what it is now,
		// if more (sold or paid in since)
		prev, base = p.nbBought, max(p.nbBase, f.cashJPY)
	}
	f.ncBought = prev
	if f.buy && atRisk(f) && (!f.heldSymbol || live && p.nbIssue(hash64(r.Symbol))) {
		f.ncIssue = true
		if !f.retry {
			f.ncBought += f.value
		}
	}
	if base > 0 {
		f.ncBoughtShare = float64(f.ncBought) / float64(base)
	}
}

// nbIssue reports whether the issue with symbol hash h is one the account
// bought from a new context in the window.
func (p *profile) nbIssue(h uint64) bool {
	for _, x := range p.nbIssues {
		if x == h && h != 0 {
			return true
		}
	}
	return false
}

// instrumentFeatures fills the instrument.* values of a known instrument
// (setting in.inst), the order's share of its volume and premium over its
// price, and the account's history in its price band and with the issue.
func instrumentFeatures(f *features, r *event.Record, p *profile, idx uint32, inst *instrument, in *input) {
	in.inst, in.instOK = idx, true
	f.instKnown = !inst.provisional
	f.market, f.instForeign = inst.market, inst.foreign
	f.price, f.adv, f.heat, f.halted = inst.priceJPY, inst.adv, inst.heat, inst.halted
	f.advJPY = float64(inst.adv) * inst.priceJPY
	if inst.adv > 0 {
		f.advShare = float64(r.Qty) / float64(inst.adv)
	}
	if r.PriceType == event.PriceLimit && inst.price > 0 {
		f.limitPremium = r.LimitPrice/inst.price - 1
	}
	f.bandTrades = int64(p.bands[priceBand(inst.priceJPY)])
	f.heldSymbol = p.hasIssue(idx) || p.holds(idx)
}

// burstExpired reports whether b no longer groups an action at now in session sess.
func burstExpired(b *burst, now int64, sess uint64) bool {
	return b.start != 0 && now-b.start > burstWindow && (b.session == 0 || b.session != sess)
}

// burstFeatures computes the session.* trading features: the current burst
// as it would be with this order included.
func (e *Engine) burstFeatures(f *features, act *activity, in *input, order bool, value int64) {
	var b burst
	if act != nil && !burstExpired(&act.burst, in.nowS, in.sess) {
		b = act.burst
	}
	base := b.base
	if b.start == 0 {
		base = f.holdingsJPY
	}
	f.sold, f.bought, f.sells, f.buys = b.sold, b.bought, int64(b.sells), int64(b.buys)
	if f.retry {
		// the retry of a challenged order the burst already counts
		value = 0
	}
	if order && f.sell && !f.retry {
		f.sold += value
		f.sells++
	}
	if order && f.buy && b.start != 0 {
		if !f.retry {
			f.bought += value
			f.buys++
		}
		sym := value
		for _, x := range b.issues {
			if in.instOK && x.inst == in.inst && x.jpy > 0 {
				sym += x.jpy
				f.heldSymbol = !x.neverHeld
			}
		}
		f.symBuyShare = ratio(float64(sym), float64(b.sold))
	}
	f.soldShare = ratio(float64(f.sold), float64(base))
}

func bitsCount(b uint8) int {
	n := 0
	for ; b != 0; b &= b - 1 {
		n++
	}
	return n
}

func factorBit(f string) uint8 {
	switch f {
	case event.FactorPassword:
		return 1
	case event.FactorPasskey:
		return 2
	case event.FactorTOTP:
		return 4
	case event.FactorEmailOTP:
		return 8
	case event.FactorSMSOTP:
		return 16
	}
	return 0
}

func factorMask(fs []string) uint8 {
	var m uint8
	for _, f := range fs {
		m |= factorBit(f)
	}
	return m
}

// learn updates the account's state from r and the live decision (shard
// locked). Profile facts (devices, networks, hours, order habits) are
// learnt only from allowed actions; session activity from actions that may
// go ahead (allowed or challenged); failed logins always. A challenged order
// is counted in the burst when first decided (it may execute after the
// step-up) and its retry with the step-up, a new record for the same order,
// is not counted again; counting only allowed orders instead would hide every
// stepped-up order from the totals, since its retry is decided challenge too.
func (e *Engine) learn(p *profile, r *event.Record, f *features, in *input, action string) {
	allowed := action == event.Allow
	if p.firstSeen == 0 {
		p.firstSeen, p.watched = in.nowS, e.start.Load()
	}
	if r.Type == event.TypeLogin && !r.OK {
		learnFailedLogin(p, in)
		return
	}
	if !allowed && action != event.Challenge {
		return
	}
	act := touchActivity(p, in)
	if r.Type == event.TypeLogin {
		learnLogin(p, act, r, f, in, allowed)
	} else if in.sess != 0 {
		learnSessionAction(act, r, f, in)
	}
	switch r.Type {
	case event.TypeOrder:
		learnBurst(act, r, f, in, action)
		learnSold(p, r, f, in, allowed)
		learnBought(p, r, f, in)
		if allowed {
			learnOrderHabits(p, r, f)
		}
	case event.TypeBankChange, event.TypeContactChange, event.TypeFactorAdd, event.TypeFactorRemove, event.TypePasswordChange:
		learnChange(p, r, in, allowed)
	}
	if allowed {
		learnContext(p, r, f, in)
	}
}

// learnFailedLogin counts a failed sign-in, starting the count afresh when
// the last failure is more than 24 hours old.
func learnFailedLogin(p *profile, in *input) {
	if in.nowS-p.failedLast > 86400 {
		p.failed = 0
	}
	if p.failed < math.MaxUint16 {
		p.failed++
	}
	p.failedLast = in.nowS
}

// touchActivity returns the account's activity (created if needed) with
// its last action set to now.
func touchActivity(p *profile, in *input) *activity {
	act := p.act
	if act == nil {
		act = &activity{}
		p.act = act
	}
	act.last = in.nowS
	return act
}

// learnLogin learns from a successful sign-in: when allowed, the account's
// sign-in count and hour of day (and its failures are forgiven); in any
// case the session it opens, with its context and factors.
func learnLogin(p *profile, act *activity, r *event.Record, f *features, in *input, allowed bool) {
	if allowed {
		p.failed = 0
		p.logins++
		if p.hours[f.hour] < math.MaxUint8 {
			p.hours[f.hour]++
		}
	}
	if in.sess == 0 {
		return
	}
	s := act.slotFor(in.sess)
	*s = session{id: in.sess, start: in.nowN, last: in.nowN, device: in.dev, net: in.net, ua: in.ua,
		asn: uint32(r.ASN), country: in.cc, factors: factorMask(r.Factors), known: true,
		newDevice: f.sessNewDevice, newNet: f.sessNewNetwork, netKnown: f.sessNetKnown, newContext: f.sessNewContext}
	if r.Method == event.FactorPasskey {
		s.factors |= factorBit(event.FactorPasskey)
	}
}

// learnSessionAction learns from an action in a session: the session is
// started if its sign-in was not seen, its first and last action times and
// its count of actions (a retry is not counted again) are updated, and a
// context jump or the first network move is remembered for the session.
func learnSessionAction(act *activity, r *event.Record, f *features, in *input) {
	var s *session
	if in.slot >= 0 {
		s = &act.sessions[in.slot]
	} else {
		s = act.slotFor(in.sess)
		*s = session{id: in.sess, start: in.nowN, device: in.dev, net: in.net, ua: in.ua,
			asn: uint32(r.ASN), country: in.cc, newDevice: f.sessNewDevice, newNet: f.sessNewNetwork, netKnown: f.sessNetKnown,
			newContext: f.sessNewContext}
	}
	if s.first == 0 {
		s.first = in.nowN
	}
	s.last = in.nowN
	if s.actions < math.MaxUint16 && !f.retry {
		s.actions++
	}
	s.jumped = s.jumped || f.jump
	if f.netMoved && s.movedNet == 0 {
		s.movedNet = in.net
	}
}

// learnBurst adds an order that may go ahead to the account's burst: a
// sell starts the burst (or adds to it), a buy inside a burst adds to its
// buys and to its issue's total. A challenged order is remembered so that
// its retry after the step-up is known, and that retry is not counted again.
func learnBurst(act *activity, r *event.Record, f *features, in *input, action string) {
	b := &act.burst
	if burstExpired(b, in.nowS, in.sess) {
		*b = burst{}
	}
	if action == event.Challenge && !f.retry {
		// remember it, so that its retry after the step-up is known
		if in.key == 0 {
			in.key = orderKey(r, in.sess)
		}
		act.chal, act.chalAt = in.key, in.nowS
	}
	switch {
	case f.retry:
		// The retry after a step-up is the order the burst counted when
		// it was first decided (challenged): one order, counted once.
		act.chal = 0
	case f.sell:
		if b.start == 0 {
			*b = burst{start: in.nowS, session: in.sess, base: f.holdingsJPY}
		}
		b.sold += r.ValueJPY
		b.sells++
	case f.buy && b.start != 0:
		b.bought += r.ValueJPY
		b.buys++
		b.addBuy(in, f.heldSymbol, r.ValueJPY)
	}
}

// addBuy adds value to the burst's total for the bought issue, taking a
// free slot for an issue not yet bought in the burst (dropped when the
// slots are full).
func (b *burst) addBuy(in *input, held bool, value int64) {
	for i := range b.issues {
		x := &b.issues[i]
		if x.jpy == 0 || (in.instOK && x.inst == in.inst) {
			if x.jpy == 0 {
				*x = burstBuy{inst: in.inst, neverHeld: !held}
			}
			x.jpy += max(value, 1)
			return
		}
	}
}

// learnBought adds a buy that may go ahead from a session at risk, of an
// issue the account had not held (order.new_context_issue), to where value
// at risk goes (a retry is the order already counted).
func learnBought(p *profile, r *event.Record, f *features, in *input) {
	if !f.ncIssue || f.retry {
		return
	}
	if p.nbAt == 0 || in.nowS-p.nbAt > newContextWindow {
		p.nbBought, p.nbBase, p.nbIssues = 0, f.cashJPY, [maxNCIssues]uint64{}
	}
	p.nbBought += r.ValueJPY
	p.nbAt = in.nowS
	if h := hash64(r.Symbol); !p.nbIssue(h) {
		copy(p.nbIssues[1:], p.nbIssues[:maxNCIssues-1])
		p.nbIssues[0] = h
	}
}

// learnSold adds a sell that may go ahead to the value at risk from new
// contexts when its session is in one (a retry is the order already
// counted), and an allowed sell from an established context to the day's
// selling and the account's most sold in one day.
func learnSold(p *profile, r *event.Record, f *features, in *input, allowed bool) {
	if !f.sell || f.retry {
		return
	}
	if atRisk(f) {
		if p.ncAt == 0 || in.nowS-p.ncAt > newContextWindow {
			p.ncSold, p.ncBase = 0, f.holdingsJPY
		}
		p.ncSold += r.ValueJPY
		p.ncAt = in.nowS
		return
	}
	if !allowed {
		return
	}
	if d := dayOf(in.nowS); d != p.daySoldDay {
		p.daySold, p.daySoldDay = 0, d
	}
	p.daySold += r.ValueJPY
	p.maxDaySold = max(p.maxDaySold, p.daySold)
}

// learnOrderHabits learns from an allowed order: the count of orders, the
// moving average of their value's logarithm, and margin orders.
func learnOrderHabits(p *profile, r *event.Record, f *features) {
	p.orders++
	if r.ValueJPY > 0 {
		lv := float32(math.Log(float64(r.ValueJPY)))
		if p.orders == 1 {
			p.usualOrderLog = lv
		} else {
			p.usualOrderLog = 0.8*p.usualOrderLog + 0.2*lv
		}
	}
	if f.margin && p.marginOrders < math.MaxUint16 {
		p.marginOrders++
	}
}

// learnChange notes when the bank account, contact details, factors or
// password last changed (even when not allowed: the attempt counts), and,
// when allowed, the new bank account or the factor added or removed.
func learnChange(p *profile, r *event.Record, in *input, allowed bool) {
	switch r.Type {
	case event.TypeBankChange:
		p.bankChange = in.nowS
		if allowed {
			p.bank = hash64(r.BankHash)
		}
	case event.TypeContactChange:
		p.contactChange = in.nowS
	case event.TypeFactorAdd, event.TypeFactorRemove, event.TypePasswordChange:
		p.factorChange = in.nowS
		if allowed && r.Type == event.TypeFactorAdd {
			p.factors |= factorBit(r.Factor)
		} else if allowed && r.Type == event.TypeFactorRemove {
			p.factors &^= factorBit(r.Factor)
		}
	}
}

// learnContext makes the allowed action's device, network, ASN and
// (outside Japan) country known to the account, a new device or network
// established from the day establishedFrom gives.
func learnContext(p *profile, r *event.Record, f *features, in *input) {
	day := dayOf(in.nowS)
	mruTouchDay(p.devices[:], p.devDay[:], in.dev, establishedFrom(day, f))
	mruTouchDay(p.nets[:], p.netDay[:], in.net, establishedFrom(day, f))
	mruTouch(p.asns[:], uint32(r.ASN))
	if r.Country != "JP" {
		mruTouch(p.countries[:], in.cc)
	}
}

// establishedFrom returns the day from which a device (or network) first
// learnt today is the customer's established own rather than merely known,
// given the features of the action it is learnt from. It is established from the next day when
// learnt in a session that is not a new context (signed in on an
// established device or network, or with a passkey: trust passes from the
// customer's own context to the new one), while the account had none
// established, or in the first establishDays of the profile's history
// (when every one is new and the ones the customer uses are the best
// knowledge there is). Otherwise, from establishDays later: an attacker
// whose phished sign-in was allowed makes its device known at once, and it
// stays a new context for a week.
func establishedFrom(today uint16, f *features) uint16 {
	if !f.sessNewContext || f.maturityDays < establishDays {
		return today + 1
	}
	if f.ownContext {
		return today + establishDays
	}
	return today + 1
}

// anyEstablished reports whether any of the entries of a is established
// today (days beside them, as mruTouchDay keeps them).
func anyEstablished(a []uint64, days []uint16, today uint16) bool {
	for i, v := range a {
		if v != 0 && days[i] <= today {
			return true
		}
	}
	return false
}

// slotFor returns the slot of session id, or the least recently used slot.
func (a *activity) slotFor(id uint64) *session {
	best := 0
	for i := range a.sessions {
		if a.sessions[i].id == id {
			return &a.sessions[i]
		}
		if a.sessions[i].last < a.sessions[best].last {
			best = i
		}
	}
	return &a.sessions[best]
}

// Observe feeds a record that needs no decision: instrument and bar records
// update the instrument table, account snapshots replace the account's
// holdings, cash, factors and registered details (noting changes), fills
// update holdings, cash and trading history. Other records are ignored.
func (e *Engine) Observe(r *event.Record) {
	e.seen(r.Time)
	switch r.Type {
	case event.TypeInstrument:
		e.inst.mu.Lock()
		_, in := e.inst.ensure(r.Symbol)
		in.provisional = false
		in.market = r.Market
		in.foreign = r.Currency != "JPY" || !(r.Market == "" || r.Market == "TSE_PRIME" || r.Market == "TSE_STANDARD" || r.Market == "TSE_GROWTH")
		in.price, in.priceJPY, in.adv = r.Price, r.PriceJPY, r.ADVShares
		in.fx = 1
		if r.Price > 0 && r.PriceJPY > 0 {
			in.fx = r.PriceJPY / r.Price
		}
		e.inst.mu.Unlock()
	case event.TypeBar:
		if r.Close <= 0 || math.IsNaN(r.Close) || math.IsInf(r.Close, 0) {
			return
		}
		e.inst.mu.Lock()
		_, in := e.inst.ensure(r.Symbol)
		in.price, in.priceJPY = r.Close, r.Close*in.fx
		e.inst.mu.Unlock()
	case event.TypeAccount:
		e.observeAccount(r)
	case event.TypeFill:
		e.observeFill(r)
	}
}

func (e *Engine) observeAccount(r *event.Record) {
	k := hash64(r.Account)
	sh := &e.shards[k%numShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	p := sh.get(k, true)
	now := r.Time.Unix()
	if p.firstSeen == 0 {
		p.firstSeen, p.watched = now, e.start.Load()
	}
	changed := func(old *uint64, v string, at *int64) {
		h := uint64(0)
		if v != "" {
			h = hash64(v)
		}
		if p.flags&flagSnapshot != 0 && *old != h {
			*at = now
		}
		*old = h
	}
	var email, phone int64
	changed(&p.email, r.EmailHash, &email)
	changed(&p.phone, r.PhoneHash, &phone)
	if c := max(email, phone); c != 0 {
		p.contactChange = c
	}
	changed(&p.bank, r.BankHash, &p.bankChange)
	f := factorMask(r.Factors)
	if p.flags&flagSnapshot != 0 && f != p.factors {
		p.factorChange = now
	}
	p.factors = f
	p.flags = p.flags&flagFrozen | flagSnapshot
	if r.ForeignEnabled {
		p.flags |= flagForeign
	}
	if r.MarginEnabled {
		p.flags |= flagMargin
	}
	if t, err := time.Parse(time.DateOnly, r.Opened); err == nil {
		p.openedDay = int32(t.Unix() / 86400)
	}
	p.cash = r.CashJPY
	p.holdings = p.holdings[:0]
	e.inst.mu.Lock()
	for _, h := range r.Holdings {
		if h.Qty <= 0 {
			continue
		}
		idx, in := e.inst.ensure(h.Symbol)
		if in.provisional && in.priceJPY == 0 && h.CostJPY > 0 {
			in.priceJPY = float64(h.CostJPY) / float64(h.Qty)
			in.price = in.priceJPY
		}
		p.addIssue(idx)
		merged := false
		for i := range p.holdings {
			if p.holdings[i].inst == idx {
				p.holdings[i].qty += h.Qty
				merged = true
			}
		}
		if !merged {
			p.holdings = append(p.holdings, holding{inst: idx, qty: h.Qty})
		}
	}
	e.inst.mu.Unlock()
	if len(p.holdings) == 0 {
		p.holdings = nil
	}
}

func (e *Engine) observeFill(r *event.Record) {
	if r.Qty <= 0 {
		return
	}
	k := hash64(r.Account)
	sh := &e.shards[k%numShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	p := sh.get(k, true)
	now := r.Time.Unix()
	if p.firstSeen == 0 {
		p.firstSeen, p.watched = now, e.start.Load()
	}
	e.inst.mu.Lock()
	idx, in := e.inst.ensure(r.Symbol)
	foreign := in.foreign
	e.inst.mu.Unlock()
	px := float64(r.ValueJPY) / float64(r.Qty)
	p.addIssue(idx)
	if b := priceBand(px); p.bands[b] < math.MaxUint16 {
		p.bands[b]++
	}
	if foreign && p.foreignTrades < math.MaxUint16 {
		p.foreignTrades++
	}
	i := 0
	for ; i < len(p.holdings) && p.holdings[i].inst != idx; i++ {
	}
	switch r.Side {
	case event.SideBuy:
		p.cash -= r.ValueJPY
		if i == len(p.holdings) {
			p.holdings = append(p.holdings, holding{inst: idx})
		}
		p.holdings[i].qty += r.Qty
		if px < 500 {
			day := uint16((now + jst) / 86400)
			if day != p.lastLowDay && p.lowpriceDays < math.MaxUint16 {
				p.lowpriceDays++
				p.lastLowDay = day
			}
		}
	case event.SideSell:
		p.cash += r.ValueJPY
		if i < len(p.holdings) {
			p.holdings[i].qty -= r.Qty
			if p.holdings[i].qty <= 0 {
				p.holdings = append(p.holdings[:i], p.holdings[i+1:]...)
			}
		}
	}
}

type netipAddr = netip.Addr
