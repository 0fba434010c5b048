package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"

	"github.com/kabuto-sec/kabuto/internal/audit"
)

func runAudit(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	var c common
	c.register(fs, "./data")
	list := fs.Int("list", 0, "also print the newest N entries")
	subject := fs.String("subject", "", "with --list: only entries about this account, symbol or key")
	if err := parse(fs, env, args, "Verify the audit trail's hash chain (exit 1 if any entry was altered, removed or inserted), and list entries."); err != nil {
		return err
	}
	if _, err := c.logger(env); err != nil {
		return err
	}
	db, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	l := audit.New(db)
	n, err := l.Verify(ctx)
	if err != nil {
		return fmt.Errorf("audit trail broken after %d good entries: %w", n, err)
	}
	fmt.Fprintf(env.Stdout, "audit trail intact: %d entries verified\n", n)
	if *list > 0 {
		es, err := l.List(ctx, *subject, *list)
		if err != nil {
			return err
		}
		for _, e := range es {
			d, _ := json.Marshal(e.Detail)
			fmt.Fprintf(env.Stdout, "%6d  %s  %-22s %-20s %-16s %s\n", e.Seq, e.Time.Format("2006-01-02 15:04:05"), e.Actor, e.Action, e.Subject, d)
		}
	}
	return nil
}
