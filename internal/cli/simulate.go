package cli

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/kabuto-sec/kabuto/internal/sim"
)

func runSimulate(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	scenario := fs.String("scenario", "campaign-2025", "attack scenario to replay (campaign-2025)")
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
	target := fs.String("target", "", "drive a running Kabuto over HTTP at this base URL instead of an in-process brokerage")
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
		bar = progressbar.NewOptions(100, progressbar.OptionSetWriter(env.Stderr), progressbar.OptionSetDescription("simulating"),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetPredictTime(true))
		cfg.Progress = func(done, total int) {
			bar.ChangeMax(total)
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
