package surveil

import "github.com/kabuto-sec/kabuto/internal/market"

// KindAbnormalBuying is R11: one account's buying of an issue far beyond
// what the issue usually sees (its traded value, the firm's customers'
// usual buying of it), funded by selling the account's holdings the same
// day, from a new context. It sees the slow, single-victim target that
// convergence across accounts (R3) and the low-price profile (R2) miss: a
// mid-priced issue, one hijacked account, buys spread over hours.
const KindAbnormalBuying = "abnormal_buying"

// firmBaselineDays is how many days of the firm's buying of an issue make
// its usual daily value a baseline (R11).
const firmBaselineDays = 5

// foldFirmDay closes a day of the firm's buying of in into its usual
// daily value: a plain mean over the first 20 days, then a moving one.
// Once there is a baseline, a day's value counts for at most four times
// it: the ring's accumulation days before a ramp (or a news day) do not
// make the ramp look usual.
func (in *inst) foldFirmDay() {
	n := float64(min(in.firmDays, 19))
	v := float64(in.firmToday)
	if in.firmDays >= firmBaselineDays {
		v = min(v, 4*max(in.firmAvg, 1))
	}
	in.firmAvg = (in.firmAvg*n + v) / (n + 1)
	in.firmDays++
	in.firmToday = 0
}

// r11Today starts a's R11 tallies for day if they are of an earlier day:
// the market value of the holdings a came into the day with, nothing sold
// or bought yet.
func (w *Watch) r11Today(a *acct, day int32) {
	if a.r11Day == day && a.r11MV != 0 {
		return
	}
	if a.r11Day != day {
		a.r11Sold = 0
		a.r11Buys = a.r11Buys[:0]
		a.r11In = nil
	}
	a.r11Day = day
	a.r11MV = a.marketValue(day)
}

// r11Sell counts a sell of a holding a came into the day with.
func (w *Watch) r11Sell(a *acct, value int64, day int32) {
	w.r11Today(a, day)
	a.r11Sold += value
}

// abnormalBuying is R11, run on a buy order of an issue a did not hold
// before today, with the order's session and context bits.
func (w *Watch) abnormalBuying(in *inst, a *acct, bits uint64, value int64, day int32, now int64) {
	w.r11Today(a, day)
	bv := value
	found := false
	for i := range a.r11Buys {
		if a.r11Buys[i].in == in {
			a.r11Buys[i].jpy += value
			bv, found = a.r11Buys[i].jpy, true
			break
		}
	}
	if !found {
		a.r11Buys = append(a.r11Buys, symValue{in: in, jpy: value})
	}
	if !w.r11Account(a, bits, bv) {
		return
	}
	abnADV, abnFirm, many := w.r11Issue(in, bv)
	if !abnADV && !abnFirm {
		return
	}
	w.r11Raise(in, a, bits, abnADV && abnFirm || many, now)
}

// r11Account is R11's reading of the buyer: it sold at least R11SoldShare
// of the value of the holdings it came into the day with (the slow target
// sells one holding, not all), bv yen went into this issue (at least
// R11ProceedsShare of the proceeds), and the order comes
// from a new context: a new device or network on a mature profile (the
// bits are weighed already), a hosting network or proxy, or the guard's
// takeover findings. A passkey session, or the account's own device, is
// no new context, even abroad (a traveller with the phone), unless its
// cookie was replayed from another address.
func (w *Watch) r11Account(a *acct, bits uint64, bv int64) bool {
	c := &w.cfg
	if a.r11MV <= 0 || a.r11Sold <= 0 || float64(a.r11Sold) < c.R11SoldShare*float64(a.r11MV) {
		return false
	}
	if float64(bv) < c.R11ProceedsShare*float64(a.r11Sold) {
		return false
	}
	if bits&bSessionJump == 0 && bits&(bPasskey|bKnownDevice) != 0 {
		return false
	}
	return bits&(contextMask|bHosting|bProxy|bSessionJump|bGuardSaid) != 0
}

// r11Issue is R11's reading of the issue: whether bv yen of one account's
// buying is abnormal against its average daily traded value (R11ADVShare)
// or the firm's usual daily buying of it (R11FirmTimes, with
// firmBaselineDays of history), and whether it is many times the first. A
// large cap is never abnormal for one account's buying, and an issue with
// neither baseline is not either: no history is no evidence.
func (w *Watch) r11Issue(in *inst, bv int64) (adv, firm, many bool) {
	c := &w.cfg
	px := in.prevClose * in.fx
	if px <= 0 {
		px = in.last * in.fx
	}
	advJPY := float64(in.adv) * px
	if in.market == market.TSEPrime && advJPY >= c.LargeCapValueJPY {
		return false, false, false
	}
	if advJPY > 0 {
		adv = float64(bv) >= c.R11ADVShare*advJPY
		many = float64(bv) >= 5*c.R11ADVShare*advJPY
	}
	if in.firmDays >= firmBaselineDays {
		firm = float64(in.firmToday+bv) >= c.R11FirmTimes*max(in.firmAvg, 1)
	}
	return adv, firm, many
}

// r11Raise raises abnormal_buying on in for a and warms the issue for
// R11Window: the guard steps up further buys of it from unfamiliar or
// sell-funded sessions. Without a hijack signal or the ring's seller at
// work on the issue the score stays below the halt score: a new phone at
// home and a rebalance look the same as a takeover on the victim's own
// carrier (halting on the firm's share of the volume halted six
// issues customers bought on ordinary days of an independent stream), and
// the step-up is the proportionate answer.
func (w *Watch) r11Raise(in *inst, a *acct, bits uint64, strong bool, now int64) {
	score := 55
	if strong {
		score += 5
	}
	if bits&hijackMask != 0 {
		score += 15
	}
	ring := in.r7At != 0 && now-in.r7At <= w.convWin && in.mBits&(bR7Matched|bR7Attempt) != 0
	if ring {
		score += 20
	}
	rb := bR11
	if !ring && !hijacked(bits) && score > nonTargetCap {
		score = nonTargetCap
		rb |= bNoHijackSignal
	}
	if in.r11At == 0 || now-in.r11At > w.r11Win {
		in.r11Score, in.r11Pos = 0, false
	}
	in.r11At = now
	in.r11Score = max(in.r11Score, min(score, 100))
	in.r11Pos = in.r11Pos || ring || hijacked(bits)
	in.peak = max(in.peak, score)
	a.r11In = in
	w.noteEvidence(a, in, bits)
	w.scratch = append(w.scratch[:0], a.idx)
	w.raise(KindAbnormalBuying, in.sym, in.sym, now, score, rb|bits&sessionMask|in.profBits&^bUnknownInstrument, w.scratch)
	if in.r11Pos && w.cfg.FreezeScore > 0 && score >= w.cfg.FreezeScore {
		w.raise(KindHijackedAccounts, in.sym, in.sym, now, score, rb|bits&sessionMask, w.scratch)
	}
}

// r11Heat is the heat R11 keeps on in at now: its score for R11Window
// after the flagged account's last buy, without fading, so that a buy
// placed hours later is stepped up as the first one after it was.
func (in *inst) r11Heat(now, win int64) int {
	if in.r11At == 0 || now-in.r11At > win {
		return 0
	}
	return in.r11Score
}

// r11Fresh reports whether R11 found abnormal buying of in with a hijack
// signal within R11Window: evidence about the issue itself.
func (w *Watch) r11Fresh(in *inst, now int64) bool {
	return in.r11At != 0 && now-in.r11At <= w.r11Win && in.r11Pos
}
