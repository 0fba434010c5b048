package surveil

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// thin adds a thin ¥100 TSE Standard issue with flat bars at 100 except
// where path says otherwise.
func (g *gen) thin(sym string, path func(m int) (float64, int64)) {
	g.instrument(clock(0, 8, 0, 0), sym, "TSE_STANDARD", 100, 50_000)
	if path == nil {
		path = func(int) (float64, int64) { return 100, 200 }
	}
	g.bars(0, sym, path)
}

// cashBuy is a takeover that buys with the cash already in the account.
func (g *gen) cashBuy(t time.Time, victim, sym string, atk actor, qty int64) {
	atk.acct, atk.sess = victim, "atk-"+victim
	g.login(t, atk)
	g.order(t.Add(30*time.Second), atk, sym, event.SideBuy, qty, 0, 100)
	g.fill(t.Add(31*time.Second), victim, sym, event.SideBuy, qty, 100)
}

func flat(int) (float64, int64) { return 100, 200 }

func TestDetectors(t *testing.T) {
	tests := []struct {
		name   string
		build  func(g *gen)
		want   []string // kinds that must be raised
		absent []string // kinds that must not
		reason string   // a reason code some wanted alert carries
	}{
		{"R1 liquidate then concentrate", func(g *gen) {
			g.market()
			g.thin("7777", nil)
			g.victims("V", 1, 1000)
			g.hijack(clock(0, 10, 0, 0), "V00", "7203", 1000, 2400, "7777", flat, attacker(1), "", 0)
		}, []string{KindLiquidateConcentrate}, []string{KindCrossAccountPump}, "R1_liquidate_concentrate"},
		{"R1 partial sale is not liquidation", func(g *gen) {
			g.market()
			g.thin("7777", nil)
			g.victims("V", 1, 3000)
			g.hijack(clock(0, 10, 0, 0), "V00", "7203", 1000, 2400, "7777", flat, attacker(1), "", 0)
		}, nil, []string{KindLiquidateConcentrate}, ""},
		{"R1 issue already held", func(g *gen) {
			g.market()
			g.thin("7777", nil)
			g.account(clock(0, 7, 0, 0), "V00", holding("7203", 1000, 2400), holding("7777", 100, 100))
			g.history("V00", 0)
			g.hijack(clock(0, 10, 0, 0), "V00", "7203", 1000, 2400, "7777", flat, attacker(1), "", 0)
		}, nil, []string{KindLiquidateConcentrate}, ""},
		{"R3 three suspect first-ever buyers", func(g *gen) {
			g.market()
			g.thin("7777", nil)
			g.victims("V", 3, 10)
			for i := range 3 {
				g.cashBuy(clock(0, 10, 5*i, 0), fmt.Sprintf("V%02d", i), "7777", attacker(0), 500)
			}
		}, []string{KindCrossAccountPump, KindHijackedAccounts}, nil, "R3_convergence"},
		{"R3 first-ever buyers on their own devices", func(g *gen) {
			g.market()
			g.thin("7777", nil)
			g.victims("V", 5, 10)
			for i := range 5 {
				h := home(fmt.Sprintf("V%02d", i), i)
				g.cashBuy(clock(0, 10, 5*i, 0), h.acct, "7777", h, 500)
			}
		}, nil, []string{KindCrossAccountPump}, ""},
		{"R3 passkey logins do not count", func(g *gen) {
			g.market()
			g.thin("7777", nil)
			g.victims("V", 3, 10)
			for i := range 3 {
				a := attacker(3*i + 1) // JP residential proxy: new device, new network
				a.acct, a.sess = fmt.Sprintf("V%02d", i), "pk"
				r := a.rec(event.TypeLogin, clock(0, 10, 5*i, 0))
				r.Session, r.Method, r.Factors, r.OK = "", event.FactorPasskey, []string{"passkey"}, true
				g.add(r)
				g.order(clock(0, 10, 5*i+2, 0), a, "7777", event.SideBuy, 500, 0, 100)
			}
		}, nil, []string{KindCrossAccountPump}, ""},
		{"R4 firm participation", func(g *gen) {
			g.market()
			g.thin("7777", func(m int) (float64, int64) {
				if m >= 60 && m < 70 {
					return 100, 3000
				}
				return 100, 100
			})
			for i := range 10 {
				h := home(fmt.Sprintf("P%02d", i), i)
				g.account(clock(0, 7, 0, 0), h.acct)
				g.order(clock(0, 10, i, 10), h, "7777", event.SideBuy, 2000, 100, 0)
				g.fill(clock(0, 10, i, 20), h.acct, "7777", event.SideBuy, 2000, 100)
			}
		}, []string{KindFirmParticipation}, []string{KindCrossAccountPump}, "R4_participation_5m"},
		{"R5 walk-up past half the limit", func(g *gen) {
			g.market()
			g.thin("7777", func(m int) (float64, int64) { return lerp(m, 30, 60, 100, 130), 500 })
			for i := range 3 {
				h := home(fmt.Sprintf("P%02d", i), i)
				g.order(clock(0, 10, 1, 10*i), h, "7777", event.SideBuy, 100, 0, 130)
			}
		}, []string{KindWalkUp}, nil, "R5_half_limit"},
		{"R5 small rise is no walk-up", func(g *gen) {
			g.market()
			g.thin("7777", func(m int) (float64, int64) { return lerp(m, 30, 60, 100, 104), 500 })
			for i := range 3 {
				h := home(fmt.Sprintf("P%02d", i), i)
				g.order(clock(0, 10, 1, 10*i), h, "7777", event.SideBuy, 100, 0, 104)
			}
		}, nil, []string{KindWalkUp}, ""},
		{"R6 fill far above the previous close", func(g *gen) {
			g.market()
			g.thin("7777", nil)
			g.fill(clock(0, 10, 0, 0), "P00", "7777", event.SideBuy, 100, 125)
		}, []string{KindPriceDeviation}, nil, "R6_above_prev_close"},
		{"R6 fill far above VWAP", func(g *gen) {
			g.market()
			g.thin("7777", nil)
			g.fill(clock(0, 10, 0, 0), "P00", "7777", event.SideBuy, 100, 106)
		}, []string{KindPriceDeviation}, nil, "R6_vwap_sigma"},
		{"R6 ordinary fill", func(g *gen) {
			g.market()
			g.thin("7777", nil)
			g.fill(clock(0, 10, 0, 0), "P00", "7777", event.SideBuy, 100, 101)
		}, nil, []string{KindPriceDeviation}, ""},
		{"R7 the ring sells into hijacked buys", func(g *gen) {
			g.market()
			g.thin("7777", nil)
			g.ring("RING1", "7777", 100_000, 95)
			g.victims("V", 3, 1000)
			for i := range 3 {
				g.hijack(clock(0, 10, 5*i, 0), fmt.Sprintf("V%02d", i), "7203", 1000, 2400, "7777", flat, attacker(i), "RING1", 0)
			}
		}, []string{KindRingSeller}, nil, "R7_accumulated"},
		{"R7 a long-time holder selling is no ring", func(g *gen) {
			g.market()
			g.thin("7777", nil)
			g.account(clock(0, 7, 0, 0), "OLD", holding("7777", 100_000, 90))
			g.victims("V", 3, 1000)
			for i := range 3 {
				g.hijack(clock(0, 10, 5*i, 0), fmt.Sprintf("V%02d", i), "7203", 1000, 2400, "7777", flat, attacker(i), "OLD", 0)
			}
		}, []string{KindCrossAccountPump}, []string{KindRingSeller}, ""},
		{"R9 spike and reversal", func(g *gen) {
			g.market()
			g.thin("7777", func(m int) (float64, int64) {
				if m <= 60 {
					return lerp(m, 0, 60, 100, 130), 500
				}
				return lerp(m, 60, 390, 130, 110), 500
			})
		}, []string{KindSpikeReversal}, nil, "R9_spike_reversal"},
		{"R9 a rise that holds", func(g *gen) {
			g.market()
			g.thin("7777", func(m int) (float64, int64) { return lerp(m, 0, 60, 100, 130), 500 })
		}, nil, []string{KindSpikeReversal}, ""},
		{"R10 one crew in two issues", func(g *gen) {
			g.market()
			g.thin("7777", nil)
			g.thin("8888", nil)
			g.victims("V", 6, 10)
			crew := attacker(0)
			for i := range 6 {
				sym := []string{"7777", "8888"}[i/3]
				g.cashBuy(clock(0, 10, 5*i, 0), fmt.Sprintf("V%02d", i), sym, crew, 500)
			}
		}, []string{KindCampaign}, nil, "R10_campaign"},
		{"shared infrastructure", func(g *gen) {
			g.market()
			for i := range 5 {
				a := attacker(0)
				a.acct, a.device = fmt.Sprintf("S%02d", i), fmt.Sprintf("d%d", i)
				g.login(clock(0, 10, i, 0), a)
			}
		}, []string{KindSharedInfrastructure}, nil, "shared_ip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGen()
			tt.build(g)
			w := New(DefaultConfig())
			alerts := replay(w, g.stream())
			kinds := map[string][]string{}
			for _, a := range alerts {
				kinds[a.Kind] = append(kinds[a.Kind], a.Reasons...)
			}
			for _, k := range tt.want {
				if _, ok := kinds[k]; !ok {
					t.Errorf("no %s alert; got %v", k, keys(kinds))
				}
			}
			for _, k := range tt.absent {
				if _, ok := kinds[k]; ok {
					t.Errorf("unexpected %s alert: %v", k, kinds[k])
				}
			}
			if tt.reason != "" && len(tt.want) > 0 && !slices.Contains(kinds[tt.want[0]], tt.reason) {
				t.Errorf("%s reasons %v lack %s", tt.want[0], kinds[tt.want[0]], tt.reason)
			}
		})
	}
}

func keys(m map[string][]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestProfile(t *testing.T) {
	tests := []struct {
		market string
		price  float64
		adv    int64
		want   int
	}{
		{"TSE_STANDARD", 150, 50_000, 15}, // band and thin: ¥7.5m a day
		{"TSE_STANDARD", 84, 100_000, 15},
		{"TSE_STANDARD", 300, 20_000, 11},  // cheap and thin, outside the band
		{"TSE_STANDARD", 150, 150_000, 12}, // ¥22.5m: fairly thin
		{"TSE_STANDARD", 150, 5_000_000, 9},
		{"TSE_GROWTH", 30, 2_000_000, 5},
		{"TSE_STANDARD", 800, 5_000, 6},   // thin but not cheap
		{"TSE_PRIME", 150, 50_000_000, 0}, // large cap
		{"TSE_PRIME", 2400, 20_000_000, 0},
	}
	for _, tt := range tests {
		w := New(DefaultConfig())
		w.Observe(&event.Record{ID: "i", Type: event.TypeInstrument, Time: clock(0, 8, 0, 0), Symbol: "S", Market: tt.market, Currency: "JPY", Price: tt.price, PriceJPY: tt.price, ADVShares: tt.adv, Lot: 100}, nil)
		if got := w.insts["S"].profile; got != tt.want {
			t.Errorf("%s ¥%v adv %d: profile %d, want %d", tt.market, tt.price, tt.adv, got, tt.want)
		}
	}
}

// TestTickSizeAndPriceLimit checks the watchtower's reading of
// internal/market's tables: an instrument without a market is a Tokyo
// issue, and R5's yardstick is the TSE limit of the yen price.
func TestTickSizeAndPriceLimit(t *testing.T) {
	ticks := []struct {
		market string
		price  float64
		want   float64
	}{
		{"TSE_STANDARD", 84, 1}, {"TSE_PRIME", 3000, 1}, {"TSE_PRIME", 3001, 5},
		{"TSE_GROWTH", 12000, 10}, {"", 0, 1}, {"", 4000, 5}, {"HK", 1, 0.01}, {"SH", 1500, 0.01},
	}
	for _, tt := range ticks {
		if got := tickSize(tt.market, tt.price); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("tickSize(%s, %v) = %v, want %v", tt.market, tt.price, got, tt.want)
		}
	}
	limits := []struct{ prev, want float64 }{
		{0, 0}, {30, 30}, {99, 30}, {100, 50}, {199, 50}, {200, 80}, {499, 80}, {500, 100},
		{700, 150}, {1000, 300}, {1500, 400}, {2000, 500}, {3000, 700}, {5000, 1000}, {6999, 1000},
		{1000000, 300000}, {50000000, 10000000},
	}
	for _, tt := range limits {
		if got := priceLimitJPY(tt.prev); got != tt.want {
			t.Errorf("priceLimitJPY(%v) = %v, want %v", tt.prev, got, tt.want)
		}
	}
}

// TestOddInput feeds records the decoder would never pass, and records
// about instruments and accounts never described: nothing may panic.
func TestOddInput(t *testing.T) {
	w := New(Config{})
	t0 := clock(0, 10, 0, 0)
	recs := []*event.Record{
		nil,
		{},
		{Type: "quote", Time: t0},
		{Type: event.TypeBar, Time: t0, Symbol: "X", Open: 0, High: 0, Low: 0, Close: 0, Volume: 0},
		{Type: event.TypeBar, Time: t0, Symbol: "X", Open: 1, High: 1, Low: 1, Close: 1, Volume: -5},
		{Type: event.TypeBar, Time: t0, Symbol: "X", Close: math.NaN()},
		{Type: event.TypeBar, Time: t0, Symbol: "", Close: 5},
		{Type: event.TypeFill, Time: t0, Account: "A", Symbol: "Y", Side: "buy", Qty: 100, Price: 10},
		{Type: event.TypeFill, Time: t0, Account: "A", Symbol: "Y", Side: "sell", Qty: 500, Price: 10},
		{Type: event.TypeFill, Time: t0, Account: "A", Symbol: "Y", Side: "buy", Qty: 0, Price: 10},
		{Type: event.TypeFill, Time: t0, Account: "A", Symbol: "Y", Side: "buy", Qty: 10, Price: math.Inf(1)},
		{Type: event.TypeOrder, Time: t0, Account: "B", Symbol: "Z", Side: "buy", Qty: 100, PriceType: "market"},
		{Type: event.TypeOrder, Time: t0, Account: "B", Symbol: "Z", Side: "sell", Qty: 100, PriceType: "limit", LimitPrice: -3},
		{Type: event.TypeOrder, Time: t0, Account: "", Symbol: "Z", Side: "buy", Qty: 100},
		{Type: event.TypeLogin, Time: t0, Account: "B", OK: true},
		{Type: event.TypeLogin, Time: t0, Account: "C", OK: false, Device: "d"},
		{Type: event.TypeAccount, Time: t0, Account: "D", Holdings: []event.Holding{{Symbol: "", Qty: 5}, {Symbol: "Q", Qty: -1}}},
		{Type: event.TypeInstrument, Time: t0, Symbol: "I", Price: 0, PriceJPY: 0},
		{Type: event.TypeInstrument, Time: t0, Symbol: "J", Price: 100, PriceJPY: 100, ADVShares: -1},
		{Type: event.TypeBar, Time: time.Time{}, Symbol: "X", Open: 1, High: 1, Low: 1, Close: 1},
		{Type: event.TypeBar, Time: t0.Add(-48 * time.Hour), Symbol: "X", Open: 1, High: 1, Low: 1, Close: 1},
	}
	for i, r := range recs {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("record %d: panic %v", i, p)
				}
			}()
			w.Observe(r, &event.Decision{Score: 100, Reasons: []string{"new_device"}})
		}()
	}
	for _, s := range []string{"X", "Y", "Z", "nope", ""} {
		_ = w.Heat(s)
		_ = w.Halted(s)
	}
	_ = w.HeldProceeds("nope", t0)
	_ = w.Campaigns()
	_ = w.Alerts(AlertQuery{Account: "A"})
}

// TestNeverAct checks that a zero HaltScore and FreezeScore alert only.
func TestNeverAct(t *testing.T) {
	cfg := DefaultConfig()
	cfg.HaltScore, cfg.FreezeScore = 0, 0
	w := New(cfg)
	alerts := replay(w, findScenario(t, "ramp_10_accounts_84_to_110"))
	if len(alerts) == 0 {
		t.Fatal("no alerts")
	}
	for _, a := range alerts {
		if a.Action != event.AlertNone {
			t.Fatalf("acted: %s", a.AppendJSON(nil))
		}
	}
	if w.Halted("7777") {
		t.Error("halted")
	}
}

// TestQueries exercises the analyst-console queries on the ramp.
func TestQueries(t *testing.T) {
	w := New(DefaultConfig())
	replay(w, findScenario(t, "ramp_10_accounts_84_to_110"))
	pumps := w.Alerts(AlertQuery{Kind: KindCrossAccountPump})
	if len(pumps) != 1 || pumps[0].Symbol != "7777" || len(pumps[0].Accounts) != 10 {
		t.Fatalf("want one pump alert naming 10 accounts, got %+v", pumps)
	}
	if got := w.Alerts(AlertQuery{Account: "V03"}); len(got) < 2 {
		t.Errorf("alerts naming V03: %d", len(got))
	}
	if got := w.Alerts(AlertQuery{Limit: 2}); len(got) != 2 {
		t.Errorf("limit 2 gave %d", len(got))
	}
	// the ring's proceeds are held for 14 days from its sells
	at := clock(0, 15, 0, 0)
	if h := w.HeldProceeds("RING1", at); h <= 0 {
		t.Errorf("ring proceeds held: %d", h)
	}
	if h := w.HeldProceeds("RING1", at.Add(15*24*time.Hour)); h != 0 {
		t.Errorf("still held after 15 days: %d", h)
	}
	if !w.Frozen("V00") || w.Frozen("B001") {
		t.Errorf("frozen V00 %v B001 %v", w.Frozen("V00"), w.Frozen("B001"))
	}
	if !w.Release("7777") || w.Halted("7777") {
		t.Error("release")
	}
}

// TestCampaignAcrossIssues checks that R10 groups two pumped issues run by
// one crew into a campaign and labels their alerts.
func TestCampaignAcrossIssues(t *testing.T) {
	g := newGen()
	g.market()
	g.thin("7777", nil)
	g.thin("8888", nil)
	g.victims("V", 6, 10)
	crew := attacker(0)
	for i := range 6 {
		g.cashBuy(clock(0, 10, 5*i, 0), fmt.Sprintf("V%02d", i), []string{"7777", "8888"}[i/3], crew, 500)
	}
	w := New(DefaultConfig())
	replay(w, g.stream())
	cs := w.Campaigns()
	if len(cs) != 1 {
		t.Fatalf("campaigns: %+v", cs)
	}
	c := cs[0]
	if !slices.Equal(c.Symbols, []string{"7777", "8888"}) || len(c.Accounts) != 6 || !slices.Contains(c.IPs, crew.ip) {
		t.Errorf("campaign %+v", c)
	}
	for _, a := range w.Alerts(AlertQuery{Kind: KindCrossAccountPump}) {
		if a.Campaign != c.ID {
			t.Errorf("%s not in campaign: %q", a.Alert, a.Campaign)
		}
	}
}
