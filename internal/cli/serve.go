package cli

import (
	"context"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/server"
)

func runServe(ctx context.Context, env *Env, args []string) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var c common
	c.register(fs, "./data")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	hours := fs.String("market-hours", "tse", "when the simulated market trades: tse (9:00-11:30, 12:30-15:30 JST) or always")
	hashKey := fs.String("hash-key", "", "secret that keys contact and bank hashes (≥32 chars; default: made once and kept in the database)")
	geoip := fs.String("geoip", "", "CSV file of cidr,asn,country for client networks (default: the built-in table)")
	seed := fs.Uint64("seed", 1, "seed of the simulated market")
	var o appOptions
	guardFlags(fs, &o)
	frontFlags(fs, &o)
	mailFlags(fs, &o.mail)
	bootstrap := fs.String("bootstrap", "", "before going live, learn the customers' and instruments' profiles from this history (spec records; learnt, not acted on)")
	warmDays := fs.Int("warm-days", 90, "at start, rebuild the guard's customer profiles from this many days of stored records and decisions (0: start cold)")
	var co clusterOptions
	clusterFlags(fs, &co)
	if err := parse(fs, env, args, "Run Kabuto: the brokerage API, the guard and the back office."); err != nil {
		return err
	}
	h, err := marketHours(*hours)
	if err != nil {
		return err
	}
	log, err := c.logger(env)
	if err != nil {
		return err
	}
	db, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	o.hours, o.seed, o.smallCaps, o.hashKey, o.geoip, o.clock = h, *seed, 150, *hashKey, *geoip, env.clock()
	a, err := newApp(ctx, db, log, o)
	if err != nil {
		return err
	}
	// The decision log's writer makes its last flush before the database
	// closes (deferred calls run last first).
	defer func() { stop(); <-a.dlog.Done() }()
	if *warmDays > 0 && co.url == "" { // a cluster node rebuilds from the stream
		start := env.Now()
		n, err := pipeline.Warm(ctx, db, a.pipe.Risk, start.AddDate(0, 0, -*warmDays))
		if err != nil {
			return fmt.Errorf("warming the guard: %w", err)
		}
		log.Info("guard warmed from stored history", "records", n, "days", *warmDays, "took", env.Now().Sub(start).Round(time.Millisecond))
	}
	if *bootstrap != "" {
		if co.url != "" {
			return usageError{fmt.Errorf("--bootstrap is for a single process: a cluster node learns from the cluster's stream")}
		}
		if err := learnFrom(ctx, env, a.pipe, "--bootstrap", *bootstrap); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	go a.broker.Run(ctx, time.Second)
	if m := o.mail.monitor(db, log); m != nil {
		go m.Run(ctx)
	}
	handler := a.server.Handler()
	if co.url != "" {
		node, err := joinCluster(ctx, a, co, ln.Addr().String(), log)
		if err != nil {
			return err
		}
		defer func() { // a graceful leave hands the partitions over
			lctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := node.Leave(lctx); err != nil {
				log.Error("cluster leave", "err", err)
			}
		}()
		handler = node.Handler(handler, metricsKey(a.server))
	}
	log.Info("kabuto serving", "addr", "http://"+ln.Addr().String(), "database", db.Dialect, "where", db.Where, "version", version())
	return server.Serve(ctx, ln, handler, log)
}

func marketHours(s string) (market.Hours, error) {
	switch s {
	case "tse":
		return market.Hours{}, nil
	case "always":
		return market.Hours{Always: true}, nil
	}
	return market.Hours{}, usageError{fmt.Errorf("--market-hours %q: want tse or always", s)}
}

func runMigrate(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
	var c common
	c.register(fs, "./data")
	if err := parse(fs, env, args, "Apply the embedded database migrations and exit."); err != nil {
		return err
	}
	if _, err := c.logger(env); err != nil {
		return err
	}
	if c.db == "" && c.data == "" {
		return usageError{fmt.Errorf("say where the data lives: --data DIR or --db postgres://…")}
	}
	db, err := openNoMigrate(ctx, &c)
	if err != nil {
		return err
	}
	defer db.Close()
	done, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(done) == 0 {
		fmt.Fprintf(env.Stdout, "%s database at %s is up to date\n", db.Dialect, db.Where)
	}
	for _, f := range done {
		fmt.Fprintf(env.Stdout, "applied %s\n", f)
	}
	return nil
}
