package market

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Instrument is one tradable issue.
type Instrument struct {
	Symbol    string
	Name      string
	Market    string
	Currency  string
	Lot       int64
	ADVShares int64   // average daily volume, whole market
	PrevClose float64 // in Currency
	LargeCap  bool
}

// PriceJPY converts a price of in's currency to yen.
func (in Instrument) PriceJPY(p float64) float64 {
	fx, _ := FX(in.Currency)
	return p * fx
}

// Foreign reports whether in trades outside Tokyo.
func (in Instrument) Foreign() bool { return !Domestic(in.Market) }

// large and mid caps: real issues at approximate 2025 prices and volumes.
var listed = []Instrument{
	{"7203", "Toyota Motor", TSEPrime, "JPY", 100, 28000000, 2700, true},
	{"6758", "Sony Group", TSEPrime, "JPY", 100, 9000000, 3500, true},
	{"8306", "Mitsubishi UFJ Financial Group", TSEPrime, "JPY", 100, 40000000, 2000, true},
	{"9984", "SoftBank Group", TSEPrime, "JPY", 100, 12000000, 9000, true},
	{"9432", "NTT", TSEPrime, "JPY", 100, 150000000, 152, true},
	{"7974", "Nintendo", TSEPrime, "JPY", 100, 5000000, 11000, true},
	{"8035", "Tokyo Electron", TSEPrime, "JPY", 100, 3000000, 25000, true},
	{"6861", "Keyence", TSEPrime, "JPY", 100, 500000, 60000, true},
	{"9983", "Fast Retailing", TSEPrime, "JPY", 100, 600000, 47000, true},
	{"6501", "Hitachi", TSEPrime, "JPY", 100, 8000000, 3800, true},
	{"8058", "Mitsubishi Corporation", TSEPrime, "JPY", 100, 9000000, 2700, true},
	{"4502", "Takeda Pharmaceutical", TSEPrime, "JPY", 100, 4000000, 4200, true},
	{"7267", "Honda Motor", TSEPrime, "JPY", 100, 12000000, 1500, true},
	{"8316", "Sumitomo Mitsui Financial Group", TSEPrime, "JPY", 100, 10000000, 3700, true},
	{"6098", "Recruit Holdings", TSEPrime, "JPY", 100, 4000000, 9000, true},
	{"2914", "Japan Tobacco", TSEPrime, "JPY", 100, 5000000, 4100, false},
	{"4661", "Oriental Land", TSEPrime, "JPY", 100, 6000000, 3300, false},
	{"9101", "Nippon Yusen", TSEPrime, "JPY", 100, 4000000, 5000, false},
	{"7011", "Mitsubishi Heavy Industries", TSEPrime, "JPY", 100, 30000000, 2500, false},
	{"5401", "Nippon Steel", TSEPrime, "JPY", 100, 7000000, 3000, false},
	{"0700.HK", "Tencent Holdings", HK, "HKD", 100, 18000000, 400, true},
	{"9988.HK", "Alibaba Group", HK, "HKD", 100, 90000000, 110, true},
	{"600519.SH", "Kweichow Moutai", SH, "CNY", 100, 3000000, 1500, true},
	{"601318.SH", "Ping An Insurance", SH, "CNY", 100, 40000000, 50, true},
}

// Fictional thin issues are built from these syllables, so no real small
// cap is ever named as a target.
var (
	nameHeads = []string{"Hoshi", "Kawa", "Yama", "Mori", "Asa", "Taka", "Kita", "Minami", "Aoi", "Shiro", "Kuro", "Hana", "Umi", "Sora", "Kaze", "Tsuki"}
	nameTails = []string{"no", "ta", "mura", "kawa", "shima", "moto", "sawa", "oka", "hara", "zaki"}
	nameKinds = []string{"Kogyo", "Shoji", "Seisakusho", "Denki", "Kasei", "Foods", "Holdings", "Tech", "Trading", "Pharma"}
)

// Universe returns the reference brokerage's instruments: the listed large
// and mid caps above and smallCaps fictional thin TSE Standard and Growth
// issues priced ¥60-300, plus fictional thin Hong Kong and Shanghai names.
// The same seed gives the same universe.
func Universe(seed uint64, smallCaps int) []Instrument {
	rng := rand.New(rand.NewPCG(seed, 0x6b6162))
	out := append([]Instrument(nil), listed...)
	used := map[string]bool{}
	for _, in := range out {
		used[in.Symbol] = true
	}
	name := func() string {
		return nameHeads[rng.IntN(len(nameHeads))] + nameTails[rng.IntN(len(nameTails))] + " " + nameKinds[rng.IntN(len(nameKinds))]
	}
	for i := 0; i < smallCaps; i++ {
		var sym string
		for {
			// TSE codes: four digits, or three digits and a letter (since 2024).
			if rng.IntN(4) == 0 {
				sym = fmt.Sprintf("%d%c", 130+rng.IntN(870), 'A'+rune(rng.IntN(26)))
			} else {
				sym = fmt.Sprintf("%d", 1300+rng.IntN(8600))
			}
			if !used[sym] {
				break
			}
		}
		used[sym] = true
		m := TSEStandard
		if rng.IntN(3) == 0 {
			m = TSEGrowth
		}
		price := math.Round(60 + rng.Float64()*240)
		// Thin: 20-day median traded value mostly well under ¥10m a day.
		adv := int64(20000+rng.IntN(180000)) / 100 * 100
		out = append(out, Instrument{sym, name() + " (sim)", m, "JPY", 100, adv, price, false})
	}
	for i := 0; i < max(2, smallCaps/20); i++ {
		sym := fmt.Sprintf("%04d.HK", 8000+i*7+rng.IntN(7))
		p := RoundTick(HK, 0.1+rng.Float64()*1.5)
		lot := []int64{2000, 4000, 5000, 10000}[rng.IntN(4)]
		out = append(out, Instrument{sym, name() + " (sim)", HK, "HKD", lot, int64(200000 + rng.IntN(2000000)), p, false})
		sym = fmt.Sprintf("6%05d.SH", 3000+i*11+rng.IntN(11))
		out = append(out, Instrument{sym, name() + " (sim)", SH, "CNY", 100, int64(100000 + rng.IntN(900000)), roundTo(2.5+rng.Float64()*6, 0.01), false})
	}
	return out
}
