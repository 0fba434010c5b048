package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestColdStart is issue 13's cold start: a replay of 20 trading days of
// ordinary customers and the look-alikes of attacks (new phones, sell all
// and withdraw, travellers, day traders in thin issues, a news spike
// bought by many, new customers), generated independently of the rules
// (kabuto genstream --families none), starting from nothing (no --learn),
// halts no symbol and freezes no account: every one of them is
// legitimate. It runs the real commands, genstream, replay and score.
func TestColdStart(t *testing.T) {
	if testing.Short() {
		t.Skip("20 days of 2,000 customers: not with -short")
	}
	for _, seed := range []string{"1"} {
		t.Run("seed "+seed, func(t *testing.T) {
			dir := t.TempDir()
			p := func(name string) string { return filepath.Join(dir, name) }
			for _, args := range [][]string{
				{"genstream", "--seed", seed, "--customers", "2000", "--days", "20", "--families", "none", "--out", p("s.jsonl")},
				{"replay", "--in", p("s.jsonl"), "--out", p("d.jsonl"), "--alerts", p("a.jsonl")},
			} {
				if code, _, errs := runKabuto(t, args...); code != 0 {
					t.Fatalf("%v: exit %d: %s", args, code, errs)
				}
			}
			code, out, errs := runKabuto(t, "score", "--in", p("s.jsonl"), "--decisions", p("d.jsonl"), "--alerts", p("a.jsonl"), "--json")
			if code != 0 {
				t.Fatalf("score: exit %d: %s", code, errs)
			}
			var tab struct {
				Halts  []harm `json:"non_target_halts"`
				Frozen []harm `json:"legit_frozen_accounts"`
				Held   int    `json:"legit_actions_held_or_denied"`
				Legit  int    `json:"legit_actions"`
			}
			if err := json.Unmarshal([]byte(out), &tab); err != nil {
				t.Fatal(err)
			}
			if len(tab.Halts) > 0 || len(tab.Frozen) > 0 {
				t.Errorf("from a cold start, %d legitimate symbols halted (%s) and %d legitimate accounts frozen (%s); %d of %d legitimate actions held or denied",
					len(tab.Halts), byKind(tab.Halts), len(tab.Frozen), byKind(tab.Frozen), tab.Held, tab.Legit)
				if b, err := os.ReadFile(p("a.jsonl")); err == nil {
					t.Logf("first alerts acted on:\n%s", firstActed(string(b), 5))
				}
			}
		})
	}
}

type harm struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// byKind counts harms by the kind of alert that caused them.
func byKind(hs []harm) string {
	m := map[string]int{}
	for _, h := range hs {
		m[h.Kind]++
	}
	var parts []string
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// firstActed returns the first n alerts that halt or freeze.
func firstActed(alerts string, n int) string {
	var out []string
	for _, l := range strings.Split(alerts, "\n") {
		if strings.Contains(l, `"action":"halt_buys"`) || strings.Contains(l, `"action":"freeze_accounts"`) {
			out = append(out, l)
			if len(out) == n {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
