package surveil

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// sharedStream is a morning of customers who share 60 addresses (a small
// provider's NAT, AS64512: a big carrier's NAT pool links no one) and buy thin issues now and then, with, from minute
// 20, hijacked accounts (which traded from home first) on a foreign data
// centre dumping their holdings into one thin issue: campaigns that grow to
// hundreds of accounts, and freezes of members that joined before they had
// evidence of their own.
func sharedStream(seed uint64, accounts, minutes int) []*event.Record {
	rng := rand.New(rand.NewPCG(seed, 3))
	var out []*event.Record
	t0 := clock(0, 9, 0, 0)
	var syms []string
	price := map[string]float64{}
	for i := range 30 {
		sym, px, adv, market := fmt.Sprintf("%d", 7000+i), 1000+float64(i*100), int64(5_000_000), "TSE_PRIME"
		if i >= 10 {
			sym, px, adv, market = fmt.Sprintf("%d", 3000+i), 80+float64(i*3), 60_000+int64(i)*1000, "TSE_STANDARD"
		}
		syms = append(syms, sym)
		price[sym] = px
		out = append(out, &event.Record{ID: "i" + sym, Type: event.TypeInstrument, Time: t0.Add(-time.Hour), Symbol: sym, Market: market, Currency: "JPY", Price: px, PriceJPY: px, ADVShares: adv, Lot: 100})
	}
	acct := func(i int) string { return fmt.Sprintf("A%05d", i) }
	for i := range accounts {
		out = append(out, &event.Record{ID: "a", Type: event.TypeAccount, Time: t0.Add(-time.Hour), Account: acct(i),
			Holdings: []event.Holding{{Symbol: syms[i%10], Qty: 500, CostJPY: 500 * int64(price[syms[i%10]]), Kind: event.KindCash}}})
	}
	id := 0
	order := func(at time.Time, a int, sym, side string, qty int64, ip string, asn int64, country, dev string) {
		id++
		base := event.Record{Time: at, Account: acct(a), Session: fmt.Sprintf("s%d-%s", a, dev), IP: ip, ASN: asn, Country: country, Device: dev, UA: "Mozilla/5.0", Channel: "web"}
		o := base
		o.ID, o.Type, o.OrderID, o.Symbol, o.Side, o.Qty, o.PriceType, o.AccountKind = fmt.Sprintf("o%d", id), event.TypeOrder, fmt.Sprintf("o%d", id), sym, side, qty, event.PriceMarket, event.KindCash
		o.ValueJPY = int64(float64(qty) * price[sym])
		f := event.Record{ID: fmt.Sprintf("f%d", id), Type: event.TypeFill, Time: at, Account: o.Account, OrderID: o.OrderID, Symbol: sym, Side: side, Qty: qty, Price: price[sym], ValueJPY: o.ValueJPY}
		out = append(out, &o, &f)
	}
	for m := range minutes {
		now := t0.Add(time.Duration(m) * time.Minute)
		for range accounts / 20 {
			a := rng.IntN(accounts)
			at := now.Add(time.Duration(rng.IntN(50)) * time.Second)
			ip, dev := fmt.Sprintf("192.0.2.%d", 64+a%60), fmt.Sprintf("d%d", a)
			if rng.IntN(2) == 0 {
				login := &event.Record{ID: "l", Type: event.TypeLogin, Time: at, Account: acct(a), Session: fmt.Sprintf("s%d-%s", a, dev), IP: ip, ASN: 64512, Country: "JP", Device: dev, UA: "Mozilla/5.0", Channel: "web", Method: "password", Factors: []string{"password", "email_otp"}, OK: true}
				out = append(out, login)
				continue
			}
			sym, side := syms[rng.IntN(len(syms))], event.SideBuy
			if rng.IntN(2) == 0 {
				sym, side = syms[a%10], event.SideSell
			}
			order(at, a, sym, side, int64(100*(1+rng.IntN(3))), ip, 64512, "JP", dev)
		}
		if m >= 5 && m < 25 {
			// the accounts to be hijacked trade from home first, sharing
			// its address with their neighbours
			a := accounts - 1 - (m - 5)
			order(now.Add(30*time.Second), a, syms[10+a%15], event.SideBuy, 100, fmt.Sprintf("192.0.2.%d", 64+a%60), 64512, "JP", fmt.Sprintf("d%d", a))
		}
		if m >= 20 && m < 40 {
			a := accounts - 1 - (m - 20)
			at := now.Add(50 * time.Second)
			out = append(out, &event.Record{ID: "l", Type: event.TypeLogin, Time: at, Account: acct(a), Session: fmt.Sprintf("s%d-x", a), IP: "198.51.100.7", ASN: 16509, Country: "US", Device: "attacker", UA: "curl", Channel: "web", Method: "password", Factors: []string{"password", "email_otp"}, OK: true})
			order(at.Add(5*time.Second), a, syms[a%10], event.SideSell, 500, "198.51.100.7", 16509, "US", "attacker")
			order(at.Add(6*time.Second), a, syms[25], event.SideBuy, 10000, "198.51.100.7", 16509, "US", "attacker")
			price[syms[25]] *= 1.03
		}
		for _, s := range syms {
			p := price[s]
			out = append(out, &event.Record{ID: "b", Type: event.TypeBar, Time: now.Add(time.Minute), Symbol: s, Open: p, High: p, Low: p, Close: p, Volume: 200})
		}
	}
	sortStable(out)
	return out
}

// TestIncrementalCampaignChecks checks that campaign checks which take in
// only the members new since the last one raise exactly the alerts that
// checks taking in every member raise, on a stream whose campaigns grow to
// hundreds of accounts and freeze some.
func TestIncrementalCampaignChecks(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			stream := sharedStream(seed, 20000, 40)
			run := func(checkAll bool) (out []byte, kinds map[string]int) {
				w := New(DefaultConfig())
				w.checkAll = checkAll
				kinds = map[string]int{}
				d := &event.Decision{Action: event.Allow}
				for _, r := range stream {
					var as []event.Alert
					if r.Type.Action() {
						as = w.Observe(r, d)
					} else {
						as = w.Observe(r, nil)
					}
					for _, a := range as {
						kinds[a.Kind]++
						if a.Action == event.AlertFreezeAccounts {
							kinds["freeze"]++
						}
						b, _ := json.Marshal(a)
						out = append(append(out, b...), '\n')
					}
				}
				return out, kinds
			}
			ref, kinds := run(true)
			got, _ := run(false)
			if kinds[KindCampaign] == 0 || kinds["freeze"] == 0 {
				t.Fatalf("the stream raised no campaign or no freeze (%v): it tests nothing", kinds)
			}
			if string(got) != string(ref) {
				t.Fatalf("incremental checks raise other alerts than full ones (%d against %d bytes; kinds %v)", len(got), len(ref), kinds)
			}
			t.Logf("alerts: %v", kinds)
		})
	}
}

// TestIncrementalChecksAfterSplit checks the case the daily rebuild makes:
// a campaign whose component splits in two, each part keeping enough
// flagged issues, so that both parts carry the campaign. New members of
// either part must join its alert, as full checks have them do.
func TestIncrementalChecksAfterSplit(t *testing.T) {
	run := func(checkAll bool) []string {
		w := New(DefaultConfig())
		w.checkAll = checkAll
		l := &w.link
		t0, t1, t2 := int64(time.Hour), int64(2*time.Hour), int64(3*time.Hour)
		for _, id := range []string{"A1", "A2", "A3", "B1", "B2", "B3"} {
			w.account(id)
		}
		for i := range w.cfg.CampaignIssues {
			for _, sym := range []string{fmt.Sprintf("S%d", i), fmt.Sprintf("T%d", i)} {
				w.Observe(&event.Record{Type: event.TypeInstrument, Time: clock(0, 8, 0, 0), Symbol: sym, Market: "TSE_STANDARD", Currency: "JPY", Price: 100, PriceJPY: 100, ADVShares: 50_000, Lot: 100}, nil)
			}
		}
		flag := func(sym string) {
			l.flags[sym] = t1
			l.flagged[l.find(l.node("s:"+sym))]++
		}
		w.addEdge("a:A1", "a:B1", t0) // the bridge, older than the rest
		for i := range w.cfg.CampaignIssues {
			a, b := fmt.Sprintf("S%d", i), fmt.Sprintf("T%d", i)
			flag(a)
			flag(b)
			w.addEdge("a:A1", "s:"+a, t1)
			w.addEdge("a:B1", "s:"+b, t1)
		}
		w.checkCampaign(l.find(l.ids["a:A1"]), t1)
		w.addEdge("a:B3", "s:T1", t1) // joins, unchecked before the rebuild
		l.expire(t0+1, w)
		if ra, rb := l.find(l.ids["a:A1"]), l.find(l.ids["a:B1"]); ra == rb || l.camp[ra] == 0 || l.camp[ra] != l.camp[rb] {
			t.Fatalf("the rebuild did not split the campaign in two parts that both carry it")
		}
		w.checkCampaign(w.addEdge("a:A2", "s:S0", t2), t2)
		w.checkCampaign(w.addEdge("a:B2", "s:T0", t2), t2)
		w.checkCampaign(w.addEdge("a:A3", "s:S1", t2), t2)
		return w.open[KindCampaign+"\x00"+l.camps[0].id].a.Accounts
	}
	full, incremental := run(true), run(false)
	if fmt.Sprint(full) != "[A1 A2 A3 B1 B2 B3]" {
		t.Fatalf("full checks: %v", full)
	}
	if fmt.Sprint(incremental) != fmt.Sprint(full) {
		t.Errorf("incremental checks: %v, full: %v", incremental, full)
	}
}
