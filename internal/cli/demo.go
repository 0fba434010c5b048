package cli

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/population"
	"github.com/kabuto-sec/kabuto/internal/server"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// DemoKey is the demo's well-known API key, accepted only by `kabuto demo`
// listening on a loopback address, on loopback connections.
const DemoKey = server.DemoKey

func runDemo(ctx context.Context, env *Env, args []string) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var c common
	c.register(fs, "")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	customers := fs.Int("customers", 3000, "customers to create")
	seed := fs.Uint64("seed", 1, "seed of the customers and the market")
	var o appOptions
	guardFlags(fs, &o)
	frontFlags(fs, &o)
	if err := parse(fs, env, args, "Run a demo brokerage on a fresh embedded database (in --data, or a new temporary directory):\nthousands of customers with holdings, an instrument universe and a market that ticks around the clock."); err != nil {
		return err
	}
	if *customers < 1 || *customers > 1_000_000 {
		return usageError{fmt.Errorf("--customers %d: want 1 to 1000000", *customers)}
	}
	log, err := c.logger(env)
	if err != nil {
		return err
	}
	start := env.Now()
	if c.db == "" {
		if c.data == "" {
			dir, err := os.MkdirTemp("", "kabuto-demo-")
			if err != nil {
				return err
			}
			c.data = dir
		}
		if _, err := os.Stat(filepath.Join(c.data, "kabuto.db")); err == nil {
			return usageError{fmt.Errorf("%s already holds a database; the demo starts fresh: give an empty --data", c.data)}
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	// Never a well-known key on a reachable address.
	if ip, ok := ln.Addr().(*net.TCPAddr); ok && ip.IP.IsLoopback() {
		o.demoKey = true
	}
	db, err := c.open(ctx)
	if err != nil {
		ln.Close()
		return err
	}
	defer db.Close()
	o.hours, o.seed, o.smallCaps, o.clock = market.Hours{Always: true}, *seed, 150, env.clock()
	a, err := newApp(ctx, db, log, o)
	if err != nil {
		ln.Close()
		return err
	}
	// The decision log's writer makes its last flush before the database
	// closes (deferred calls run last first).
	defer func() { stop(); <-a.dlog.Done() }()
	if err := seedCustomers(ctx, env, a, *seed, *customers); err != nil {
		ln.Close()
		return err
	}
	key := DemoKey
	if !o.demoKey {
		key = ""
	}
	scopes := []string{apikey.ScopeBroker, apikey.ScopeEvents, apikey.ScopeAdmin}
	if key == "" {
		key, _, err = a.keys.Create(ctx, "demo", scopes, env.Now())
	} else {
		_, _, err = a.keys.CreateWithSecret(ctx, "demo", key, scopes, env.Now())
	}
	if err != nil {
		ln.Close()
		return err
	}
	go a.broker.Run(ctx, time.Second)
	base := "http://" + ln.Addr().String()
	where := db.Where
	if db.Dialect == store.SQLite {
		where += " (SQLite)"
	}
	fmt.Fprintf(env.Stdout, `
Kabuto demo is running (ready in %.1fs).

  Brokerage:  %s/
  API:        %s/api/v1   (OpenAPI at /api/v1/openapi.json)
  API key:    %s
  Customers:  C0000001 … C%07d, each with cash, holdings and a registered bank
  Market:     %d instruments, trading around the clock
  Database:   %s

%sTry the API (the README walks through a sign-in, an order and a withdrawal):
  export KABUTO_KEY=%s
  curl -s -H "Authorization: Bearer $KABUTO_KEY" %s/api/v1/accounts/C0000001
Analyst console: %s/console (sign in with the API key above)

Stop with Ctrl-C.
`, env.Now().Sub(start).Seconds(), base, base, key, *customers, len(a.broker.Exchange().Symbols()), where, a.front.demoNotes(base), key, base, base)
	return server.Serve(ctx, ln, a.server.Handler(), log)
}

// seedCustomers opens the demo's customers in batches, with a progress bar.
func seedCustomers(ctx context.Context, env *Env, a *app, seed uint64, n int) (err error) {
	var ins []market.Instrument
	x := a.broker.Exchange()
	for _, s := range x.Symbols() {
		in, _ := x.Instrument(s)
		ins = append(ins, in)
	}
	people := population.Generate(seed, n, ins, population.Enrolment202504, env.Now())
	// The README's customer: a passkey, a laptop and a home network to quote.
	c1 := &people[0]
	c1.Devices[0], c1.HomeIP, c1.HomeASN = "demo-laptop", "192.0.2.70", 2516
	if !slices.Contains(c1.Factors, event.FactorPasskey) {
		c1.Factors = append(c1.Factors, event.FactorPasskey)
	}
	defer func() {
		if err == nil {
			err = a.front.seedDemo(ctx, a, people)
		}
	}()
	bar := progressbar.NewOptions(n, progressbar.OptionSetWriter(env.Stderr), progressbar.OptionSetDescription("opening customer accounts"),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetVisibility(isTerminal(env.Stderr)))
	const batch = 500
	for i := 0; i < n; i += batch {
		part := people[i:min(n, i+batch)]
		accts := make([]broker.NewAccount, len(part))
		for j := range part {
			accts[j] = part[j].NewAccount
		}
		if err := a.broker.OpenAccounts(ctx, accts); err != nil {
			return fmt.Errorf("seeding customers: %w", err)
		}
		bar.Add(len(part))
	}
	bar.Finish()
	warmProfiles(a, people, env.Now())
	return nil
}

// warmProfiles gives the guard each customer's past: sign-ins over the
// last weeks from their own devices and home network, as a brokerage's
// history would. They teach the risk engine only; nothing is stored.
func warmProfiles(a *app, people []population.Customer, now time.Time) {
	for i := range people {
		c := &people[i]
		method, factors := event.FactorPassword, []string{event.FactorPassword, c.Factors[len(c.Factors)-1]}
		if slices.Contains(c.Factors, event.FactorPasskey) {
			method, factors = event.FactorPasskey, []string{event.FactorPasskey}
		}
		for k := range 6 {
			at := now.AddDate(0, 0, -30+k*5).Truncate(24 * time.Hour).Add(time.Duration(c.Hours[0]-9) * time.Hour)
			dev := c.Devices[k%len(c.Devices)]
			a.pipe.Risk.Decide(&event.Record{ID: fmt.Sprintf("warm-%s-%d", c.ID, k), Type: event.TypeLogin, Time: at, Account: c.ID,
				Session: fmt.Sprintf("past-%s-%d", c.ID, k), IP: c.HomeIP, ASN: c.HomeASN, Country: "JP", Device: dev, UA: "Mozilla/5.0",
				Channel: event.ChannelWeb, Method: method, Factors: factors, OK: true})
		}
	}
}

// isTerminal reports whether w is a terminal, where progress bars belong.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
