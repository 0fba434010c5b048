package surveil

import (
	"math"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// refusedWeight is the heat a suspect first-ever buyer whose buy the guard
// refused adds (at most ConvergeAccounts of them count).
const refusedWeight = 8

// ringSlip is how far apart (a share of the price) a ring seller's print
// and a suspect buyer's may be and still match (R7).
const ringSlip = 0.03

// dilution: R3 does not hold when clean first-ever buyers number more than
// dilution times the suspects.
const dilution = 3

// walkShare is the least share of an issue's market volume over 30
// minutes the firm's own customers' buys must make for a price walk (R5,
// R6) to be one they cause, and so evidence about the issue.
const walkShare = 0.10

// nonTargetCap is the highest heat of an issue outside the R2 target
// profile, below the default halt score.
const nonTargetCap = 75

// maxEntries bounds the first-ever buyers kept per instrument (R3).
const maxEntries = 64

// entry is one account's first-ever buy of an issue (R3).
type entry struct {
	at     int64
	ip     uint64
	dev    uint64
	asn    int64
	ipS    string
	devS   string
	bits   uint64
	acct   int32
	linked bool // R10 edges added
	// refused: the guard refused a buy order of this entry (challenge,
	// hold or deny). An attempted buy is the same evidence as an executed
	// one; the guard's refusal stands in for the market evidence a fill
	// would have given.
	refused bool
	// orders counts the account's buy orders of the issue since its
	// first-ever buy (refused ones included), last is the latest: a
	// hijacked account ramps in several orders, and each is a hijacked buy.
	orders uint16
	last   int64
}

// spike is the R7 state of an instrument from the first suspect buy fill of
// the day: market and firm volume since, recent prints of suspect buyers and
// of sellers, and the sellers' tallies.
type spike struct {
	start   int64
	barVol  int64
	fillVol int64
	buys    [16]print
	sells   [16]print
	nb, ns  int
	sellers []tally
}

type print struct {
	at   int64
	px   float64
	qty  int64
	acct int32
}

type tally struct {
	acct    int32
	flagged bool
	qty     int64
	matched int64
	value   int64
	// hijacked: some of the matched prints were bought by an account with
	// a positive sign of takeover (positiveBuyer), not only a suspect's
	// points: a day trader selling into customers on their first days, or
	// into buyers with a new phone, is no ring.
	hijacked bool
}

func (s *spike) seller(a int32) *tally {
	for i := range s.sellers {
		if s.sellers[i].acct == a {
			return &s.sellers[i]
		}
	}
	s.sellers = append(s.sellers, tally{acct: a})
	return &s.sellers[len(s.sellers)-1]
}

// orderValue is the yen value of an order or fill, estimated when missing.
func orderValue(r *event.Record, in *inst) int64 {
	if r.ValueJPY > 0 {
		return r.ValueJPY
	}
	px := r.LimitPrice
	if r.Type == event.TypeFill {
		px = r.Price
	}
	if px <= 0 {
		px = in.last
	}
	if px <= 0 {
		px = in.prevClose
	}
	v := float64(r.Qty) * px * in.fx
	if v <= 0 || math.IsNaN(v) || v > 1e15 {
		return 0
	}
	return int64(v)
}

// r1Open reports whether a's R1 window is open at now for session sh.
func (w *Watch) r1Open(a *acct, sh uint64, now int64) bool {
	if a.r1Start == 0 || dayOf(a.r1Start) != dayOf(now) {
		return false
	}
	return now-a.r1Start <= w.liqWin || sh == a.r1Sess && sh != emptyHash
}

var emptyHash = fnv("")

// onOrder reads one order record in named steps: the session it belongs
// to, then the sell side (R1's liquidation and R7's ring) or the buy side
// (R1-R3 convergence, R5's walk-up and the instrument's evaluation).
func (w *Watch) onOrder(r *event.Record, d *event.Decision, now int64) {
	if r.Account == "" || r.Symbol == "" || r.Qty <= 0 {
		return
	}
	a := w.account(r.Account)
	in := w.instrument(r.Symbol, now)
	day := dayOf(now)
	sh := fnv(r.Session)
	if contextless(r) {
		w.noClientContext(r, a, now)
	}
	inSess := w.orderSession(r, a, sh, day, now)
	a.active(day)
	value := orderValue(r, in)
	switch r.Side {
	case event.SideSell:
		w.onSell(in, a, sh, day, value, now)
	case event.SideBuy:
		w.onBuy(r, d, in, a, sh, day, inSess, value, now)
	}
}

// orderSession reports whether an order belongs to the account's session
// of today's login, and marks the session's first order (and a fast one).
func (w *Watch) orderSession(r *event.Record, a *acct, sh uint64, day int32, now int64) bool {
	// a login record may carry no session yet: the orders that follow from
	// the same device belong to it
	inSess := a.loginAt != 0 && dayOf(a.loginAt) == day &&
		(sh == a.sess || r.Session == "" || a.sess == emptyHash && (r.Device == "" || fnv(r.Device) == a.loginDev))
	if inSess && a.firstOrder == 0 {
		a.firstOrder = now
		if now-a.loginAt <= w.fastLogin {
			a.sBits |= bFastLogin
		}
	}
	return inSess
}

// onSell counts a sell towards R1's liquidation and tries R7's ring.
func (w *Watch) onSell(in *inst, a *acct, sh uint64, day int32, value int64, now int64) {
	// R1 liquidates the holdings the account came into the day with:
	// selling what it bought today is a day trader's round trip
	if p := a.position(in); p == nil || p.firstDay != day {
		w.r11Sell(a, value, day)
		if !w.r1Open(a, sh, now) {
			a.r1Start, a.r1Sess = now, sh
			a.r1MV = a.marketValue(day)
			a.r1Sold, a.r1Proceeds = 0, 0
			a.r1Buys = a.r1Buys[:0]
			a.r1Hit, a.r1Held = nil, false
		}
		a.r1Sold += value
	}
	if a.ringAt != 0 && now-a.ringAt <= w.campWin && in.susAt != 0 && now-in.susAt <= w.ringMatch {
		w.ringAttempt(in, a, now)
	}
}

// onBuy feeds a buy to convergence (R1-R3) with its bits, to R5's walk-up,
// and re-evaluates the instrument.
func (w *Watch) onBuy(r *event.Record, d *event.Decision, in *inst, a *acct, sh uint64, day int32, inSess bool, value int64, now int64) {
	// A first-ever buy is of an issue the account did not hold before
	// today: every buy order of it today counts, not only the first,
	// so that R1 sees the proceeds going in over several orders and R3
	// sees each hijacked buy.
	if p := a.position(in); p == nil || p.firstDay == day {
		gb, refused := w.orderDecision(d)
		if contextless(r) {
			// the guard read the gateway's address and a missing
			// device: unknown, not new
			gb &^= netMask | bNewDevice
		}
		bits := w.weighContext(a, w.orderBits(a, r, day, inSess)|gb, false, day)
		if a.r1Hit == in {
			bits |= bR1
		} else if w.liquidateConcentrate(a, in, sh, value, bits, now) {
			bits |= bR1
		}
		if bits&bR1 == 0 && w.r1Open(a, sh, now) && a.r1MV > 0 && float64(a.r1Sold) >= w.cfg.LiquidateShare*float64(a.r1MV) {
			bits |= bSoldHoldings
		}
		if refused {
			bits |= bRefused
		}
		w.holdLiquidation(a, bits, now)
		w.converge(in, a, r, bits, now)
		w.abnormalBuying(in, a, bits, value, day, now)
		if in.profBits&bR2 != 0 {
			a.thinBuy(day)
		}
	}
	if a.r11In == in && a.r11Day == day {
		// the flagged account buying again keeps the issue warm
		in.r11At = now
	}
	if r.PriceType == event.PriceMarket || in.last > 0 && r.LimitPrice > in.last {
		w.walkUp(in, a, now)
	}
	if len(in.conv) > 0 || in.mBits != 0 {
		w.evaluate(in, now)
	}
}

// holdLiquidation holds the proceeds of a's liquidation in its R1
// window (HeldProceeds), from a first-ever buy with bits on, when the
// liquidation happened in a takeover context: R1 from a session that is
// not the account's own device or passkey, or has a positive sign of
// takeover (takeoverContext), or holdings sold from a session with a
// positive sign (hijacked) whatever it bought.
func (w *Watch) holdLiquidation(a *acct, bits uint64, now int64) {
	if a.r1Held || bits&(bR1|bSoldHoldings) == 0 {
		return
	}
	if bits&bR1 != 0 && takeoverContext(bits) || hijacked(bits) {
		a.r1Held = true
		w.addHold(a, a.r1Proceeds, now)
	}
}

// orderBits are the session and context bits of a buy order: the login's,
// and what the order's own device, network and country say.
func (w *Watch) orderBits(a *acct, r *event.Record, day int32, inSess bool) uint64 {
	var b uint64
	if inSess {
		b = a.sBits
	}
	if r.Device != "" {
		h := fnv(r.Device)
		if known(&a.devs, h, day) {
			b |= bKnownDevice
		} else {
			b &^= bKnownDevice
			if history(&a.devs, day) {
				b |= bNewDevice
			}
		}
		if s, ok := w.devs[h]; ok && s.n >= 2 && r.Time.UnixNano()-s.last <= w.sharedWin {
			b |= bSharedDevice
		}
	}
	if contextless(r) {
		// the address is the gateway's: nothing about the customer
		return b
	}
	if r.ASN != 0 {
		if history(&a.nets, day) && !known(&a.nets, uint64(r.ASN), day) {
			b |= bNewNetwork
		}
		if w.hosting[r.ASN] {
			b |= bHosting
		}
	}
	if r.Country != "" && r.Country != w.cfg.HomeCountry {
		b |= bForeign
	}
	// a session cookie used from another address than its login's: the
	// mark of a stolen cookie replayed through a proxy
	if inSess && r.IP != "" && a.loginIP != 0 && fnv(r.IP) != a.loginIP && r.Session != "" && fnv(r.Session) == a.sess {
		b |= bSessionJump
	}
	return b
}

// liquidateConcentrate is R1, run on a first-ever buy: reports whether the
// account, within its window, sold at least half its holdings' value and
// put 70% of the proceeds into this issue.
func (w *Watch) liquidateConcentrate(a *acct, in *inst, sh uint64, value int64, bits uint64, now int64) bool {
	c := &w.cfg
	if !w.r1Open(a, sh, now) || a.r1MV <= 0 || float64(a.r1Sold) < c.LiquidateShare*float64(a.r1MV) {
		return false
	}
	var bv int64
	found := false
	for i := range a.r1Buys {
		if a.r1Buys[i].in == in {
			a.r1Buys[i].jpy += value
			bv, found = a.r1Buys[i].jpy, true
			break
		}
	}
	if !found {
		a.r1Buys = append(a.r1Buys, symValue{in: in, jpy: value})
		bv = value
	}
	if float64(bv) < c.ConcentrateShare*float64(a.r1Sold) {
		return false
	}
	a.r1Hit = in
	w.noteEvidence(a, in, bR1|bits)
	n := 0
	if rec := w.open[KindLiquidateConcentrate+"\x00"+in.sym]; rec != nil && now <= rec.until {
		n = len(rec.a.Accounts)
	}
	score := 45 + 8*min(max(points(bits&^bR1), 0), 5) + 5*n
	w.scratch = append(w.scratch[:0], a.idx)
	w.raise(KindLiquidateConcentrate, in.sym, in.sym, now, score, bR1|bits&sessionMask|in.profBits&^bUnknownInstrument, w.scratch)
	return true
}

// converge records a first-ever buy of in by a (R3), marking IPs and new
// networks shared with other first-ever buyers of the same issue.
func (w *Watch) converge(in *inst, a *acct, r *event.Record, bits uint64, now int64) {
	cut := now - w.convWin
	k := 0
	for k < len(in.conv) && in.conv[k].at < cut {
		k++
	}
	if k > 0 {
		in.conv = append(in.conv[:0], in.conv[k:]...)
	}
	var e *entry
	for i := range in.conv {
		if in.conv[i].acct == a.idx {
			e = &in.conv[i]
			break
		}
	}
	if e == nil {
		if len(in.conv) >= maxEntries {
			drop := 0
			for i := range in.conv {
				if points(in.conv[i].bits) < w.cfg.SuspectPoints {
					drop = i
					break
				}
			}
			in.conv = append(in.conv[:drop], in.conv[drop+1:]...)
		}
		in.conv = append(in.conv, entry{at: now, acct: a.idx})
		e = &in.conv[len(in.conv)-1]
	}
	e.bits |= bits
	e.refused = e.refused || bits&bRefused != 0
	if e.orders < math.MaxUint16 {
		e.orders++
	}
	e.last = now
	if !contextless(r) {
		if r.IP != "" {
			e.ip, e.ipS = fnv(r.IP), r.IP
		}
		e.dev, e.devS = fnv(r.Device), r.Device
		e.asn = r.ASN
	}
	const odd = bNewNetwork | bHosting | bForeign | bProxy
	for i := range in.conv {
		o := &in.conv[i]
		if o.acct == e.acct {
			continue
		}
		// a carrier's NAT pool gives one address to many of its
		// customers: the same address there is no shared machine
		if e.ip != 0 && o.ip == e.ip && !w.carrier[e.asn] {
			o.bits |= bSharedIP
			e.bits |= bSharedIP
		}
		if e.dev != 0 && o.dev == e.dev {
			o.bits |= bSharedDevice
			e.bits |= bSharedDevice
		}
		// a big carrier's network is shared by millions of customers,
		// legitimate and hijacked alike (R10 never links through one
		// either): sharing it says nothing
		if e.asn != 0 && o.asn == e.asn && !w.carrier[e.asn] && o.bits&odd != 0 && e.bits&odd != 0 {
			o.bits |= bSharedASN
			e.bits |= bSharedASN
		}
	}
	w.noteEvidence(a, in, e.bits)
	if points(e.bits) >= w.cfg.SuspectPoints {
		in.susAt = now
		if in.r3At != 0 && now-in.r3At <= w.r11Win {
			// another suspect buyer of an issue they converged on:
			// the campaign goes on, the issue stays warm
			in.r3At = now
		}
	}
	for i := range in.conv {
		o := &in.conv[i]
		if !o.linked && points(o.bits) >= w.cfg.SuspectPoints {
			o.linked = true
			oa := w.acctList[o.acct]
			markBad(&oa.devs, o.dev, dayOf(o.at))
			markBad(&oa.nets, uint64(o.asn), dayOf(o.at))
			w.linkSuspect(oa, in, o, now)
		}
	}
}

// suspect reports whether a is a suspect buyer of in (R1 or R3).
func (w *Watch) suspect(in *inst, a *acct, now int64) bool {
	if a.r1Hit == in {
		return true
	}
	for i := range in.conv {
		if e := &in.conv[i]; e.acct == a.idx {
			return now-e.at <= w.convWin && points(e.bits) >= w.cfg.SuspectPoints
		}
	}
	return false
}

// evaluate recomputes the heat of in from the account-takeover evidence (R1,
// R3) and the market evidence (R2, R4-R7), and raises cross_account_pump
// (halting at the halt score) and hijacked_accounts (freezing at the freeze
// score). Each step is one function: the suspects are tallied, the guard's
// refusals weighed, convergence decided, the market evidence summed, the
// score capped for an issue with no evidence of its own and for suspects
// with no positive sign of takeover, and the alerts raised.
func (w *Watch) evaluate(in *inst, now int64) {
	v := w.tallySuspects(in, now)
	v.t += w.refusedHeat(in, v.nR)
	w.decideConvergence(in, &v, now)
	m, mb := w.marketEvidence(in, v.nC, now)
	score := w.capScore(in, min(100, v.t+m), now)
	score = w.requireHijack(&v, mb, score)
	in.heat, in.heatAt = score, now
	in.peak = max(in.peak, score)
	w.raisePump(in, &v, mb, score, now)
	w.rememberConvergence(in, &v, score, now)
}

// rememberConvergence keeps R3's finding on in (r3Heat): when
// ConvergeAccounts suspects or more converged on it (R3, not one or two
// accounts' repeated buys, which is a customer's liquidation into an issue
// as often as a ramp) with a heat of AlertScore or more, the issue stays
// at that heat (at most nonTargetCap) for R11Window after the latest
// suspect buy, however far apart the next ones come.
func (w *Watch) rememberConvergence(in *inst, v *verdict, score int, now int64) {
	if v.bits&bR3 == 0 || v.nS < w.cfg.ConvergeAccounts || score < w.cfg.AlertScore {
		return
	}
	if in.r3At == 0 || now-in.r3At > w.r11Win {
		in.r3Score = 0
	}
	in.r3At = max(in.r3At, v.last)
	in.r3Score = max(in.r3Score, min(score, nonTargetCap))
}

// verdict is what evaluate gathers from an instrument's first-ever buyers
// within the convergence window.
type verdict struct {
	// t is the account-takeover heat: each suspect's points (up to 30)
	// per hijacked buy order.
	t int
	// nS suspects, nC clean first-ever buyers, nR suspects whose buy the
	// guard refused, nH hijacked buy orders (up to ConvergeAccounts per
	// suspect).
	nS, nC, nR, nH int
	// nP suspects carry a positive sign of takeover (hijacked), not only
	// missing history, shared addresses and the guard's refusals; nL
	// suspects liquidated into the issue from a new context.
	nP, nL int
	// bits are the suspects' session bits, then the R3 findings.
	bits uint64
	// fast: three suspects within ConvergeFast; r1: a suspect liquidated
	// its holdings into the issue from a session that looks hijacked
	// without it.
	fast, r1 bool
	// ring: the ring's seller sold (or tried to sell) into suspect buys.
	ring bool
	// first and last are the first suspect's first buy and the latest
	// suspect buy.
	first, last int64
}

// tallySuspects reads in's first-ever buyers within the convergence window
// (w.sus gets the suspects' account indexes).
func (w *Watch) tallySuspects(in *inst, now int64) verdict {
	c := &w.cfg
	cut := now - w.convWin
	var v verdict
	sus := w.sus[:0]
	var t1, t2 int64 // the two suspect times before the current one
	anyR1 := false   // a suspect liquidated into the issue (R1)
	for i := range in.conv {
		e := &in.conv[i]
		if e.at < cut {
			continue
		}
		p := points(e.bits)
		if p < c.SuspectPoints {
			v.nC++
			continue
		}
		v.nS++
		// each of a suspect's buy orders is a hijacked buy (up to
		// ConvergeAccounts of them per account)
		n := min(max(int(e.orders), 1), c.ConvergeAccounts)
		v.nH += n
		v.t += min(30, 6*p) * n
		if e.refused {
			v.nR++
		}
		if hijacked(e.bits) {
			v.nP++
		}
		if hijacked(e.bits) || liquidatedFromNewContext(e.bits) && !w.acctList[e.acct].habitual(dayOf(now)) {
			v.nL++
		}
		v.bits |= e.bits & sessionMask
		// R1 whose session looks hijacked on its own (the liquidation
		// itself left out)
		v.r1 = v.r1 || e.bits&bR1 != 0 && points(e.bits&^(bR1|bSoldHoldings)) >= c.SuspectPoints
		anyR1 = anyR1 || e.bits&bR1 != 0
		sus = append(sus, e.acct)
		if v.nS >= 3 && e.at-t1 <= w.convFast {
			v.fast = true
		}
		t1, t2 = t2, e.at
		if v.first == 0 {
			v.first = e.at
		}
		v.last = max(v.last, e.last, e.at)
	}
	w.sus = sus
	// Two suspects or more, one of them liquidating its holdings into
	// the issue (R1) and one with a positive sign of takeover (hijacked:
	// a stolen cookie replayed, an address abroad or in a proxy), are a
	// ramp by their repeated buys as much as an R1 session that looks
	// hijacked on its own: on a profile the watchtower knows too little
	// of (a cold start), the liquidator's new device and network count
	// for nothing, and the ramp's third hijacked buy would otherwise wait
	// for a third account.
	v.r1 = v.r1 || anyR1 && v.nP >= 1 && v.nS >= 2
	return v
}

// refusedHeat is the heat of nR suspects whose buys the guard refused: the
// evidence their fills would have given (walk-up, deviation,
// participation). A ramp attempted through hijacked accounts weighs as
// much as one carried out. An issue outside the target profile gets none.
func (w *Watch) refusedHeat(in *inst, nR int) int {
	if in.profBits&(bR2|bUnknownInstrument) == 0 {
		return 0
	}
	return refusedWeight * min(nR, w.cfg.ConvergeAccounts)
}

// decideConvergence decides R3 on v: enough suspects (or the ring's seller
// with one fewer), or a repeated ramp by fewer accounts; a crowd of clean
// buyers dilutes it. Without R3 the takeover heat is capped at 25.
func (w *Watch) decideConvergence(in *inst, v *verdict, now int64) {
	c := &w.cfg
	// The ring's seller selling into suspect buys (matched prints, or a
	// known ring seller's sell orders, refused or not) confirms the
	// coordination that a third account would (R7 with R3).
	ring := in.r7At != 0 && now-in.r7At <= w.convWin && in.mBits&(bR7Matched|bR7Attempt) != 0
	v.ring = ring
	// Convergence is of hijacked-looking accounts, not of a crowd: when
	// clean first-ever buyers outnumber the suspects several times over
	// (a news spike bought by customers on their own devices) the few
	// odd sessions among them are no ramp.
	organic := v.nC > dilution*v.nS
	r3 := v.nS >= c.ConvergeAccounts || ring && v.nS >= c.ConvergeAccounts-1
	// A hijacked account ramps the issue over several orders: with the
	// ring selling into them, or from an account that liquidated its
	// holdings into the issue (R1), ConvergeAccounts hijacked buys are a
	// ramp even when fewer accounts place them.
	repeat := !r3 && (ring || v.r1) && v.nH >= c.ConvergeAccounts
	if organic || !(r3 || repeat) {
		v.t = min(v.t, 25)
		return
	}
	v.bits |= bR3
	if repeat {
		v.bits |= bR3Repeat
		v.fast = v.last-v.first <= w.convFast
	}
	if v.fast {
		v.t += 5
		v.bits |= bR3Fast
	}
}

// marketEvidence sums the market evidence on in (up to 45): its R2
// profile, clean first-ever buyers (up to 5), and the R4-R7 findings still
// fresh, with their reason bits.
func (w *Watch) marketEvidence(in *inst, nC int, now int64) (int, uint64) {
	m := in.profile + min(nC, 5)
	var mb uint64
	if in.r4At != 0 && now-in.r4At <= 30*nsPerMin {
		m += in.r4Pts
		mb |= in.mBits & (bR4Thirty | bR4Five)
	}
	if in.r5At != 0 && now-in.r5At <= 10*nsPerMin {
		m += in.r5Pts
		mb |= in.mBits & (bR5 | bR5HalfLimit)
	}
	if in.r6At != 0 && now-in.r6At <= 30*nsPerMin {
		m += in.r6Pts
		mb |= in.mBits & (bR6Sigma | bR6PrevClose)
	}
	if in.r7At != 0 {
		m += 10
		mb |= in.mBits & (bR7 | bR7Matched | bR7Accumulated | bR7Attempt)
	}
	return min(m, 45), mb
}

// capScore caps score below the halt score for an issue with no evidence
// of its own (issueEvidence): accounts converging on an issue outside the
// target profile (a large cap, a dear or liquid issue) cannot move its
// price. That is a matter for those accounts (the guard steps them up on
// the heat, hijacked_accounts freezes them on their own evidence, the
// alert tells the analysts), never a halt of the issue.
func (w *Watch) capScore(in *inst, score int, now int64) int {
	if !w.issueEvidence(in, now) {
		return min(score, nonTargetCap)
	}
	return score
}

// requireHijack caps score below the halt and freeze scores unless there
// is positive evidence of takeover: the ring's seller selling into the
// suspects' buys (pre-positioned holders cashing in), two suspects with a
// hijack signal (hijacked), or one when the ramp is its repeated buys, or
// ConvergeAccounts suspects that each liquidated into the issue from a
// new context (and never bought such issues on two earlier days: a day
// trader's habit) or with a hijack signal, or one of them among two or
// more suspects when the firm's customers are a surging share of the
// issue's volume (R4, in mb). One account liquidating from a new phone is
// a customer as often as a takeover: the guard steps it up.
// Missing history (every device new
// at a cold start), addresses shared in a carrier's NAT pool and the
// guard's own refusals (its friction fed back) make suspects and heat,
// never a halt or a freeze on their own.
func (w *Watch) requireHijack(v *verdict, mb uint64, score int) int {
	surge := mb&(bR4Thirty|bR4Five) != 0
	if v.nS == 0 || v.ring || v.nP >= 2 || v.nP >= 1 && v.bits&bR3Repeat != 0 ||
		v.nL >= w.cfg.ConvergeAccounts || surge && v.nL >= 1 && v.nS >= 2 {
		return score
	}
	if score > nonTargetCap {
		v.bits |= bNoHijackSignal
		score = nonTargetCap
	}
	return score
}

// raisePump raises cross_account_pump on in with the suspects (w.sus) once
// two suspects (or R3) reach the alert score, and hijacked_accounts at the
// freeze score.
func (w *Watch) raisePump(in *inst, v *verdict, mb uint64, score int, now int64) {
	c := &w.cfg
	if v.nS < 2 && v.bits&bR3 == 0 || score < c.AlertScore {
		return
	}
	bits := v.bits | mb | in.profBits&^bUnknownInstrument
	w.raise(KindCrossAccountPump, in.sym, in.sym, now, score, bits, w.sus)
	if c.FreezeScore > 0 && score >= c.FreezeScore {
		w.raise(KindHijackedAccounts, in.sym, in.sym, now, score, bits, w.sus)
	}
}

// issueEvidence reports whether there is evidence about in itself, the
// only ground on which buying of an issue is halted: the 2025 target
// profile (R2: thin, low-priced or foreign small caps, scaled by
// liquidity), abnormal participation of the firm's customers in its
// market volume (R4), a price walk (R5 walk-up, R6 deviation) that the
// firm's own customers are a real part of (walkShare of the market volume
// over 30 minutes), or one account's abnormal buying of it with a hijack
// signal (R11). An issue Kabuto has no reference data for has only the
// last three. Convergence of accounts, however many and however they share
// an address or a device, is evidence about the accounts.
func (w *Watch) issueEvidence(in *inst, now int64) bool {
	if in.profBits&bR2 != 0 || w.r11Fresh(in, now) {
		return true
	}
	if in.r4At != 0 && now-in.r4At <= 30*nsPerMin && in.mBits&(bR4Thirty|bR4Five) != 0 {
		return true
	}
	walk := in.r5At != 0 && now-in.r5At <= 10*nsPerMin && in.mBits&bR5 != 0 ||
		in.r6At != 0 && now-in.r6At <= 30*nsPerMin && in.mBits&(bR6Sigma|bR6PrevClose) != 0
	if !walk || in.flow == nil {
		return false
	}
	mkt, firm := in.flow.sum(minuteOf(now), 30)
	return firm > 0 && float64(firm) >= walkShare*float64(max(mkt, firm))
}

func (w *Watch) onFill(r *event.Record, now int64) {
	if r.Account == "" || r.Symbol == "" || r.Qty <= 0 || !(r.Price > 0) || math.IsInf(r.Price, 0) {
		return
	}
	a := w.account(r.Account)
	in := w.instrument(r.Symbol, now)
	day := dayOf(now)
	value := orderValue(r, in)
	in.last = r.Price
	in.high = max(in.high, r.Price)
	switch r.Side {
	case event.SideBuy:
		if p := a.position(in); p != nil {
			p.qty += r.Qty
			p.cost += value
		} else {
			a.pos = append(a.pos, position{in: in, qty: r.Qty, cost: value, firstDay: day})
		}
		if in.flow == nil {
			in.flow = new(flow)
		}
		in.flow.add(minuteOf(now), 0, r.Qty)
		in.flow.firmAt = now
		in.firmToday += value
		mb := in.mBits
		if w.suspect(in, a, now) {
			in.susAt = now
			s := in.spike
			if s == nil {
				s = &spike{start: now}
				in.spike = s
			}
			s.fillVol += r.Qty
			pr := print{at: now, px: r.Price, qty: r.Qty, acct: a.idx}
			s.buys[s.nb%len(s.buys)] = pr
			s.nb++
			// sells printed just before at the same price
			for i := range s.sells {
				sp := &s.sells[i]
				if sp.qty > 0 && w.samePrint(in, sp, &pr) {
					m := min(sp.qty, pr.qty)
					sp.qty -= m
					t := s.seller(sp.acct)
					t.matched += m
					t.hijacked = t.hijacked || w.positiveBuyer(in, a.idx, now)
					w.ringSeller(in, s, t, now)
				}
			}
			w.deviation(in, a, r.Price, now)
			w.evaluate(in, now)
			return
		}
		if s := in.spike; s != nil {
			s.fillVol += r.Qty
		}
		w.deviation(in, a, r.Price, now)
		if in.mBits != mb || len(in.conv) > 0 {
			w.evaluate(in, now)
		}
	case event.SideSell:
		if p := a.position(in); p != nil {
			p.qty = max(0, p.qty-r.Qty)
		}
		if a.r1Start != 0 && dayOf(a.r1Start) == day && now-a.r1Start <= 2*w.liqWin {
			a.r1Proceeds += value
			if a.r1Held {
				w.addHold(a, value, now)
			}
		}
		s := in.spike
		if s == nil {
			return
		}
		t := s.seller(a.idx)
		t.qty += r.Qty
		t.value += value
		if t.flagged {
			w.addHold(a, value, now)
		}
		pr := print{at: now, px: r.Price, qty: r.Qty, acct: a.idx}
		for i := range s.buys {
			bp := &s.buys[i]
			if bp.qty > 0 && bp.acct != a.idx && w.samePrint(in, bp, &pr) {
				m := min(bp.qty, pr.qty)
				bp.qty -= m
				pr.qty -= m
				t.matched += m
				t.hijacked = t.hijacked || w.positiveBuyer(in, bp.acct, now)
			}
		}
		if pr.qty > 0 {
			s.sells[s.ns%len(s.sells)] = pr
			s.ns++
		}
		w.ringSeller(in, s, t, now)
	}
}

// samePrint reports whether two prints are at the same price within the
// ring match window.
func (w *Watch) samePrint(in *inst, a, b *print) bool {
	dt := a.at - b.at
	if dt < 0 {
		dt = -dt
	}
	// the ring's order may rest at the buyer's price or sell into the
	// book the buyer just lifted: a few percent apart
	return dt <= w.ringMatch && math.Abs(a.px-b.px) < max(tickSize(in.market, a.px)/2, ringSlip*a.px)
}

// ringSeller is R7: a seller who accumulated the issue on the previous 1-10
// days and sold at least 20% of the spike's volume, some of it straight to
// suspect buyers.
func (w *Watch) ringSeller(in *inst, s *spike, t *tally, now int64) {
	c := &w.cfg
	if !w.rampable(in, now) {
		return
	}
	vol := max(s.barVol, s.fillVol)
	if t.matched == 0 || vol <= 0 || float64(t.qty) < c.RingShare*float64(vol) {
		return
	}
	a := w.acctList[t.acct]
	p := a.position(in)
	day := dayOf(now)
	if p == nil || p.firstDay < 0 || day-p.firstDay < 1 || int(day-p.firstDay) > c.RingAccumDays {
		return
	}
	share := float64(t.matched) / float64(t.qty)
	score := 60 + int(20*share)
	if float64(t.qty) >= 2*c.RingShare*float64(vol) {
		score += 10
	}
	if !t.hijacked {
		// The buyers it sold to carry no positive sign of takeover
		// (missing history, a new phone, shared carrier addresses): a
		// holder selling into a busy day, for the analysts. No freeze,
		// no held proceeds, no link to a campaign, and no ring for R3,
		// R7's attempts or R11 to lean on.
		in.mBits |= bR7 | bR7Accumulated
		w.scratch = append(w.scratch[:0], t.acct)
		w.raise(KindRingSeller, in.sym, in.sym, now, min(score, ringUnprovenCap), bR7|bR7Matched|bR7Accumulated|bNoHijackSignal|in.profBits&^bUnknownInstrument, w.scratch)
		return
	}
	if !t.flagged {
		t.flagged = true
		a.evid, a.evidIn = max(a.evid, c.SuspectPoints+1), in // its own trades are the evidence
		w.addHold(a, t.value, now)
		w.linkRing(a, in, now)
	}
	a.ringAt = now
	in.r7At = now
	in.mBits |= bR7 | bR7Matched | bR7Accumulated
	w.scratch = append(w.scratch[:0], t.acct)
	w.raise(KindRingSeller, in.sym, in.sym, now, score, bR7|bR7Matched|bR7Accumulated|in.profBits&^bUnknownInstrument, w.scratch)
	// the ring's seller is new evidence on the issue: weigh it now, not at
	// the next bar
	w.evaluate(in, now)
}

// ringUnprovenCap is the highest score of a ring_seller alert whose
// matched buyers carry no positive sign of takeover: below the campaign
// score, so that it flags no issue for R10 either.
const ringUnprovenCap = 45

// positiveBuyer reports whether account ai's first-ever buying of in
// carries a sign of takeover within the convergence window: a hijack
// signal, or a device or network new to a mature profile (not the
// account's own device) of an account for which buying such issues is no
// habit (a day trader buying thin issues every week is not the 2025
// victim). A suspect's points alone (missing history, a carrier's shared
// address, a fast order, the guard's refusals) are not.
func (w *Watch) positiveBuyer(in *inst, ai int32, now int64) bool {
	for i := range in.conv {
		e := &in.conv[i]
		if e.acct != ai {
			continue
		}
		if now-e.at > w.convWin {
			return false
		}
		b := e.bits &^ (linkMask | bRefused)
		return hijacked(b) || b&contextMask != 0 && b&bKnownDevice == 0 && !w.acctList[ai].habitual(dayOf(now))
	}
	return false
}

// rampable reports whether in can be ramped by a few accounts' buys, so
// that selling into them is a ring at work (R7): the target profile (R2),
// an issue Kabuto has no reference data for, or one R11 found one
// account's buying of abnormal. A large cap or a liquid issue is sold
// into by whoever holds it.
func (w *Watch) rampable(in *inst, now int64) bool {
	return in.profBits&(bR2|bUnknownInstrument) != 0 || in.r11At != 0 && now-in.r11At <= w.r11Win
}

// ringAttempt is R7 for an account R7 already flagged as the ring's seller
// (on this issue or another): a sell order of an issue it accumulated on
// the previous 1-10 days, within seconds of a suspect buy of it. The ring
// at work needs no print: the order is the evidence whether or not it
// executes (a frozen ring account's sells are refused).
func (w *Watch) ringAttempt(in *inst, a *acct, now int64) {
	if !w.rampable(in, now) {
		return
	}
	p := a.position(in)
	day := dayOf(now)
	if p == nil || p.firstDay < 0 || day-p.firstDay < 1 || int(day-p.firstDay) > w.cfg.RingAccumDays {
		return
	}
	a.ringAt = now
	in.r7At = now
	in.mBits |= bR7 | bR7Accumulated | bR7Attempt
	w.linkRing(a, in, now)
	w.scratch = append(w.scratch[:0], a.idx)
	w.raise(KindRingSeller, in.sym, in.sym, now, 70, bR7|bR7Accumulated|bR7Attempt|in.profBits&^bUnknownInstrument, w.scratch)
	w.evaluate(in, now)
}
