// Package storetest gives tests fresh, migrated databases: always SQLite in
// a temporary directory, and PostgreSQL (a new schema each time) when
// KABUTO_TEST_POSTGRES names a server. Tests loop over Each so every storage
// test runs on both.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/store"
)

// EnvPostgres names the environment variable holding a PostgreSQL URL for tests.
const EnvPostgres = "KABUTO_TEST_POSTGRES"

// SQLite returns a fresh, migrated SQLite database removed at the end of the test.
func SQLite(t testing.TB) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// Postgres returns a fresh, migrated PostgreSQL database in a schema of its
// own, dropped at the end of the test. It skips the test, saying why, when
// KABUTO_TEST_POSTGRES is unset, and fails it when the server is unreachable.
func Postgres(t testing.TB) *store.DB {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		t.Skipf("PostgreSQL not tested: set %s=postgres://user@host:5432/db?sslmode=disable to run this test on PostgreSQL too", EnvPostgres)
	}
	ctx := context.Background()
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("%s=%s: %v", EnvPostgres, base, err)
	}
	t.Cleanup(func() {
		a, err := sql.Open("pgx", base)
		if err == nil {
			a.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			a.Close()
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := store.Open(ctx, u.String(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// Each runs fn as a subtest on SQLite and on PostgreSQL.
func Each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}
