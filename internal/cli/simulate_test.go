package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestSimulateSeedsAgainstServer plays seeds 1 to 10 against a demo
// started with the same seed, on a small book so CI can afford it: no
// seed may crash the simulator (seed 7 once divided by a lot of 0).
func TestSimulateSeedsAgainstServer(t *testing.T) {
	if testing.Short() {
		t.Skip("plays ten small simulated days over HTTP")
	}
	for seed := 1; seed <= 10; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel() // mostly waiting for the server's disk
			s := fmt.Sprint(seed)
			base := startDemo(t, "--customers", "150", "--seed", s)
			var out, errs bytes.Buffer
			args := []string{"simulate", "--target", base, "--api-key", DemoKey, "--customers", "150", "--seed", s, "--sessions", "15"}
			if code := Run(context.Background(), args, &out, &errs); code != 0 {
				t.Fatalf("simulate --target --seed %s: exit %d: %s", s, code, errs.String())
			}
			if !strings.Contains(out.String(), "FSA table") {
				t.Fatalf("no scorecard:\n%s", out.String())
			}
		})
	}
}

// TestSimulateAgainstAnotherWorld points the simulator at a demo started
// with another seed or fewer customers: the holdings and issues it would
// trade are not the server's, so it says so and how to start the server,
// instead of trading issues the server does not list (or panicking on a
// holding it does not know, as seed 7 against the default demo did).
func TestSimulateAgainstAnotherWorld(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a demo")
	}
	base := startDemo(t, "--customers", "200", "--seed", "1")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"other seed", []string{"--seed", "7", "--customers", "200"}, []string{"seed 7", "kabuto demo --seed 7 --customers 200"}},
		{"more customers", []string{"--seed", "1", "--customers", "300"}, []string{"no account C0000300", "kabuto demo --seed 1 --customers 300"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			args := append([]string{"simulate", "--target", base, "--api-key", DemoKey, "--sessions", "20"}, tc.args...)
			if code := Run(context.Background(), args, &out, &errs); code == 0 {
				t.Fatalf("simulate against another world succeeded:\n%s", out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(errs.String(), w) {
					t.Errorf("message %q does not say %q", errs.String(), w)
				}
			}
		})
	}
}

// TestETASettles feeds the estimate steps of uneven cost (bursts of 40
// history steps, slow and fast stretches of sessions): the time left it
// shows, second by second, never jumps by more than a quarter once it
// shows one, and it shows units.
func TestETASettles(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const total = 6000
	var e eta
	done, prev := 0, 0.0
	for sec := 0; done < total; sec++ {
		switch {
		case sec%30 == 0:
			done += 40 // a burst of history
		case (sec/20)%2 == 0:
			done += 6 // slow sessions
		default:
			done += 14 // fast sessions
		}
		done = min(done, total)
		got := e.update(start.Add(time.Duration(sec)*time.Second), done, total)
		if !strings.HasPrefix(got, "steps · ") {
			t.Fatalf("%q", got)
		}
		if e.smoothed == 0 {
			continue
		}
		if prev > 60 && (e.smoothed > prev*1.25 || e.smoothed < prev*0.75) {
			t.Errorf("at %d s: estimate jumped from %.0f s to %.0f s", sec, prev, e.smoothed)
		}
		prev = e.smoothed
		if !strings.Contains(got, " s left") && !strings.Contains(got, " min left") && !strings.Contains(got, "seconds left") {
			t.Errorf("%q has no unit", got)
		}
	}
}
