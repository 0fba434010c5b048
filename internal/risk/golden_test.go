package risk

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/event"
)

var update = flag.Bool("update", false, "rewrite testdata/replay.golden from the engine as it is")

// everyVariable is a shadow policy with a rule reading each variable, so
// that Result.Features holds the value of every variable for every action.
func everyVariable(t testing.TB) *Policy {
	var src strings.Builder
	src.WriteString("version: every-variable\nthresholds: {challenge: 101, challenge_phishing_resistant: 101, hold: 101, deny: 101}\nrules:\n")
	for i, v := range variables {
		when := map[string]string{
			"bool":   "%[1]s || !%[1]s",
			"int":    "%[1]s >= 0 || %[1]s < 0",
			"double": "%[1]s >= 0.0 || %[1]s < 0.0",
			"string": "size(%[1]s) >= 0",
		}[v.Type]
		when = fmt.Sprintf(when, v.Name)
		fmt.Fprintf(&src, "  - id: v%d\n    when: %q\n    weight: 1\n    reason: v%d\n", i, when, i)
	}
	p, err := LoadPolicy("every-variable", []byte(src.String()))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// goldenReplay replays recs and returns, per action, the live decision,
// the rules that fired and the value of every variable, one line each.
func goldenReplay(t testing.TB, recs []*event.Record) []byte {
	e := NewEngine(nil)
	e.SetShadow(everyVariable(t))
	e.SetHalt("1300", true)
	e.SetHeat("1307", 70)
	var out []byte
	var res Result
	names := make([]string, 0, len(variables))
	for _, r := range recs {
		if !r.Type.Action() {
			e.Observe(r)
			continue
		}
		e.DecideInto(r, &res, true)
		out = res.Decision.AppendJSON(out)
		for _, h := range res.Rules {
			out = append(out, ' ')
			out = append(out, h.ID...)
		}
		names = names[:0]
		for k := range res.Features {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			out = append(out, ' ')
			out = append(out, k...)
			out = append(out, '=')
			switch v := res.Features[k].(type) {
			case float64:
				out = strconv.AppendFloat(out, v, 'g', 9, 64)
			default:
				out = fmt.Append(out, v)
			}
		}
		out = append(out, '\n')
	}
	return out
}

// TestReplayGolden catches drift: the decisions, fired rules and every
// feature of a replay of the mix and all scenarios must match the digest
// recorded in testdata/replay.golden. A change of the engine that is meant
// to change them rewrites it with -update (and the diff shows it); a
// refactoring must leave it as it is.
func TestReplayGolden(t *testing.T) {
	m := newMix(1, 2000)
	recs := append(m.reference(), m.actions(30000)...)
	for _, path := range scenarioFiles(t) {
		sc, err := parseScenario(filepath.Dir(path), filepath.Base(path))
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range sc.steps {
			if st.rec != nil {
				recs = append(recs, st.rec)
			}
		}
	}
	out := goldenReplay(t, recs)
	sum := sha256.Sum256(out)
	got := fmt.Sprintf("actions %d\nvariables %d\nsha256 %s\n", bytes.Count(out, []byte("\n")), len(variables), hex.EncodeToString(sum[:]))
	path := filepath.Join("testdata", "replay.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Errorf("the replay drifted from %s (rewrite it with go test -run TestReplayGolden -update only if the change is meant):\n got:\n%s want:\n%s", path, got, want)
	}
}
