package pipeline

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// TestReferenceTellsTheWatchtower: the brokerage logs an instrument record
// only when an issue is listed or changes, so a server that starts on a
// database listed earlier knows an issue's profile only from the stored
// records. With them, a ramp of a thin ¥150 issue by hijacked-looking
// accounts is halted; without them the watchtower knows nothing about the
// issue and, having no evidence about it, halts nothing.
func TestReferenceTellsTheWatchtower(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		at := time.Date(2025, 4, 15, 8, 0, 0, 0, jst)
		for i, px := range []float64{160, 150} { // listed, then its price changed
			r := &event.Record{ID: fmt.Sprintf("I%d", i), Type: event.TypeInstrument, Time: at.AddDate(0, 0, i-2), Symbol: "7777", Name: "Thin",
				Market: "TSE_STANDARD", Currency: "JPY", Price: px, PriceJPY: px, ADVShares: 50_000, Lot: 100}
			if _, err := db.ExecContext(ctx, `INSERT INTO events (id, time_us, type, account, body) VALUES ($1, $2, $3, '', $4)`,
				r.ID, store.Micros(r.Time), string(r.Type), string(r.AppendJSON(nil))); err != nil {
				t.Fatal(err)
			}
		}
		for _, load := range []bool{true, false} {
			p := NewPipeline(risk.NewEngine(nil), surveil.New(surveil.DefaultConfig()), nil)
			if load {
				n, err := Reference(ctx, db, p)
				if err != nil || n != 2 {
					t.Fatalf("Reference: %d %v", n, err)
				}
			}
			for k := range 5 {
				r := &event.Record{ID: fmt.Sprintf("o%d", k), Type: event.TypeOrder, Time: at.Add(90*time.Minute + time.Duration(k)*time.Minute),
					Account: fmt.Sprintf("A%d", k), IP: "203.0.113.9", ASN: 14618, Country: "JP", Device: fmt.Sprintf("d%d", k),
					OrderID: fmt.Sprintf("O%d", k), Symbol: "7777", Side: event.SideBuy, Qty: 1000, PriceType: event.PriceMarket, AccountKind: event.KindCash}
				p.Watch.Observe(r, &event.Decision{Event: r.ID, Time: r.Time, Account: r.Account, Action: event.Allow, Score: 50, Reasons: []string{"new_device", "hosting_asn"}})
			}
			if got := p.Watch.Halted("7777"); got != load {
				t.Errorf("reference loaded %v: halted %v", load, got)
			}
		}
	})
}
