package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

func runReplay(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	in := fs.String("in", "", "stream to replay, JSON Lines of spec/events.md (- for standard input)")
	out := fs.String("out", "", "where to write the decisions, JSON Lines (- for standard output)")
	alerts := fs.String("alerts", "", "where to write the surveillance alerts, JSON Lines (optional)")
	policy := fs.String("policy", "", "policy file (default: the built-in policy)")
	shadow := fs.String("shadow", "", "a second policy to run in shadow: its decisions are counted, not enforced")
	halt := fs.Int("halt-score", surveil.DefaultConfig().HaltScore, "alerts at or above this score halt buying of the instrument (0: alert only)")
	freeze := fs.Int("freeze-score", surveil.DefaultConfig().FreezeScore, "alerts at or above this score freeze the accounts concerned (0: never)")
	hold := fs.Duration("hold-proceeds", surveil.DefaultConfig().HoldProceeds, "how long proceeds of flagged trades are held")
	learn := fs.String("learn", "", "history to learn the customers' and instruments' profiles from before replaying (spec records; learnt, not acted on: no decisions, alerts, halts or freezes from it)")
	parseOnly := fs.Bool("parse-only", false, "only read and validate the stream, and report how fast (the baseline of replay's throughput)")
	if err := parse(fs, env, args, "Backtest a policy over a recorded stream, in stream time, exactly as the live guard would decide it."); err != nil {
		return err
	}
	if *in == "" || (*out == "" && !*parseOnly) {
		return usageError{fmt.Errorf("give --in FILE and --out FILE (- for standard input and output)")}
	}
	r, closeIn, err := openIn(*in)
	if err != nil {
		return err
	}
	defer closeIn()
	if *parseOnly {
		start := env.Now()
		n, err := pipeline.ParseOnly(r)
		if err != nil {
			return fmt.Errorf("%s: %w", *in, err)
		}
		el := env.Now().Sub(start)
		fmt.Fprintf(env.Stderr, "parsed %d records in %v, %.0f records/s\n", n, el.Round(time.Millisecond), float64(n)/el.Seconds())
		return nil
	}
	pol := risk.BuiltinPolicy()
	if *policy != "" {
		if pol, err = risk.LoadPolicyFile(*policy); err != nil {
			return err
		}
	}
	eng := risk.NewEngine(pol)
	if *shadow != "" {
		sp, err := risk.LoadPolicyFile(*shadow)
		if err != nil {
			return err
		}
		eng.SetShadow(sp)
	}
	cfg := surveil.DefaultConfig()
	cfg.HaltScore, cfg.FreezeScore = *halt, *freeze
	if *hold > 0 {
		cfg.HoldProceeds = *hold
	}
	sink := &pipeline.StreamSink{}
	w, closeOut, err := openOut(*out, env)
	if err != nil {
		return err
	}
	defer closeOut()
	sink.Decisions = bufio.NewWriterSize(w, 1<<16)
	if *alerts != "" {
		aw, closeA, err := openOut(*alerts, env)
		if err != nil {
			return err
		}
		defer closeA()
		sink.Alerts = bufio.NewWriterSize(aw, 1<<16)
	}
	p := pipeline.NewPipeline(eng, surveil.New(cfg), sink)
	if *learn != "" {
		if err := learnFrom(ctx, env, p, "--learn", *learn); err != nil {
			return err
		}
	}
	var bar *progressbar.ProgressBar
	if isTerminal(env.Stderr) {
		bar = progressbar.NewOptions(-1, progressbar.OptionSetWriter(env.Stderr), progressbar.OptionSetDescription("replaying"),
			progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	}
	last := 0
	sum, err := pipeline.Replay(ctx, r, p, sink, func(n int) {
		if bar != nil {
			bar.Add(n - last)
			last = n
		}
	})
	if bar != nil {
		bar.Finish()
	}
	if err != nil {
		return fmt.Errorf("%s: %w", *in, err)
	}
	fmt.Fprintf(env.Stderr, "policy   %s\n", pol.Version)
	sum.Format(env.Stderr)
	return nil
}

func openIn(path string) (io.Reader, func(), error) {
	if path == "-" {
		return os.Stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	return bufio.NewReaderSize(f, 1<<16), func() { f.Close() }, nil
}

func openOut(path string, env *Env) (io.Writer, func(), error) {
	if path == "-" {
		return env.Stdout, func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

func runPolicy(_ context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("policy", flag.ContinueOnError)
	check := fs.String("check", "", "check this policy file and report its rules, or the errors naming rule, line and field")
	vars := fs.Bool("variables", false, "list the variables a policy's rules may read, with their types")
	if err := parse(fs, env, args, "Print the built-in policy (a starting point for your own), or check a policy file."); err != nil {
		return err
	}
	if *vars {
		for _, v := range risk.Variables() {
			fmt.Fprintf(env.Stdout, "%-34s %-7s %s\n", v.Name, v.Type, v.Doc)
		}
		return nil
	}
	if *check == "" {
		env.Stdout.Write(risk.BuiltinPolicySource())
		return nil
	}
	p, err := risk.LoadPolicyFile(*check)
	var pes risk.PolicyErrors
	if errors.As(err, &pes) {
		for _, pe := range pes {
			fmt.Fprintln(env.Stderr, pe)
		}
		return fmt.Errorf("%s: %d errors", *check, len(pes))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "%s: policy %s, %d rules: valid\n", *check, p.Version, len(p.Rules))
	return nil
}
