package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/kabuto-sec/kabuto/internal/streamgen"
)

func runGenstream(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("genstream", flag.ContinueOnError)
	seed := fs.Uint64("seed", 1, "seed: the same seed and flags give a byte-identical stream and labels")
	customers := fs.Int("customers", 2000, "customers of the brokerage")
	days := fs.Int("days", 20, "trading days of ordinary history before the attack day")
	out := fs.String("out", "", "where to write the stream, JSON Lines of spec/events.md")
	history := fs.String("history", "", "write the days before the attack day here, and only the attack day to --out (for kabuto replay --learn HISTORY --in OUT)")
	labels := fs.String("labels", "", "where to write the ground truth, JSON Lines (default: the stream's name with .labels.jsonl)")
	families := fs.String("families", "all", "attack families of the attack day, comma-separated: all, none, or some of phish_relay,slow_target,fast_pump,cookie_replay,bank_takeover,foreign_pump,clean_history")
	noLook := fs.Bool("no-lookalikes", false, "leave out the legitimate look-alikes of the attacks")
	if err := parse(fs, env, args, "Generate an independent test stream: 20 days of ordinary customers, then an attack day with seven families of attack and their legitimate look-alikes; the ground truth goes to a separate labels file."); err != nil {
		return err
	}
	if *out == "" {
		return usageError{fmt.Errorf("give --out FILE")}
	}
	fams, err := streamgen.ParseFamilies(*families)
	if err != nil {
		return usageError{fmt.Errorf("--families: %w", err)}
	}
	if *customers < 20 {
		return usageError{fmt.Errorf("--customers %d: want at least 20", *customers)}
	}
	if *days < 1 || *days > 250 {
		return usageError{fmt.Errorf("--days %d: want 1 to 250", *days)}
	}
	if *labels == "" {
		*labels = trimExt(*out) + ".labels.jsonl"
	}
	if *labels == *out || *history == *out || *history != "" && *history == *labels {
		return usageError{fmt.Errorf("--out, --history and --labels must be three different files")}
	}
	sf, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer sf.Close()
	lf, err := os.Create(*labels)
	if err != nil {
		return err
	}
	defer lf.Close()
	o := streamgen.Outputs{Stream: sf, Labels: lf}
	if *history != "" {
		hf, err := os.Create(*history)
		if err != nil {
			return err
		}
		defer hf.Close()
		o.History = hf
	}
	bar := progressbar.NewOptions(*days+1, progressbar.OptionSetWriter(env.Stderr), progressbar.OptionSetDescription("generating days"),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetVisibility(isTerminal(env.Stderr)))
	start := env.Now()
	st, err := streamgen.Generate(ctx, streamgen.Config{Seed: *seed, Customers: *customers, Days: *days, Families: fams, NoLookalikes: *noLook},
		o, func(done, _ int) { bar.Set(done) })
	bar.Finish()
	if err != nil {
		return err
	}
	if h, ok := o.History.(*os.File); ok {
		if err := h.Close(); err != nil {
			return err
		}
	}
	if err := sf.Close(); err != nil {
		return err
	}
	if err := lf.Close(); err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "wrote %s: %d records (%d customer actions, %d fraudulent) from %s to the attack day %s, in %v\nlabels   %s\n",
		*out, st.Records, st.Actions, st.Fraudulent, st.First.Format("2006-01-02"), st.AttackDay.Format("2006-01-02"),
		env.Now().Sub(start).Round(time.Millisecond), *labels)
	return nil
}

// trimExt returns path without its .jsonl or .json extension.
func trimExt(path string) string {
	for _, ext := range []string{".jsonl", ".json"} {
		if len(path) > len(ext) && path[len(path)-len(ext):] == ext {
			return path[:len(path)-len(ext)]
		}
	}
	return path
}
