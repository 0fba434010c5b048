package cli

import (
	"context"
	"errors"
	"flag"
)

func runSimulate(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	if err := parse(fs, env, args, "Replay the 2025 campaign against Kabuto and score every defence."); err != nil {
		return err
	}
	return errors.New("not built yet")
}
