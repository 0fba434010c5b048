package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"strings"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/risk"
)

// TestAdaptiveDeterminism: the adaptive scenario, search included, gives
// a byte-identical report for a seed, and the report has the evasions and
// every run's lists of false halts and freezes, empty or not.
func TestAdaptiveDeterminism(t *testing.T) {
	if testing.Short() {
		t.Skip("plays the rehearsal twice")
	}
	var out [2][]byte
	for i := range out {
		cfg := small(t)
		cfg.Scenario = "adaptive"
		cfg.Only = []string{"all_on", "all_off"}
		rep, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := rep.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		out[i] = b.Bytes()
	}
	if !bytes.Equal(out[0], out[1]) {
		a, b := strings.Split(string(out[0]), "\n"), strings.Split(string(out[1]), "\n")
		for i := range min(len(a), len(b)) {
			if a[i] != b[i] {
				t.Fatalf("reports differ at line %d:\n%s\n%s", i+1, a[i], b[i])
			}
		}
		t.Fatal("reports differ in length")
	}
	var rep struct {
		Evasions []EvasionScore `json:"evasions"`
		Runs     []map[string]json.RawMessage
	}
	if err := json.Unmarshal(out[0], &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Evasions) < len(evasions)+1 {
		t.Errorf("%d evasions reported, want the baseline and every single evasion at least", len(rep.Evasions))
	}
	day := 0
	for _, e := range rep.Evasions {
		day += e.DaySessions
		if e.ProbeSessions > 0 && e.ProbeSoldJPY+e.ProbeBoughtJPY == 0 && len(e.StoppedBy) == 0 {
			t.Errorf("evasion %s got nothing through in %d probe sessions, and nothing is named as stopping it", e.Name, e.ProbeSessions)
		}
	}
	if day == 0 {
		t.Error("no session of the day played an evasion")
	}
	for _, r := range rep.Runs {
		for _, k := range []string{"non_target_halts", "legit_frozen_accounts"} {
			v, ok := r[k]
			if !ok || !bytes.HasPrefix(bytes.TrimSpace(v), []byte("[")) {
				t.Errorf("run %s: %s is %q, want a list", r["variant"], k, v)
			}
		}
	}
}

// limitOnly refuses every market order: only limit orders get through.
const limitOnly = `
version: test-limit-only
thresholds: {challenge: 30, challenge_phishing_resistant: 50, hold: 70, deny: 90}
rules:
  - id: market_order
    description: Every market order is refused.
    applies: [order]
    when: order.market
    action: deny
    reason: market_order
`

// TestAdaptiveSearchFindsTheOpening: under a policy that refuses market
// orders and nothing else, the baseline (market orders) gets nothing
// through, and the search must find that limit orders do, and play them
// on the day.
func TestAdaptiveSearchFindsTheOpening(t *testing.T) {
	pol, err := risk.LoadPolicy("limit-only.yaml", []byte(limitOnly))
	if err != nil {
		t.Fatal(err)
	}
	cfg := small(t)
	cfg.Scenario, cfg.Policy = "adaptive", pol
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	w, err := buildWorld(cfg)
	if err != nil {
		t.Fatal(err)
	}
	day, a, err := adaptWorld(context.Background(), &cfg, w, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range a.tried {
		if c.name == "baseline" && c.probe.sold+c.probe.bought != 0 {
			t.Errorf("baseline got ¥%d through market orders the policy refuses", c.probe.sold+c.probe.bought)
		}
		if !c.strat.Limit && c.probe.sold+c.probe.bought != 0 {
			t.Errorf("%s moved ¥%d with market orders", c.name, c.probe.sold+c.probe.bought)
		}
	}
	best := a.ranked()[0]
	if !best.strat.Limit || best.through() <= 0 {
		t.Fatalf("best strategy %s (%s) got %.2f%% through; want limit orders, which pass", best.name, best.strat, best.through()*100)
	}
	played := 0
	for _, p := range day.attacks {
		if p.Adapt == nil || !p.Adapt.Strat.Limit && !anyThrough(a, p.Tech) {
			continue // nothing got through for its technique of access (the front door stops stuffing)
		}
		played++
		if !p.Adapt.Strat.Limit {
			t.Errorf("session %s (%s) plays %s, which places market orders", p.ID, p.Tech, p.Adapt.Evasion)
		}
	}
	if played == 0 {
		t.Fatal("no session of the day plays limit orders")
	}
	t.Logf("best: %s, %.2f%% through; %d strategies tried", best.name, best.through()*100, len(a.tried))
}

// anyThrough reports whether any strategy tried got value through for
// the technique tech.
func anyThrough(a *adaptive, tech string) bool {
	for _, c := range a.tried {
		if c.tech[tech].through() > 0 {
			return true
		}
	}
	return false
}

// TestRuleNumber: the attackers read the thresholds off the policy in
// force, and fall back on the 2025 values when a rule is not there.
func TestRuleNumber(t *testing.T) {
	p := risk.BuiltinPolicy()
	for _, tc := range []struct {
		id, v string
		def   float64
	}{
		{"liquidate_concentrate", "session.sold_share", -1},
		{"liquidate_concentrate", "session.symbol_buy_share", -1},
		{"new_context_sell", "account.new_context_sold_share", -1},
	} {
		if got := ruleNumber(p, tc.id, tc.v, tc.def); got <= 0 {
			t.Errorf("%s %s: got %v, want the policy's number", tc.id, tc.v, got)
		}
	}
	if got := ruleNumber(p, "no_such_rule", "session.age_s", 42); got != 42 {
		t.Errorf("missing rule: got %v, want the default 42", got)
	}
}

// TestEvasionsShown: the scorecard and the HTML report name each evasion
// tried, the value it got through and what stopped it.
func TestEvasionsShown(t *testing.T) {
	rep := &Report{Scenario: "adaptive", Acceptance: Acceptance{Notes: []string{}}, Evasions: []EvasionScore{
		{Name: "own_carrier+dwell_past_windows", ProbeSessions: 12, ProbeSoldJPY: 41_200_000, ProbeBoughtJPY: 3_000_000,
			StoppedBy: map[string]int{"sell:new_context_sell": 7, "halt:cross_account_pump": 2}, DaySessions: 30, DaySoldJPY: 99_000_000},
		{Name: "baseline", ProbeSessions: 10, StoppedBy: map[string]int{"sell:fast_liquidation": 10}},
	}}
	var text, page bytes.Buffer
	rep.Format(&text)
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{text.String(), html.UnescapeString(page.String())} {
		for _, want := range []string{"own_carrier+dwell_past_windows", "¥41.2m", "¥99.0m", "sell:new_context_sell 7", "halt:cross_account_pump 2", "sell:fast_liquidation 10"} {
			if !strings.Contains(out, want) {
				t.Errorf("%q missing from\n%.2000s", want, out)
			}
		}
	}
}
