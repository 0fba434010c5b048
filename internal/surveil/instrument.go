package surveil

import (
	"math"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// inst is the state of one instrument.
type inst struct {
	sym       string
	market    string
	known     bool    // an instrument record was seen
	prevClose float64 // previous close, instrument currency
	fx        float64 // yen per unit of price
	adv       int64
	profile   int    // R2 points, 0..15
	profBits  uint64 // R2 reason bits

	day   int32
	open  float64
	high  float64
	last  float64
	bars  int32
	vV    float64 // session VWAP sums over bars: volume,
	vPV   float64 // volume × price,
	vPPV  float64 // volume × price²
	r9    bool    // R9 evaluated for the day
	flow  *flow   // minute volumes, allocated on the first bar or buy fill
	spike *spike  // R7 state, allocated on the first suspect buy fill of a day

	conv  []entry // R3: first-ever buyers, in time order
	susAt int64   // the last buy order or fill of a suspect first-ever buyer
	walk  [8]walkOrder
	walkN int

	r4At, r5At, r6At, r7At int64
	r4Pts, r5Pts, r6Pts    int
	mBits                  uint64

	heat   int
	heatAt int64
	peak   int
	halted bool

	// R11: the firm's customers' buy fills of the issue today (yen), the
	// usual daily value (a moving average over firmDays days with any
	// record of the issue), and the last abnormal buying found, its score
	// and whether one within R11Window carried a hijack signal.
	firmToday int64
	firmAvg   float64
	firmDays  int32
	r11At     int64
	r11Score  int
	r11Pos    bool

	// R3's memory: when suspect first-ever buyers last bought the issue
	// after R3 found them converging on it, and the heat they made. A
	// slow campaign sends its hijacked accounts in over hours, further
	// apart than the convergence window, so the finding keeps the issue
	// warm for R11Window after the last suspect's buy (heat for the
	// guard's step-up, never a halt).
	r3At    int64
	r3Score int

	flaggedAt int64 // R10: an instrument alert flagged the issue
	campaign  int32 // R10: the campaign it last belonged to
}

// walkOrder is one aggressive buy order (R5).
type walkOrder struct {
	at   int64
	acct int32
}

// bucket is one minute of market and firm buy volume (R4).
type bucket struct{ min, mkt, firm int64 }

// flow is a ring of the last 30 minutes.
type flow struct {
	b      [30]bucket
	firmAt int64 // last firm buy fill
}

func (f *flow) add(min, mkt, firm int64) {
	i := min % 30
	if i < 0 {
		i += 30
	}
	b := &f.b[i]
	if b.min != min {
		*b = bucket{min: min}
	}
	b.mkt += mkt
	b.firm += firm
}

// sum returns market and firm volume of the n minutes ending with min.
func (f *flow) sum(min, n int64) (mkt, firm int64) {
	for i := range f.b {
		if b := &f.b[i]; b.min > min-n && b.min <= min {
			mkt += b.mkt
			firm += b.firm
		}
	}
	return
}

// instrument returns the state of sym, creating it for a symbol never
// described by an instrument record.
func (w *Watch) instrument(sym string, now int64) *inst {
	in := w.insts[sym]
	if in == nil {
		in = &inst{sym: sym, fx: 1, day: dayOf(now), profBits: bUnknownInstrument}
		w.insts[sym] = in
	}
	if d := dayOf(now); d != in.day {
		w.rollInst(in, d, now)
	}
	return in
}

// rollInst starts a new trading day for in: the unfinished R9 check of the
// day before runs, its last price becomes the previous close.
func (w *Watch) rollInst(in *inst, day int32, now int64) {
	if d := in.day; d < day {
		if !in.r9 && in.bars > 0 {
			w.spikeReversal(in, now)
		}
		if in.last > 0 {
			in.prevClose = in.last
		}
	}
	if in.day < day {
		in.foldFirmDay()
	}
	in.day = day
	in.open, in.high, in.bars = 0, 0, 0
	in.vV, in.vPV, in.vPPV = 0, 0, 0
	in.r9 = false
	in.spike = nil
	in.walkN = 0
	in.r4Pts, in.r5Pts, in.r6Pts, in.mBits = 0, 0, 0, 0
	in.r7At = 0
}

func (w *Watch) onInstrument(r *event.Record, now int64) {
	if r.Symbol == "" {
		return
	}
	in := w.instrument(r.Symbol, now)
	in.known = true
	in.market = r.Market
	in.adv = max(r.ADVShares, 0)
	if r.Price > 0 && !math.IsInf(r.Price, 0) {
		in.prevClose = r.Price
		if r.PriceJPY > 0 {
			in.fx = r.PriceJPY / r.Price
		}
	}
	in.profile, in.profBits = w.profile(in)
}

// profile scores the R2 target profile from the reference data: up to 15
// points for a low price (more inside the ¥80-200 band) and a thin market,
// none for a large cap.
func (w *Watch) profile(in *inst) (int, uint64) {
	c := &w.cfg
	px := in.prevClose * in.fx
	if px <= 0 {
		return 0, bUnknownInstrument
	}
	value := float64(in.adv) * px
	if in.market == "TSE_PRIME" && value >= c.LargeCapValueJPY {
		return 0, 0
	}
	pts, bits := 0, uint64(0)
	if px < c.TargetMaxPriceJPY {
		pts += 5
		bits |= bR2
		if px >= c.TargetBandLowJPY && px <= c.TargetBandHighJPY {
			pts += 4
			bits |= bR2Band
		}
	}
	switch {
	case in.adv > 0 && value < c.ThinValueJPY:
		pts += 6
		bits |= bR2 | bR2Thin
	case in.adv > 0 && value < 3*c.ThinValueJPY:
		pts += 3
		bits |= bR2
	}
	return pts, bits
}

func (w *Watch) onBar(r *event.Record, now int64) {
	if r.Symbol == "" || !(r.Close > 0) || math.IsInf(r.Close, 0) {
		return
	}
	in := w.instrument(r.Symbol, now)
	if in.bars == 0 {
		in.open = r.Open
		if in.prevClose <= 0 {
			in.prevClose = r.Open
		}
	}
	in.bars++
	in.high = max(in.high, r.High, r.Close)
	in.last = r.Close
	if v := float64(max(r.Volume, 0)); v > 0 {
		p := (r.High + r.Low + r.Close) / 3
		in.vV += v
		in.vPV += v * p
		in.vPPV += v * p * p
	}
	if s := in.spike; s != nil {
		s.barVol += max(r.Volume, 0)
	}
	if in.flow == nil {
		in.flow = new(flow)
	}
	m := minuteOf(now)
	in.flow.add(m, max(r.Volume, 0), 0)
	if now-in.flow.firmAt <= 30*nsPerMin && in.flow.firmAt != 0 {
		w.participation(in, m, now)
	}
	if len(in.conv) > 0 || in.mBits != 0 {
		w.evaluate(in, now)
	}
	if !in.r9 && secOfDay(now) >= sessionClose {
		w.spikeReversal(in, now)
	}
}

// participation is R4: own customers' buy volume against market volume over
// 30 and 5 minutes, when market volume is a surge against the ADV.
func (w *Watch) participation(in *inst, m, now int64) {
	if in.adv <= 0 {
		return
	}
	c := &w.cfg
	normal := float64(in.adv) / tradingMinutes
	mkt30, firm30 := in.flow.sum(m, 30)
	mkt5, firm5 := in.flow.sum(m, 5)
	var bits uint64
	if mkt30 > 0 && float64(firm30) >= c.Participation30*float64(mkt30) && float64(mkt30) >= c.VolumeSurge*normal*30 {
		bits |= bR4Thirty
	}
	if mkt5 > 0 && float64(firm5) >= c.Participation5*float64(mkt5) && float64(mkt5) >= c.VolumeSurge*normal*5 {
		bits |= bR4Five
	}
	if bits == 0 {
		return
	}
	pts, score := 10, 45
	if bits == bR4Thirty|bR4Five {
		pts, score = 15, 60
	}
	in.r4At, in.r4Pts = now, max(in.r4Pts, pts)
	in.mBits |= bits
	w.raise(KindFirmParticipation, in.sym, in.sym, now, score, bits|in.profBits&^bUnknownInstrument, nil)
}

// walkUp is R5, run on an aggressive buy order.
func (w *Watch) walkUp(in *inst, a *acct, now int64) {
	c := &w.cfg
	in.walk[in.walkN%len(in.walk)] = walkOrder{at: now, acct: a.idx}
	in.walkN++
	n, distinct := 0, 0
	for i := range in.walk {
		o := in.walk[i]
		if o.at == 0 || now-o.at > w.walkWin || i >= in.walkN {
			continue
		}
		n++
		first := true
		for j := range i {
			if p := in.walk[j]; p.acct == o.acct && p.at != 0 && now-p.at <= w.walkWin && j < in.walkN {
				first = false
				break
			}
		}
		if first {
			distinct++
		}
	}
	if n < c.WalkUpOrders {
		return
	}
	ref, px := in.prevClose, in.last
	if ref <= 0 || px <= 0 {
		return
	}
	rise := px - ref
	tick := tickSize(in.market, ref)
	if rise < c.WalkUpRise*ref || rise < float64(c.WalkUpMinTicks)*tick {
		return
	}
	bits, pts, score := bR5, 10, 40
	if lim := priceLimitJPY(ref * in.fx); lim > 0 && rise*in.fx >= lim/2 {
		bits |= bR5HalfLimit
		pts, score = 15, 55
	}
	if distinct >= c.WalkUpOrders {
		score += 10
	} else if distinct == 1 {
		score -= 10
	}
	in.r5At, in.r5Pts = now, max(in.r5Pts, pts)
	in.mBits |= bits
	w.raise(KindWalkUp, in.sym, in.sym, now, score, bits|in.profBits&^bUnknownInstrument, nil)
}

// deviation is R6, run on a buy fill.
func (w *Watch) deviation(in *inst, a *acct, price float64, now int64) {
	c := &w.cfg
	var bits uint64
	if in.prevClose > 0 && price >= in.prevClose*(1+c.DeviationRise) {
		bits |= bR6PrevClose
	}
	if int(in.bars) >= c.DeviationBars && in.vV > 0 {
		mean := in.vPV / in.vV
		sd := math.Sqrt(max(in.vPPV/in.vV-mean*mean, 0))
		sd = max(sd, tickSize(in.market, mean), 0.01*mean)
		if price > mean+c.DeviationSigma*sd {
			bits |= bR6Sigma
		}
	}
	if bits == 0 {
		return
	}
	score := 35
	if bits == bR6PrevClose|bR6Sigma {
		score = 45
	}
	in.r6At, in.r6Pts = now, 10
	in.mBits |= bits
	w.scratch = append(w.scratch[:0], a.idx)
	w.raise(KindPriceDeviation, in.sym, in.sym, now, score, bits|in.profBits&^bUnknownInstrument, w.scratch)
}

// spikeReversal is R9, run at the close: the high at least 20% above the
// previous close and the close giving back half the gain or more.
func (w *Watch) spikeReversal(in *inst, now int64) {
	in.r9 = true
	c := &w.cfg
	ref := in.prevClose
	if ref <= 0 || in.high < ref*(1+c.SpikeRise) {
		return
	}
	gain := in.high - ref
	if in.high-in.last < c.SpikeGiveBack*gain {
		return
	}
	score := 45
	if in.peak >= w.cfg.AlertScore {
		score = 60
	}
	w.raise(KindSpikeReversal, in.sym, in.sym, now, score, bR9|in.mBits|in.profBits&^bUnknownInstrument, nil)
}

// r3Heat is the heat R3's memory keeps on in at now: its score for win
// after the last suspect buy since R3 held, without fading.
func (in *inst) r3Heat(now, win int64) int {
	if in.r3At == 0 || now-in.r3At > win {
		return 0
	}
	return in.r3Score
}

// heatNow is in's heat at now: the last evaluation, fading linearly to
// nothing between 30 minutes and two hours without new evidence.
func (in *inst) heatNow(now int64) int {
	age := now - in.heatAt
	switch {
	case in.heat == 0:
		return 0
	case age <= 30*nsPerMin:
		return in.heat
	case age >= 120*nsPerMin:
		return 0
	}
	return int(int64(in.heat) * (120*nsPerMin - age) / (90 * nsPerMin))
}
