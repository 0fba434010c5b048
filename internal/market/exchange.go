package market

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// Exchange errors.
var (
	ErrUnknownSymbol = errors.New("unknown symbol")
	ErrClosed        = errors.New("market closed")
	ErrNotMarketable = errors.New("limit price not marketable")
)

// Quote is an instrument's price now.
type Quote struct {
	Symbol    string
	Last      float64
	Bid, Ask  float64
	PrevClose float64
	Low, High float64 // today's allowed band; High is +Inf without a limit
	DayHigh   float64
	DayVolume int64
}

// Exchange is a simulated exchange. Prices follow a mean-reverting random
// walk around a fair value; buying moves the price by an impact that grows
// with the order's share of the average daily volume, so thin stocks move
// when they are bought. It is safe for concurrent use and deterministic for
// a seed and a sequence of calls.
type Exchange struct {
	mu    sync.Mutex
	rng   *rand.Rand
	hours Hours
	books map[string]*book
	syms  []string
	now   time.Time
	barID uint64
}

type book struct {
	in    Instrument
	fair  float64 // where the price reverts to
	last  float64
	temp  float64 // transient impact, decays
	vol   float64 // per-minute volatility (fraction)
	dayHi float64
	dayV  int64
	bar   bar
}

type bar struct {
	start                  time.Time
	open, high, low, close float64
	volume                 int64
}

// NewExchange returns an exchange trading ins from time start.
func NewExchange(ins []Instrument, seed uint64, hours Hours, start time.Time) *Exchange {
	x := &Exchange{rng: rand.New(rand.NewPCG(seed, 0x78636867)), hours: hours, books: make(map[string]*book, len(ins)), now: start}
	for _, in := range ins {
		v := 0.0015
		if !in.LargeCap {
			v = 0.004
		}
		b := &book{in: in, fair: in.PrevClose, last: in.PrevClose, vol: v, dayHi: in.PrevClose}
		b.bar = bar{start: start.Truncate(time.Minute), open: b.last, high: b.last, low: b.last, close: b.last}
		x.books[in.Symbol] = b
		x.syms = append(x.syms, in.Symbol)
	}
	sort.Strings(x.syms)
	return x
}

// Instrument returns the instrument traded as sym.
func (x *Exchange) Instrument(sym string) (Instrument, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	b, ok := x.books[sym]
	if !ok {
		return Instrument{}, false
	}
	return b.in, true
}

// Quote returns the current price of sym.
func (x *Exchange) Quote(sym string) (Quote, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	b, ok := x.books[sym]
	if !ok {
		return Quote{}, false
	}
	return b.quote(), true
}

func (b *book) quote() Quote {
	m := b.in.Market
	t := TickSize(m, b.last)
	spread := t
	if !b.in.LargeCap {
		spread = 2 * t // thin books are wider
	}
	lo, hi := Band(m, b.in.PrevClose)
	ask := math.Min(hi, RoundTick(m, b.last+spread/2+t/2))
	bid := math.Max(lo, RoundTick(m, b.last-spread/2-t/2))
	return Quote{Symbol: b.in.Symbol, Last: b.last, Bid: bid, Ask: ask, PrevClose: b.in.PrevClose, Low: lo, High: hi, DayHigh: b.dayHi, DayVolume: b.dayV}
}

// Open reports whether the exchange is in session at t.
func (x *Exchange) Open(t time.Time) bool { return x.hours.Open(t) }

// Execute fills an order of qty shares of sym now, at the touch with price
// impact: a market order always fills (within the daily band); a limit
// order fills only when marketable. It returns the average fill price.
func (x *Exchange) Execute(sym, side string, qty int64, limit float64, at time.Time) (float64, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	b, ok := x.books[sym]
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownSymbol, sym)
	}
	if !x.hours.Open(at) {
		return 0, ErrClosed
	}
	q := b.quote()
	m := b.in.Market
	// Impact: a fraction of the price per square root of the share of
	// daily volume, so 10% of a day's volume moves a thin stock ~4%.
	share := float64(qty) / math.Max(float64(b.in.ADVShares), 1)
	impact := 0.12 * math.Sqrt(share)
	if b.in.LargeCap {
		impact *= 0.25
	}
	var px float64
	switch side {
	case event.SideBuy:
		if limit > 0 && limit < q.Ask {
			return 0, ErrNotMarketable
		}
		px = math.Min(q.High, q.Ask*(1+impact/2))
		if limit > 0 {
			px = math.Min(px, limit)
		}
		b.move(b.last * (1 + impact))
	default:
		if limit > 0 && limit > q.Bid {
			return 0, ErrNotMarketable
		}
		px = math.Max(q.Low, q.Bid*(1-impact/2))
		if limit > 0 {
			px = math.Max(px, limit)
		}
		b.move(b.last * (1 - impact))
	}
	px = RoundTick(m, px)
	b.trade(px, qty)
	return px, nil
}

// move shifts the price to p: half of the move stays (the fair value
// follows), half decays away over the next minutes.
func (b *book) move(p float64) {
	lo, hi := Band(b.in.Market, b.in.PrevClose)
	p = math.Max(lo, math.Min(hi, p))
	d := p - b.last
	b.fair += d / 2
	b.temp += d / 2
	b.setLast(p)
}

func (b *book) setLast(p float64) {
	b.last = RoundTick(b.in.Market, p)
	b.dayHi = math.Max(b.dayHi, b.last)
}

func (b *book) trade(px float64, qty int64) {
	b.bar.high = math.Max(b.bar.high, px)
	b.bar.low = math.Min(b.bar.low, px)
	b.bar.close = px
	b.bar.volume += qty
	b.dayV += qty
}

// Step advances the market to now, minute by minute, and returns the bar
// records of every minute that ended, in time order and symbol order.
func (x *Exchange) Step(now time.Time) []event.Record {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []event.Record
	for {
		next := x.now.Truncate(time.Minute).Add(time.Minute)
		if next.After(now) {
			break
		}
		open := x.hours.Open(x.now)
		for _, sym := range x.syms {
			b := x.books[sym]
			if open {
				b.tick(x.rng)
				bb := b.bar
				if bb.volume > 0 {
					x.barID++
					out = append(out, event.Record{
						ID: fmt.Sprintf("bar-%d", x.barID), Type: event.TypeBar, Time: next,
						Symbol: sym, Open: bb.open, High: bb.high, Low: bb.low, Close: bb.close, Volume: bb.volume,
					})
				}
			}
			b.bar = bar{start: next, open: b.last, high: b.last, low: b.last, close: b.last}
		}
		x.now = next
	}
	return out
}

// tick adds one minute of background trading: a mean-reverting step of the
// price and the market's own volume.
func (b *book) tick(rng *rand.Rand) {
	b.temp *= 0.8
	b.fair *= 1 + b.vol*0.3*rng.NormFloat64()
	target := b.fair + b.temp
	p := b.last + (target-b.last)*0.3 + b.last*b.vol*rng.NormFloat64()
	lo, hi := Band(b.in.Market, b.in.PrevClose)
	b.setLast(math.Max(lo, math.Min(hi, p)))
	perMin := float64(b.in.ADVShares) / float64(TSETradingMinutes)
	v := int64(perMin*(0.5+rng.Float64())) / b.in.Lot * b.in.Lot
	b.trade(b.last, v)
}

// Symbols returns every traded symbol, sorted.
func (x *Exchange) Symbols() []string { return append([]string(nil), x.syms...) }
