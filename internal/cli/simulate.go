package cli

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/kabuto-sec/kabuto/internal/sim"
)

func runSimulate(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	scenario := fs.String("scenario", "campaign-2025", "attack scenario: campaign-2025 (the 2025 campaign as played) or adaptive (the same accesses; attackers who know the policy in force rehearse against the real guard and watchtower, then play the strategy that got most through; a few minutes)")
	seed := fs.Uint64("seed", 1, "seed of everything: market, customers, attackers; the same seed gives the same scorecard")
	customers := fs.Int("customers", 20000, "customers in the book (up to 1,000,000 and more)")
	enrolment := fs.String("enrolment", "2025-04", "authenticator mix: 2025-04 (few passkeys, most on email or SMS codes) or 2026 (most on passkeys)")
	sessions := fs.Int("sessions", 0, "legitimate customers who sign in on the simulated day (default: 15% of the book, at most 4,000)")
	only := fs.String("only", "", "comma-separated variants to run (all_on, all_off, no_passkeys, no_guard, no_surveillance, no_halts); default all")
	workers := fs.Int("workers", 2, "variants run at once")
	report := fs.String("report", "", "write the scorecard as JSON to this file")
	html := fs.String("html", "", "write an HTML report with charts to this file")
	events := fs.String("events", "", "write the all-on run's stream (spec format, JSON Lines) to this file, for 'kabuto replay'")
	labels := fs.String("labels", "", "where the ground truth of --events goes (default: FILE with .labels.jsonl)")
	target := fs.String("target", "", "drive a running Kabuto over HTTP at this base URL instead of an in-process brokerage; several nodes of a cluster as URL,URL,URL (each customer sticks to one, moving on if it dies)")
	apiKey := fs.String("api-key", "", "API key for --target (scopes broker and events)")
	var c common
	fs.StringVar(&c.logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	if err := parse(fs, env, args, "Replay the 2025 campaign against Kabuto and score every defence: the FSA's table with the defences off\nand on, prevented value, time to halt, legitimate friction, and an ablation of each layer."); err != nil {
		return err
	}
	log, err := c.logger(env)
	if err != nil {
		return err
	}
	mix, err := sim.EnrolmentByName(*enrolment)
	if err != nil {
		return usageError{err}
	}
	cfg := sim.Config{Scenario: *scenario, Seed: *seed, Customers: *customers, Enrolment: mix, Sessions: *sessions, Workers: *workers,
		Target: strings.TrimRight(*target, "/"), APIKey: *apiKey, Log: log}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	if cfg.Target != "" && cfg.APIKey == "" {
		return usageError{fmt.Errorf("--target needs --api-key (or KABUTO_API_KEY)")}
	}
	var closers []func() error
	defer func() {
		for _, f := range closers {
			f()
		}
	}()
	create := func(path string) (*os.File, error) {
		f, err := os.Create(path)
		if err == nil {
			closers = append(closers, f.Close)
		}
		return f, err
	}
	if *events != "" {
		ef, err := create(*events)
		if err != nil {
			return err
		}
		lp := *labels
		if lp == "" {
			lp = strings.TrimSuffix(strings.TrimSuffix(*events, ".jsonl"), ".ndjson") + ".labels.jsonl"
		}
		lf, err := create(lp)
		if err != nil {
			return err
		}
		cfg.Events, cfg.Labels = ef, lf
	}
	var bar *progressbar.ProgressBar
	if isTerminal(env.Stderr) {
		// Steps are customers' and attackers' sessions played, one per
		// variant, and the market's history; the estimate is the bar's
		// own (see eta), not progressbar's, which swings with the steps'
		// uneven costs.
		bar = progressbar.NewOptions(100, progressbar.OptionSetWriter(env.Stderr), progressbar.OptionSetDescription("steps"),
			progressbar.OptionShowCount(), progressbar.OptionSetItsString("steps"), progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(250*time.Millisecond), progressbar.OptionSetPredictTime(false))
		var est eta
		var mu sync.Mutex
		cfg.Progress = func(done, total int) {
			mu.Lock()
			defer mu.Unlock()
			bar.ChangeMax(total)
			bar.Describe(est.update(env.Now(), done, total))
			bar.Set(done)
		}
	}
	rep, err := sim.Run(ctx, cfg)
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return err
	}
	out := bufio.NewWriter(env.Stdout)
	rep.Format(out)
	if err := out.Flush(); err != nil {
		return err
	}
	if *report != "" {
		f, err := create(*report)
		if err != nil {
			return err
		}
		if err := rep.WriteJSON(f); err != nil {
			return err
		}
	}
	if *html != "" {
		f, err := create(*html)
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		if err := rep.WriteHTML(w); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	for _, f := range closers {
		if err := f(); err != nil {
			return err
		}
	}
	closers = nil
	return nil
}

// eta is the simulation's remaining time as the progress bar shows it:
// the average rate since the first step, smoothed, and shown rounded (to
// 10 s under two minutes, to the minute above), so it settles instead of
// swinging with the uneven cost of the steps. It says nothing for the
// first few seconds and the first 2% of the steps.
type eta struct {
	start    time.Time
	startN   int
	smoothed float64 // seconds
	shown    string
}

func (e *eta) update(now time.Time, done, total int) string {
	if e.start.IsZero() {
		e.start, e.startN = now, done
	}
	el := now.Sub(e.start).Seconds()
	n := done - e.startN
	if el < 3 || n <= 0 || done*50 < total {
		return "steps · estimating the time left"
	}
	left := float64(total-done) * el / float64(n)
	if e.smoothed == 0 {
		e.smoothed = left
	} else {
		// A fifth of the way to the new estimate at each update.
		e.smoothed += (left - e.smoothed) / 5
	}
	s := e.smoothed
	switch {
	case s < 10:
		e.shown = "steps · a few seconds left"
	case s < 120:
		e.shown = fmt.Sprintf("steps · about %d s left", int(math.Ceil(s/10))*10)
	default:
		e.shown = fmt.Sprintf("steps · about %d min left", int(math.Round(s/60)))
	}
	return e.shown
}
