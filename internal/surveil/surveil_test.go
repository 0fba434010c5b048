package surveil

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// TestScenarios is the acceptance test: each documented ramp is halted
// within 60 seconds of stream time after its third hijacked buy order, and
// no look-alike is ever halted or frozen.
func TestScenarios(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { runScenario(t, sc) })
	}
}

// runScenario replays sc and checks it: an attack is halted within 60
// seconds of its third hijacked buy order, a look-alike is never acted on.
// It returns the first halting alert, if any.
func runScenario(t *testing.T, sc scenario) *event.Alert {
	t.Helper()
	g := newGen()
	sc.build(g)
	w := New(DefaultConfig())
	alerts := replayGen(w, g)
	if testing.Verbose() {
		for _, a := range alerts {
			t.Logf("%s", a.AppendJSON(nil))
		}
	}
	var halt *event.Alert
	for i := range alerts {
		a := &alerts[i]
		if a.Action == event.AlertHaltBuys && halt == nil {
			halt = a
		}
		if !sc.attack && a.Action != event.AlertNone {
			t.Errorf("look-alike acted on: %s", a.AppendJSON(nil))
		}
	}
	if !sc.attack {
		if w.Halted(sc.target) {
			t.Errorf("%s halted", sc.target)
		}
		return halt
	}
	buys := g.hijackBuys[sc.target]
	if len(buys) < 3 {
		t.Fatalf("scenario has %d hijacked buys", len(buys))
	}
	if halt == nil {
		t.Fatalf("never halted; heat %d", w.Heat(sc.target))
	}
	if halt.Symbol != sc.target {
		t.Errorf("halted %s, want %s", halt.Symbol, sc.target)
	}
	if late := halt.Time.Sub(buys[2]); late > 60*time.Second {
		t.Errorf("halted %v after the third hijacked buy order, want within 60s", late)
	}
	if !w.Halted(sc.target) || w.Heat(sc.target) != 100 {
		t.Errorf("Halted %v Heat %d", w.Halted(sc.target), w.Heat(sc.target))
	}
	return halt
}

// TestScenarioFindings checks the secondary findings of the attacks.
func TestScenarioFindings(t *testing.T) {
	tests := []struct {
		scenario string
		kinds    []string
	}{
		{"ramp_10_accounts_84_to_110", []string{KindCrossAccountPump, KindHijackedAccounts, KindLiquidateConcentrate, KindRingSeller, KindWalkUp}},
		{"warrant_15_minutes_30_to_60", []string{KindCrossAccountPump, KindLiquidateConcentrate, KindSharedInfrastructure, KindWalkUp}},
		{"volume_297x_105_to_144_close_112", []string{KindCrossAccountPump, KindLiquidateConcentrate, KindSpikeReversal, KindPriceDeviation}},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			w := New(DefaultConfig())
			alerts := replay(w, findScenario(t, tt.scenario))
			got := map[string]bool{}
			for _, a := range alerts {
				got[a.Kind] = true
			}
			for _, k := range tt.kinds {
				if !got[k] {
					t.Errorf("no %s alert; got %v", k, got)
				}
			}
		})
	}
}

func findScenario(t testing.TB, name string) []*event.Record {
	for _, sc := range scenarios {
		if sc.name == name {
			g := newGen()
			sc.build(g)
			return g.stream()
		}
	}
	t.Fatalf("no scenario %s", name)
	return nil
}

// TestDeterminism checks that the same stream gives byte-identical alerts,
// and the same query answers, every time.
func TestDeterminism(t *testing.T) {
	var all []*event.Record
	for _, sc := range scenarios {
		g := newGen()
		sc.build(g)
		all = append(all, g.stream()...)
	}
	render := func() string {
		w := New(DefaultConfig())
		var b bytes.Buffer
		for _, r := range all {
			for _, a := range w.Observe(r, nil) {
				b.Write(a.AppendJSON(nil))
				b.WriteByte('\n')
			}
		}
		for _, a := range w.Alerts(AlertQuery{}) {
			b.Write(a.AppendJSON(nil))
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%+v\n", w.Campaigns())
		return b.String()
	}
	first := render()
	if strings.Count(first, "\n") < 10 {
		t.Fatalf("too few alerts to compare:\n%s", first)
	}
	for range 3 {
		if again := render(); again != first {
			t.Fatalf("output differs between runs")
		}
	}
}
