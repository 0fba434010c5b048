package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGenstreamAndScoreMistakes: mistakes on the command line are usage
// errors (exit 2) that say what is wrong; bad lines of the files read are
// errors naming the file, line and field.
func TestGenstreamAndScoreMistakes(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	write := func(name, body string) string {
		if err := os.WriteFile(p(name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p(name)
	}
	stream := write("s.jsonl", `{"id":"1","type":"login","time":"2025-04-22T10:00:00+09:00","account":"a","session":"s","method":"password","factors":["password"],"ok":true}`+"\n")
	labels := write("s.labels.jsonl", `{"kind":"meta"}`+"\n"+`{"kind":"record","id":"1","family":"fast_pum"}`+"\n")
	goodLabels := write("g.labels.jsonl", `{"kind":"meta"}`+"\n"+`{"kind":"record","id":"1","family":"fast_pump"}`+"\n")
	decisions := write("d.jsonl", `{"event":"1","time":"2025-04-22T10:00:00+09:00","account":"a","action":"allow","score":0,"reasons":[],"policy":"p"}`+"\n")
	badDecisions := write("bd.jsonl", `{"event":"1","action":"allow","score":"zero"}`+"\n")
	badHistory := write("h.jsonl", `{"id":"1","type":"login","time":"2025-04-21T10:00:00+09:00","account":"a","session":"s","method":"password","factors":["password"],"ok":true}`+"\n"+
		`{"id":"2","type":"order","time":"2025-04-21T10:01:00+09:00","account":"a","session":"s","order_id":"o","symbol":"7203","side":"sideways","qty":100,"price_type":"market","account_kind":"cash","value_jpy":1}`+"\n")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"genstream without --out", []string{"genstream"}, 2, "give --out FILE"},
		{"genstream bad family", []string{"genstream", "--out", p("x.jsonl"), "--families", "fast_pump,slow_pump"}, 2, `--families: unknown family "slow_pump"`},
		{"genstream too few customers", []string{"genstream", "--out", p("x.jsonl"), "--customers", "3"}, 2, "--customers 3: want at least 20"},
		{"genstream no history", []string{"genstream", "--out", p("x.jsonl"), "--days", "0"}, 2, "--days 0: want 1 to 250"},
		{"genstream unknown flag", []string{"genstream", "--out", p("x.jsonl"), "--victims", "9"}, 2, "flag provided but not defined: -victims"},
		{"genstream labels over the stream", []string{"genstream", "--out", p("x.jsonl"), "--labels", p("x.jsonl")}, 2, "three different files"},
		{"score without decisions", []string{"score", "--in", stream}, 2, "give --in STREAM and --decisions FILE"},
		{"score bad label", []string{"score", "--in", stream, "--labels", labels, "--decisions", decisions}, 1, `s.labels.jsonl: line 2: field family: unknown family "fast_pum"`},
		{"score bad decision", []string{"score", "--in", stream, "--labels", goodLabels, "--decisions", badDecisions}, 1, "decisions: line 1: field score"},
		{"score missing file", []string{"score", "--in", stream, "--labels", goodLabels, "--decisions", p("nope.jsonl")}, 1, "nope.jsonl: no such file"},
		{"replay --learn bad line", []string{"replay", "--learn", badHistory, "--in", stream, "--out", p("o.jsonl")}, 1, "--learn " + badHistory + ": line 2: field side"},
		{"replay --learn missing file", []string{"replay", "--learn", p("nope.jsonl"), "--in", stream, "--out", p("o.jsonl")}, 1, "--learn: open"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errs := runKabuto(t, tt.args...)
			if code != tt.code || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d, %q; want exit %d saying %q", code, errs, tt.code, tt.want)
			}
		})
	}
}

// TestServeBootstrapBadLine: serve --bootstrap with a bad record stops
// before going live, naming the line and field.
func TestServeBootstrapBadLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "history.jsonl")
	os.WriteFile(bad, []byte(`{"id":"1","type":"withdrawal","time":"2025-04-21T10:00:00+09:00","account":"a","amount_jpy":-5,"bank_hash":"b"}`+"\n"), 0o644)
	code, _, errs := runKabuto(t, "serve", "--data", filepath.Join(dir, "data"), "--addr", "127.0.0.1:0", "--bootstrap", bad, "--warm-days", "0")
	if code != 1 || !strings.Contains(errs, "--bootstrap "+bad+": line 1: field amount_jpy") {
		t.Errorf("exit %d, %q", code, errs)
	}
}

// TestBench: genstream, replay --learn and score run end to end on a
// small stream, and score --json gives a row per family.
func TestBench(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	for _, args := range [][]string{
		{"genstream", "--seed", "3", "--customers", "200", "--days", "3", "--out", p("day.jsonl"), "--history", p("hist.jsonl")},
		{"replay", "--learn", p("hist.jsonl"), "--in", p("day.jsonl"), "--out", p("dec.jsonl"), "--alerts", p("alerts.jsonl")},
	} {
		if code, _, errs := runKabuto(t, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
	}
	code, out, errs := runKabuto(t, "score", "--in", p("day.jsonl"), "--decisions", p("dec.jsonl"), "--alerts", p("alerts.jsonl"), "--json")
	if code != 0 {
		t.Fatalf("score: exit %d: %s", code, errs)
	}
	var tab struct {
		Families []struct {
			Family   string  `json:"family"`
			SellJPY  int64   `json:"sell_jpy"`
			SellRate float64 `json:"sell_prevented"`
		} `json:"families"`
		LegitActions   int   `json:"legit_actions"`
		NonTargetHalts []any `json:"non_target_halts"`
		LegitFrozen    []any `json:"legit_frozen_accounts"`
	}
	if err := json.Unmarshal([]byte(out), &tab); err != nil {
		t.Fatal(err)
	}
	if len(tab.Families) != 7 || tab.LegitActions == 0 || tab.NonTargetHalts == nil || tab.LegitFrozen == nil {
		t.Fatalf("table %s", out)
	}
	for _, f := range tab.Families {
		if f.SellRate < 0 || f.SellRate > 1 {
			t.Errorf("%s: sell prevented %v", f.Family, f.SellRate)
		}
	}
	code, out, _ = runKabuto(t, "score", "--in", p("day.jsonl"), "--decisions", p("dec.jsonl"), "--alerts", p("alerts.jsonl"))
	for _, want := range []string{"phish_relay", "pooled", "legitimate sessions challenged", "symbols halted that were not targets", "legitimate accounts frozen"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("table does not say %q:\n%s", want, out)
		}
	}
}
