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
