package surveil

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

const (
	benchInstruments = 4000
	benchAccounts    = 100_000
)

// benchStream is a realistic day: the reference data of 4,000 instruments
// and 100,000 accounts (setup), then per minute a bar for every instrument
// with about 1,000 customer records in between: logins, orders (a quarter of
// them first-ever buys of thin issues) and their fills.
func benchStream(minutes int) (setup, day []*event.Record) {
	rng := rand.New(rand.NewPCG(1, 2))
	syms := make([]string, benchInstruments)
	price := make([]float64, benchInstruments)
	for i := range syms {
		syms[i] = fmt.Sprintf("%04d", 1000+i)
		price[i] = float64(50 + rng.IntN(5000))
		market := []string{"TSE_PRIME", "TSE_STANDARD", "TSE_GROWTH"}[i%3]
		setup = append(setup, &event.Record{ID: "i", Type: event.TypeInstrument, Time: clock(0, 8, 0, 0), Symbol: syms[i], Market: market, Currency: "JPY", Price: price[i], PriceJPY: price[i], ADVShares: int64(10_000 + rng.IntN(5_000_000)), Lot: 100})
	}
	accts := make([]string, benchAccounts)
	for i := range accts {
		accts[i] = fmt.Sprintf("A%06d", i)
		s := rng.IntN(benchInstruments)
		setup = append(setup, &event.Record{ID: "a", Type: event.TypeAccount, Time: clock(0, 8, 0, 0), Account: accts[i], Holdings: []event.Holding{
			{Symbol: syms[s], Qty: 100, CostJPY: int64(100 * price[s]), Kind: event.KindCash},
			{Symbol: syms[(s+7)%benchInstruments], Qty: 200, CostJPY: int64(200 * price[(s+7)%benchInstruments]), Kind: event.KindNISA},
		}})
		setup = append(setup, &event.Record{ID: "l", Type: event.TypeLogin, Time: clock(-2, 20, 0, 0), Account: accts[i], IP: fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), ASN: 2516, Country: "JP", Device: "dev-" + accts[i], Method: "password", OK: true})
	}
	for m := 1; m <= minutes; m++ {
		t := clock(0, 9, 0, 0).Add(time.Duration(m) * time.Minute)
		for range 1000 {
			a := rng.IntN(benchAccounts)
			s := rng.IntN(benchInstruments)
			ts := t.Add(-time.Duration(rng.IntN(59000)) * time.Millisecond)
			base := event.Record{ID: "c", Time: ts, Account: accts[a], IP: fmt.Sprintf("10.%d.%d.%d", a>>16, a>>8&255, a&255), ASN: 2516, Country: "JP", Device: "dev-" + accts[a], Channel: "web"}
			switch k := rng.IntN(10); {
			case k < 2:
				r := base
				r.Type, r.Method, r.OK = event.TypeLogin, "password", true
				day = append(day, &r)
			case k < 6:
				r := base
				r.Type, r.OrderID, r.Symbol, r.Qty, r.PriceType, r.AccountKind = event.TypeOrder, "o", syms[s], 100, event.PriceMarket, event.KindCash
				r.Side = []string{event.SideBuy, event.SideSell}[rng.IntN(2)]
				r.ValueJPY = int64(100 * price[s])
				day = append(day, &r)
			default:
				r := event.Record{ID: "f", Type: event.TypeFill, Time: ts, Account: accts[a], OrderID: "o", Symbol: syms[s], Qty: 100, Price: price[s], ValueJPY: int64(100 * price[s])}
				r.Side = []string{event.SideBuy, event.SideSell}[rng.IntN(2)]
				day = append(day, &r)
			}
		}
		for i, s := range syms {
			p := price[i]
			day = append(day, &event.Record{ID: "b", Type: event.TypeBar, Time: t, Symbol: s, Open: p, High: p + 1, Low: p - 1, Close: p, Volume: int64(100 + rng.IntN(5000))})
		}
	}
	// stream order: sort each minute's customer records before its bars
	sortStable(day)
	return setup, day
}

func sortStable(rs []*event.Record) {
	// insertion by minute blocks is enough: records are nearly sorted
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Time.Before(rs[j-1].Time); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

var sink int

// BenchmarkObserve measures records per second per core through every
// detector on a realistic stream, against a baseline loop that only
// switches on the record type.
func BenchmarkObserve(b *testing.B) {
	setup, day := benchStream(100)
	b.Run("baseline_switch", func(b *testing.B) {
		var n [8]int
		for i := 0; b.Loop(); i++ {
			r := day[i%len(day)]
			switch r.Type {
			case event.TypeBar:
				n[0]++
			case event.TypeOrder:
				n[1]++
			case event.TypeFill:
				n[2]++
			case event.TypeLogin:
				n[3]++
			case event.TypeInstrument:
				n[4]++
			case event.TypeAccount:
				n[5]++
			}
		}
		sink += n[0] + n[1]
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("all_detectors", func(b *testing.B) {
		w := New(DefaultConfig())
		for _, r := range setup {
			w.Observe(r, nil)
		}
		d := &event.Decision{Action: event.Allow}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			r := day[i%len(day)]
			if r.Type.Action() {
				sink += len(w.Observe(r, d))
			} else {
				sink += len(w.Observe(r, nil))
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkMemory reports the heap held per tracked instrument (reference
// data, a trading day of bars, minute volumes) and per account (a snapshot
// with two holdings, a login from home, an order and a fill), measured with
// runtime.MemStats after GC over 4,000 instruments and 100,000 accounts.
func BenchmarkMemory(b *testing.B) {
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var perInst, perAcct float64
	for b.Loop() {
		b.StopTimer()
		var recs []*event.Record
		for i := range benchInstruments {
			s := fmt.Sprintf("%04d", 1000+i)
			recs = append(recs, &event.Record{ID: "i", Type: event.TypeInstrument, Time: clock(0, 8, 0, 0), Symbol: s, Market: "TSE_STANDARD", Currency: "JPY", Price: 150, PriceJPY: 150, ADVShares: 50_000, Lot: 100})
		}
		var bars []*event.Record
		for m := 1; m <= 30; m++ {
			for i := range benchInstruments {
				bars = append(bars, &event.Record{ID: "b", Type: event.TypeBar, Time: clock(0, 9, m, 0), Symbol: recs[i].Symbol, Open: 150, High: 151, Low: 149, Close: 150, Volume: 1000})
			}
		}
		var acc []*event.Record
		for i := range benchAccounts {
			id := fmt.Sprintf("A%06d", i)
			s1, s2 := recs[i%benchInstruments].Symbol, recs[(i+1)%benchInstruments].Symbol
			ctx := event.Record{Time: clock(0, 10, 0, 0), Account: id, IP: fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), ASN: 2516, Country: "JP", Device: "dev-" + id}
			snap := &event.Record{ID: "a", Type: event.TypeAccount, Time: clock(0, 8, 0, 0), Account: id, Holdings: []event.Holding{{Symbol: s1, Qty: 100, Kind: "cash"}, {Symbol: s2, Qty: 100, Kind: "nisa"}}}
			login := ctx
			login.Type, login.OK, login.Method = event.TypeLogin, true, "password"
			order := ctx
			order.Type, order.Symbol, order.Side, order.Qty, order.PriceType = event.TypeOrder, s1, "buy", 100, "market"
			fill := event.Record{Type: event.TypeFill, Time: clock(0, 10, 0, 1), Account: id, Symbol: s1, Side: "buy", Qty: 100, Price: 150}
			acc = append(acc, snap, &login, &order, &fill)
		}
		b.StartTimer()
		h0 := heap()
		w := New(DefaultConfig())
		for _, r := range recs {
			w.Observe(r, nil)
		}
		for _, r := range bars {
			w.Observe(r, nil)
		}
		h1 := heap()
		for _, r := range acc {
			w.Observe(r, nil)
		}
		h2 := heap()
		perInst = float64(int64(h1)-int64(h0)) / benchInstruments
		perAcct = float64(int64(h2)-int64(h1)) / benchAccounts
		runtime.KeepAlive(w)
		runtime.KeepAlive(recs)
		runtime.KeepAlive(bars)
		runtime.KeepAlive(acc)
	}
	b.ReportMetric(perInst, "B/instrument")
	b.ReportMetric(perAcct, "B/account")
}
