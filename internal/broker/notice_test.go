package broker

import (
	"context"
	"database/sql"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// TestActionOf: inside the transaction of each stored action, ActionOf
// reads what the action did (status, masked bank, field, order value);
// records of no action, and actions the guard refused (stored without
// effect), report nothing.
func TestActionOf(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		g := &scripted{action: event.Allow}
		f := newFixture(t, db, g)
		ctx := context.Background()
		type seen struct {
			typ event.Type
			act notify.Action
			ok  bool
		}
		var got []seen
		f.b.inTx = func(ctx context.Context, tx *sql.Tx, r *event.Record) error {
			a, ok, err := ActionOf(ctx, tx, r)
			if err != nil {
				t.Errorf("%s: %v", r.Type, err)
			}
			got = append(got, seen{r.Type, a, ok})
			return err
		}
		last := func(t *testing.T, typ event.Type) seen {
			t.Helper()
			for i := len(got) - 1; i >= 0; i-- {
				if got[i].typ == typ {
					return got[i]
				}
			}
			t.Fatalf("no %s record reached the hook (saw %v)", typ, got)
			return seen{}
		}
		if _, err := f.b.Withdraw(ctx, actor, "A1", 12_000, "w1"); err != nil {
			t.Fatal(err)
		}
		if s := last(t, event.TypeWithdrawal); !s.ok || s.act.Status != "sent" || s.act.AmountJPY != 12_000 || s.act.Bank != MaskBank("Mizuho 001-1234567") {
			t.Errorf("withdrawal: %+v", s)
		}
		if _, err := f.b.ChangeBank(ctx, actor, "A1", "Rakuten Bank 251-7654321", "b1"); err != nil {
			t.Fatal(err)
		}
		if s := last(t, event.TypeBankChange); !s.ok || s.act.Bank != MaskBank("Rakuten Bank 251-7654321") || s.act.Bank == "Rakuten Bank 251-7654321" {
			t.Errorf("bank change: %+v", s)
		}
		if _, err := f.b.ChangeContact(ctx, actor, "A1", "email", "new@example.jp", "c1"); err != nil {
			t.Fatal(err)
		}
		if s := last(t, event.TypeContactChange); !s.ok || s.act.Field != "email" {
			t.Errorf("contact change: %+v", s)
		}
		o, err := f.b.PlaceOrder(ctx, actor, "A1", OrderRequest{Symbol: "9999", Side: "buy", Qty: 1000, PriceType: "market", Kind: "cash"}, "o1")
		if err != nil {
			t.Fatal(err)
		}
		if s := last(t, event.TypeOrder); !s.ok || s.act.Symbol != "9999" || s.act.Side != "buy" || s.act.Qty != 1000 || s.act.Status != "open" || s.act.AmountJPY != o.ValueJPY {
			t.Errorf("order %+v: %+v", o, s)
		}

		// (The order record is stored as the order opens; its fill comes after.)

		// Refused by the guard: stored, without effect, and no notice.
		g.action = event.Deny
		got = nil
		f.b.Withdraw(ctx, actor, "A1", 5_000, "w2")
		f.b.ChangeBank(ctx, actor, "A1", "Attacker Bank 1", "b2")
		f.b.ChangeContact(ctx, actor, "A1", "phone", "080-0000-0000", "c2")
		f.b.PlaceOrder(ctx, actor, "A1", OrderRequest{Symbol: "9999", Side: "buy", Qty: 100, PriceType: "market", Kind: "cash"}, "o2")
		if len(got) < 4 {
			t.Fatalf("refused actions reached the hook %d times, want each stored: %v", len(got), got)
		}
		for _, s := range got {
			if s.ok && s.typ.Action() {
				t.Errorf("refused %s reported as done: %+v", s.typ, s.act)
			}
		}
	})
}
