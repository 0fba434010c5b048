package market

import (
	"testing"
	"time"
)

func TestExchangeImpactBarsAndDeterminism(t *testing.T) {
	start := time.Date(2025, 3, 26, 9, 0, 0, 0, jst)
	thin := Instrument{"9999", "Thin (sim)", TSEStandard, "JPY", 100, 50000, 84, false}
	run := func() ([]float64, int) {
		x := NewExchange([]Instrument{thin}, 1, Hours{}, start)
		var fills []float64
		bars := 0
		for i := range 10 {
			at := start.Add(time.Duration(i) * 5 * time.Minute)
			bars += len(x.Step(at))
			px, err := x.Execute("9999", "buy", 5000, 0, at)
			if err != nil {
				t.Fatal(err)
			}
			fills = append(fills, px)
		}
		return fills, bars
	}
	a, bars := run()
	b, _ := run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("not deterministic: %v vs %v", a, b)
		}
		if !OnTick(TSEStandard, a[i]) {
			t.Errorf("fill %v off tick", a[i])
		}
	}
	if a[len(a)-1] < 95 {
		t.Errorf("ten buys of 10%% ADV moved ¥84 only to %v", a[len(a)-1])
	}
	if a[len(a)-1] > 84+30 {
		t.Errorf("price %v past the daily limit", a[len(a)-1])
	}
	// ADV 50,000 over a 330-minute day is 1.5 lots a minute: a minute
	// that trades under one lot prints no bar, most minutes print one.
	if bars < 35 {
		t.Errorf("only %d bars in 45 minutes", bars)
	}
	x := NewExchange([]Instrument{thin}, 1, Hours{}, start)
	if _, err := x.Execute("9999", "buy", 100, 80, start); err != ErrNotMarketable {
		t.Errorf("limit below ask: %v", err)
	}
	if _, err := x.Execute("9999", "buy", 100, 0, start.Add(-time.Hour)); err != ErrClosed {
		t.Errorf("before the open: %v", err)
	}
}

func TestUniverse(t *testing.T) {
	u := Universe(1, 150)
	if len(u) != len(Universe(1, 150)) || u[40] != Universe(1, 150)[40] {
		t.Fatal("universe not deterministic")
	}
	seen := map[string]bool{}
	thin := 0
	for _, in := range u {
		if seen[in.Symbol] {
			t.Fatalf("duplicate symbol %s", in.Symbol)
		}
		seen[in.Symbol] = true
		if !OnTick(in.Market, in.PrevClose) {
			t.Errorf("%s close %v off tick", in.Symbol, in.PrevClose)
		}
		if in.Market == TSEStandard || in.Market == TSEGrowth {
			if in.PrevClose >= 60 && in.PrevClose <= 300 {
				thin++
			}
		}
		if _, ok := FX(in.Currency); !ok {
			t.Errorf("%s: no FX for %s", in.Symbol, in.Currency)
		}
	}
	if thin < 150 {
		t.Errorf("%d thin small caps, want 150", thin)
	}
}
