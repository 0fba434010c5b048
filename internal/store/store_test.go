package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

func TestMigrateTwiceAndPlaceholders(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		done, err := db.Migrate(ctx)
		if err != nil || len(done) != 0 {
			t.Fatalf("second migrate: applied %v, err %v; want nothing", done, err)
		}
		// $N placeholders, reused, on both databases.
		var n int64
		var s string
		if err := db.QueryRowContext(ctx, "SELECT CAST($1 AS BIGINT) + CAST($1 AS BIGINT), CAST($2 AS TEXT)", int64(20), "x").Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		if n != 40 || s != "x" {
			t.Fatalf("got %d %q", n, s)
		}
	})
}

func TestCheckConstraints(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		_, err := db.ExecContext(ctx, `INSERT INTO accounts (id, name, email, phone, email_hash, phone_hash, bank_label, bank_hash, opened, cash_jpy, created_us)
			VALUES ('A', 'n', 'e', 'p', 'eh', 'ph', 'b', 'bh', '2020-01-01', -1, 0)`)
		if err == nil {
			t.Fatal("negative cash accepted")
		}
	})
}

// TestMoneyWritesAreDurable holds every connection that writes money (the
// main pool: orders, fills, withdrawals, bank changes, the ledger, the
// decisions on money movement) to commits that survive a power loss:
// synchronous=FULL on SQLite, synchronous_commit on PostgreSQL. Only the
// decision log's own pool (FastWrites) commits with synchronous=NORMAL.
func TestMoneyWritesAreDurable(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// Take every connection the pool may open at once, so that each
		// one is checked, not the same idle one again and again.
		var conns []*sql.Conn
		for range 4 {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for i, c := range conns {
			if db.Dialect == store.SQLite {
				var n int
				if err := c.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != store.SyncDurable {
					t.Errorf("connection %d of the main pool: synchronous=%d, want %d (FULL)", i, n, store.SyncDurable)
				}
				var mode string
				if err := c.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
					t.Errorf("connection %d: journal_mode %q %v, want wal", i, mode, err)
				}
			} else {
				var v string
				if err := c.QueryRowContext(ctx, `SHOW synchronous_commit`).Scan(&v); err != nil {
					t.Fatal(err)
				}
				if v != "on" && v != "remote_apply" && v != "remote_write" {
					t.Errorf("connection %d: synchronous_commit=%s", i, v)
				}
			}
		}
		for _, c := range conns {
			c.Close()
		}
		// A money write through a transaction of the pool commits on one of
		// those connections.
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			if db.Dialect != store.SQLite {
				return nil
			}
			var n int
			if err := tx.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil {
				return err
			}
			if n != store.SyncDurable {
				t.Errorf("a transaction of the pool: synchronous=%d", n)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		fast, err := db.FastWrites()
		if err != nil {
			t.Fatal(err)
		}
		if db.Dialect == store.SQLite {
			if fast == db.DB {
				t.Fatal("FastWrites is the main pool on SQLite")
			}
			var n int
			if err := fast.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&n); err != nil || n != store.SyncFast {
				t.Errorf("FastWrites: synchronous=%d %v, want %d (NORMAL)", n, err, store.SyncFast)
			}
		} else if fast != db.DB {
			t.Error("FastWrites is not the one pool on PostgreSQL")
		}
	})
}

// BenchmarkCommit measures one small committed transaction on SQLite: on
// the main pool (synchronous=FULL, durable against a power loss), on the
// decision log's pool (FastWrites, synchronous=NORMAL) and on a scratch
// database (OpenScratch, synchronous=NORMAL).
func BenchmarkCommit(b *testing.B) {
	ctx := context.Background()
	durable := storetest.SQLite(b)
	scratch, err := store.OpenScratch(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer scratch.Close()
	if _, err := scratch.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	fast, err := durable.FastWrites()
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		db   *sql.DB
	}{{"full", durable.DB}, {"fastwrites", fast}, {"scratch", scratch.DB}} {
		b.Run(bc.name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				n++
				if _, err := bc.db.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ($1, 'v')`, fmt.Sprintf("bench-%s-%d", bc.name, n)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestSetting: a setting is made once; processes that start together
// (here, goroutines) all read the one that was stored first.
func TestSetting(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		got := make([]string, 8)
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range got {
			wg.Go(func() {
				got[i], errs[i] = db.Setting(ctx, "test_key", func() string { return fmt.Sprint("made by ", i) })
			})
		}
		wg.Wait()
		for i := range got {
			if errs[i] != nil || got[i] != got[0] || got[0] == "" {
				t.Fatalf("Setting = %q, %v: every caller must read the one stored value", got, errs)
			}
		}
		again, err := db.Setting(ctx, "test_key", func() string { return "made later" })
		if err != nil || again != got[0] {
			t.Fatalf("Setting again = %q, %v; want the stored %q", again, err, got[0])
		}
	})
}
