package market

import (
	"math"
	"testing"
	"time"
)

func TestLimitWidth(t *testing.T) {
	tests := []struct {
		m    string
		prev float64
		want float64
	}{
		{TSEStandard, 84, 30}, {TSEStandard, 99.9, 30}, {TSEStandard, 100, 50}, {TSEStandard, 105, 50},
		{TSEStandard, 200, 80}, {TSEPrime, 499, 80}, {TSEPrime, 500, 100}, {TSEPrime, 700, 150},
		{TSEPrime, 1000, 300}, {TSEPrime, 1500, 400}, {TSEPrime, 2000, 500}, {TSEPrime, 2999, 500},
		{TSEPrime, 3000, 700}, {TSEPrime, 5000, 1000}, {TSEPrime, 6999, 1000}, {TSEPrime, 7000, 1500},
		{SH, 5.55, 0.56}, {HK, 0.4, 0},
	}
	for _, tt := range tests {
		if got := LimitWidth(tt.m, tt.prev); got != tt.want {
			t.Errorf("LimitWidth(%s, %v) = %v, want %v", tt.m, tt.prev, got, tt.want)
		}
	}
	if lo, hi := Band(HK, 0.4); lo != 0.005 || !math.IsInf(hi, 1) {
		t.Errorf("HK band = %v..%v", lo, hi)
	}
	if lo, hi := Band(TSEStandard, 20); lo != 1 || hi != 50 {
		t.Errorf("band of ¥20 = %v..%v, want 1..50", lo, hi)
	}
}

func TestTicks(t *testing.T) {
	tests := []struct {
		m    string
		p    float64
		tick float64
		on   bool
	}{
		{TSEStandard, 105, 1, true}, {TSEStandard, 105.5, 1, false}, {TSEPrime, 3000, 1, true},
		{TSEPrime, 3005, 5, true}, {TSEPrime, 3001, 5, false}, {TSEPrime, 25010, 10, true},
		{TSEPrime, 47050, 50, true}, {HK, 0.405, 0.005, true}, {HK, 0.401, 0.005, false},
		{HK, 0.241, 0.001, true}, {HK, 402.2, 0.2, true}, {SH, 1488.01, 0.01, true},
	}
	for _, tt := range tests {
		if got := TickSize(tt.m, tt.p); got != tt.tick {
			t.Errorf("TickSize(%s, %v) = %v, want %v", tt.m, tt.p, got, tt.tick)
		}
		if got := OnTick(tt.m, tt.p); got != tt.on {
			t.Errorf("OnTick(%s, %v) = %v, want %v", tt.m, tt.p, got, tt.on)
		}
	}
}

func TestHours(t *testing.T) {
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
	h := Hours{}
	for s, want := range map[string]bool{
		"2025-03-26T08:59:00+09:00": false, "2025-03-26T09:00:00+09:00": true, "2025-03-26T11:29:59+09:00": true,
		"2025-03-26T11:30:00+09:00": false, "2025-03-26T12:30:00+09:00": true, "2025-03-26T15:29:00+09:00": true,
		"2025-03-26T15:30:00+09:00": false, "2025-03-29T10:00:00+09:00": false, "2025-03-26T01:00:00Z": true,
	} {
		if got := h.Open(at(s)); got != want {
			t.Errorf("Open(%s) = %v, want %v", s, got, want)
		}
	}
	if !(Hours{Always: true}).Open(at("2025-03-29T03:00:00+09:00")) {
		t.Error("Always is closed")
	}
}

// TestTSEPriceLimitBoundaries checks every row of JPX's published daily
// price limit table (値幅制限) on both sides of its boundary: a previous
// close below the boundary takes the row's limit, the boundary itself the
// next row's.
func TestTSEPriceLimitBoundaries(t *testing.T) {
	rows := []struct{ under, limit float64 }{
		{100, 30}, {200, 50}, {500, 80}, {700, 100}, {1000, 150},
		{1500, 300}, {2000, 400}, {3000, 500}, {5000, 700}, {7000, 1000},
		{10000, 1500}, {15000, 3000}, {20000, 4000}, {30000, 5000}, {50000, 7000},
		{70000, 10000}, {100000, 15000}, {150000, 30000}, {200000, 40000}, {300000, 50000},
		{500000, 70000}, {700000, 100000}, {1000000, 150000}, {1500000, 300000}, {2000000, 400000},
		{3000000, 500000}, {5000000, 700000}, {7000000, 1000000}, {10000000, 1500000}, {15000000, 3000000},
		{20000000, 4000000}, {30000000, 5000000}, {50000000, 7000000}, {math.Inf(1), 10000000},
	}
	prev := 1.0
	for _, r := range rows {
		for _, p := range []float64{prev, r.under - 1, r.under - 0.1} {
			if math.IsInf(p, 0) {
				continue
			}
			if got := TSEPriceLimit(p); got != r.limit {
				t.Errorf("TSEPriceLimit(%v) = %v, want %v", p, got, r.limit)
			}
			if got := LimitWidth(TSEGrowth, p); got != r.limit {
				t.Errorf("LimitWidth(TSE_GROWTH, %v) = %v, want %v", p, got, r.limit)
			}
		}
		prev = r.under
	}
	for _, p := range []float64{0, -5, math.NaN()} {
		if got := TSEPriceLimit(p); got != 0 {
			t.Errorf("TSEPriceLimit(%v) = %v, want 0", p, got)
		}
	}
}

// TestTSETickBoundaries checks every row of the TSE tick table (呼値の単位)
// for issues outside the TOPIX 500: a price up to and including the row's
// top takes the row's tick, one yen above it the next row's.
func TestTSETickBoundaries(t *testing.T) {
	rows := []struct{ upTo, tick float64 }{
		{3000, 1}, {5000, 5}, {30000, 10}, {50000, 50}, {300000, 100},
		{500000, 500}, {3000000, 1000}, {5000000, 5000}, {30000000, 10000}, {50000000, 50000},
		{math.Inf(1), 100000},
	}
	prev := 0.0
	for _, r := range rows {
		for _, p := range []float64{prev + 1, r.upTo} {
			if math.IsInf(p, 0) {
				p = prev * 2
			}
			if got := TSETick(p); got != r.tick {
				t.Errorf("TSETick(%v) = %v, want %v", p, got, r.tick)
			}
			if got := TickSize(TSEPrime, p); got != r.tick {
				t.Errorf("TickSize(TSE_PRIME, %v) = %v, want %v", p, got, r.tick)
			}
		}
		prev = r.upTo
	}
}

// TestTSESessions checks the session constants against the clock times
// Hours.Open keeps: 9:00-11:30 and 12:30-15:30, 330 minutes.
func TestTSESessions(t *testing.T) {
	if TSETradingMinutes != 330 {
		t.Errorf("TSETradingMinutes = %d, want 330", TSETradingMinutes)
	}
	for d, want := range map[time.Duration]string{TSEOpen: "09:00", TSEMorningClose: "11:30", TSEAfternoonOpen: "12:30", TSEClose: "15:30"} {
		if got := time.Date(2025, 3, 26, 0, 0, 0, 0, jst).Add(d).Format("15:04"); got != want {
			t.Errorf("session boundary %v = %s, want %s", d, got, want)
		}
	}
	at := func(s string) time.Time { tm, _ := time.Parse(time.RFC3339, s); return tm }
	for s, want := range map[string]bool{
		"2025-04-15T11:29:59+09:00": false, "2025-04-15T11:30:00+09:00": true, "2025-04-15T12:29:59+09:00": true,
		"2025-04-15T12:30:00+09:00": false, "2025-04-15T02:45:00Z": true, "2025-04-15T11:45:00Z": false,
	} {
		if got := InLunch(at(s)); got != want {
			t.Errorf("InLunch(%s) = %v, want %v", s, got, want)
		}
	}
}
