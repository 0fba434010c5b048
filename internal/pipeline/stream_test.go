package pipeline

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

var jst = time.FixedZone("JST", 9*60*60)

// genStream writes a realistic day of stream: instruments, account
// snapshots, then a trading morning of sign-ins, orders, fills, one-minute
// bars and the occasional withdrawal or change, from accounts customers,
// with a ramp of hijacked accounts through one thin stock when ramp is set.
func genStream(seed uint64, accounts, minutes int, ramp bool) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	var buf []byte
	id := 0
	var minute []*event.Record
	write := func(r *event.Record) {
		id++
		r.ID = fmt.Sprintf("e%d", id)
		buf = r.AppendJSON(buf[:0])
		b.Write(buf)
		b.WriteByte('\n')
	}
	// emit holds a minute's records back so they can be written in time order.
	emit := func(r *event.Record) { minute = append(minute, r) }
	flush := func() {
		sort.SliceStable(minute, func(i, j int) bool { return minute[i].Time.Before(minute[j].Time) })
		for _, r := range minute {
			write(r)
		}
		minute = minute[:0]
	}
	t0 := time.Date(2025, 4, 8, 9, 0, 0, 0, jst)
	type ins struct {
		sym   string
		price float64
		adv   int64
		mkt   string
	}
	var uni []ins
	for i := range 40 {
		uni = append(uni, ins{fmt.Sprintf("%d", 7000+i), 1000 + float64(i*100), 5_000_000, "TSE_PRIME"})
	}
	for i := range 60 {
		uni = append(uni, ins{fmt.Sprintf("%d", 3000+i), 80 + float64(i*3), 60_000 + int64(i)*1000, "TSE_STANDARD"})
	}
	for _, in := range uni {
		emit(&event.Record{Type: event.TypeInstrument, Time: t0.Add(-time.Hour), Symbol: in.sym, Name: "I " + in.sym, Market: in.mkt,
			Currency: "JPY", Price: in.price, PriceJPY: in.price, ADVShares: in.adv, Lot: 100})
	}
	flush()
	acct := func(i int) string { return fmt.Sprintf("A%06d", i) }
	for i := range accounts {
		emit(&event.Record{Type: event.TypeAccount, Time: t0.Add(-time.Hour), Account: acct(i), Opened: "2019-04-01", CashJPY: 2_000_000,
			Holdings:  []event.Holding{{Symbol: uni[i%40].sym, Qty: 500, CostJPY: 500_000, Kind: "nisa"}},
			Factors:   []string{"password", "email_otp"},
			EmailHash: "e" + acct(i), PhoneHash: "p" + acct(i), BankHash: "b" + acct(i)})
	}
	ctx := func(r *event.Record, i int) {
		r.Account, r.Session = acct(i), fmt.Sprintf("s%d", i)
		r.IP, r.ASN, r.Country = fmt.Sprintf("192.0.2.%d", 64+i%60), 2516, "JP"
		r.Device, r.UA, r.Channel = fmt.Sprintf("d%d", i), "Mozilla/5.0", "web"
	}
	price := map[string]float64{}
	for _, in := range uni {
		price[in.sym] = in.price
	}
	oid := 0
	for m := range minutes {
		now := t0.Add(time.Duration(m) * time.Minute)
		for range accounts / 20 {
			i := rng.IntN(accounts)
			at := now.Add(time.Duration(rng.IntN(59)) * time.Second)
			switch k := rng.IntN(100); {
			case k < 30:
				r := &event.Record{Type: event.TypeLogin, Time: at, Method: "password", Factors: []string{"password", "email_otp"}, OK: true}
				ctx(r, i)
				emit(r)
			case k < 95:
				in := uni[rng.IntN(len(uni))]
				side := "buy"
				if rng.IntN(2) == 0 {
					side = "sell"
					in = uni[i%40]
				}
				oid++
				qty := int64(100 * (1 + rng.IntN(3)))
				r := &event.Record{Type: event.TypeOrder, Time: at, OrderID: fmt.Sprintf("o%d", oid), Symbol: in.sym, Side: side, Qty: qty,
					PriceType: "market", AccountKind: "cash", ValueJPY: int64(float64(qty) * price[in.sym])}
				ctx(r, i)
				emit(r)
				emit(&event.Record{Type: event.TypeFill, Time: at, Account: acct(i), OrderID: r.OrderID, Symbol: in.sym, Side: side, Qty: qty,
					Price: price[in.sym], ValueJPY: r.ValueJPY})
			case k < 98:
				r := &event.Record{Type: event.TypeWithdrawal, Time: at, AmountJPY: 50_000, BankHash: "b" + acct(i)}
				ctx(r, i)
				emit(r)
			default:
				r := &event.Record{Type: event.TypeContactChange, Time: at, Field: "phone", NewHash: fmt.Sprintf("p%d-%d", i, m)}
				ctx(r, i)
				emit(r)
			}
		}
		if ramp && m >= 30 && m < 40 {
			// Hijacked accounts from a foreign data centre dump their
			// holdings and pile into one thin stock.
			target := uni[45]
			i := m - 30
			at := now.Add(10 * time.Second)
			a := accounts - 1 - i
			r := &event.Record{Type: event.TypeLogin, Time: at, Method: "password", Factors: []string{"password", "email_otp"}, OK: true}
			ctx(r, a)
			r.IP, r.ASN, r.Country, r.Device, r.Session = "198.51.100.7", 16509, "US", "attacker", fmt.Sprintf("x%d", i)
			emit(r)
			for _, o := range []struct {
				sym, side string
				qty       int64
			}{{uni[a%40].sym, "sell", 500}, {target.sym, "buy", 10000}} {
				oid++
				rr := &event.Record{Type: event.TypeOrder, Time: at.Add(20 * time.Second), OrderID: fmt.Sprintf("o%d", oid), Symbol: o.sym, Side: o.side,
					Qty: o.qty, PriceType: "market", AccountKind: "cash", ValueJPY: int64(float64(o.qty) * price[o.sym])}
				ctx(rr, a)
				rr.IP, rr.ASN, rr.Country, rr.Device, rr.Session = r.IP, r.ASN, r.Country, r.Device, r.Session
				emit(rr)
				emit(&event.Record{Type: event.TypeFill, Time: rr.Time, Account: rr.Account, OrderID: rr.OrderID, Symbol: o.sym, Side: o.side,
					Qty: o.qty, Price: price[o.sym], ValueJPY: rr.ValueJPY})
			}
			price[target.sym] *= 1.03
		}
		for _, in := range uni {
			p := price[in.sym]
			emit(&event.Record{Type: event.TypeBar, Time: now.Add(time.Minute), Symbol: in.sym, Open: p, High: p, Low: p, Close: p, Volume: in.adv / 300})
		}
		flush()
	}
	return b.Bytes()
}
