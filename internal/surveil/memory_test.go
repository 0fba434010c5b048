package surveil

import (
	"fmt"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// TestConvergenceRemembered: a slow campaign sends its hijacked accounts
// into one issue over hours, further apart than R3's two-hour window.
// Three suspects (a new phone on a carrier, a new network, an order within
// a minute of signing in) converge on a large cap in the morning; the
// fourth comes after the lunch break, the fifth an hour later. The issue
// stays warm enough for the guard's step-up (heat 50 or more) until four
// hours after the last suspect's buy, then cools; a large cap bought by
// accounts with no hijack signal is never halted, nobody is frozen.
func TestConvergenceRemembered(t *testing.T) {
	g := newGen()
	g.market()
	g.background(20)
	g.victims("V", 5, 1000)
	kit := func(i int) actor {
		return actor{ip: fmt.Sprintf("126.33.10.%d", 10+i), asn: 2527, country: "JP", device: fmt.Sprintf("kit-%d", i)}
	}
	at := []time.Time{clock(0, 9, 20, 0), clock(0, 9, 25, 0), clock(0, 9, 30, 0), clock(0, 12, 50, 0), clock(0, 13, 50, 0)}
	for i, t0 := range at {
		g.cashBuy(t0, fmt.Sprintf("V%02d", i), "9432", kit(i), 500)
	}
	late := clock(0, 17, 51, 0) // four hours after the last suspect buy, and a minute
	g.add(&event.Record{Type: event.TypeBar, Time: late, Symbol: "9432", Open: 2400, High: 2400, Low: 2400, Close: 2400, Volume: 0})
	w := New(DefaultConfig())
	heat := map[time.Time]int{}
	for _, r := range g.stream() {
		if r.Type == event.TypeOrder && r.Symbol == "9432" && r.Side == event.SideBuy {
			heat[r.Time] = w.Heat("9432")
		}
		var d *event.Decision
		if r.Type.Action() {
			d = &event.Decision{Event: r.ID, Time: r.Time, Account: r.Account, Action: event.Allow, Policy: "test"}
		}
		for _, a := range w.Observe(r, d) {
			if a.Action != event.AlertNone {
				t.Errorf("acted on accounts with no hijack signal: %s", a.AppendJSON(nil))
			}
		}
	}
	for i, t0 := range at[3:] {
		if h := heat[t0.Add(30*time.Second)]; h < 50 {
			t.Errorf("suspect %d's buy at %s: heat %d, want 50 or more", i+4, t0.Format("15:04"), h)
		}
	}
	if h := w.Heat("9432"); h >= 50 {
		t.Errorf("at %s, four hours after the last suspect buy: heat %d, want under 50", late.Format("15:04"), h)
	}
	if w.Halted("9432") {
		t.Errorf("a large cap halted")
	}
}
