package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kabuto-sec/kabuto/internal/streamgen"
)

func runScore(_ context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	in := fs.String("in", "", "the generated stream (kabuto genstream --out)")
	labels := fs.String("labels", "", "its labels (default: the stream's name with .labels.jsonl)")
	decisions := fs.String("decisions", "", "the decisions a replay wrote (kabuto replay --out)")
	alerts := fs.String("alerts", "", "the alerts a replay wrote (kabuto replay --alerts; optional, but without them halts and freezes are not scored)")
	asJSON := fs.Bool("json", false, "print the table as JSON")
	if err := parse(fs, env, args, "Score a replay against a generated stream's ground truth: fraudulent sell, buy and withdrawal value prevented per family and pooled, legitimate sessions challenged, legitimate actions held or denied, symbols halted that were not targets, legitimate accounts frozen."); err != nil {
		return err
	}
	if *in == "" || *decisions == "" {
		return usageError{fmt.Errorf("give --in STREAM and --decisions FILE (and --alerts FILE)")}
	}
	if *labels == "" {
		*labels = trimExt(*in) + ".labels.jsonl"
	}
	lf, err := os.Open(*labels)
	if err != nil {
		return err
	}
	defer lf.Close()
	truth, err := streamgen.ReadLabels(lf)
	if err != nil {
		return fmt.Errorf("%s: %w", *labels, err)
	}
	sf, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer sf.Close()
	df, err := os.Open(*decisions)
	if err != nil {
		return err
	}
	defer df.Close()
	var ar io.Reader
	if *alerts != "" {
		af, err := os.Open(*alerts)
		if err != nil {
			return err
		}
		defer af.Close()
		ar = af
	}
	t, err := streamgen.Score(sf, truth, df, ar)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(t)
	}
	t.Format(env.Stdout)
	return nil
}
