package risk

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// snapshotEngine is an engine that learnt a few accounts' sign-ins,
// holdings and orders.
func snapshotEngine() (*Engine, []string) {
	e := NewEngine(nil)
	at := time.Date(2025, 4, 14, 9, 30, 0, 0, time.UTC)
	var accts []string
	e.Observe(&event.Record{ID: "i1", Type: event.TypeInstrument, Time: at, Symbol: "7203", Price: 2500, Currency: "JPY", Lot: 100, ADVShares: 1e6})
	for i := range 5 {
		a := fmt.Sprintf("A%03d", i)
		accts = append(accts, a)
		e.Decide(&event.Record{ID: a + "-l", Type: event.TypeLogin, Time: at, Account: a, Session: a + "-s", IP: "192.0.2.1", Device: "d" + a,
			Channel: event.ChannelWeb, Method: event.FactorPassword, Factors: []string{event.FactorPassword}, OK: true})
		e.Decide(&event.Record{ID: a + "-o", Type: event.TypeOrder, Time: at.Add(time.Minute), Account: a, Session: a + "-s", IP: "192.0.2.1", Device: "d" + a,
			Channel: event.ChannelWeb, OrderID: "o" + a, Symbol: "7203", Side: event.SideBuy, Qty: 100, PriceType: "market", AccountKind: "cash", ValueJPY: 250000})
	}
	return e, accts
}

// TestSnapshotRoundTrip: a profile exported and imported into an engine
// with the same instruments exports alike and decides alike; a freeze in
// force where it is loaded stays.
func TestSnapshotRoundTrip(t *testing.T) {
	e, accts := snapshotEngine()
	b, err := e.ExportAccounts(append(accts, "nobody"))
	if err != nil {
		t.Fatal(err)
	}
	f := NewEngine(nil)
	f.Observe(&event.Record{ID: "i1", Type: event.TypeInstrument, Time: time.Now(), Symbol: "7203", Price: 2500, Currency: "JPY", Lot: 100, ADVShares: 1e6})
	f.SetFrozen(accts[0], true)
	n, err := f.ImportAccounts(b)
	if err != nil || n != len(accts) {
		t.Fatalf("imported %d, %v", n, err)
	}
	f.SetFrozen(accts[0], false)
	again, err := f.ExportAccounts(accts)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, again) {
		t.Fatal("a loaded snapshot exports otherwise")
	}
	g := NewEngine(nil)
	g.Observe(&event.Record{ID: "i1", Type: event.TypeInstrument, Time: time.Now(), Symbol: "7203", Price: 2500, Currency: "JPY", Lot: 100, ADVShares: 1e6})
	g.SetFrozen(accts[1], true)
	if _, err := g.ImportAccounts(b); err != nil {
		t.Fatal(err)
	}
	r := &event.Record{ID: "p", Type: event.TypeLogin, Time: time.Date(2025, 4, 14, 10, 0, 0, 0, time.UTC), Account: accts[1], Session: "x", IP: "192.0.2.1",
		Device: "d" + accts[1], Channel: event.ChannelWeb, Method: event.FactorPassword, Factors: []string{event.FactorPassword}, OK: true}
	if d := g.Decide(r).Decision; d.Action != event.Deny {
		t.Errorf("frozen before the load, then %+v", d)
	}
	// An engine that learnt its instruments in another order loads it,
	// and decides a probe alike, feature for feature.
	h := NewEngine(nil)
	h.Observe(&event.Record{ID: "i0", Type: event.TypeInstrument, Time: time.Now(), Symbol: "9984", Price: 9000, Currency: "JPY", Lot: 100})
	h.Observe(&event.Record{ID: "i1", Type: event.TypeInstrument, Time: time.Now(), Symbol: "7203", Price: 2500, Currency: "JPY", Lot: 100, ADVShares: 1e6})
	e.Observe(&event.Record{ID: "i0", Type: event.TypeInstrument, Time: time.Now(), Symbol: "9984", Price: 9000, Currency: "JPY", Lot: 100})
	if _, err := h.ImportAccounts(b); err != nil {
		t.Fatal(err)
	}
	for _, sym := range []string{"7203", "9984"} {
		probe := &event.Record{ID: "p-" + sym, Type: event.TypeOrder, Time: time.Date(2025, 4, 14, 9, 45, 0, 0, time.UTC), Account: accts[2], Session: accts[2] + "-s",
			IP: "192.0.2.1", Device: "d" + accts[2], Channel: event.ChannelWeb, OrderID: "p", Symbol: sym, Side: event.SideSell, Qty: 100,
			PriceType: "market", AccountKind: "cash", ValueJPY: 250000}
		var want, got Result
		e.DecideInto(probe, &want, true)
		h.DecideInto(probe, &got, true)
		if fmt.Sprint(want.Decision, want.Features) != fmt.Sprint(got.Decision, got.Features) {
			t.Errorf("%s: loaded into another instrument order: %v %v, want %v %v", sym, got.Decision, got.Features, want.Decision, want.Features)
		}
	}
}

// FuzzImportAccounts: a snapshot read from the cluster's store is outside
// input; a corrupt one is an error, never a panic.
func FuzzImportAccounts(f *testing.F) {
	e, accts := snapshotEngine()
	b, _ := e.ExportAccounts(accts)
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		NewEngine(nil).ImportAccounts(b)
	})
}
