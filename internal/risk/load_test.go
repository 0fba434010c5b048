package risk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

func TestBuiltinLoads(t *testing.T) {
	p := BuiltinPolicy()
	if p.Version == "" || len(p.Rules) < 20 {
		t.Fatalf("builtin: version %q, %d rules", p.Version, len(p.Rules))
	}
	if string(BuiltinPolicySource()) != string(p.Source()) {
		t.Error("BuiltinPolicySource differs from the loaded source")
	}
}

const head = "version: t1\nthresholds: {challenge: 30, challenge_phishing_resistant: 50, hold: 70, deny: 90}\nrules:\n"

func TestLoadPolicyErrors(t *testing.T) {
	tests := []struct {
		name, src          string
		line               int
		rule, field, inMsg string
	}{
		{"bad yaml", "version: [", 1, "", "", "malformed YAML"},
		{"not a mapping", "- 1\n", 1, "", "", "want a YAML mapping"},
		{"no version", "thresholds: {challenge: 1}\nrules: []\n", 1, "", "version", "missing"},
		{"unknown top field", "version: x\nthresholds: {}\nrulez: []\n", 3, "", "rulez", "unknown field"},
		{"thresholds order", "version: x\nthresholds: {challenge: 60, challenge_phishing_resistant: 60, hold: 50, deny: 90}\nrules: []\n", 2, "", "thresholds", "challenge <="},
		{"threshold missing", "version: x\nthresholds: {challenge: 60, hold: 70, deny: 90}\nrules: []\n", 2, "", "thresholds.challenge_phishing_resistant", "missing"},
		{"threshold range", "version: x\nthresholds: {challenge: 300}\nrules: []\n", 2, "", "thresholds.challenge", "from 1 to 101"},
		{"cel syntax", head + "  - id: r1\n    when: account.frozen &&\n    action: deny\n    reason: x\n", 5, "r1", "when", "CEL"},
		{"cel unknown var", head + "  - id: r1\n    reason: x\n    weight: 5\n    when: account.nope\n", 7, "r1", "when", "undeclared reference"},
		{"cel block line", head + "  - id: r1\n    reason: x\n    weight: 5\n    when: |\n      account.frozen &&\n      order.nope\n", 9, "r1", "when", "undeclared"},
		{"not bool", head + "  - id: r1\n    when: order.value_jpy + 1\n    weight: 5\n    reason: x\n", 5, "r1", "when", "want bool"},
		{"weight and action", head + "  - id: r1\n    when: account.frozen\n    weight: 5\n    action: deny\n    reason: x\n", 7, "r1", "action", "not both"},
		{"neither", head + "  - id: r1\n    when: account.frozen\n    reason: x\n", 4, "r1", "weight", "weight or an action"},
		{"bad action", head + "  - id: r1\n    when: account.frozen\n    action: block\n    reason: x\n", 6, "r1", "action", "want allow"},
		{"bad reason", head + "  - id: r1\n    when: account.frozen\n    weight: 1\n    reason: New Device\n", 7, "r1", "reason", "snake_case"},
		{"weight range", head + "  - id: r1\n    when: account.frozen\n    weight: 500\n    reason: x\n", 6, "r1", "weight", "-100 to 100"},
		{"bad applies", head + "  - id: r1\n    applies: [order, fill]\n    when: account.frozen\n    weight: 1\n    reason: x\n", 5, "r1", "applies", "not a customer action"},
		{"dup id", head + "  - {id: r1, when: account.frozen, weight: 1, reason: x}\n  - {id: r1, when: account.frozen, weight: 1, reason: x}\n", 5, "r1", "id", "duplicate"},
		{"missing id", head + "  - {when: account.frozen, weight: 1, reason: x}\n", 4, "", "id", "missing"},
		{"unknown rule field", head + "  - id: r1\n    when: account.frozen\n    weigth: 1\n    reason: x\n", 6, "r1", "weigth", "unknown field"},
		{"missing when", head + "  - {id: r2, weight: 1, reason: x}\n", 4, "r2", "when", "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadPolicy("p.yaml", []byte(tt.src))
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *PolicyError", err)
			}
			all := []*PolicyError{pe}
			var pes PolicyErrors
			if errors.As(err, &pes) {
				all = pes
			}
			found := false
			for _, pe := range all {
				found = found || pe.Line == tt.line && pe.Rule == tt.rule && pe.Field == tt.field && strings.Contains(pe.Msg, tt.inMsg)
			}
			if !found {
				t.Errorf("got %q, want an error on line %d rule %q field %q containing %q", err, tt.line, tt.rule, tt.field, tt.inMsg)
			}
			if !strings.HasPrefix(err.Error(), "p.yaml: ") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// TestLoadPolicyReportsAll gives policies with several mistakes: one
// check names every one of them (rule, line, field), and a threshold
// left out is named as missing, not as out of order.
func TestLoadPolicyReportsAll(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each error, in order
	}{
		{"thresholds missing and a bad rule", "version: x\nthresholds: {challenge: 30, hold: 70}\nrules:\n  - {id: r1, when: account.frozen, weight: 500, reason: x}\n",
			[]string{"line 2: field thresholds.challenge_phishing_resistant: missing", "line 2: field thresholds.deny: missing", "line 4: rule r1: field weight: want an integer from -100 to 100"}},
		{"three rules", head + "  - {id: r1, when: account.nope, weight: 5, reason: x}\n  - {id: r2, when: account.frozen, weight: 5, reason: Bad}\n  - {id: r3, when: account.frozen, reason: x}\n  - {id: r1, when: account.frozen, weight: 1, reason: x}\n",
			[]string{"line 4: rule r1: field when: CEL", "line 5: rule r2: field reason:", "line 6: rule r3: field weight: want a weight or an action", "line 7: rule r1: field id: duplicate rule id (first on line 4)"}},
		{"unknown fields", "version: x\nthresholds: {challenge: 30, challenge_phishing_resistant: 50, hold: 70, deny: 90, freeze: 95}\npolicy: y\nrules: []\n",
			[]string{"line 2: field thresholds.freeze: unknown threshold", "line 3: field policy: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadPolicy("p.yaml", []byte(tt.src))
			var pes PolicyErrors
			if !errors.As(err, &pes) {
				t.Fatalf("err = %v, want PolicyErrors", err)
			}
			if len(pes) != len(tt.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(pes), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(pes[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, pes[i].Error(), w)
				}
			}
			if strings.Contains(err.Error(), "challenge <=") {
				t.Errorf("a missing threshold reported as an ordering error: %v", err)
			}
		})
	}
}

func TestPolicyOutcomes(t *testing.T) {
	src := head + `
  - {id: w40, applies: [order], when: order.value_jpy >= 40, weight: 40, reason: w40}
  - {id: w25, applies: [order], when: order.value_jpy >= 25, weight: 25, reason: w25}
  - {id: w5, applies: [order], when: order.value_jpy == 31, weight: 5, reason: w5}
  - {id: neg, applies: [order], when: order.value_jpy == 26, weight: -10, reason: neg}
  - {id: d_hold, applies: [order], when: order.value_jpy == 7, action: hold, reason: held}
  - {id: d_allow, applies: [order], when: order.value_jpy == 41, action: allow, reason: override}
  - {id: pr, applies: [withdrawal], when: withdrawal.amount_jpy >= 30, weight: 30, reason: big}
`
	p, err := LoadPolicy("t", []byte("phishing_resistant_actions: [withdrawal]\n"+src))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		typ            event.Type
		value          int64
		action, factor string
		score          int
		reasons        string
	}{
		{event.TypeOrder, 1, "allow", "", 0, ""},
		{event.TypeOrder, 25, "allow", "", 25, "w25"},
		{event.TypeOrder, 26, "allow", "", 15, "w25"}, // negative weights are not reasons
		{event.TypeOrder, 31, "challenge", "mfa", 30, "w25,w5"},
		{event.TypeOrder, 40, "challenge", "phishing_resistant", 65, "w40,w25"},
		{event.TypeOrder, 7, "hold", "", 70, "held"}, // direct action raises the score to its threshold
		{event.TypeOrder, 41, "allow", "", 65, "w40,w25,override"},
		{event.TypeWithdrawal, 30, "challenge", "phishing_resistant", 30, "big"}, // pr action without passkey session
	}
	for _, tt := range tests {
		e := NewEngine(p)
		r := &event.Record{ID: "x", Type: tt.typ, Time: time.Unix(1e9, 0), Account: "A", Symbol: "S", Side: "buy", Qty: 1, ValueJPY: tt.value, AmountJPY: tt.value, BankHash: "b"}
		d := e.Decide(r).Decision
		if d.Action != tt.action || d.Factor != tt.factor || d.Score != tt.score || strings.Join(d.Reasons, ",") != tt.reasons || d.Policy != "t1" {
			t.Errorf("%s %d: got %+v, want %s %s %d %s", tt.typ, tt.value, d, tt.action, tt.factor, tt.score, tt.reasons)
		}
	}
}

func TestNotAnAction(t *testing.T) {
	e := NewEngine(nil)
	d := e.Decide(&event.Record{ID: "i", Type: event.TypeBar, Time: time.Unix(0, 0)}).Decision
	if d.Action != event.Deny || len(d.Reasons) != 1 || d.Reasons[0] != ReasonNotAnAction {
		t.Errorf("got %+v", d)
	}
}

func TestShadow(t *testing.T) {
	e := NewEngine(nil)
	sh, err := LoadPolicy("s", []byte(head+"  - {id: all, when: 'true', action: hold, reason: shadow_hold}\n"))
	if err != nil {
		t.Fatal(err)
	}
	e.SetShadow(sh)
	res := e.Decide(&event.Record{ID: "l", Type: event.TypeLogin, Time: time.Unix(1e9, 0), Account: "A", Device: "d", Method: "passkey", Factors: []string{"passkey"}, OK: true, Session: "s"})
	if res.Decision.Action != event.Allow || res.Shadow == nil || res.Shadow.Action != event.Hold || res.Shadow.Policy != "t1" || len(res.ShadowRules) != 1 {
		t.Fatalf("live %+v shadow %+v", res.Decision, res.Shadow)
	}
	e.SetShadow(nil)
	if res := e.Decide(&event.Record{ID: "l2", Type: event.TypeLogin, Time: time.Unix(1e9, 0), Account: "A", OK: true}); res.Shadow != nil {
		t.Error("shadow still set")
	}
}

func TestLists(t *testing.T) {
	l := NewLists()
	for _, tt := range []struct {
		kind  ListKind
		add   string
		probe string
		want  bool
	}{
		{ListIP, "198.51.100.0/24", "198.51.100.77", true},
		{ListIP, "2001:db8::/48", "2001:db8:0:1::5", true},
		{ListIP, "192.0.2.1", "192.0.2.1", true},
		{ListIP, "192.0.2.1", "192.0.2.2", false},
		{ListASN, "AS16509", "16509", true},
		{ListDevice, "dev-x", "dev-x", true},
		{ListInstrument, "9999", "9999", true},
	} {
		if _, err := l.Add("block", tt.kind, tt.add); err != nil {
			t.Fatal(err)
		}
		if got := l.Contains("block", tt.kind, tt.probe); got != tt.want {
			t.Errorf("%s %s contains %s = %v", tt.kind, tt.add, tt.probe, got)
		}
	}
	if _, err := l.Add("block", ListIP, "not-an-ip"); err == nil {
		t.Error("bad IP accepted")
	}
	if _, err := l.Add("block", "colour", "x"); err == nil {
		t.Error("bad kind accepted")
	}
	if ok, _ := l.Remove("block", ListIP, "198.51.100.0/24"); !ok || l.Contains("block", ListIP, "198.51.100.77") {
		t.Error("remove failed")
	}
	if !l.Contains(ListHosting, ListASN, "16509") || !l.Contains(ListResidential, ListASN, "2516") {
		t.Error("builtin ASN lists missing")
	}
	if n := len(l.Entries("block")); n != 5 {
		t.Errorf("entries = %d: %v", n, l.Entries("block"))
	}
}

func TestWatchPolicy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	write := func(src string, mod time.Time) {
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(path, mod, mod)
	}
	write(head+"  - {id: a, when: 'true', weight: 1, reason: a}\n", time.Unix(1000, 0))
	e := NewEngine(nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 10)
	w, err := WatchPolicy(ctx, path, time.Hour, e, func(err error) { errs <- err })
	if err != nil || e.Policy().Version != "t1" {
		t.Fatalf("first load: %v, version %q", err, e.Policy().Version)
	}
	write(strings.Replace(head, "t1", "t2", 1)+"  - {id: a, when: 'nope', weight: 1, reason: a}\n", time.Unix(2000, 0))
	if err := w.Check(); err == nil || e.Policy().Version != "t1" {
		t.Fatalf("invalid file: err %v, version %q (want the old policy kept)", err, e.Policy().Version)
	}
	write(strings.Replace(head, "t1", "t3", 1)+"  - {id: b, when: 'false', weight: 1, reason: b}\n", time.Unix(3000, 0))
	if err := w.Check(); err != nil || e.Policy().Version != "t3" {
		t.Fatalf("reload: %v, version %q", err, e.Policy().Version)
	}
}

func BenchmarkLoadBuiltin(b *testing.B) {
	for b.Loop() {
		if _, err := LoadPolicy("b", builtinSrc); err != nil {
			b.Fatal(err)
		}
	}
}
