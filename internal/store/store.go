// Package store opens Kabuto's database, SQLite embedded by default or
// PostgreSQL in production, applies the embedded migrations, and runs
// transactions. Each aggregate's SQL lives in the package that owns the
// aggregate, written once for both databases: $N placeholders in order of
// first use, BIGINT integers, DOUBLE PRECISION prices, times as Unix
// microseconds, and conditional UPDATEs (never SELECT … FOR UPDATE) for
// invariants such as "cash never goes negative".
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the pgx driver
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the sqlite driver

	"github.com/kabuto-sec/kabuto/internal/clock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect names the database in use.
type Dialect string

// Supported dialects.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is an open database.
type DB struct {
	*sql.DB
	Dialect Dialect
	// Where says where the database is, without any password.
	Where string

	// fast is the SQLite pool of writes that may be lost to a power loss
	// (see FastWrites), opened on first use.
	fastDSN  string
	fastOnce sync.Once
	fast     *sql.DB
	fastErr  error
}

// SQLite connection settings. Every connection of the main pool commits
// with synchronous=FULL: in WAL mode the log is fsynced at every commit,
// so an order, a fill, a withdrawal, a bank change or a ledger entry that
// was acknowledged survives a power loss (and a crash of the process).
// The decision log's writer has a pool of its own (FastWrites) that
// commits with synchronous=NORMAL: its commits survive a crash of the
// process and are fsynced at the next checkpoint or at the next commit of
// the main pool, whichever comes first, so a power loss can take the last
// moments of the log of decisions that move no money. Decisions on money
// movement are written through the main pool.
const (
	sqliteCommon = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	// SyncDurable is the synchronous level of the main pool (FULL).
	SyncDurable = 2
	// SyncFast is the synchronous level of FastWrites (NORMAL).
	SyncFast = 1
)

// Open opens the database named by dsn: a postgres:// or postgresql:// URL
// for PostgreSQL, otherwise a SQLite file (dsn, or kabuto.db in dataDir
// when dsn is empty). It does not migrate.
func Open(ctx context.Context, dsn, dataDir string) (*DB, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		sdb, err := sql.Open("pgx", dsn)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		sdb.SetMaxOpenConns(32)
		sdb.SetMaxIdleConns(16)
		sdb.SetConnMaxIdleTime(5 * time.Minute)
		db := &DB{DB: sdb, Dialect: Postgres, Where: redact(dsn)}
		if err := db.PingContext(ctx); err != nil {
			sdb.Close()
			return nil, fmt.Errorf("store: postgres at %s: %w", db.Where, err)
		}
		return db, nil
	}
	path := dsn
	if path == "" {
		if dataDir == "" {
			return nil, errors.New("store: no database given: pass --db or --data")
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: data directory: %w", err)
		}
		path = filepath.Join(dataDir, "kabuto.db")
	}
	// WAL with synchronous=FULL (see SyncDurable). Keeping statement
	// journals in memory or checkpointing less often makes the decision
	// log's writer faster, but the first would sort a large index build (a
	// migration) in memory and the second would widen what a power loss
	// can take from the decision log; neither is set here.
	return openSQLite(ctx, strings.TrimPrefix(path, "sqlite://"), "FULL")
}

// OpenScratch opens a SQLite database in dataDir that is thrown away after
// use, such as the simulator's: nothing in it needs to survive a power
// loss, so its commits are fsynced only at checkpoints (synchronous=NORMAL
// on every connection). Never for a brokerage's data: use Open.
func OpenScratch(ctx context.Context, dataDir string) (*DB, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("store: data directory: %w", err)
	}
	return openSQLite(ctx, filepath.Join(dataDir, "kabuto.db"), "NORMAL")
}

// openSQLite opens the SQLite database at path whose main pool commits
// with the synchronous level sync.
func openSQLite(ctx context.Context, path, sync string) (*DB, error) {
	q := sqliteCommon + "&_pragma=synchronous(" + sync + ")"
	sdb, err := sql.Open("sqlite", "file:"+path+"?"+q)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	// SQLite has one writer at a time; a few connections serve readers in
	// WAL mode while writers queue on the busy timeout.
	sdb.SetMaxOpenConns(4)
	db := &DB{DB: sdb, Dialect: SQLite, Where: path,
		fastDSN: "file:" + path + "?" + sqliteCommon + "&_pragma=synchronous(NORMAL)&_pragma=temp_store(MEMORY)"}
	if err := db.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("store: sqlite at %s: %w", path, err)
	}
	return db, nil
}

// FastWrites returns the pool for writes that need not survive a power
// loss, only a crash of the process: the decision log's group commits of
// decisions that move no money. On SQLite it is a pool of its own (two
// connections) with synchronous=NORMAL and statement journals in memory (each
// multi-row INSERT keeps one; in a temporary file the writer took about a
// seventh longer per decision, BenchmarkLogWrite); nothing that moves
// money may be written through it. On PostgreSQL it is the one pool.
func (db *DB) FastWrites() (*sql.DB, error) {
	if db.fastDSN == "" {
		return db.DB, nil
	}
	db.fastOnce.Do(func() {
		f, err := sql.Open("sqlite", db.fastDSN)
		if err != nil {
			db.fastErr = fmt.Errorf("store: open sqlite: %w", err)
			return
		}
		// the writer's connection, and one on which its statements
		// are prepared before its transactions take them up
		f.SetMaxOpenConns(2)
		db.fast = f
	})
	return db.fast, db.fastErr
}

// Close closes the database's pools.
func (db *DB) Close() error {
	err := db.DB.Close()
	db.fastOnce.Do(func() {}) // no pool may open after this
	if db.fast != nil {
		if e := db.fast.Close(); err == nil {
			err = e
		}
	}
	return err
}

func redact(dsn string) string {
	if i := strings.Index(dsn, "@"); i > 0 {
		if j := strings.Index(dsn, "://"); j > 0 && j < i {
			return dsn[:j+3] + "…" + dsn[i:]
		}
	}
	return dsn
}

// Migrate applies every embedded migration not yet applied and reports
// what it did.
func (db *DB) Migrate(ctx context.Context) ([]string, error) {
	d := goose.DialectSQLite3
	if db.Dialect == Postgres {
		d = goose.DialectPostgres
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(d, db.DB, sub)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: migrate: %w", err)
	}
	var done []string
	for _, r := range res {
		done = append(done, r.Source.Path)
	}
	return done, nil
}

// Tx runs fn in a transaction and commits it when fn returns nil. On
// PostgreSQL a serialization failure or deadlock is retried a few times.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 0; ; attempt++ {
		err := db.tx(ctx, fn)
		if err == nil || attempt >= 4 || !retryable(err) {
			return err
		}
	}
}

func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func retryable(err error) bool {
	s := err.Error()
	return strings.Contains(s, "SQLSTATE 40001") || strings.Contains(s, "SQLSTATE 40P01")
}

// Micros converts t to Unix microseconds, the stored form of times.
func Micros(t time.Time) int64 { return t.UnixMicro() }

// FromMicros converts stored Unix microseconds back to a time in JST, the
// brokerage's time zone.
func FromMicros(us int64) time.Time { return time.UnixMicro(us).In(clock.JST) }

// Bool converts a stored 0/1 integer to a bool.
func Bool(i int64) bool { return i != 0 }

// Int converts a bool to its stored 0/1 form.
func Int(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Setting returns the stored setting name; when there is none yet, it
// stores made() first. Processes starting at once agree on one value: the
// first stored wins, and every caller reads it back.
func (db *DB) Setting(ctx context.Context, name string, made func() string) (string, error) {
	var v string
	err := db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := db.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, made()); err != nil {
			return "", err
		}
		err = db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&v)
	}
	return v, err
}
