package surveil

// Market arithmetic of the TSE that the detectors scale their thresholds by.
// The facts themselves (tick and price-limit tables, trading hours) are
// internal/market's, and the network lists internal/netinfo's: this file
// only adapts them to the watchtower's nanosecond clock.

import (
	"time"

	kclock "github.com/kabuto-sec/kabuto/internal/clock" // the tests have their own clock
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/netinfo"
)

const (
	nsPerSec  = int64(1e9)
	nsPerMin  = 60 * nsPerSec
	jstOffset = kclock.JSTOffset // seconds east of UTC
	// sessionClose is the TSE's close in seconds after JST midnight.
	sessionClose = int64(market.TSEClose / time.Second)
	// tradingMinutes is the length of a TSE trading day (330 minutes,
	// 9:00-11:30 and 12:30-15:30), used to turn an average daily volume
	// into a per-minute one.
	tradingMinutes = float64(market.TSETradingMinutes)
)

// dayOf returns the JST calendar day number of a Unix time in nanoseconds.
func dayOf(ns int64) int32 {
	s := ns / nsPerSec
	if ns < 0 && ns%nsPerSec != 0 {
		s--
	}
	s += jstOffset
	d := s / 86400
	if s < 0 && s%86400 != 0 {
		d--
	}
	return int32(d)
}

// secOfDay returns seconds after JST midnight.
func secOfDay(ns int64) int64 {
	s := ns/nsPerSec + jstOffset
	r := s % 86400
	if r < 0 {
		r += 86400
	}
	return r
}

// minuteOf returns the number of the one-minute bar a time falls in: a bar
// stamped T covers (T-1m, T], so T itself belongs to the minute before.
func minuteOf(ns int64) int64 {
	m := (ns - 1) / nsPerMin
	if ns-1 < 0 && (ns-1)%nsPerMin != 0 {
		m--
	}
	return m
}

// tickSize returns the exchange's tick at price on market m; an
// instrument never described (no market) is taken as a Tokyo issue.
func tickSize(m string, price float64) float64 {
	if m == "" {
		m = market.TSEPrime
	}
	return market.TickSize(m, price)
}

// priceLimitJPY returns the TSE daily price limit for a previous close in
// yen. R5 measures every issue's rise against it, foreign issues at their
// yen price, as a yardstick of how far the price has run.
func priceLimitJPY(prevCloseJPY float64) float64 { return market.TSEPriceLimit(prevCloseJPY) }

// defaultHostingASNs and defaultCarrierASNs are netinfo's built-in lists.
var (
	defaultHostingASNs = netinfo.HostingASNs
	defaultCarrierASNs = netinfo.CarrierASNs
)

// fnv hashes s with 64-bit FNV-1a; hashes are compared for equality only.
func fnv(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
