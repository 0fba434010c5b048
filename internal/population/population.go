// Package population makes a brokerage's customers: realistic Japanese
// retail investors with cash, NISA and cash-account holdings, registered
// bank accounts and contact details, devices, home networks and trading
// habits, and an authenticator mix. The same seed always gives the same
// people, so the demo and the simulator are reproducible.
package population

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
)

// Habit is how a customer trades.
type Habit string

// Habits.
const (
	LongTerm   Habit = "long_term"   // buys and holds, rarely trades
	Active     Habit = "active"      // trades weekly in large and mid caps
	DayTrader  Habit = "day_trader"  // trades daily, often thin small caps
	Traveller  Habit = "traveller"   // holds; sometimes signs in from abroad
	PhoneSwaps Habit = "phone_swaps" // changes phone now and then
)

// Customer is one generated customer.
type Customer struct {
	broker.NewAccount
	Habit   Habit
	Devices []string // known device ids, first is the usual one
	HomeIP  string   // usual address, in a Japanese residential range
	HomeASN int64
	Hours   [2]int // usual sign-in hours, JST, from..to
}

// Enrolment is an authenticator mix.
type Enrolment struct {
	Name    string
	Passkey float64 // share with a passkey
	TOTP    float64 // share with an authenticator app (of the rest)
	SMS     float64 // share on SMS codes (of the rest); others use email codes
}

// Enrolment mixes: April 2025 (few passkeys; most on email or SMS codes)
// and 2026 (most on passkeys).
var (
	Enrolment202504 = Enrolment{"2025-04", 0.03, 0.12, 0.35}
	Enrolment2026   = Enrolment{"2026", 0.85, 0.3, 0.3}
)

var (
	// Names in romaji, with their kanji (or kana) at the same index: a
	// Japanese-speaking customer's name is written in kanji, an English
	// speaker's in romaji.
	family   = []string{"Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi", "Kato", "Yoshida", "Yamada", "Sasaki", "Yamaguchi", "Matsumoto", "Inoue", "Kimura", "Hayashi", "Shimizu", "Saito"}
	familyJA = []string{"佐藤", "鈴木", "高橋", "田中", "渡辺", "伊藤", "山本", "中村", "小林", "加藤", "吉田", "山田", "佐々木", "山口", "松本", "井上", "木村", "林", "清水", "斎藤"}
	given    = []string{"Hiroshi", "Yuki", "Akira", "Haruto", "Sota", "Yui", "Aoi", "Hina", "Takeshi", "Kenji", "Naoko", "Keiko", "Daichi", "Ren", "Mei", "Sakura", "Taro", "Hanako", "Kazuo", "Emi"}
	givenJA  = []string{"浩", "由紀", "明", "陽翔", "蒼太", "結衣", "葵", "陽菜", "健", "健二", "直子", "恵子", "大地", "蓮", "芽依", "さくら", "太郎", "花子", "和夫", "恵美"}
	banks    = []string{"Mizuho", "MUFG", "SMBC", "Resona", "Japan Post Bank", "Rakuten Bank", "SBI Sumishin Net Bank", "Sony Bank", "PayPay Bank", "Aeon Bank"}
	// Japanese residential broadband in the built-in network table: each
	// carrier's /12 of the shared address space (carrier-grade NAT).
	homeNets = []struct {
		second int // 100.<second>.0.0/12
		asn    int64
	}{{64, 4713}, {80, 2516}, {96, 17676}, {112, 9605}}
)

// Generate returns n customers with ids C0000001… holding instruments of
// the universe.
func Generate(seed uint64, n int, universe []market.Instrument, mix Enrolment, now time.Time) []Customer {
	rng := rand.New(rand.NewPCG(seed, 0x706f70))
	var large, thin []market.Instrument
	for _, in := range universe {
		switch {
		case in.LargeCap && market.Domestic(in.Market):
			large = append(large, in)
		case market.Domestic(in.Market) && in.PrevClose < 500:
			thin = append(thin, in)
		}
	}
	out := make([]Customer, n)
	for i := range out {
		c := &out[i]
		c.ID = fmt.Sprintf("C%07d", i+1)
		fi, gi := rng.IntN(len(family)), rng.IntN(len(given))
		fam, giv := family[fi], given[gi]
		c.Name = familyJA[fi] + " " + givenJA[gi]
		c.Locale = "ja"
		if rng.IntN(10) == 0 {
			c.Locale = "en"
			c.Name = fam + " " + giv
		}
		c.Email = fmt.Sprintf("%s.%s%d@example.jp", lower(giv), lower(fam), i+1)
		c.Phone = fmt.Sprintf("090-%04d-%04d", rng.IntN(10000), rng.IntN(10000))
		c.Address = fmt.Sprintf("%d-%d-%d Chiyoda, Tokyo", 1+rng.IntN(5), 1+rng.IntN(20), 1+rng.IntN(30))
		c.Bank = fmt.Sprintf("%s %03d-%07d", banks[rng.IntN(len(banks))], rng.IntN(1000), rng.IntN(10000000))
		c.Opened = now.AddDate(-1-rng.IntN(15), -rng.IntN(12), 0)
		switch r := rng.Float64(); {
		case r < 0.55:
			c.Habit = LongTerm
		case r < 0.80:
			c.Habit = Active
		case r < 0.86:
			c.Habit = DayTrader
		case r < 0.94:
			c.Habit = Traveller
		default:
			c.Habit = PhoneSwaps
		}
		// Cash: log-normal around ¥1m; holdings: a few large caps, NISA for most.
		c.CashJPY = int64(math.Round(math.Exp(13.5+rng.NormFloat64()*1.0)/1000) * 1000)
		held := map[string]bool{}
		for range 1 + rng.IntN(4) {
			in := large[rng.IntN(len(large))]
			kind := event.KindNISA
			if rng.IntN(3) == 0 {
				kind = event.KindCash
			}
			if held[in.Symbol+kind] {
				continue
			}
			held[in.Symbol+kind] = true
			lots := int64(1 + rng.IntN(5))
			if in.PrevClose < 1000 {
				lots *= 10
			}
			qty := lots * in.Lot
			cost := int64(float64(qty) * in.PrevClose * (0.7 + rng.Float64()*0.4))
			c.Holdings = append(c.Holdings, event.Holding{Symbol: in.Symbol, Qty: qty, CostJPY: cost, Kind: kind})
		}
		if c.Habit == DayTrader && len(thin) > 0 {
			in := thin[rng.IntN(len(thin))]
			c.Holdings = append(c.Holdings, event.Holding{Symbol: in.Symbol, Qty: in.Lot * int64(5+rng.IntN(20)), CostJPY: int64(float64(in.Lot) * in.PrevClose * 10), Kind: event.KindCash})
		}
		sort.Slice(c.Holdings, func(a, b int) bool {
			if c.Holdings[a].Symbol != c.Holdings[b].Symbol {
				return c.Holdings[a].Symbol < c.Holdings[b].Symbol
			}
			return c.Holdings[a].Kind < c.Holdings[b].Kind
		})
		c.ForeignEnabled = rng.IntN(4) == 0 || c.Habit == DayTrader
		c.MarginEnabled = c.Habit == DayTrader || rng.IntN(20) == 0
		c.Factors = []string{event.FactorPassword}
		if rng.Float64() < mix.Passkey {
			c.Factors = append(c.Factors, event.FactorPasskey)
		}
		switch r := rng.Float64(); {
		case r < mix.TOTP:
			c.Factors = append(c.Factors, event.FactorTOTP)
		case r < mix.TOTP+mix.SMS:
			c.Factors = append(c.Factors, event.FactorSMSOTP)
		default:
			c.Factors = append(c.Factors, event.FactorEmailOTP)
		}
		nd := 1 + rng.IntN(2)
		for d := range nd {
			c.Devices = append(c.Devices, fmt.Sprintf("dev-%s-%d", c.ID, d))
		}
		// A home address of its own: households do not share one.
		h := homeNets[rng.IntN(len(homeNets))]
		n := i + 1
		c.HomeIP, c.HomeASN = fmt.Sprintf("100.%d.%d.%d", h.second+(n>>16)&15, (n>>8)&255, n&255), h.asn
		start := 6 + rng.IntN(15)
		c.Hours = [2]int{start, min(23, start+2+rng.IntN(5))}
	}
	return out
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}
