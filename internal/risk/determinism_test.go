package risk

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// replay feeds records to a fresh engine and returns the encoded decisions
// (and fired rules), one per line.
func replay(recs []*event.Record) []byte {
	e := NewEngine(nil)
	e.SetHalt("1300", true)
	e.SetHeat("1307", 70)
	var out []byte
	var res Result
	for _, r := range recs {
		if !r.Type.Action() {
			e.Observe(r)
			continue
		}
		e.DecideInto(r, &res, false)
		out = res.Decision.AppendJSON(out)
		for _, h := range res.Rules {
			out = append(out, ' ')
			out = append(out, h.ID...)
		}
		out = append(out, '\n')
	}
	return out
}

func TestDeterminism(t *testing.T) {
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
	a, b := replay(recs), replay(recs)
	if !bytes.Equal(a, b) {
		t.Fatal("two replays of the same stream gave different decisions")
	}
	if n := bytes.Count(a, []byte("\n")); n < 20000 {
		t.Fatalf("only %d decisions", n)
	}
	for _, want := range [][]byte{[]byte(`"action":"hold"`), []byte(`"action":"deny"`), []byte(`"factor":"phishing_resistant"`), []byte(`"action":"allow"`)} {
		if !bytes.Contains(a, want) {
			t.Errorf("the mix never produced %s", want)
		}
	}
}
