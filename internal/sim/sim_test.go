package sim

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func small(t *testing.T) Config {
	return Config{Seed: 7, Customers: 1500, Sessions: 250, HistoryDays: 6, Log: quiet(), TempDir: t.TempDir()}
}

// TestDeterminism: the same seed gives a byte-identical JSON report.
func TestDeterminism(t *testing.T) {
	var out [2][]byte
	for i := range out {
		cfg := small(t)
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
	for _, k := range []string{`"prevented_sell_ratio"`, `"prevented_buy_ratio"`, `"stopped_session_ratio"`, `"legit_challenged_session_ratio"`,
		`"legit_blocked_action_ratio"`, `"halt_latency_seconds"`, `"fsa_table"`, `"ablation"`} {
		if !bytes.Contains(out[0], []byte(k)) {
			t.Errorf("report lacks the key %s", k)
		}
	}
}

// TestEventsReplay: the stream --events writes replays through
// pipeline.Replay (what kabuto replay runs) to the very decisions the
// simulation got, and every customer action has a label.
func TestEventsReplay(t *testing.T) {
	cfg := small(t)
	cfg.Only = []string{"all_on"}
	var events, labels bytes.Buffer
	cfg.Events, cfg.Labels = &events, &labels
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	for i := range rep.Decisions {
		want.Write(rep.Decisions[i].AppendJSON(nil))
		want.WriteByte('\n')
	}
	var got bytes.Buffer
	sink := &pipeline.StreamSink{Decisions: bufio.NewWriter(&got)}
	p := pipeline.NewPipeline(risk.NewEngine(risk.BuiltinPolicy()), surveil.New(surveil.DefaultConfig()), sink)
	sum, err := pipeline.Replay(context.Background(), bytes.NewReader(events.Bytes()), p, sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Actions == 0 || sum.Actions != len(rep.Decisions) {
		t.Fatalf("replay decided %d actions, the simulation %d", sum.Actions, len(rep.Decisions))
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		g, w := strings.Split(got.String(), "\n"), strings.Split(want.String(), "\n")
		for i := range min(len(g), len(w)) {
			if g[i] != w[i] {
				t.Fatalf("decision %d differs:\nreplay     %s\nsimulation %s", i+1, g[i], w[i])
			}
		}
	}
	if n := bytes.Count(labels.Bytes(), []byte("\n")); n != sum.Actions {
		t.Errorf("%d labels for %d customer actions", n, sum.Actions)
	}
	if !bytes.Contains(labels.Bytes(), []byte(`"truth":"attack"`)) || !bytes.Contains(labels.Bytes(), []byte(`"truth":"legit"`)) {
		t.Error("labels lack attack or legit truth")
	}
}

// TestFrontDoor: a relayed one-time code passes, a passkey assertion made
// on the phishing origin fails the origin check, one made on the real
// origin passes.
func TestFrontDoor(t *testing.T) {
	fd, err := NewFrontDoor(1)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 4, 15, 10, 0, 0, 0, jst)
	code := fd.Code("C0000001", now)
	if !fd.VerifyCode("C0000001", code, now.Add(15*time.Second)) {
		t.Error("a code relayed 15 s later was refused")
	}
	if fd.VerifyCode("C0000002", code, now) && fd.Code("C0000002", now) != code {
		t.Error("a code of another account passed")
	}
	if ok, err := fd.PasskeyAssertion("C0000001", RealOrigin, RPID); err != nil || !ok {
		t.Errorf("assertion on the real origin: ok %v, err %v", ok, err)
	}
	if ok, err := fd.PasskeyAssertion("C0000001", PhishingOrigin, PhishingRPID); err != nil || ok {
		t.Errorf("assertion on the phishing origin: ok %v, err %v", ok, err)
	}
	if ok, _ := fd.PasskeyAssertion("C0000001", PhishingOrigin, RPID); ok {
		t.Error("an assertion naming the phishing origin passed")
	}
}

// knownGaps are the acceptance thresholds the current code misses on the
// representative population (see the README's simulator section). The
// test reports them instead of failing; take an entry out when its gap
// closes, and the test then holds the line.
var knownGaps = map[string]bool{}

// TestAcceptance runs a reduced but representative book with every
// defence on and off and checks issue 6's thresholds.
func TestAcceptance(t *testing.T) {
	if testing.Short() {
		t.Skip("a full-scenario run")
	}
	cfg := Config{Seed: 1, Customers: 8000, Log: quiet(), TempDir: t.TempDir(), Only: []string{"all_on", "all_off", "no_guard"}}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.Format(&b)
	t.Log("\n" + b.String())
	a := rep.Acceptance
	check := func(name string, ok bool, what string) {
		switch {
		case ok && knownGaps[name]:
			t.Logf("%s now met: remove it from knownGaps", name)
		case !ok && knownGaps[name]:
			t.Logf("known gap: %s", what)
		case !ok:
			t.Errorf("missed: %s", what)
		}
	}
	check("sell_prevented_99", a.SellPrevented99, "fraudulent sell value prevented "+pct(rep.PreventedSellRatio)+" < 99%")
	check("buy_prevented_99_5", a.BuyPrevented995, "fraudulent buy value prevented "+pct(rep.PreventedBuyRatio)+" < 99.5%")
	check("halted_within_60s", a.HaltedWithin60s, "a target was not halted within 60 s of its third hijacked buy: "+strings.Join(a.Notes, "; "))
	check("legit_challenged_2pc", a.LegitChallenged2, "legitimate sessions challenged "+pct(rep.LegitChallengedSessionRatio)+" > 2%")
	check("legit_blocked_0_1pc", a.LegitBlocked01, "legitimate actions held or denied "+pct(rep.LegitBlockedActionRatio)+" > 0.1%")
	// With every defence on the guard may stop a wave before three hijacked
	// buys reach a target, and then no halt is needed. The watchtower on its
	// own (guard off) must still halt every target within 60 s of its third.
	for _, run := range rep.Runs {
		if run.Variant != "no_guard" {
			continue
		}
		halted := 0
		for _, ts := range run.Targets {
			if ts.HijackedBuys < 3 {
				continue
			}
			if ts.LatencyS == nil || *ts.LatencyS > 60 {
				t.Errorf("guard off: %s got %d hijacked buys and was not halted within 60 s of the third (%+v)", ts.Symbol, ts.HijackedBuys, ts)
			}
			halted++
		}
		if halted == 0 {
			t.Error("guard off: no target got three hijacked buys; the watchtower is not exercised")
		}
	}
	if rep.FSATable.DefencesOff == nil || rep.FSATable.DefencesOff.ValueSoldJPY == 0 || rep.FSATable.DefencesOff.UnauthorisedTrades == 0 {
		t.Error("with the defences off the attackers traded nothing: the scenario is not exercised")
	}
	for _, r := range rep.Runs {
		if r.Variant == "all_on" && r.NewsHalted {
			t.Error("the benign news spike was halted")
		}
	}
}
