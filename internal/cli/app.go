package cli

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/cases"
	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/console"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/netinfo"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/server"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// common are the flags of the commands that open the database.
type common struct {
	db, data, logLevel, logFormat string
}

func (c *common) register(fs *flag.FlagSet, dataDefault string) {
	fs.StringVar(&c.db, "db", "", "database: a postgres:// URL, or a SQLite file (default: kabuto.db in --data)")
	fs.StringVar(&c.data, "data", dataDefault, "data directory for the embedded SQLite database")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
}

func (c *common) logger(env *Env) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", c.logLevel)}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch c.logFormat {
	case "text":
		h = slog.NewTextHandler(env.Stderr, opts)
	case "json":
		h = slog.NewJSONHandler(env.Stderr, opts)
	default:
		return nil, usageError{fmt.Errorf("--log-format %q: want text or json", c.logFormat)}
	}
	l := slog.New(h)
	slog.SetDefault(l)
	return l, nil
}

// open opens and migrates the database.
func (c *common) open(ctx context.Context) (*store.DB, error) {
	if c.db == "" && c.data == "" {
		return nil, usageError{errors.New("say where the data lives: --data DIR (SQLite) or --db postgres://…")}
	}
	if err := checkDB(c.db); err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, c.db, c.data)
	if err != nil {
		return nil, err
	}
	done, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	for _, f := range done {
		slog.InfoContext(ctx, "migration applied", "file", f, "database", db.Dialect)
	}
	return db, nil
}

// app is a running Kabuto: database, brokerage and HTTP server.
type app struct {
	key    []byte // keys contact and bank hashes (and, derived, the portal's CSRF tokens)
	pipe   *pipeline.Pipeline
	dlog   *pipeline.Log
	audit  *audit.Log
	front  *frontDoor
	db     *store.DB
	broker *broker.Broker
	server *server.Server
	keys   *apikey.Store
	office *cases.Service
	log    *slog.Logger
}

type appOptions struct {
	hours        market.Hours
	seed         uint64
	smallCaps    int
	hashKey      string
	geoip        string
	policy       string // policy file; "" for the built-in policy
	shadowPolicy string
	haltScore    int
	freezeScore  int
	holdProceeds time.Duration
	demoKey      bool             // accept server.DemoKey on loopback connections (kabuto demo only)
	exchange     *market.Exchange // the simulated market, shared by a test cluster's nodes; nil: a new one
	// the front door
	publicURL, smtpAddr, smtpFrom, webhookURL, webhookSecret string
	passkeyDeadline                                          string      // --passkey-deadline, YYYY-MM-DD (JST)
	mail                                                     mailOptions // DKIM keys, mail posture (serve only)
	clock                                                    clock.Clock // the one clock of the brokerage, the guard's front door and the back office
}

// guardFlags registers the guard's flags on fs.
func guardFlags(fs *flag.FlagSet, o *appOptions) {
	fs.StringVar(&o.policy, "policy", "", "policy file, reloaded when it changes (default: the built-in policy; see 'kabuto policy')")
	fs.StringVar(&o.shadowPolicy, "shadow-policy", "", "a draft policy run in shadow on live traffic: its decisions are stored, never enforced")
	fs.IntVar(&o.haltScore, "halt-score", surveil.DefaultConfig().HaltScore, "surveillance alerts at or above this score halt buying of the instrument (0: alert only)")
	fs.IntVar(&o.freezeScore, "freeze-score", surveil.DefaultConfig().FreezeScore, "surveillance alerts at or above this score freeze the accounts concerned (0: never)")
	fs.DurationVar(&o.holdProceeds, "hold-proceeds", surveil.DefaultConfig().HoldProceeds, "how long proceeds of flagged trades are held (withdrawals that would take them go to an analyst)")
}

func newApp(ctx context.Context, db *store.DB, log *slog.Logger, o appOptions) (*app, error) {
	if o.clock == nil {
		o.clock = clock.Real{}
	}
	key, err := hashKey(ctx, db, o.hashKey)
	if err != nil {
		return nil, err
	}
	nets := netinfo.Builtin()
	if o.geoip != "" {
		f, err := os.Open(o.geoip)
		if err != nil {
			return nil, fmt.Errorf("--geoip: %w", err)
		}
		nets, err = netinfo.Parse(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--geoip %s: %w", o.geoip, err)
		}
	}
	fd, err := newFrontDoor(ctx, db, log, o)
	if err != nil {
		return nil, err
	}
	universe := market.Universe(o.seed, o.smallCaps)
	x := o.exchange
	if x == nil {
		x = market.NewExchange(universe, o.seed, o.hours, o.clock.Now())
	}
	var office *cases.Service // opens a case for every held action, in its transaction
	b := broker.New(broker.Config{DB: db, Exchange: x, Clock: o.clock, HashKey: key, Log: log, InTx: func(ctx context.Context, tx *sql.Tx, r *event.Record) error {
		if err := fd.inTx(ctx, tx, r); err != nil {
			return err
		}
		return heldCase(ctx, tx, office, r)
	}})
	if err := b.SeedInstruments(ctx, universe); err != nil {
		return nil, fmt.Errorf("instruments: %w", err)
	}
	pipe, dlog, err := newPipeline(ctx, log, db, o)
	if err != nil {
		return nil, err
	}
	b.SetGuard(pipe)
	// the instruments listed before (this start's or an earlier one's),
	// so that surveillance knows each issue's profile from the first order
	if _, err := pipeline.Reference(ctx, db, pipe); err != nil {
		return nil, fmt.Errorf("instruments for the guard: %w", err)
	}
	trail := audit.New(db)
	office, err = newBackOffice(ctx, db, log, b, pipe, fd)
	if err != nil {
		return nil, err
	}
	pipe.OnAlert = func(ctx context.Context, al event.Alert) { officeAlert(ctx, log, office, al) }
	keys := apikey.New(db)
	keys.Clock = o.clock
	lists := pipeline.NewLists(db, pipe.Risk)
	if n, err := lists.Load(ctx); err != nil {
		return nil, err
	} else if n > 0 {
		log.Info("guard lists loaded", "entries", n)
	}
	srv := server.New(server.Config{DB: db, Broker: b, Keys: keys, Net: nets, Log: log, Version: version(), Guard: pipe, Decisions: dlog, Lists: lists, BackOffice: office, AllowDemoKey: o.demoKey, Clock: o.clock})
	a := &app{key: key, pipe: pipe, dlog: dlog, audit: trail, front: fd, db: db, broker: b, server: srv, keys: keys, log: log}
	tape := console.NewTape(720, 5000)
	pipe.Tap = tape.Record
	console.New(console.Config{Review: b, Keys: keys, Alerts: dlog, Halts: cases.Halter{S: office, By: "console"}, GuardHalt: pipe.SetHalt, Tape: tape, Audit: trail, Log: log, Now: o.clock.Now, CheckKey: srv.CheckKey, DB: db,
		Passkeys: fd.id.Origins, Office: office, Prices: console.ExchangePrices(x)}).Mount(srv.Mux())
	a.office = office
	if err := fd.mount(ctx, a); err != nil {
		return nil, err
	}
	return a, nil
}

// hashKey returns the key of contact and bank hashes: the one given, or
// the one stored in the database, made on first start.
func hashKey(ctx context.Context, db *store.DB, given string) ([]byte, error) {
	if given != "" {
		if len(given) < 32 {
			return nil, usageError{errors.New("--hash-key must be at least 32 characters")}
		}
		return []byte(given), nil
	}
	v, err := db.Setting(ctx, "hash_key", func() string {
		var b [32]byte
		rand.Read(b[:])
		return hex.EncodeToString(b[:])
	})
	return []byte(v), err
}

// newPipeline builds the guard: the policy (hot-reloaded from its file),
// the watchtower and the decision log, whose writer runs until ctx ends.
func newPipeline(ctx context.Context, log *slog.Logger, db *store.DB, o appOptions) (*pipeline.Pipeline, *pipeline.Log, error) {
	eng := risk.NewEngine(risk.BuiltinPolicy())
	if o.policy != "" {
		_, err := risk.WatchPolicy(ctx, o.policy, 2*time.Second, eng, func(err error) {
			log.Error("policy file not loaded; keeping the policy in force", "file", o.policy, "err", err)
		})
		if err != nil {
			return nil, nil, fmt.Errorf("--policy: %w", err)
		}
	}
	if o.shadowPolicy != "" {
		sp, err := risk.LoadPolicyFile(o.shadowPolicy)
		if err != nil {
			return nil, nil, fmt.Errorf("--shadow-policy: %w", err)
		}
		eng.SetShadow(sp)
	}
	cfg := surveil.DefaultConfig()
	cfg.HaltScore, cfg.FreezeScore = o.haltScore, o.freezeScore
	if o.holdProceeds > 0 {
		cfg.HoldProceeds = o.holdProceeds
	}
	dlog := pipeline.NewLog(db, log)
	go dlog.Run(ctx)
	p := pipeline.NewPipeline(eng, surveil.New(cfg), dlog)
	p.Explain = true
	p.AlertPrefix = fmt.Sprintf("%x-", o.clock.Now().Unix())
	log.Info("guard ready", "policy", eng.Policy().Version, "halt_score", cfg.HaltScore, "freeze_score", cfg.FreezeScore)
	return p, dlog, nil
}
