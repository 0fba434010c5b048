package risk

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// Scenario files (testdata/scenarios/*.txt) are streams of records with
// the decisions expected for them. Line by line:
//
//	# comment                       ignored, as are blank lines
//	include setup.inc               reads another file of testdata/scenarios here
//	date 2025-04-10                 date for record times given as "09:00:05"
//	defaults {"account":"A1",...}   fields merged into every later record
//	{"type":"order",...}            a record: actions are decided, others observed;
//	                                "id" defaults to file:line, "time" may be "hh:mm[:ss]"
//	-> allow                        the previous action's decision: action, then for a
//	-> challenge mfa new_device     challenge the factor, then the reason codes
//	-> hold liquidate_concentrate,new_device   comma-separated in order (none: no reasons)
//	set halt SYMBOL on|off          engine.SetHalt
//	set heat SYMBOL N               engine.SetHeat
//	set frozen ACCOUNT on|off       engine.SetFrozen
//	list add|remove NAME KIND VALUE engine.Lists().Add/Remove
//
// An action without a "->" line is decided but not checked (history).
type scenario struct {
	name  string
	steps []step
}

type step struct {
	pos    string
	rec    *event.Record
	expect *expectation
	set    []string
}

type expectation struct {
	action, factor string
	reasons        []string
}

var clockRe = regexp.MustCompile(`^\d\d:\d\d(:\d\d(\.\d+)?)?$`)

func parseScenario(dir, file string) (*scenario, error) {
	sc := &scenario{name: file}
	var defaults map[string]any
	date := "2025-04-10"
	var parse func(file string, depth int) error
	parse = func(file string, depth int) error {
		if depth > 4 {
			return fmt.Errorf("%s: includes nested too deep", file)
		}
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return err
		}
		s := bufio.NewScanner(bytes.NewReader(data))
		s.Buffer(nil, 1<<20)
		n := 0
		for s.Scan() {
			n++
			line := strings.TrimSpace(s.Text())
			pos := fmt.Sprintf("%s:%d", file, n)
			switch {
			case line == "" || strings.HasPrefix(line, "#"):
			case strings.HasPrefix(line, "include "):
				if err := parse(strings.TrimSpace(line[8:]), depth+1); err != nil {
					return fmt.Errorf("%s: %w", pos, err)
				}
			case strings.HasPrefix(line, "date "):
				date = strings.TrimSpace(line[5:])
			case strings.HasPrefix(line, "defaults "):
				defaults = nil
				if err := json.Unmarshal([]byte(line[9:]), &defaults); err != nil {
					return fmt.Errorf("%s: defaults: %v", pos, err)
				}
			case strings.HasPrefix(line, "{"):
				var m map[string]any
				if err := json.Unmarshal([]byte(line), &m); err != nil {
					return fmt.Errorf("%s: %v", pos, err)
				}
				for k, v := range defaults {
					if _, ok := m[k]; !ok {
						m[k] = v
					}
				}
				if _, ok := m["id"]; !ok {
					m["id"] = pos
				}
				if t, ok := m["time"].(string); ok && clockRe.MatchString(t) {
					if len(t) == 5 {
						t += ":00"
					}
					m["time"] = date + "T" + t + "+09:00"
				}
				b, _ := json.Marshal(m)
				r, err := event.Decode(b)
				if err != nil {
					return fmt.Errorf("%s: %v", pos, err)
				}
				sc.steps = append(sc.steps, step{pos: pos, rec: r})
			case strings.HasPrefix(line, "->"):
				f := strings.Fields(line[2:])
				if len(sc.steps) == 0 || sc.steps[len(sc.steps)-1].rec == nil || !sc.steps[len(sc.steps)-1].rec.Type.Action() || len(f) == 0 {
					return fmt.Errorf("%s: -> must follow an action record and name an action", pos)
				}
				x := &expectation{action: f[0]}
				f = f[1:]
				if x.action == event.Challenge {
					if len(f) == 0 {
						return fmt.Errorf("%s: a challenge needs its factor", pos)
					}
					x.factor, f = f[0], f[1:]
				}
				if len(f) > 1 {
					return fmt.Errorf("%s: reasons are one comma-separated list", pos)
				}
				if len(f) == 1 {
					x.reasons = strings.Split(f[0], ",")
				}
				sc.steps[len(sc.steps)-1].expect = x
			case strings.HasPrefix(line, "set ") || strings.HasPrefix(line, "list "):
				sc.steps = append(sc.steps, step{pos: pos, set: strings.Fields(line)})
			default:
				return fmt.Errorf("%s: cannot read %q", pos, line)
			}
		}
		return s.Err()
	}
	return sc, parse(file, 0)
}

func (st step) apply(e *Engine) error {
	f := st.set
	on := func(s string) bool { return s == "on" || s == "true" }
	switch {
	case f[0] == "set" && len(f) == 4 && f[1] == "halt":
		e.SetHalt(f[2], on(f[3]))
	case f[0] == "set" && len(f) == 4 && f[1] == "frozen":
		e.SetFrozen(f[2], on(f[3]))
	case f[0] == "set" && len(f) == 4 && f[1] == "heat":
		var n int
		if _, err := fmt.Sscan(f[3], &n); err != nil {
			return err
		}
		e.SetHeat(f[2], n)
	case f[0] == "list" && len(f) == 5 && (f[1] == "add" || f[1] == "remove"):
		var err error
		if f[1] == "add" {
			_, err = e.Lists().Add(f[2], ListKind(f[3]), f[4])
		} else {
			_, err = e.Lists().Remove(f[2], ListKind(f[3]), f[4])
		}
		return err
	default:
		return fmt.Errorf("bad directive %q", strings.Join(f, " "))
	}
	return nil
}

// run feeds the scenario to e and returns the results of its actions.
func (sc *scenario) run(t testing.TB, e *Engine, check bool) (fired map[string]bool) {
	fired = map[string]bool{}
	for _, st := range sc.steps {
		if st.set != nil {
			if err := st.apply(e); err != nil {
				t.Fatalf("%s: %v", st.pos, err)
			}
			continue
		}
		if !st.rec.Type.Action() {
			e.Observe(st.rec)
			continue
		}
		res := e.Decide(st.rec)
		for _, h := range res.Rules {
			fired[h.ID] = true
		}
		if !check || st.expect == nil {
			continue
		}
		d, x := res.Decision, st.expect
		if d.Action != x.action || d.Factor != x.factor || !slices.Equal(d.Reasons, x.reasons) && !(len(d.Reasons) == 0 && len(x.reasons) == 0) {
			got := d.Action
			if d.Factor != "" {
				got += " " + d.Factor
			}
			if len(d.Reasons) > 0 {
				got += " " + strings.Join(d.Reasons, ",")
			}
			want := x.action
			if x.factor != "" {
				want += " " + x.factor
			}
			if len(x.reasons) > 0 {
				want += " " + strings.Join(x.reasons, ",")
			}
			fj, _ := json.Marshal(res.Features)
			t.Errorf("%s: %s %s\n  got:  -> %s (score %d)\n  want: -> %s\n  rules: %+v\n  features: %s", st.pos, st.rec.Type, st.rec.ID, got, d.Score, want, res.Rules, fj)
		}
	}
	return fired
}

func scenarioFiles(t testing.TB) []string {
	files, err := filepath.Glob(filepath.Join("testdata", "scenarios", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	return files
}

func TestScenarios(t *testing.T) {
	for _, path := range scenarioFiles(t) {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".txt"), func(t *testing.T) {
			sc, err := parseScenario(filepath.Dir(path), name)
			if err != nil {
				t.Fatal(err)
			}
			fired := sc.run(t, NewEngine(BuiltinPolicy()), true)
			// a scenario named after a built-in rule must make it fire
			id := strings.TrimSuffix(name, ".txt")
			if slices.ContainsFunc(BuiltinPolicy().Rules, func(r *Rule) bool { return r.ID == id }) && !fired[id] {
				t.Errorf("scenario %s never fires rule %s", name, id)
			}
		})
	}
}

// TestEveryBuiltinRuleHasAScenario keeps the scenarios in step with builtin.yaml.
func TestEveryBuiltinRuleHasAScenario(t *testing.T) {
	for _, r := range BuiltinPolicy().Rules {
		if _, err := os.Stat(filepath.Join("testdata", "scenarios", r.ID+".txt")); err != nil {
			t.Errorf("built-in rule %s has no scenario testdata/scenarios/%s.txt", r.ID, r.ID)
		}
	}
	for _, hn := range []string{"hn_traveller_abroad", "hn_new_phone_rebalance", "hn_day_trader", "hn_sell_all_withdraw"} {
		if _, err := os.Stat(filepath.Join("testdata", "scenarios", hn+".txt")); err != nil {
			t.Errorf("hard negative %s has no scenario", hn)
		}
	}
}
