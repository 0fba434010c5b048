// Package sim is `kabuto simulate`: it replays the 2025 campaign of
// brokerage account takeovers against the real code and answers, with the
// regulator's own table, what would have happened had Kabuto been running.
//
// One run builds a brokerage (internal/broker on its own SQLite database,
// the simulated exchange of internal/market with TSE ticks, price limits
// and price impact), a population of customers (internal/population) and a
// guard made of the risk engine and the watchtower composed by
// internal/pipeline, exactly as `kabuto serve` wires them. It then plays a
// trading day in stream time: legitimate customers sign in and trade by
// their habits, a benign news spike lifts one thin issue, and the attackers
// of the scenario (credential stuffing from a leaked dump, real-time
// phishing relaying one-time codes, infostealer session-cookie replay,
// persistence, bank change and withdrawal, liquidate-and-pump waves against
// Japanese small caps and Hong Kong and Shanghai names, the ring's
// pre-positioning and dump) act through the brokerage's own API. Sign-in
// and step-up go through Kabuto's own front door, internal/identity, on
// the run's database: passwords with its lockout and throttles, one-time
// codes it sends through the notification outbox (the customers read them
// in their mailbox), TOTP apps, and passkeys that the customers' software
// authenticators (internal/softkey) register and use through its WebAuthn
// ceremonies with real keys, so a relayed code passes and an assertion
// made on a phishing origin fails the origin check.
//
// Run plays the same seed with every defence on, with every defence off,
// and with each layer off in turn (passkeys, guard, surveillance, halts),
// and scores the runs into a Report: the FSA's table, prevented value,
// stopped sessions, time to halt, legitimate friction and the ablation.
// The same seed gives a byte-identical report.
package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/population"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// Layers says which defences are on.
type Layers struct {
	// Passkeys: Kabuto's front door. Customers with a passkey sign in with
	// it only, every password sign-in needs a one-time code, a challenged
	// sign-in follows the portal's rule (identity.LoginChallenge), and a
	// phishing-resistant step-up needs a WebAuthn assertion. Off: the
	// brokerage's 2025 front door: everyone is on passwords, a code is
	// asked only of customers who turned it on, and codes satisfy every
	// step-up.
	Passkeys bool `json:"passkeys"`
	// Guard: the risk engine decides every action. Off: allow-all.
	Guard bool `json:"guard"`
	// Surveillance: the watchtower sees the stream, raises alerts and feeds
	// heat to the guard. Off: no alerts.
	Surveillance bool `json:"surveillance"`
	// Halts: an alert's halt_buys is enforced. Off: alerts are raised but
	// buying is never halted.
	Halts bool `json:"halts"`
}

// AllOn has every defence on.
var AllOn = Layers{Passkeys: true, Guard: true, Surveillance: true, Halts: true}

// Variant is one run of the scenario with some layers off.
type Variant struct {
	Name   string `json:"name"`
	Layers Layers `json:"layers"`
}

// Variants returns the runs of a full scorecard: all on, all off, then each
// layer off in turn.
func Variants() []Variant {
	return []Variant{
		{"all_on", AllOn},
		{"all_off", Layers{}},
		{"no_passkeys", Layers{Passkeys: false, Guard: true, Surveillance: true, Halts: true}},
		{"no_guard", Layers{Passkeys: true, Guard: false, Surveillance: true, Halts: true}},
		{"no_surveillance", Layers{Passkeys: true, Guard: true, Surveillance: false, Halts: true}},
		{"no_halts", Layers{Passkeys: true, Guard: true, Surveillance: true, Halts: false}},
	}
}

// Config configures a simulation.
type Config struct {
	// Scenario names the attack scenario: "campaign-2025" (the 2025
	// campaign as it was played) or "adaptive" (its accesses in the hands
	// of attackers who search for the cheapest way past the policy in
	// force; see adaptive.go).
	Scenario string
	// Seed seeds everything: universe, market, population, attackers.
	Seed uint64
	// Customers is the size of the book (default 20,000).
	Customers int
	// Enrolment is the authenticator mix (default population.Enrolment202504).
	Enrolment population.Enrolment
	// Sessions is how many legitimate customers sign in on the simulated
	// day (0: 15% of the book, at most 4,000). They are sampled from the
	// whole book; the rest of the book does not act that day.
	Sessions int
	// HistoryDays is how many trading days of past activity of the acting
	// customers are fed to the guard before the day (default 20).
	HistoryDays int
	// Only runs just these variants (default: all of Variants()).
	Only []string
	// Workers runs that many variants at once (default 2).
	Workers int
	// Target, when set, drives a running Kabuto over HTTP instead of an
	// in-process brokerage: its base URL (http://127.0.0.1:8080). Only the
	// defences as deployed there are scored.
	Target string
	// APIKey authenticates to Target (scopes broker and events).
	APIKey string
	// Events and Labels, when set, receive the all-on run's stream in the
	// spec's format and its ground truth (JSON Lines, one label per
	// customer action).
	Events, Labels io.Writer
	// Progress, when set, is told of progress: steps done of total.
	Progress func(done, total int)
	// Log receives diagnostics (default slog.Default()).
	Log *slog.Logger
	// TempDir holds the runs' databases (default os.TempDir()).
	TempDir string
	// Policy is the risk policy in force (default risk.BuiltinPolicy()).
	Policy *risk.Policy
	// Watch is the watchtower's configuration (default
	// surveil.DefaultConfig()); the halts layer off still sets its
	// HaltScore to 0.
	Watch *surveil.Config
	// Clock is the wall clock: of a run against a server (whose records
	// the server stamps on its own clock) and of Report.Elapsed (default
	// clock.Mono).
	Clock clock.Clock
	// Advance, in a run against servers (Target), makes the simulated
	// day the servers' time: it is told the simulated time before each
	// step of the day and at each simulated minute, and the records the
	// simulator stamps carry that time, not the wall clock. A test whose
	// servers keep their clock on it and tick their market from it plays
	// the same day, with the same times and bars, on every run, however
	// fast the servers answer. An error ends the run.
	Advance func(ctx context.Context, t time.Time) error
}

// Scenarios are the attack scenarios Run knows.
var Scenarios = []string{"campaign-2025", "adaptive"}

func (c *Config) policy() *risk.Policy {
	if c.Policy != nil {
		return c.Policy
	}
	return risk.BuiltinPolicy()
}

func (c *Config) watch() surveil.Config {
	if c.Watch != nil {
		return *c.Watch
	}
	return surveil.DefaultConfig()
}

func (c *Config) defaults() error {
	if c.Scenario == "" {
		c.Scenario = "campaign-2025"
	}
	if !slices.Contains(Scenarios, c.Scenario) {
		return fmt.Errorf("unknown scenario %q (known: %s)", c.Scenario, strings.Join(Scenarios, ", "))
	}
	if c.Scenario == "adaptive" && c.Target != "" {
		return fmt.Errorf("scenario adaptive rehearses in process and cannot drive --target")
	}
	if c.Customers == 0 {
		c.Customers = 20000
	}
	if c.Customers < 100 || c.Customers > 5_000_000 {
		return fmt.Errorf("customers %d: want 100 to 5,000,000", c.Customers)
	}
	if c.Enrolment.Name == "" {
		c.Enrolment = population.Enrolment202504
	}
	if c.Sessions == 0 {
		c.Sessions = min(c.Customers*15/100, 4000)
	}
	c.Sessions = min(c.Sessions, c.Customers/2)
	if c.HistoryDays == 0 {
		c.HistoryDays = 20
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = clock.Mono{}
	}
	return nil
}

// EnrolmentByName returns the authenticator mix called name: "2025-04" or "2026".
func EnrolmentByName(name string) (population.Enrolment, error) {
	switch name {
	case population.Enrolment202504.Name:
		return population.Enrolment202504, nil
	case population.Enrolment2026.Name:
		return population.Enrolment2026, nil
	}
	return population.Enrolment{}, fmt.Errorf("enrolment %q: want 2025-04 or 2026", name)
}

// Run plays the scenario in every selected variant and scores it.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	start := cfg.Clock.Now()
	w, err := buildWorld(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Target != "" {
		res, err := runHTTP(ctx, &cfg, w)
		if err != nil {
			return nil, err
		}
		rep := score(&cfg, w, []*runResult{res})
		rep.Elapsed = cfg.Clock.Now().Sub(start)
		return rep, nil
	}
	vs := Variants()
	if len(cfg.Only) > 0 {
		var keep []Variant
		for _, v := range vs {
			for _, o := range cfg.Only {
				if v.Name == o {
					keep = append(keep, v)
				}
			}
		}
		if len(keep) == 0 {
			return nil, fmt.Errorf("no variant among %v", cfg.Only)
		}
		vs = keep
	}
	prog := &progress{fn: cfg.Progress, total: len(vs) * w.stepsPerRun()}
	var adapt *adaptive
	if cfg.Scenario == "adaptive" {
		// The rehearsal's probe runs, then the day with each session on
		// its best strategy.
		prog.total += probeRounds * probesPerRound * w.stepsPerRun()
		if w, adapt, err = adaptWorld(ctx, &cfg, w, prog); err != nil {
			return nil, err
		}
	}
	results := make([]*runResult, len(vs))
	errs := make([]error, len(vs))
	sem := make(chan struct{}, cfg.Workers)
	var wg sync.WaitGroup
	for i, v := range vs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			var ev, lb io.Writer
			if v.Name == "all_on" {
				ev, lb = cfg.Events, cfg.Labels
			}
			results[i], errs[i] = runVariant(ctx, &cfg, w, v, ev, lb, prog)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rep := score(&cfg, w, results)
	if adapt != nil {
		var on *runResult
		for _, r := range results {
			if r.variant.Name == "all_on" {
				on = r
			}
		}
		rep.Evasions = adapt.evasionScores(on)
	}
	rep.Elapsed = cfg.Clock.Now().Sub(start)
	return rep, nil
}

// progress counts steps across concurrent runs.
type progress struct {
	mu          sync.Mutex
	fn          func(done, total int)
	done, total int
}

func (p *progress) add(n int) {
	if p == nil || p.fn == nil {
		return
	}
	p.mu.Lock()
	p.done += n
	d, t := p.done, p.total
	p.mu.Unlock()
	p.fn(min(d, t), t)
}
