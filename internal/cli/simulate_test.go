package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimulateAgainstServer plays the day against a running demo over
// HTTP (--target): the simulator's own sign-in (Kabuto's identity service
// as a library, as an integrating brokerage would run it) reports
// sign-ins through POST /api/v1/events, and every brokerage action goes
// through the server's API, which asks its guard.
func TestSimulateAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("plays a whole simulated day over HTTP")
	}
	base := startDemo(t, "--customers", "1500", "--seed", "7")
	report := filepath.Join(t.TempDir(), "r.json")
	var out, errs bytes.Buffer
	args := []string{"simulate", "--target", base, "--api-key", DemoKey, "--customers", "1500", "--seed", "7", "--sessions", "120", "--report", report}
	if code := Run(context.Background(), args, &out, &errs); code != 0 {
		t.Fatalf("simulate --target: exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "FSA table") {
		t.Fatalf("no scorecard:\n%s", out.String())
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Mode       string  `json:"mode"`
		Legit      int     `json:"legit_sessions"`
		Attacks    int     `json:"attack_sessions"`
		StoppedPct float64 `json:"stopped_session_ratio"`
		BlockedPct float64 `json:"legit_blocked_action_ratio"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Legit == 0 || rep.Attacks == 0 || !strings.Contains(rep.Mode, "http") {
		t.Fatalf("report: %+v", rep)
	}
	// The server decided on the day: stuffing and relayed sessions were
	// stopped there, not in the simulator.
	if rep.StoppedPct < 0.5 {
		t.Errorf("only %.1f%% of attack sessions stopped by the server", 100*rep.StoppedPct)
	}
	// Step-ups the simulator's sign-in verified reach the server in
	// X-Kabuto-Step-Up, so customers who pass them are not blocked.
	if rep.BlockedPct > 0.01 {
		t.Errorf("%.2f%% of legitimate actions blocked over HTTP", 100*rep.BlockedPct)
	}
}
