package risk

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// mix generates a realistic, deterministic stream: instruments, account
// snapshots, then customer actions of ordinary customers (sign-ins, orders,
// fills, occasional withdrawals and changes) with a few takeovers mixed in.
type mix struct {
	rng      *rand.Rand
	accounts int
	symbols  []string
	prices   []float64
	now      time.Time
	seq      int
}

func newMix(seed uint64, accounts int) *mix {
	m := &mix{rng: rand.New(rand.NewPCG(seed, 7)), accounts: accounts, now: time.Date(2025, 4, 1, 8, 0, 0, 0, time.FixedZone("JST", 9*3600))}
	for i := range 300 {
		m.symbols = append(m.symbols, fmt.Sprintf("%04d", 1300+i*7))
		p := 3000.0
		switch {
		case i%10 == 0:
			p = 80 + float64(i%120)
		case i%3 == 0:
			p = 400 + float64(i*13%800)
		default:
			p = 1000 + float64(i*37%9000)
		}
		m.prices = append(m.prices, p)
	}
	return m
}

func (m *mix) id() string { m.seq++; return "e" + fmt.Sprint(m.seq) }

// reference returns the instrument and account records.
func (m *mix) reference() []*event.Record {
	var out []*event.Record
	for i, s := range m.symbols {
		adv := int64(5_000_000)
		if i%10 == 0 {
			adv = 40_000
		}
		out = append(out, &event.Record{ID: m.id(), Type: event.TypeInstrument, Time: m.now, Symbol: s, Name: s, Market: "TSE_PRIME", Currency: "JPY", Price: m.prices[i], PriceJPY: m.prices[i], ADVShares: adv, Lot: 100})
	}
	for a := range m.accounts {
		r := &event.Record{ID: m.id(), Type: event.TypeAccount, Time: m.now, Account: fmt.Sprintf("A%07d", a), Opened: "2020-01-01", CashJPY: 1_000_000,
			Factors: []string{"password", "totp"}, EmailHash: "e", PhoneHash: "p", BankHash: fmt.Sprintf("b%d", a)}
		if a%3 == 0 {
			r.Factors = []string{"password", "passkey"}
		}
		for h := range 2 + a%5 {
			r.Holdings = append(r.Holdings, event.Holding{Symbol: m.symbols[(a*7+h*31)%len(m.symbols)], Qty: 100 * int64(1+h), CostJPY: 100000, Kind: "cash"})
		}
		out = append(out, r)
	}
	return out
}

// actions returns n customer action and fill records.
func (m *mix) actions(n int) []*event.Record {
	out := make([]*event.Record, 0, n)
	for len(out) < n {
		m.now = m.now.Add(time.Duration(m.rng.IntN(40)) * time.Millisecond)
		a := m.rng.IntN(m.accounts)
		attacker := m.rng.IntN(200) == 0
		acct := fmt.Sprintf("A%07d", a)
		sess := fmt.Sprintf("s%d-%d", a, m.now.Unix()/3600)
		ip := fmt.Sprintf("203.0.%d.%d", a%250, a%7+1)
		dev, ua, asn, cc := fmt.Sprintf("d%d", a), "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0", int64(2516), "JP"
		if attacker {
			ip, dev, asn, cc = "45.77.3.4", "evil", 20473, "JP"
			if m.rng.IntN(2) == 0 {
				asn, cc = 9009, "SG"
			}
		}
		base := event.Record{ID: m.id(), Time: m.now, Account: acct, Session: sess, IP: ip, ASN: asn, Country: cc, Device: dev, UA: ua, Channel: "web"}
		k := m.rng.IntN(100)
		r := base
		switch {
		case k < 25:
			r.Type, r.Method, r.Factors, r.OK = event.TypeLogin, "password", []string{"password", "totp"}, m.rng.IntN(30) != 0
			if a%3 == 0 {
				r.Method, r.Factors = "passkey", []string{"passkey"}
			}
		case k < 85:
			i := m.rng.IntN(len(m.symbols))
			qty := int64(100 * (1 + m.rng.IntN(10)))
			r.Type, r.OrderID, r.Symbol, r.Qty, r.PriceType, r.AccountKind = event.TypeOrder, "o"+r.ID, m.symbols[i], qty, "market", "cash"
			r.Side = "buy"
			if m.rng.IntN(2) == 0 {
				r.Side = "sell"
			}
			r.ValueJPY = int64(float64(qty) * m.prices[i])
			out = append(out, &r)
			if m.rng.IntN(2) == 0 {
				f := event.Record{ID: m.id(), Type: event.TypeFill, Time: m.now, Account: acct, OrderID: r.OrderID, Symbol: r.Symbol, Side: r.Side, Qty: qty, Price: m.prices[i], ValueJPY: r.ValueJPY}
				out = append(out, &f)
			}
			continue
		case k < 92:
			r.Type, r.AmountJPY, r.BankHash = event.TypeWithdrawal, int64(10000*(1+m.rng.IntN(50))), fmt.Sprintf("b%d", a)
		case k < 95:
			r.Type, r.Field, r.NewHash = event.TypeContactChange, "email", "n"
		case k < 97:
			r.Type, r.BankHash = event.TypeBankChange, "nb"
		case k < 99:
			r.Type, r.Factor = event.TypeFactorAdd, "totp"
		default:
			r.Type = event.TypePasswordChange
		}
		out = append(out, &r)
	}
	return out
}
