package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/assurance"
	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/guard"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var (
	open   = time.Date(2025, 3, 26, 9, 30, 0, 0, clock.JST)
	thin   = market.Instrument{Symbol: "9999", Name: "Thin (sim)", Market: market.TSEStandard, Currency: "JPY", Lot: 100, ADVShares: 200000, PrevClose: 84}
	toyota = market.Instrument{Symbol: "7203", Name: "Toyota Motor", Market: market.TSEPrime, Currency: "JPY", Lot: 100, ADVShares: 28000000, PrevClose: 2700, LargeCap: true}
	hk     = market.Instrument{Symbol: "8001.HK", Name: "HK (sim)", Market: market.HK, Currency: "HKD", Lot: 2000, ADVShares: 900000, PrevClose: 0.4}
)

type fixture struct {
	b     *Broker
	clock *fakeClock
	recs  []*event.Record
	mu    sync.Mutex
}

func newFixture(t testing.TB, db *store.DB, g guard.Guard) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{clock: &fakeClock{t: open}}
	ins := []market.Instrument{thin, toyota, hk}
	f.b = New(Config{DB: db, Exchange: market.NewExchange(ins, 1, market.Hours{}, open), Guard: g, Clock: f.clock, HashKey: []byte("k")})
	f.b.Subscribe(func(_ context.Context, r *event.Record) { f.mu.Lock(); f.recs = append(f.recs, r); f.mu.Unlock() })
	if err := f.b.SeedInstruments(ctx, ins); err != nil {
		t.Fatal(err)
	}
	err := f.b.OpenAccount(ctx, NewAccount{ID: "A1", Name: "Sato Hanako", Email: "hanako@example.jp", Phone: "090-1234-5678",
		Bank: "Mizuho 001-1234567", CashJPY: 1_000_000, Opened: open.AddDate(-6, 0, 0),
		Holdings: []event.Holding{{Symbol: "7203", Qty: 300, CostJPY: 720000, Kind: "nisa"}, {Symbol: "7203", Qty: 200, CostJPY: 500000, Kind: "cash"}}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var actor = Actor{Principal: "test", Session: "S1", IP: "192.0.2.1", ASN: 2516, Country: "JP", Device: "dev1", UA: "test", Channel: "web"}

// checkBooks proves the account's balances equal its ledger and that no
// balance or reservation is negative or over-reserved.
func checkBooks(t *testing.T, f *fixture, account string) {
	t.Helper()
	ctx := context.Background()
	a, err := f.b.Account(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	cash, shares, err := f.b.LedgerTotals(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	if a.CashJPY != cash || a.CashJPY < 0 || a.ReservedJPY < 0 || a.ReservedJPY > a.CashJPY {
		t.Errorf("cash %d reserved %d, ledger says %d", a.CashJPY, a.ReservedJPY, cash)
	}
	var resOrders int64
	if err := f.b.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(reserved_jpy), 0) FROM orders WHERE account = $1`, account).Scan(&resOrders); err != nil {
		t.Fatal(err)
	}
	var resWithdrawals int64
	if err := f.b.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount_jpy), 0) FROM withdrawals WHERE account = $1 AND status = 'held'`, account).Scan(&resWithdrawals); err != nil {
		t.Fatal(err)
	}
	if a.ReservedJPY != resOrders+resWithdrawals {
		t.Errorf("reserved %d, open orders and held withdrawals reserve %d", a.ReservedJPY, resOrders+resWithdrawals)
	}
	got := map[string]int64{}
	for _, p := range a.Positions {
		if p.Qty < 0 || p.ReservedQty < 0 || p.ReservedQty > p.Qty {
			t.Errorf("position %+v", p)
		}
		got[p.Symbol+"/"+p.Kind] = p.Qty
	}
	for k, v := range shares {
		if got[k] != v {
			t.Errorf("%s: position %d, ledger %d", k, got[k], v)
		}
	}
	for k, v := range got {
		if shares[k] != v {
			t.Errorf("%s: position %d, ledger %d", k, v, shares[k])
		}
	}
}

func TestConcurrentOrdersAndWithdrawals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, nil)
		ctx := context.Background()
		var wg sync.WaitGroup
		var mu sync.Mutex
		outcomes := map[string]int{}
		for i := range 100 {
			wg.Go(func() {
				var err error
				key := fmt.Sprintf("k%d", i)
				switch i % 4 {
				case 0:
					_, err = f.b.PlaceOrder(ctx, actor, "A1", OrderRequest{Symbol: "9999", Side: "buy", Qty: 1000, PriceType: "market", Kind: "cash"}, key)
				case 1:
					_, err = f.b.PlaceOrder(ctx, actor, "A1", OrderRequest{Symbol: "7203", Side: "sell", Qty: 100, PriceType: "market", Kind: "nisa"}, key)
				case 2:
					_, err = f.b.Withdraw(ctx, actor, "A1", 90_000, key)
				case 3:
					_, err = f.b.PlaceOrder(ctx, actor, "A1", OrderRequest{Symbol: "9999", Side: "buy", Qty: 500, PriceType: "limit", LimitPrice: 70, Kind: "cash"}, key)
				}
				code := "ok"
				if err != nil {
					e := reason.As(err)
					if e == nil {
						t.Errorf("request %d: unexpected error %v", i, err)
						return
					}
					code = e.Code
				}
				mu.Lock()
				outcomes[fmt.Sprint(i%4)+":"+code]++
				mu.Unlock()
			})
		}
		wg.Wait()
		t.Logf("outcomes: %v", outcomes)
		if outcomes["1:ok"] != 3 || outcomes["1:insufficient_holdings"] != 22 {
			t.Errorf("NISA sells: want exactly 3 of 25 to succeed (300 shares), got %v", outcomes)
		}
		if outcomes["0:insufficient_cash"]+outcomes["2:insufficient_cash"]+outcomes["3:insufficient_cash"] == 0 {
			t.Errorf("expected the account to run out of cash, got %v", outcomes)
		}
		checkBooks(t, f, "A1")
		// Resting orders fill as the market comes to them or are
		// cancelled; the books still balance.
		orders, err := f.b.Orders(ctx, "A1", 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range orders {
			if o.Status == StatusOpen {
				if _, err := f.b.CancelOrder(ctx, actor, "A1", o.ID, "c"+o.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		checkBooks(t, f, "A1")
		a, _ := f.b.Account(ctx, "A1")
		if a.ReservedJPY != 0 {
			t.Errorf("reserved %d after cancelling everything", a.ReservedJPY)
		}
	})
}

func TestIdempotency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, nil)
		ctx := context.Background()
		req := OrderRequest{Symbol: "9999", Side: "buy", Qty: 1000, PriceType: "market", Kind: "cash"}
		var wg sync.WaitGroup
		ids := make([]string, 10)
		for i := range ids {
			wg.Go(func() {
				o, err := f.b.PlaceOrder(ctx, actor, "A1", req, "same-key")
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = o.ID
			})
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("retries returned different orders: %v", ids)
			}
		}
		orders, _ := f.b.Orders(ctx, "A1", 100)
		if len(orders) != 1 {
			t.Fatalf("%d orders after 10 retries, want 1", len(orders))
		}
		w1, err := f.b.Withdraw(ctx, actor, "A1", 1000, "w")
		if err != nil {
			t.Fatal(err)
		}
		w2, err := f.b.Withdraw(ctx, actor, "A1", 1000, "w")
		if err != nil || w2.ID != w1.ID {
			t.Fatalf("retry: %v %v", w2, err)
		}
		if _, err := f.b.Withdraw(ctx, actor, "A1", 2000, "w"); reason.As(err) == nil || reason.As(err).Code != reason.IdempotencyKeyReused {
			t.Fatalf("same key, other amount: %v", err)
		}
		if _, err := f.b.Withdraw(ctx, actor, "A1", 2000, ""); reason.As(err) == nil || reason.As(err).Code != reason.IdempotencyKeyRequired {
			t.Fatalf("no key: %v", err)
		}
		checkBooks(t, f, "A1")
	})
}

func TestOrderChecks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, nil)
		ctx := context.Background()
		if err := f.b.SetHalt(ctx, "9999", false, ""); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			req  OrderRequest
			code string
		}{
			{"lot", OrderRequest{Symbol: "9999", Side: "buy", Qty: 150, PriceType: "market", Kind: "cash"}, reason.BadLot},
			{"tick", OrderRequest{Symbol: "7203", Side: "buy", Qty: 100, PriceType: "limit", LimitPrice: 2700.5, Kind: "cash"}, reason.BadTick},
			{"limit up", OrderRequest{Symbol: "9999", Side: "buy", Qty: 100, PriceType: "limit", LimitPrice: 115, Kind: "cash"}, reason.OutsidePriceLimit},
			{"unknown", OrderRequest{Symbol: "0000", Side: "buy", Qty: 100, PriceType: "market", Kind: "cash"}, reason.UnknownSymbol},
			{"foreign", OrderRequest{Symbol: "8001.HK", Side: "buy", Qty: 2000, PriceType: "market", Kind: "cash"}, reason.ForeignNotEnabled},
			{"margin", OrderRequest{Symbol: "9999", Side: "buy", Qty: 100, PriceType: "market", Kind: "margin"}, reason.MarginNotEnabled},
			{"side", OrderRequest{Symbol: "9999", Side: "short", Qty: 100, PriceType: "market", Kind: "cash"}, reason.InvalidField},
			{"qty", OrderRequest{Symbol: "9999", Side: "buy", Qty: -100, PriceType: "market", Kind: "cash"}, reason.InvalidField},
			{"cash", OrderRequest{Symbol: "7203", Side: "buy", Qty: 1000, PriceType: "market", Kind: "cash"}, reason.InsufficientCash},
			{"holdings", OrderRequest{Symbol: "9999", Side: "sell", Qty: 100, PriceType: "market", Kind: "cash"}, reason.InsufficientHoldings},
			{"no account", OrderRequest{Symbol: "9999", Side: "buy", Qty: 100, PriceType: "market", Kind: "cash"}, reason.UnknownAccount},
		}
		for _, tt := range tests {
			acct := "A1"
			if tt.name == "no account" {
				acct = "NOPE"
			}
			_, err := f.b.PlaceOrder(ctx, actor, acct, tt.req, "k-"+tt.name)
			if e := reason.As(err); e == nil || e.Code != tt.code || e.HTTPStatus() < 400 || e.HTTPStatus() >= 500 {
				t.Errorf("%s: got %v, want %s (4xx)", tt.name, err, tt.code)
			}
		}
		if err := f.b.SetHalt(ctx, "9999", true, "surveillance"); err != nil {
			t.Fatal(err)
		}
		_, err := f.b.PlaceOrder(ctx, actor, "A1", OrderRequest{Symbol: "9999", Side: "buy", Qty: 100, PriceType: "market", Kind: "cash"}, "halted")
		if e := reason.As(err); e == nil || e.Code != reason.InstrumentHalted {
			t.Errorf("halted: %v", err)
		}
		orders, _ := f.b.Orders(ctx, "A1", 100)
		if len(orders) != 0 {
			t.Errorf("refused orders left %d orders behind", len(orders))
		}
		checkBooks(t, f, "A1")
		f.clock.t = time.Date(2025, 3, 26, 16, 0, 0, 0, clock.JST)
		_, err = f.b.PlaceOrder(ctx, actor, "A1", OrderRequest{Symbol: "7203", Side: "buy", Qty: 100, PriceType: "market", Kind: "cash"}, "late")
		if e := reason.As(err); e != nil && e.Code == reason.MarketClosed {
			return
		}
		// the fixture's exchange keeps TSE hours
		t.Errorf("after the close: %v", err)
	})
}

func TestForeignAndLimitFill(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, nil)
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `UPDATE accounts SET foreign_enabled = 1 WHERE id = 'A1'`); err != nil {
			t.Fatal(err)
		}
		o, err := f.b.PlaceOrder(ctx, actor, "A1", OrderRequest{Symbol: "8001.HK", Side: "buy", Qty: 2000, PriceType: "market", Kind: "cash"}, "hk")
		if err != nil || o.Status != StatusFilled {
			t.Fatalf("HK buy: %+v %v", o, err)
		}
		if want := int64(2000 * o.FillPrice * 19.4); o.FilledJPY < want-1 || o.FilledJPY > want+1 {
			t.Errorf("HK fill ¥%d, want about ¥%d at HK$%v", o.FilledJPY, want, o.FillPrice)
		}
		q, _ := f.b.x.Quote("9999")
		lim := q.Ask - 2
		o, err = f.b.PlaceOrder(ctx, actor, "A1", OrderRequest{Symbol: "9999", Side: "buy", Qty: 100, PriceType: "limit", LimitPrice: lim, Kind: "cash"}, "lim")
		if err != nil || o.Status != StatusOpen {
			t.Fatalf("resting limit: %+v %v", o, err)
		}
		checkBooks(t, f, "A1")
		// Sell pressure brings the price down to the limit.
		for i := 0; i < 50 && o.Status == StatusOpen; i++ {
			if _, err := f.b.x.Execute("9999", "sell", 20000, 0, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
			f.clock.Add(time.Minute)
			if err := f.b.Tick(ctx, f.clock.Now()); err != nil {
				t.Fatal(err)
			}
			orders, _ := f.b.Orders(ctx, "A1", 10)
			for _, x := range orders {
				if x.ID == o.ID {
					o.Status = x.Status
				}
			}
		}
		if o.Status != StatusFilled {
			t.Fatalf("limit order still %s", o.Status)
		}
		checkBooks(t, f, "A1")
		var bars, fills int
		for _, r := range f.recs {
			switch r.Type {
			case event.TypeBar:
				bars++
			case event.TypeFill:
				fills++
			}
		}
		if bars == 0 || fills != 2 {
			t.Errorf("emitted %d bars and %d fills", bars, fills)
		}
	})
}

// scripted is a guard that answers with a fixed action or error.
type scripted struct {
	action  string
	reasons []string // default ["test"]
	err     error
	seen    []*event.Record
}

func (s *scripted) Decide(_ context.Context, r *event.Record) (event.Decision, error) {
	s.seen = append(s.seen, r)
	reasons := s.reasons
	if reasons == nil {
		reasons = []string{"test"}
	}
	return event.Decision{Event: r.ID, Time: r.Time, Account: r.Account, Action: s.action, Factor: event.FactorPhishingResistant, Reasons: reasons, Policy: "t"}, s.err
}

// TestGuardHaltedBuy: a buy the guard denies for its issue's halt alone
// (a cluster node's watchtower raised it before this brokerage's list
// has it) is refused as a halted issue, as the list would refuse it a
// moment later; with another reason beside the halt, or on a sell, it is
// denied as any refusal.
func TestGuardHaltedBuy(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		g := &scripted{action: event.Deny}
		f := newFixture(t, db, g)
		ctx := context.Background()
		tests := []struct {
			side    string
			reasons []string
			code    string
		}{
			{event.SideBuy, []string{reason.InstrumentHalted}, reason.InstrumentHalted},
			{event.SideBuy, []string{reason.InstrumentHalted, "account_frozen"}, reason.Denied},
			{event.SideBuy, []string{"new_device", reason.InstrumentHalted}, reason.Denied},
			{event.SideBuy, []string{}, reason.Denied},
			{event.SideSell, []string{reason.InstrumentHalted}, reason.Denied},
		}
		for i, tt := range tests {
			g.reasons = tt.reasons
			req := OrderRequest{Symbol: "9999", Side: tt.side, Qty: 100, PriceType: "market", Kind: "cash"}
			if tt.side == event.SideSell {
				req.Symbol = "7203"
			}
			_, err := f.b.PlaceOrder(ctx, actor, "A1", req, fmt.Sprintf("h%d", i))
			e := reason.As(err)
			if e == nil || e.Code != tt.code || e.HTTPStatus() != http.StatusForbidden || e.Decision == nil {
				t.Errorf("%s %v: got %v, want 403 %s with the decision", tt.side, tt.reasons, err, tt.code)
				continue
			}
			if en, ja := e.Text("en"), e.Text("ja"); tt.code == reason.InstrumentHalted && (!strings.Contains(en, "9999") || !strings.Contains(ja, "9999")) {
				t.Errorf("%s %v: %q / %q do not name the issue", tt.side, tt.reasons, en, ja)
			}
		}
	})
}
func (s *scripted) Observe(context.Context, *event.Record) error { return nil }

func TestGuardIsObeyedAndFailsClosed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		g := &scripted{action: event.Allow}
		f := newFixture(t, db, g)
		ctx := context.Background()
		buy := OrderRequest{Symbol: "9999", Side: "buy", Qty: 100, PriceType: "market", Kind: "cash"}
		tests := []struct {
			action string
			err    error
			status int
			code   string
		}{
			{event.Deny, nil, http.StatusForbidden, reason.Denied},
			{event.Challenge, nil, http.StatusForbidden, reason.StepUpRequired},
			{event.Allow, errors.New("store down"), http.StatusServiceUnavailable, reason.GuardUnavailable},
			{"maybe", nil, http.StatusServiceUnavailable, reason.GuardUnavailable},
		}
		for i, tt := range tests {
			g.action, g.err = tt.action, tt.err
			for j, call := range []func(string) error{
				func(k string) error { _, err := f.b.Withdraw(ctx, actor, "A1", 5000, k); return err },
				func(k string) error { _, err := f.b.ChangeBank(ctx, actor, "A1", "Attacker Bank 999", k); return err },
				func(k string) error { _, err := f.b.PlaceOrder(ctx, actor, "A1", buy, k); return err },
			} {
				err := call(fmt.Sprintf("g%d-%d", i, j))
				if e := reason.As(err); e == nil || e.HTTPStatus() != tt.status || e.Code != tt.code {
					t.Errorf("%s/%v call %d: got %v, want %d %s", tt.action, tt.err, j, err, tt.status, tt.code)
				}
			}
		}
		a, _ := f.b.Account(ctx, "A1")
		if a.CashJPY != 1_000_000 || a.Bank != "Mizuho 001-1234567" {
			t.Errorf("refused actions changed the account: cash %d bank %q", a.CashJPY, a.Bank)
		}
		// A held withdrawal reserves the cash; nothing leaves.
		g.action, g.err = event.Hold, nil
		w, err := f.b.Withdraw(ctx, actor, "A1", 5000, "held")
		if e := reason.As(err); e == nil || e.Code != reason.Held || w == nil || w.Status != StatusHeld {
			t.Fatalf("hold: %+v %v", w, err)
		}
		checkBooks(t, f, "A1")
		// Every action reached the guard with its actor context.
		r := g.seen[len(g.seen)-1]
		if r.Type != event.TypeWithdrawal || r.AmountJPY != 5000 || r.IP != "192.0.2.1" || r.ASN != 2516 || r.Device != "dev1" || r.Session != "S1" || r.BankHash == "" {
			t.Errorf("record sent to the guard: %+v", r)
		}
		if err := r.Validate(); err != nil {
			t.Errorf("emitted record does not meet the spec: %v", err)
		}
	})
}

func TestStepUpBoundToTheAction(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		g := &scripted{action: event.Challenge}
		f := newFixture(t, db, g)
		ctx := context.Background()
		_, err := f.b.Withdraw(ctx, actor, "A1", 5000, "w1")
		e := reason.As(err)
		if e == nil || e.Code != reason.StepUpRequired || e.Binding == "" {
			t.Fatalf("challenge: %v", err)
		}
		stepped := actor
		// A step-up made for another amount does not carry over.
		other := *g.seen[0]
		other.AmountJPY = 900000
		stepped.StepUp = &StepUp{Factor: event.FactorPhishingResistant, Binding: Binding(&other)}
		if _, err := f.b.Withdraw(ctx, stepped, "A1", 5000, "w2"); reason.As(err) == nil || reason.As(err).Code != reason.StepUpRequired {
			t.Fatalf("step-up for another action accepted: %v", err)
		}
		// An OTP does not meet a passkey challenge.
		stepped.StepUp = &StepUp{Factor: event.FactorMFA, Binding: e.Binding}
		if _, err := f.b.Withdraw(ctx, stepped, "A1", 5000, "w3"); reason.As(err) == nil || reason.As(err).Code != reason.StepUpRequired {
			t.Fatalf("mfa met a phishing-resistant challenge: %v", err)
		}
		stepped.StepUp = &StepUp{Factor: event.FactorPhishingResistant, Binding: e.Binding}
		w, err := f.b.Withdraw(ctx, stepped, "A1", 5000, "w4")
		if err != nil || w.Status != "sent" {
			t.Fatalf("bound passkey step-up: %+v %v", w, err)
		}
		checkBooks(t, f, "A1")
	})
}

func TestHeldActionsReview(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		g := &scripted{action: event.Hold}
		f := newFixture(t, db, g)
		ctx := context.Background()
		w1, _ := f.b.Withdraw(ctx, actor, "A1", 100_000, "w1")
		w2, _ := f.b.Withdraw(ctx, actor, "A1", 50_000, "w2")
		o1, _ := f.b.PlaceOrder(ctx, actor, "A1", OrderRequest{Symbol: "9999", Side: "buy", Qty: 1000, PriceType: "market", Kind: "cash"}, "o1")
		o2, _ := f.b.PlaceOrder(ctx, actor, "A1", OrderRequest{Symbol: "7203", Side: "sell", Qty: 100, PriceType: "market", Kind: "nisa"}, "o2")
		held, err := f.b.Held(ctx, 10)
		if err != nil || len(held) != 4 {
			t.Fatalf("held: %v %v", held, err)
		}
		checkBooks(t, f, "A1")
		if err := f.b.ReleaseWithdrawal(ctx, w1.ID, true); err != nil {
			t.Fatal(err)
		}
		if err := f.b.ReleaseWithdrawal(ctx, w1.ID, false); err != ErrNotHeld {
			t.Fatalf("second decision on the same withdrawal: %v", err)
		}
		if err := f.b.ReleaseWithdrawal(ctx, w2.ID, false); err != nil {
			t.Fatal(err)
		}
		if o, err := f.b.ReleaseOrder(ctx, o1.ID, true); err != nil || o.Status != StatusFilled {
			t.Fatalf("approve order: %+v %v", o, err)
		}
		if o, err := f.b.ReleaseOrder(ctx, o2.ID, false); err != nil || o.Status != StatusRejected {
			t.Fatalf("reject order: %+v %v", o, err)
		}
		a, _ := f.b.Account(ctx, "A1")
		if a.ReservedJPY != 0 {
			t.Errorf("reserved %d after review", a.ReservedJPY)
		}
		if held, _ := f.b.Held(ctx, 10); len(held) != 0 {
			t.Errorf("still held: %v", held)
		}
		checkBooks(t, f, "A1")
	})
}

func TestGateRefusesEveryChannel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, nil)
		ctx := context.Background()
		var asked []GateOp
		f.b.SetGate(func(_ context.Context, account string, op GateOp) error {
			asked = append(asked, op)
			if op.Kind == "order" && op.Side == "sell" {
				return nil // a lock of buying only, say
			}
			return reason.New(http.StatusForbidden, reason.AccountLocked, "locked by the customer")
		})
		_, e1 := f.b.PlaceOrder(ctx, actor, "A1", OrderRequest{Symbol: "9999", Side: "buy", Qty: 100, PriceType: "market", Kind: "cash"}, "b")
		_, e2 := f.b.Withdraw(ctx, actor, "A1", 1000, "w")
		_, e3 := f.b.ChangeBank(ctx, actor, "A1", "Attacker Bank 1", "k")
		for i, err := range []error{e1, e2, e3} {
			if e := reason.As(err); e == nil || e.Code != reason.AccountLocked {
				t.Errorf("action %d: %v", i, err)
			}
		}
		if _, err := f.b.PlaceOrder(ctx, actor, "A1", OrderRequest{Symbol: "7203", Side: "sell", Qty: 100, PriceType: "market", Kind: "nisa"}, "s"); err != nil {
			t.Errorf("sell outside the lock: %v", err)
		}
		if fmt.Sprint(asked) != "[{order buy false} {withdrawal  false} {change  false} {order sell false}]" {
			t.Errorf("gate asked %v", asked)
		}
		checkBooks(t, f, "A1")
	})
}

// TestStepUpRule: with the step-up rule set, the brokerage (and so every
// channel, the API included) accepts a one-time code for a passkey
// challenge on a withdrawal only before the passkey deadline and only for
// an account without a passkey; never for a bank change; and it fails
// closed when the account's passkeys cannot be read.
func TestStepUpRule(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		g := &scripted{action: event.Challenge}
		f := newFixture(t, db, g)
		ctx := context.Background()
		has, readErr := false, error(nil)
		passkey := func(context.Context, string) (bool, error) { return has, readErr }
		code := func(kind string, call func(Actor, string) error, key string) error {
			err := call(actor, key+"-0")
			e := reason.As(err)
			if e == nil || e.Code != reason.StepUpRequired {
				t.Fatalf("%s: challenge: %v", kind, err)
			}
			a := actor
			a.StepUp = &StepUp{Factor: event.FactorMFA, Binding: e.Binding}
			return call(a, key)
		}
		withdraw := func(a Actor, k string) error { _, err := f.b.Withdraw(ctx, a, "A1", 5000, k); return err }
		bank := func(a Actor, k string) error { _, err := f.b.ChangeBank(ctx, a, "A1", "Other Bank 1", k); return err }
		for _, c := range []struct {
			name     string
			deadline time.Time
			has      bool
			readErr  error
			call     func(Actor, string) error
			ok       bool
		}{
			{"withdrawal before the deadline, no passkey", open.AddDate(0, 1, 0), false, nil, withdraw, true},
			{"withdrawal after the deadline", open.AddDate(0, -1, 0), false, nil, withdraw, false},
			{"withdrawal, passkey enrolled", open.AddDate(0, 1, 0), true, nil, withdraw, false},
			{"withdrawal, passkeys unreadable", open.AddDate(0, 1, 0), false, errors.New("db down"), withdraw, false},
			{"bank change before the deadline", open.AddDate(0, 1, 0), false, nil, bank, false},
		} {
			f.b.SetStepUpRule(assurance.Rule{PasskeyDeadline: c.deadline}, passkey)
			has, readErr = c.has, c.readErr
			err := code(c.name, c.call, c.name)
			if (err == nil) != c.ok {
				t.Errorf("%s: %v, want accepted %v", c.name, err, c.ok)
			}
		}
	})
}
