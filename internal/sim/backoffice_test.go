package sim

import (
	"context"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/risk"
)

// TestBackOfficeFSAEqualsSimulator runs the day with the defences on and
// the back office behind them, and finds the FSA's table the back office
// computes from its cases and decisions equal to the simulator's own; the
// cases opened, the victims' accounts frozen and reopened by four eyes,
// and both compensations worked out; in the 2025 campaign and in the
// adaptive scenario. Against the built-in policy the adaptive attackers
// get nothing through on this small day, so that run plays a policy that
// refuses market orders only: the search finds limit orders, trades get
// through, and the back office's values are compared with the ledger's.
func TestBackOfficeFSAEqualsSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a simulation")
	}
	for _, scenario := range []string{"campaign-2025", "adaptive"} {
		t.Run(scenario, func(t *testing.T) { backOfficeFSA(t, scenario) })
	}
}

func backOfficeFSA(t *testing.T, scenario string) {
	cfg := small(t)
	cfg.Scenario, cfg.Only = scenario, []string{"all_on"}
	if scenario == "adaptive" {
		pol, err := risk.LoadPolicy("limit-only.yaml", []byte(limitOnly))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Policy = pol
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	bo := rep.BackOffice
	if bo == nil {
		t.Fatal("the report has no back_office")
	}
	t.Logf("back office: %+v; simulator's FSA: %+v", *bo, rep.FSATable.DefencesOn)
	if bo.FSA != rep.FSATable.DefencesOn || !bo.FSAMatches {
		t.Errorf("FSA table from the back office %+v, the simulator's %+v", bo.FSA, rep.FSATable.DefencesOn)
	}
	// The accesses come from the victims' reports, the trades and values
	// from the brokerage's ledger through the cases: the adaptive
	// attackers get trades through, so the values are compared too.
	if scenario == "adaptive" && bo.FSA.UnauthorisedTrades == 0 {
		t.Fatalf("no unauthorised trade in the adaptive day: the comparison of values proves nothing (%+v)", bo)
	}
	if bo.FSA.UnauthorisedAccesses == 0 || bo.Victims == 0 {
		t.Fatalf("no unauthorised access in the day: the comparison proves nothing (%+v)", bo)
	}
	if bo.CasesOpened < bo.Victims || bo.CasesByAlert == 0 {
		t.Errorf("cases: %d opened, %d from alerts, %d victims", bo.CasesOpened, bo.CasesByAlert, bo.Victims)
	}
	if bo.Reopened != bo.Victims || bo.AccountsFroze < bo.Victims || bo.StillFrozen != bo.AccountsFroze-bo.Reopened {
		t.Errorf("freezes: %d frozen, %d reopened, %d still frozen, %d victims", bo.AccountsFroze, bo.Reopened, bo.StillFrozen, bo.Victims)
	}
	if bo.FSA.ValueBoughtJPY > 0 && bo.CompensationHalfJPY <= 0 {
		t.Errorf("the attackers bought ¥%d and the 50%% method pays nothing", bo.FSA.ValueBoughtJPY)
	}
	if bo.FSA.UnauthorisedTrades > 0 && bo.CompensationRestoreJPY <= 0 && bo.CompensationHalfJPY <= 0 {
		t.Errorf("%d unauthorised trades and no compensation by either method", bo.FSA.UnauthorisedTrades)
	}
}
