package broker

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// BenchmarkPlaceOrder places market orders that fill, in process, on
// SQLite: validation, the guard, the reservation, the fill, the ledger and
// the event log in one transaction each. BenchmarkBaselineTx is the same
// database doing one bare single-row write transaction, for the ratio.
func BenchmarkPlaceOrder(b *testing.B) {
	db := storetest.SQLite(b)
	f := benchFixture(b, db)
	ctx := context.Background()
	req := OrderRequest{Symbol: "7203", Side: "buy", Qty: 100, PriceType: "market", Kind: "cash"}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := f.b.PlaceOrder(ctx, actor, "A1", req, fmt.Sprint("k", i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}

func BenchmarkBaselineTx(b *testing.B) {
	db := storetest.SQLite(b)
	benchFixture(b, db)
	ctx := context.Background()
	for b.Loop() {
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE accounts SET reserved_jpy = reserved_jpy WHERE id = 'A1'`)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
}

func benchFixture(b *testing.B, db *store.DB) *fixture {
	f := newFixture(b, db, nil)
	if _, err := db.ExecContext(context.Background(), `UPDATE accounts SET cash_jpy = 1000000000000 WHERE id = 'A1'`); err != nil {
		b.Fatal(err)
	}
	return f
}
