package surveil

// Market arithmetic of the TSE that the detectors scale their thresholds by.

const (
	nsPerSec  = int64(1e9)
	nsPerMin  = 60 * nsPerSec
	jstOffset = 9 * 3600 // seconds east of UTC
	// sessionClose is 15:30 JST in seconds after midnight: the end of the
	// afternoon session since November 2024.
	sessionClose = 15*3600 + 30*60
	// tradingMinutes is the length of a TSE trading day (9:00-11:30 and
	// 12:30-15:30), used to turn an average daily volume into a per-minute one.
	tradingMinutes = 300
)

// dayOf returns the JST calendar day number of a Unix time in nanoseconds.
func dayOf(ns int64) int32 {
	s := ns / nsPerSec
	if ns < 0 && ns%nsPerSec != 0 {
		s--
	}
	s += jstOffset
	d := s / 86400
	if s < 0 && s%86400 != 0 {
		d--
	}
	return int32(d)
}

// secOfDay returns seconds after JST midnight.
func secOfDay(ns int64) int64 {
	s := ns/nsPerSec + jstOffset
	r := s % 86400
	if r < 0 {
		r += 86400
	}
	return r
}

// minuteOf returns the number of the one-minute bar a time falls in: a bar
// stamped T covers (T-1m, T], so T itself belongs to the minute before.
func minuteOf(ns int64) int64 {
	m := (ns - 1) / nsPerMin
	if ns-1 < 0 && (ns-1)%nsPerMin != 0 {
		m--
	}
	return m
}

// TickSize returns the TSE tick size for price (the table for issues outside
// the TOPIX 100): ¥1 up to ¥3,000. Prices of other markets use one tenth of a
// percent of the price, which is what their tick tables give near the
// detectors' price range.
func TickSize(market string, price float64) float64 {
	if price <= 0 {
		return 1
	}
	switch market {
	case "", "TSE_PRIME", "TSE_STANDARD", "TSE_GROWTH":
	default:
		return price * 0.001
	}
	switch {
	case price <= 3000:
		return 1
	case price <= 5000:
		return 5
	case price <= 30000:
		return 10
	case price <= 50000:
		return 50
	case price <= 300000:
		return 100
	case price <= 500000:
		return 500
	case price <= 3000000:
		return 1000
	case price <= 5000000:
		return 5000
	case price <= 30000000:
		return 10000
	case price <= 50000000:
		return 50000
	}
	return 100000
}

// priceLimits is the TSE daily price limit table: a previous close below
// limits[i].under moves at most limits[i].limit yen either way.
var priceLimits = [...]struct{ under, limit float64 }{
	{100, 30}, {200, 50}, {500, 80}, {700, 100}, {1000, 150},
	{1500, 300}, {2000, 400}, {3000, 500}, {5000, 700}, {7000, 1000},
	{10000, 1500}, {15000, 3000}, {20000, 4000}, {30000, 5000},
	{50000, 7000}, {70000, 10000}, {100000, 15000}, {150000, 30000},
	{200000, 40000}, {300000, 50000}, {500000, 70000}, {700000, 100000},
	{1000000, 150000},
}

// PriceLimit returns the TSE daily price limit (値幅制限) in yen for a
// previous close, or 0 when prevClose is not positive. Above the table it
// returns 15% of the price, the table's ratio at its top.
func PriceLimit(prevClose float64) float64 {
	if prevClose <= 0 {
		return 0
	}
	for _, l := range priceLimits {
		if prevClose < l.under {
			return l.limit
		}
	}
	return prevClose * 0.15
}

// defaultHostingASNs are autonomous systems of cloud, hosting and VPN
// providers: a brokerage customer rarely trades from one.
var defaultHostingASNs = []int64{
	13335,  // Cloudflare (WARP)
	14061,  // DigitalOcean
	14618,  // Amazon
	15169,  // Google
	16276,  // OVH
	16509,  // Amazon
	20473,  // Vultr (Choopa)
	24940,  // Hetzner
	396982, // Google Cloud
	45102,  // Alibaba
	37963,  // Alibaba
	132203, // Tencent
	136907, // Huawei Cloud
	63949,  // Akamai (Linode)
	8075,   // Microsoft
	9009,   // M247
	60068,  // Datacamp (CDN77)
	212238, // Datacamp
	62240,  // Clouvider
	51167,  // Contabo
	202425, // IP Volume
	9370,   // Sakura Internet
	7506,   // GMO Internet
}

// defaultCarrierASNs are Japan's large residential and mobile carriers:
// each serves millions of customers, legitimate and hijacked alike, so
// sharing one links nobody (R10).
var defaultCarrierASNs = []int64{
	2516,   // KDDI (au)
	4713,   // NTT OCN
	17676,  // SoftBank
	9605,   // NTT Docomo
	2527,   // Sony Network Communications (So-net, NURO)
	2518,   // BIGLOBE
	4685,   // Asahi Net
	9824,   // JCOM
	17511,  // OPTAGE (eo)
	18126,  // Chubu Telecommunications (commufa)
	7679,   // QTnet
	10010,  // TOKAI Communications
	9595,   // NTT-ME
	4732,   // Yahoo Japan BB
	23637,  // Rakuten Mobile (NTT PC)
	138384, // Rakuten Mobile
}

// fnv hashes s with 64-bit FNV-1a; hashes are compared for equality only.
func fnv(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
