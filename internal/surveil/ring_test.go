package surveil

import (
	"fmt"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// TestRingNeedsHijackedBuyers: R7 freezes the ring's seller only when the
// buyers it sold to carry a positive sign of takeover. A customer who
// bought a thin issue two days ago and sells it on a busy morning into
// first-ever buyers who are suspects by their points alone (day traders on
// a new phone on a Japanese carrier, who buy thin issues every week) is a
// holder selling, not a ring:
// the alert is for the analysts, nobody is frozen, no proceeds are held and
// the issue is not halted. The same sells into buyers on a data centre
// abroad still freeze the ring's account.
func TestRingNeedsHijackedBuyers(t *testing.T) {
	phone := func(i int) actor {
		return actor{ip: fmt.Sprintf("126.33.8.%d", 20+i), asn: 2527, country: "JP", device: fmt.Sprintf("new-phone-%d", i)}
	}
	tests := []struct {
		name string
		// history gives buyer v its earlier days
		history func(g *gen, v string, i int)
		buyer   func(i int) actor
		frozen  bool
	}{
		{"day traders who buy thin issues every week, on a new phone", func(g *gen, v string, i int) {
			g.history(v, i)
			h := home(v, i)
			for k, d := range []int{-3, -2} {
				sym := []string{"7778", "7779"}[k]
				h.sess = fmt.Sprintf("s-%s-thin-%d", v, d)
				g.order(clock(d, 9, 30, 0), h, sym, event.SideBuy, 1000, 0, 100)
				g.fill(clock(d, 9, 30, 1), v, sym, event.SideBuy, 1000, 100)
				g.order(clock(d, 14, 30, 0), h, sym, event.SideSell, 1000, 0, 100)
				g.fill(clock(d, 14, 30, 1), v, sym, event.SideSell, 1000, 100)
			}
		}, phone, false},
		{"buyers on a data centre abroad", func(g *gen, v string, i int) { g.history(v, i) }, func(i int) actor {
			return actor{ip: fmt.Sprintf("198.51.100.%d", 20+i), asn: 16509, country: "US", device: fmt.Sprintf("atk-dev-%d", i)}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGen()
			g.market()
			g.thin("7777", nil)
			g.instrument(clock(-5, 8, 0, 0), "7778", "TSE_STANDARD", 100, 50_000)
			g.instrument(clock(-5, 8, 0, 0), "7779", "TSE_STANDARD", 100, 50_000)
			g.ring("HOLDER", "7777", 100_000, 95)
			for i := range 2 {
				v := fmt.Sprintf("V%02d", i)
				g.account(clock(-5, 7, 0, 0), v)
				tt.history(g, v, i)
				a := tt.buyer(i)
				a.acct, a.sess = v, "s-new-"+v
				tb := clock(0, 10, 10*i, 0)
				g.login(tb, a)
				g.order(tb.Add(30*time.Second), a, "7777", event.SideBuy, 5000, 0, 100)
				g.fill(tb.Add(31*time.Second), v, "7777", event.SideBuy, 5000, 100)
				g.fill(tb.Add(32*time.Second), "HOLDER", "7777", event.SideSell, 5000, 100)
			}
			w := New(DefaultConfig())
			alerts := replay(w, g.stream())
			ring := false
			for _, a := range alerts {
				ring = ring || a.Kind == KindRingSeller
			}
			if !ring {
				t.Fatalf("no %s alert: the stream tests nothing", KindRingSeller)
			}
			if w.Frozen("HOLDER") != tt.frozen {
				t.Errorf("HOLDER frozen %v, want %v", w.Frozen("HOLDER"), tt.frozen)
			}
			if held := w.HeldProceeds("HOLDER", clock(0, 15, 0, 0)); (held > 0) != tt.frozen {
				t.Errorf("HOLDER's proceeds held: ¥%d", held)
			}
			if !tt.frozen && w.Halted("7777") {
				t.Errorf("7777 halted on a holder's sells")
			}
		})
	}
}
