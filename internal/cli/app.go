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
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/netinfo"
	"github.com/kabuto-sec/kabuto/internal/server"
	"github.com/kabuto-sec/kabuto/internal/store"
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
	front  *frontDoor
	db     *store.DB
	broker *broker.Broker
	server *server.Server
	keys   *apikey.Store
	log    *slog.Logger
}

type appOptions struct {
	hours     market.Hours
	seed      uint64
	smallCaps int
	hashKey   string
	geoip     string
}

func newApp(ctx context.Context, db *store.DB, log *slog.Logger, o appOptions) (*app, error) {
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
	x := market.NewExchange(universe, o.seed, o.hours, time.Now())
	b := broker.New(broker.Config{DB: db, Exchange: x, HashKey: key, Log: log, InTx: fd.inTx})
	if err := b.SeedInstruments(ctx, universe); err != nil {
		return nil, fmt.Errorf("instruments: %w", err)
	}
	keys := apikey.New(db)
	srv := server.New(server.Config{DB: db, Broker: b, Keys: keys, Net: nets, Log: log, Version: version()})
	a := &app{front: fd, db: db, broker: b, server: srv, keys: keys, log: log}
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
	var v string
	err := db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'hash_key'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		var b [32]byte
		rand.Read(b[:])
		v = hex.EncodeToString(b[:])
		if _, err := db.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('hash_key', $1) ON CONFLICT (name) DO NOTHING`, v); err != nil {
			return nil, err
		}
		err = db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'hash_key'`).Scan(&v)
	}
	if err != nil {
		return nil, err
	}
	return []byte(v), nil
}
