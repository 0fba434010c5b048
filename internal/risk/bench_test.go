package risk

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// benchStream is a warmed-up engine state and a realistic action mix:
// 20,000 accounts, 300 instruments; 25% sign-ins, 60% orders (half with
// fills), 7% withdrawals, 8% contact, bank and factor changes; 0.5% of
// actions come from attackers.
func benchStream(b *testing.B) (ref, acts []*event.Record, lines [][]byte) {
	m := newMix(42, 20000)
	ref = m.reference()
	acts = m.actions(200000)
	for _, r := range acts {
		lines = append(lines, r.AppendJSON(nil))
	}
	return ref, acts, lines
}

func warm(p *Policy, ref, acts []*event.Record) *Engine {
	e := NewEngine(p)
	for _, r := range ref {
		e.Observe(r)
	}
	var res Result
	for _, r := range acts[:len(acts)/4] { // build profiles
		if r.Type.Action() {
			e.DecideInto(r, &res, false)
		} else {
			e.Observe(r)
		}
	}
	return e
}

// baselineNs holds ns/decision of the baselines measured earlier in the run.
var baselineNs = map[string]float64{}

// BenchmarkDecide measures decisions on the mix. Sub-benchmarks run in
// order, each baseline first:
//
//	decode_only   decoding the JSON line of each record (event.Decode): the
//	              floor any ingestion pays per record
//	empty_policy  Decide with a policy of no rules: state, features, learning
//	builtin       Decide with the built-in policy, replay style (DecideInto,
//	              no feature map)
//	builtin_features  Decide with the built-in policy, server style
//	              (Result with the feature map)
//
// Each reports decisions/s, p50 and p99 latency and its ratio to the
// baselines measured in the same run.
func BenchmarkDecide(b *testing.B) {
	ref, acts, lines := benchStream(b)
	empty, err := LoadPolicy("empty", []byte("version: empty\nthresholds: {challenge: 30}\nrules: []\n"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode_only", func(b *testing.B) {
		lat := make([]time.Duration, 0, 1<<16)
		i := 0
		b.ResetTimer()
		for b.Loop() {
			t0 := time.Now()
			if _, err := event.Decode(lines[i%len(lines)]); err != nil {
				b.Fatal(err)
			}
			if len(lat) < cap(lat) {
				lat = append(lat, time.Since(t0))
			}
			i++
		}
		report(b, "decode_only", lat)
	})
	run := func(name string, p *Policy, features bool) {
		b.Run(name, func(b *testing.B) {
			e := warm(p, ref, acts)
			rest := acts[len(acts)/4:]
			lat := make([]time.Duration, 0, 1<<16)
			var res Result
			i := 0
			b.ResetTimer()
			for b.Loop() {
				r := rest[i%len(rest)]
				i++
				if !r.Type.Action() {
					e.Observe(r)
					r = rest[i%len(rest)]
					i++
					if !r.Type.Action() {
						continue
					}
				}
				t0 := time.Now()
				if features {
					res = e.Decide(r)
				} else {
					e.DecideInto(r, &res, false)
				}
				if len(lat) < cap(lat) {
					lat = append(lat, time.Since(t0))
				}
			}
			report(b, name, lat)
		})
	}
	run("empty_policy", empty, false)
	run("builtin", BuiltinPolicy(), false)
	run("builtin_features", BuiltinPolicy(), true)
}

func report(b *testing.B, name string, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	baselineNs[name] = ns
	slices.Sort(lat)
	b.ReportMetric(1e9/ns, "decisions/s")
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	for _, base := range []string{"decode_only", "empty_policy"} {
		if bn, ok := baselineNs[base]; ok && base != name {
			b.ReportMetric(ns/bn, "x-"+base)
		}
	}
}

// BenchmarkMemory1M fills the profiles of 1,000,000 accounts (a snapshot
// with 2-6 holdings, an allowed sign-in and an order each) and reports the
// heap growth per account, with the live sessions and after Compact has
// released them. It runs the fill once whatever b.N is; run it with
// -bench Memory1M -benchtime 1x (about 20-40 s on one core).
func BenchmarkMemory1M(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		m := newMix(3, 1)
		ref := m.reference()
		runtime.GC()
		var before, mid, after runtime.MemStats
		runtime.ReadMemStats(&before)
		e := NewEngine(nil)
		for _, r := range ref[:len(m.symbols)] {
			e.Observe(r)
		}
		t := time.Date(2025, 4, 1, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))
		snap := &event.Record{ID: "a", Type: event.TypeAccount, Time: t, Opened: "2020-01-01", CashJPY: 1_000_000,
			Factors: []string{"password", "totp"}, EmailHash: "e", PhoneHash: "p", BankHash: "b"}
		login := &event.Record{ID: "l", Type: event.TypeLogin, Time: t, IP: "203.0.113.9", ASN: 2516, Country: "JP", UA: "UA", Channel: "web",
			Method: "password", Factors: []string{"password", "totp"}, OK: true}
		order := &event.Record{ID: "o", Type: event.TypeOrder, Time: t.Add(time.Minute), IP: "203.0.113.9", ASN: 2516, Country: "JP", UA: "UA", Channel: "web",
			OrderID: "o", Side: "buy", Qty: 100, PriceType: "market", AccountKind: "cash", ValueJPY: 300000}
		var res Result
		for a := range n {
			acct := "A" + strconv.Itoa(a)
			snap.Account, snap.Holdings = acct, snap.Holdings[:0]
			for h := range 2 + a%5 {
				snap.Holdings = append(snap.Holdings, event.Holding{Symbol: m.symbols[(a*7+h*31)%len(m.symbols)], Qty: 100, CostJPY: 100000, Kind: "cash"})
			}
			e.Observe(snap)
			login.Account, login.Session, login.Device = acct, "s"+acct, "d"+acct
			e.DecideInto(login, &res, false)
			order.Account, order.Session, order.Device, order.Symbol = acct, login.Session, login.Device, m.symbols[a%len(m.symbols)]
			e.DecideInto(order, &res, false)
		}
		runtime.GC()
		runtime.ReadMemStats(&mid)
		e.Compact(t.Add(48 * time.Hour))
		runtime.GC()
		runtime.ReadMemStats(&after)
		if e.Accounts() != n {
			b.Fatalf("%d accounts", e.Accounts())
		}
		live := float64(mid.HeapAlloc - before.HeapAlloc)
		prof := float64(after.HeapAlloc - before.HeapAlloc)
		b.ReportMetric(live/n, "bytes/account")
		b.ReportMetric(prof/n, "profile-bytes/account")
		b.ReportMetric(live/(1<<20), "MiB-total")
		b.ReportMetric(prof/(1<<20), "profile-MiB-total")
		runtime.KeepAlive(e)
	}
}

func ExampleEngine_Decide() {
	e := NewEngine(BuiltinPolicy())
	t := time.Date(2025, 4, 10, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))
	res := e.Decide(&event.Record{ID: "e1", Type: event.TypeLogin, Time: t, Account: "A1", Session: "s1",
		IP: "3.112.1.1", ASN: 16509, Country: "JP", Device: "d-new", Method: "password", Factors: []string{"password", "sms_otp"}, OK: true})
	fmt.Println(string(res.Decision.AppendJSON(nil)))
	// A fresh engine has no history, so the device being new is not
	// evidence; the hosting network is.
	// Output: {"event":"e1","time":"2025-04-10T09:00:00+09:00","account":"A1","action":"challenge","factor":"phishing_resistant","score":30,"reasons":["hosting_asn"],"policy":"builtin-2026.12.2"}
}
