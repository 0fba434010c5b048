package streamgen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
)

// Classes of instruments: what kind of customer trades them and how they move.
const (
	classLarge    = iota // liquid large and mid caps (real issues)
	classThin            // thin TSE small caps priced ¥60-300
	classMidThin         // thin TSE issues priced ¥800-3000
	classForeign         // Hong Kong and Shanghai names
	classForeignT        // thin Hong Kong and Shanghai names
)

// span is one trading session of a market, as offsets from JST midnight.
type span struct{ from, to time.Duration }

// sessionsOf returns the trading sessions of market m in JST: the TSE's
// 9:00-11:30 and 12:30-15:30, Hong Kong's 9:30-12:00 and 13:00-16:00 HKT,
// Shanghai's 9:30-11:30 and 13:00-15:00 CST (both one hour behind Tokyo).
func sessionsOf(m string) []span {
	switch m {
	case market.HK:
		return []span{{10*time.Hour + 30*time.Minute, 13 * time.Hour}, {14 * time.Hour, 17 * time.Hour}}
	case market.SH, market.SZ:
		return []span{{10*time.Hour + 30*time.Minute, 12*time.Hour + 30*time.Minute}, {14 * time.Hour, 16 * time.Hour}}
	}
	return []span{{market.TSEOpen, market.TSEMorningClose}, {market.TSEAfternoonOpen, market.TSEClose}}
}

// inst is one instrument and its price path for the day being generated.
type inst struct {
	market.Instrument
	class int
	fx    float64
	sess  []span
	mins  int       // trading minutes a day
	close float64   // previous close
	px    []float64 // last trade price at the end of each minute of today
	vol   []int64   // market volume of each minute of today (customers' fills added)
	shock []shock
}

// shock moves an instrument's price on one day: a pump (rise then give
// back) or a news spike, with the volume that comes with it.
type shock struct {
	start, rise int     // minute it starts, minutes to the peak
	peak        float64 // rise at the peak, as a fraction of the open
	giveBack    float64 // fraction of the peak's gain given back by the close
	volMult     float64 // volume multiplier while it rises
}

// minuteAt returns the trading minute of in's day in which t falls, and
// whether the market is open then. Before the open it returns -1; in a
// break or after the close, the last minute before.
func (in *inst) minuteAt(t time.Time) (int, bool) {
	d := sinceMidnight(t)
	m := 0
	for _, s := range in.sess {
		if d < s.from {
			return m - 1, false
		}
		if d < s.to {
			return m + int((d-s.from)/time.Minute), true
		}
		m += int((s.to - s.from) / time.Minute)
	}
	return m - 1, false
}

// timeOf returns the JST time at the start of trading minute m of day.
func (in *inst) timeOf(day time.Time, m int) time.Time {
	for _, s := range in.sess {
		n := int((s.to - s.from) / time.Minute)
		if m < n {
			return day.Add(s.from + time.Duration(m)*time.Minute)
		}
		m -= n
	}
	return day.Add(in.sess[len(in.sess)-1].to)
}

// nextOpen returns the first moment at or after t when in's market trades
// today, and false after the close.
func (in *inst) nextOpen(t time.Time) (time.Time, bool) {
	d := sinceMidnight(t)
	day := midnight(t)
	for _, s := range in.sess {
		if d < s.from {
			return day.Add(s.from), true
		}
		if d < s.to {
			return t, true
		}
	}
	return time.Time{}, false
}

// priceAt returns the last price at t today.
func (in *inst) priceAt(t time.Time) float64 {
	m, _ := in.minuteAt(t)
	if m < 0 {
		return in.close
	}
	return in.px[m]
}

// ask returns the best ask at t: one tick above the last price.
func (in *inst) ask(t time.Time) float64 {
	p := in.priceAt(t)
	return market.RoundTick(in.Market, p+market.TickSize(in.Market, p))
}

func (in *inst) jpy(p float64, qty int64) int64 { return int64(math.Round(p * in.fx * float64(qty))) }

// walk draws today's price path and market volume from the previous
// close, with today's shocks, inside the daily price limit.
func (in *inst) walk(rng *rand.Rand) {
	sigma := 0.012
	switch in.class {
	case classThin, classMidThin, classForeignT:
		sigma = 0.025
	}
	step := sigma / math.Sqrt(float64(in.mins))
	lo, hi := market.Band(in.Market, in.close)
	in.px = in.px[:0]
	in.vol = in.vol[:0]
	lp := math.Log(in.close) + rng.NormFloat64()*sigma/3 // the opening gap
	base := float64(in.ADVShares) / float64(in.mins)
	for m := 0; m < in.mins; m++ {
		lp += rng.NormFloat64() * step
		add, mult := 0.0, 1.0
		for _, s := range in.shock {
			a, v := s.at(m, in.mins)
			add += a
			mult = math.Max(mult, v)
		}
		p := math.Exp(lp) * (1 + add)
		p = math.Min(math.Max(p, lo), hi)
		p = market.RoundTick(in.Market, p)
		if p <= 0 {
			p = market.TickSize(in.Market, in.close)
		}
		in.px = append(in.px, p)
		v := 0.0
		if in.class == classLarge || in.class == classForeign || rng.Float64() < 0.45 || mult > 1 {
			v = base * mult * math.Exp(rng.NormFloat64()*0.6-0.18)
			if in.class != classLarge && in.class != classForeign {
				v /= 0.45
			}
		}
		in.vol = append(in.vol, int64(v)/in.Lot*in.Lot)
	}
}

// at returns the shock's price change and volume multiplier at minute m.
func (s shock) at(m, mins int) (float64, float64) {
	if m < s.start {
		return 0, 1
	}
	if m < s.start+s.rise {
		f := float64(m-s.start+1) / float64(s.rise)
		return s.peak * f, s.volMult
	}
	rest := mins - s.start - s.rise
	if rest <= 0 {
		return s.peak, 1
	}
	f := float64(m-s.start-s.rise) / float64(rest)
	return s.peak * (1 - s.giveBack*math.Min(1, f*2)), 1 + (s.volMult-1)/4
}

// bars returns the day's one-minute bars of in: a bar for each minute that
// traded, ending at the minute's end.
func (in *inst) bars(day time.Time) []*event.Record {
	var out []*event.Record
	prev := in.close
	for m := range in.px {
		p := in.px[m]
		if in.vol[m] <= 0 {
			prev = p
			continue
		}
		open := prev
		hi, lo := math.Max(open, p), math.Min(open, p)
		out = append(out, &event.Record{Type: event.TypeBar, Time: in.timeOf(day, m).Add(time.Minute), Symbol: in.Symbol,
			Open: open, High: hi, Low: lo, Close: p, Volume: in.vol[m]})
		prev = p
	}
	return out
}

// record returns in's instrument record at t, priced at the previous close.
func (in *inst) record(t time.Time) *event.Record {
	return &event.Record{Type: event.TypeInstrument, Time: t, Symbol: in.Symbol, Name: in.Name, Market: in.Market,
		Currency: in.Currency, Price: in.close, PriceJPY: math.Round(in.close*in.fx*100) / 100, ADVShares: in.ADVShares, Lot: in.Lot}
}

// universe builds the instruments: the market package's real large and
// mid caps and thin issues, plus thin mid-priced TSE issues (¥800-3000),
// the slow campaigns' kind of target.
func universe(seed uint64, rng *rand.Rand) []*inst {
	var out []*inst
	used := map[string]bool{}
	for _, mi := range market.Universe(seed, 120) {
		in := &inst{Instrument: mi}
		switch {
		case mi.Foreign() && mi.LargeCap:
			in.class = classForeign
		case mi.Foreign():
			in.class = classForeignT
		case mi.ADVShares >= 1000000:
			in.class = classLarge
		default:
			in.class = classThin
		}
		used[mi.Symbol] = true
		out = append(out, in)
	}
	for i := 0; i < 40; i++ {
		var sym string
		for sym == "" || used[sym] {
			sym = fmt.Sprintf("%d", 1300+rng.IntN(8600))
		}
		used[sym] = true
		m := market.TSEStandard
		if rng.IntN(3) == 0 {
			m = market.TSEGrowth
		}
		price := math.Round(800 + rng.Float64()*2200)
		adv := int64(5000+rng.IntN(25000)) / 100 * 100
		out = append(out, &inst{Instrument: market.Instrument{Symbol: sym, Name: fmt.Sprintf("Chuo Seiki %d (gen)", i+1), Market: m, Currency: "JPY",
			Lot: 100, ADVShares: adv, PrevClose: price}, class: classMidThin})
	}
	for _, in := range out {
		in.fx, _ = market.FX(in.Currency)
		in.sess = sessionsOf(in.Market)
		for _, s := range in.sess {
			in.mins += int((s.to - s.from) / time.Minute)
		}
		in.close = in.PrevClose
	}
	return out
}

func sinceMidnight(t time.Time) time.Duration {
	j := t.In(clock.JST)
	return time.Duration(j.Hour())*time.Hour + time.Duration(j.Minute())*time.Minute + time.Duration(j.Second())*time.Second
}

func midnight(t time.Time) time.Time {
	j := t.In(clock.JST)
	return time.Date(j.Year(), j.Month(), j.Day(), 0, 0, 0, 0, clock.JST)
}
