package cli

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/server"
	"github.com/kabuto-sec/kabuto/internal/store"
)

func openNoMigrate(ctx context.Context, c *common) (*store.DB, error) {
	return store.Open(ctx, c.db, c.data)
}

func runAPIKey(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("apikey", flag.ContinueOnError)
	var c common
	c.register(fs, "./data")
	name := fs.String("create", "", "create a key with this name and print its secret (shown once)")
	scopes := fs.String("scopes", "broker,events", "scopes of a new key: broker, events, admin, metrics (comma-separated)")
	revoke := fs.String("revoke", "", "revoke the key with this id")
	if err := parse(fs, env, args, "Create or revoke API keys for the brokerage's systems."); err != nil {
		return err
	}
	if (*name == "") == (*revoke == "") {
		return usageError{fmt.Errorf("give one of --create NAME or --revoke ID")}
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
	if *revoke != "" {
		if err := keys.Revoke(ctx, *revoke, time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "revoked %s\n", *revoke)
		return nil
	}
	secret, k, err := keys.Create(ctx, *name, sc, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "id:     %s\nname:   %s\nscopes: %s\nsecret: %s\n(the secret is shown only now; send it as Authorization: Bearer <secret>)\n", k.ID, k.Name, strings.Join(k.Scopes, " "), secret)
	return nil
}
