// Package market holds the reference brokerage's market: the instrument
// universe (TSE large, mid and thin small caps; Hong Kong and Shanghai names
// priced in their own currency), the exchange rules that orders are checked
// against (TSE tick sizes and daily price limits, lots, trading hours), FX
// rates, and a simulated exchange that fills orders against a price process
// with price impact and publishes one-minute bars.
package market

import (
	"math"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
)

// Markets of spec version 1.
const (
	TSEPrime    = "TSE_PRIME"
	TSEStandard = "TSE_STANDARD"
	TSEGrowth   = "TSE_GROWTH"
	HK          = "HK"
	SH          = "SH"
	SZ          = "SZ"
	US          = "US"
)

// Domestic reports whether m is a Tokyo market.
func Domestic(m string) bool { return m == TSEPrime || m == TSEStandard || m == TSEGrowth }

// FX returns the yen price of one unit of currency c, and false for a
// currency the brokerage does not trade. The rates are the demo's fixed
// reference rates.
func FX(c string) (float64, bool) {
	switch c {
	case "JPY":
		return 1, true
	case "HKD":
		return 19.4, true
	case "CNY":
		return 20.9, true
	case "USD":
		return 151.2, true
	}
	return 0, false
}

// tseLimits is the TSE daily price limit (値幅制限) by previous close, as
// JPX publishes it: a close under upTo moves at most width yen either way;
// a close of ¥50 million or more moves at most tseTopLimit.
var tseLimits = []struct{ upTo, width float64 }{
	{100, 30}, {200, 50}, {500, 80}, {700, 100}, {1000, 150},
	{1500, 300}, {2000, 400}, {3000, 500}, {5000, 700}, {7000, 1000},
	{10000, 1500}, {15000, 3000}, {20000, 4000}, {30000, 5000}, {50000, 7000},
	{70000, 10000}, {100000, 15000}, {150000, 30000}, {200000, 40000}, {300000, 50000},
	{500000, 70000}, {700000, 100000}, {1000000, 150000}, {1500000, 300000}, {2000000, 400000},
	{3000000, 500000}, {5000000, 700000}, {7000000, 1000000}, {10000000, 1500000}, {15000000, 3000000},
	{20000000, 4000000}, {30000000, 5000000}, {50000000, 7000000},
}

const tseTopLimit = 10000000

// TSEPriceLimit returns the TSE daily price limit (値幅制限) in yen for a
// previous close in yen, or 0 when prevClose is not positive.
func TSEPriceLimit(prevClose float64) float64 {
	if !(prevClose > 0) {
		return 0
	}
	for _, l := range tseLimits {
		if prevClose < l.upTo {
			return l.width
		}
	}
	return tseTopLimit
}

// LimitWidth returns the daily price limit around prevClose for an
// instrument on market m: the TSE table by previous close, ±10% on
// Shanghai and Shenzhen, and no limit (0) elsewhere.
func LimitWidth(m string, prevClose float64) float64 {
	switch {
	case Domestic(m):
		return TSEPriceLimit(prevClose)
	case m == SH || m == SZ:
		return roundTo(prevClose*0.10, 0.01)
	}
	return 0
}

// Band returns the lowest and highest prices allowed today; hi is +Inf
// where the market has no limit.
func Band(m string, prevClose float64) (lo, hi float64) {
	w := LimitWidth(m, prevClose)
	if w == 0 {
		return TickSize(m, prevClose), math.Inf(1)
	}
	lo = prevClose - w
	if t := TickSize(m, prevClose); lo < t {
		lo = t
	}
	return lo, prevClose + w
}

// hkSpreads is the Hong Kong exchange's spread table: prices up to upTo
// move in steps of tick.
var hkSpreads = []struct{ upTo, tick float64 }{
	{0.25, 0.001}, {0.5, 0.005}, {10, 0.01}, {20, 0.02}, {100, 0.05},
	{200, 0.1}, {500, 0.2}, {1000, 0.5}, {2000, 1}, {5000, 2}, {9995, 5},
}

// tseTicks is the TSE tick table (呼値の単位) for issues outside the
// TOPIX 500: prices up to upTo move in steps of tick; prices above the last
// row move in steps of tseTopTick.
var tseTicks = []struct{ upTo, tick float64 }{
	{3000, 1}, {5000, 5}, {30000, 10}, {50000, 50}, {300000, 100},
	{500000, 500}, {3000000, 1000}, {5000000, 5000}, {30000000, 10000}, {50000000, 50000},
}

const tseTopTick = 100000

// TSETick returns the TSE tick size in yen at price p by the general
// table (¥1 up to ¥3,000, ¥5 up to ¥5,000, ...); the finer steps of
// TOPIX 500 names are not modelled.
func TSETick(p float64) float64 {
	for _, s := range tseTicks {
		if p <= s.upTo {
			return s.tick
		}
	}
	return tseTopTick
}

// TickSize returns the price step at price p on market m: the TSE general
// table on Tokyo markets, the Hong Kong spread table on HK, and 0.01 of the
// currency elsewhere.
func TickSize(m string, p float64) float64 {
	switch {
	case Domestic(m):
		return TSETick(p)
	case m == HK:
		for _, s := range hkSpreads {
			if p <= s.upTo {
				return s.tick
			}
		}
		return 5
	}
	return 0.01
}

// OnTick reports whether p is a whole number of ticks at its own price level.
func OnTick(m string, p float64) bool {
	t := TickSize(m, p)
	n := p / t
	return math.Abs(n-math.Round(n)) < 1e-6
}

// RoundTick rounds p to the nearest tick at its price level.
func RoundTick(m string, p float64) float64 { return roundTo(p, TickSize(m, p)) }

func roundTo(p, step float64) float64 {
	r := math.Round(p/step) * step
	// Trim float noise such as 0.30000000000000004.
	return math.Round(r*1e6) / 1e6
}

// Hours says when a market trades.
type Hours struct {
	// Always keeps the market open around the clock (the demo).
	Always bool
}

// The TSE's trading sessions as offsets from JST midnight: the morning
// session 9:00-11:30 and the afternoon session 12:30-15:30 (15:30 since
// November 2024).
const (
	TSEOpen          = 9 * time.Hour
	TSEMorningClose  = 11*time.Hour + 30*time.Minute
	TSEAfternoonOpen = 12*time.Hour + 30*time.Minute
	TSEClose         = 15*time.Hour + 30*time.Minute
)

// TSETradingMinutes is the length of a TSE trading day in minutes: 150
// in the morning and 180 in the afternoon, 330 since the close moved from
// 15:00 to 15:30 in November 2024.
const TSETradingMinutes = int64((TSEMorningClose - TSEOpen + TSEClose - TSEAfternoonOpen) / time.Minute)

// Open reports whether the TSE is in session at t: 9:00-11:30 and
// 12:30-15:30 JST on weekdays (holidays are not modelled).
func (h Hours) Open(t time.Time) bool {
	if h.Always {
		return true
	}
	if wd := t.In(jst).Weekday(); wd == time.Saturday || wd == time.Sunday {
		return false
	}
	d := sinceMidnight(t)
	return (d >= TSEOpen && d < TSEMorningClose) || (d >= TSEAfternoonOpen && d < TSEClose)
}

// sinceMidnight returns the JST wall-clock time of t as an offset from
// midnight, to the minute.
func sinceMidnight(t time.Time) time.Duration {
	j := t.In(jst)
	return time.Duration(j.Hour())*time.Hour + time.Duration(j.Minute())*time.Minute
}

// InLunch reports whether t falls in the TSE's lunch break, 11:30-12:30
// JST, on any day.
func InLunch(t time.Time) bool {
	d := sinceMidnight(t)
	return d >= TSEMorningClose && d < TSEAfternoonOpen
}

var jst = clock.JST
