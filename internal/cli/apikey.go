package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/server"
	"github.com/kabuto-sec/kabuto/internal/store"
)

func openNoMigrate(ctx context.Context, c *common) (*store.DB, error) {
	if err := checkDB(c.db); err != nil {
		return nil, err
	}
	return store.Open(ctx, c.db, c.data)
}

// checkDB refuses a --db URL of a database Kabuto does not run on, by its
// scheme alone (the rest may hold a password), instead of taking it for
// a SQLite file name.
func checkDB(dsn string) error {
	scheme, _, ok := strings.Cut(dsn, "://")
	if !ok {
		return nil // a SQLite file path
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql", "sqlite":
		return nil
	}
	return usageError{fmt.Errorf("--db: unsupported database %q: Kabuto runs on PostgreSQL (--db postgres://user@host/db) or SQLite (--db sqlite://path/to/file.db, a file path, or --data DIR)", scheme)}
}

func runAPIKey(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("apikey", flag.ContinueOnError)
	var c common
	c.register(fs, "./data")
	name := fs.String("create", "", "create a key with this name and print its secret (shown once)")
	scopes := fs.String("scopes", "broker,events", "scopes of a new key: broker, events, admin, metrics (comma-separated)")
	revoke := fs.String("revoke", "", "revoke the key with this id (see --list)")
	list := fs.Bool("list", false, "list the keys: id, name, scopes, created, last used, revoked (never a secret)")
	if err := parse(fs, env, args, "List, create or revoke API keys for the brokerage's systems."); err != nil {
		return err
	}
	given := 0
	for _, b := range []bool{*name != "", *revoke != "", *list} {
		if b {
			given++
		}
	}
	if given != 1 {
		return usageError{fmt.Errorf("give one of --list, --create NAME or --revoke ID")}
	}
	var sc []string
	for _, s := range strings.Split(*scopes, ",") {
		s = strings.TrimSpace(s)
		switch s {
		case apikey.ScopeBroker, apikey.ScopeEvents, apikey.ScopeAdmin, server.ScopeMetrics:
			sc = append(sc, s)
		default:
			return usageError{fmt.Errorf("--scopes: unknown scope %q (want broker, events, admin or metrics)", s)}
		}
	}
	db, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	keys := apikey.New(db)
	if *list {
		ks, err := keys.List(ctx)
		if err != nil {
			return err
		}
		writeKeys(env.Stdout, ks)
		return nil
	}
	if *revoke != "" {
		if err := keys.Revoke(ctx, *revoke, env.Now()); errors.Is(err, apikey.ErrUnknown) {
			return fmt.Errorf("--revoke %s: no API key has this id (see kabuto apikey --list)", *revoke)
		} else if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "revoked %s\n", *revoke)
		return nil
	}
	secret, k, err := keys.Create(ctx, *name, sc, env.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "id:     %s\nname:   %s\nscopes: %s\nsecret: %s\n(the secret is shown only now; send it as Authorization: Bearer <secret>)\n", k.ID, k.Name, strings.Join(k.Scopes, " "), secret)
	return nil
}

// writeKeys writes keys as a table: what --revoke needs, and no secret.
func writeKeys(w io.Writer, ks []apikey.Key) {
	if len(ks) == 0 {
		fmt.Fprintln(w, "no API keys (create one with kabuto apikey --create NAME)")
		return
	}
	when := func(t time.Time, zero string) string {
		if t.IsZero() {
			return zero
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tLAST USED\tREVOKED")
	for _, k := range ks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), when(k.Created, "-"), when(k.LastUsed, "never"), when(k.Revoked, "-"))
	}
	tw.Flush()
}
