package sim

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/population"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/session"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
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

// TestFrontDoor drives Kabuto's identity service as the simulated day
// does: a password and a relayed code sign in once, a code does not work
// twice, a guessing flood locks password sign-in until the owner unlocks
// it, a passkey registered through the service's ceremony signs in on the
// real origin and fails the origin check on the phishing one, and a
// step-up is bound to its action.
func TestFrontDoor(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	clk := &simClock{}
	clk.set(time.Date(2025, 4, 15, 7, 30, 0, 0, jst))
	fd, err := newFrontDoor(db, clk.Now, 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	var people []*population.Customer
	for i, fs := range [][]string{{event.FactorPassword, event.FactorSMSOTP}, {event.FactorPassword, event.FactorPasskey, event.FactorTOTP}} {
		id := fmt.Sprintf("C%07d", i+1)
		if _, err := db.ExecContext(ctx, `INSERT INTO accounts (id, name, locale, email, phone, email_hash, phone_hash, bank_label, bank_hash, opened, cash_jpy, created_us)
			VALUES ($1, 'Sato Hanako', 'ja', $2, '090-0000-0000', $3, 'p', 'Mizuho 001-1234567', 'b', '2020-01-01', 0, 0)`, id, id+"@example.jp", "e"+id); err != nil {
			t.Fatal(err)
		}
		people = append(people, &population.Customer{NewAccount: broker.NewAccount{ID: id, Factors: fs}})
	}
	if err := fd.enrol(ctx, people, func(c *population.Customer) []string { return c.Factors }); err != nil {
		t.Fatal(err)
	}
	clk.set(time.Date(2025, 4, 15, 10, 0, 0, 0, jst))
	home := session.Client{IP: "100.64.1.10", Network: "100.64.1.0/24", ASN: 2516, Country: "JP", UA: "Mozilla/5.0", Device: "d1"}
	const a, b = "C0000001", "C0000002"

	// Password and code; the code is relayed once and refused after.
	if code, err := fd.checkPassword(ctx, a, fd.password(a), home); err != nil || code != "" {
		t.Fatalf("right password: %q, %v", code, err)
	}
	f, err := fd.sendCode(ctx, a, "d1", home)
	if err != nil || f != event.FactorEmailOTP {
		t.Fatalf("sendCode: %q, %v", f, err)
	}
	shown, err := fd.code(ctx, a, f)
	if err != nil || len(shown) != 6 {
		t.Fatalf("the customer's mailbox: %q, %v", shown, err)
	}
	clk.set(clk.Now().Add(15 * time.Second))
	for i, want := range []bool{true, false} {
		if ok, err := fd.verifyCode(ctx, a, "d1", f, shown); err != nil || ok != want {
			t.Errorf("code use %d: %v, %v; want %v", i+1, ok, err, want)
		}
	}

	// A guessing flood locks password sign-in; the owner unlocks it.
	bot := session.Client{IP: "203.0.113.5", Network: "203.0.113.0/24", ASN: 14061, Country: "SG", UA: "bot", Device: "x"}
	var last string
	for i := range 6 {
		last, _ = fd.checkPassword(ctx, a, fmt.Sprint("guess-", i), bot)
	}
	if last != reason.AccountLocked {
		t.Fatalf("after 6 wrong passwords: %q", last)
	}
	if code, _ := fd.checkPassword(ctx, a, fd.password(a), home); code != reason.AccountLocked {
		t.Fatalf("the right password while locked: %q", code)
	}
	if ok, err := fd.unlock(ctx, a, "d1", home); err != nil || !ok {
		t.Fatalf("unlock: %v, %v", ok, err)
	}
	if code, _ := fd.checkPassword(ctx, a, fd.password(a), home); code != "" {
		t.Fatalf("after unlocking: %q", code)
	}

	// Passkeys: the real origin signs in, the phishing origin does not.
	if !fd.hasPasskey(b) || fd.hasPasskey(a) {
		t.Fatal("passkeys registered for the wrong customers")
	}
	for _, tc := range []struct {
		origin string
		want   bool
	}{{RealOrigin, true}, {PhishingOrigin, false}, {RealOrigin, true}} {
		ok, err := fd.signInWithPasskey(ctx, b, "d2", tc.origin)
		if err != nil || ok != tc.want {
			t.Errorf("passkey sign-in on %s: %v, %v; want %v", tc.origin, ok, err, tc.want)
		}
	}

	// Step-up: passkey on the real origin passes, on the kit's it fails;
	// a code passes only when someone types what the customer was shown.
	for _, tc := range []struct {
		name    string
		acct    string
		passkey bool
		origin  string
		typer   func(string) string
		want    string
	}{
		{"passkey, real origin", b, true, RealOrigin, nil, event.FactorPhishingResistant},
		{"passkey, phishing origin", b, true, PhishingOrigin, nil, ""},
		{"app code typed", b, false, RealOrigin, func(s string) string { return s }, event.FactorMFA},
		{"mail code typed", a, false, RealOrigin, func(s string) string { return s }, event.FactorMFA},
		{"nothing to type", a, false, RealOrigin, func(string) string { return "" }, ""},
		{"wrong code", a, false, RealOrigin, func(string) string { return "000000" }, ""},
	} {
		clk.set(clk.Now().Add(31 * time.Second)) // a new TOTP step each time
		got, err := fd.stepUp(ctx, tc.acct, "S-"+tc.acct, "withdrawal|"+tc.acct+"|100000", tc.passkey, tc.origin, home, tc.typer)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
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
			if ts.HaltedAt != "" {
				halted++ // a halt before the third hijacked buy is the watchtower at work too
			}
			if ts.HijackedBuys < 3 {
				continue
			}
			if ts.LatencyS == nil || *ts.LatencyS > 60 {
				t.Errorf("guard off: %s got %d hijacked buys and was not halted within 60 s of the third (%+v)", ts.Symbol, ts.HijackedBuys, ts)
			}
		}
		if halted == 0 {
			t.Error("guard off: the watchtower halted no target; it is not exercised")
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

// TestAcceptanceSeeds holds issue 6's halting and friction thresholds on
// the seeds (full book) where they once failed: a target whose hijacked
// buys came from one account selling under R1's threshold was never
// halted (seeds 2, 3 and 6), and the benign news spike was halted through
// customers sharing their mobile carrier's network (seed 3). With every
// defence on and with the guard off, every target with three hijacked buys
// is halted within 60 s of the third, the news issue never is, and with
// every defence on at most 0.1% of legitimate actions are held or denied.
func TestAcceptanceSeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("full-scenario runs")
	}
	for _, seed := range []uint64{2, 3, 6} {
		t.Run(fmt.Sprintf("seed_%d", seed), func(t *testing.T) {
			cfg := Config{Seed: seed, Log: quiet(), TempDir: t.TempDir(), Only: []string{"all_on", "no_guard"}}
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, run := range rep.Runs {
				for _, ts := range run.Targets {
					if ts.HijackedBuys >= 3 && (ts.LatencyS == nil || *ts.LatencyS > 60) {
						t.Errorf("%s: %s got %d hijacked buys (third at %s) and was not halted within 60 s", run.Variant, ts.Symbol, ts.HijackedBuys, ts.ThirdBuy)
					}
				}
				if run.NewsHalted {
					t.Errorf("%s: the benign news spike was halted", run.Variant)
				}
				if run.Variant == "all_on" && run.LegitBlockedRatio > 0.001 {
					t.Errorf("all_on: legitimate actions held or denied %s > 0.1%%", pct(run.LegitBlockedRatio))
				}
			}
		})
	}
}
