package risk

import (
	"slices"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// TestMaturityCarriedBySnapshot: a profile's history starts at its
// engine's first record, and a snapshot carries it, so that a guard
// partition rebuilt on another node from a snapshot and the stream's tail
// does not take every customer for a cold one (new devices not evidence,
// nothing established).
func TestMaturityCarriedBySnapshot(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2025, 4, d, 20, 0, 0, 0, time.FixedZone("JST", 9*3600)) }
	login := func(id string, d int, dev string) *event.Record {
		return &event.Record{ID: id, Type: event.TypeLogin, Time: day(d), Account: "A1", Session: id, IP: "203.0.113.10", ASN: 2516,
			Country: "JP", Device: dev, Method: event.FactorPassword, Factors: []string{event.FactorPassword, event.FactorSMSOTP}, OK: true}
	}
	a := NewEngine(nil)
	for d := 1; d <= 10; d++ {
		a.Decide(login("h"+string(rune('a'+d)), d, "dev-home"))
	}
	snap, err := a.ExportAccounts([]string{"A1"})
	if err != nil {
		t.Fatal(err)
	}
	b := NewEngine(nil)
	b.Observe(&event.Record{ID: "i", Type: event.TypeInstrument, Time: day(11), Symbol: "7203", Market: "TSE_PRIME", Currency: "JPY", Price: 2800, PriceJPY: 2800})
	if n, err := b.ImportAccounts(snap); n != 1 || err != nil {
		t.Fatalf("imported %d: %v", n, err)
	}
	for name, e := range map[string]*Engine{"same engine": a, "after the snapshot": b} {
		res := e.Decide(login("x-"+name, 11, "dev-new"))
		if got := res.Features["account.maturity_days"]; got != int64(10) {
			t.Errorf("%s: maturity %v days, want 10", name, got)
		}
		if !slices.Contains(res.Decision.Reasons, "new_device") {
			t.Errorf("%s: a new device on a profile with 10 days of history gave %v", name, res.Decision.Reasons)
		}
	}
	// A fresh engine has no history: the same sign-in is not stepped up for being new.
	c := NewEngine(nil)
	if res := c.Decide(login("y", 11, "dev-new")); len(res.Decision.Reasons) != 0 || res.Features["account.maturity_days"] != int64(0) {
		t.Errorf("cold engine: %v, maturity %v", res.Decision.Reasons, res.Features["account.maturity_days"])
	}
}
