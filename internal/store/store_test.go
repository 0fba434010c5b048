package store_test

import (
	"context"
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
