package risk

import (
	"sync"
)

// Capacities of the fixed arrays in an account profile. Each array keeps
// its most recently used entries first; a new entry evicts the last.
const (
	maxDevices   = 6
	maxNets      = 6
	maxASNs      = 6
	maxCountries = 4
	maxSessions  = 2 // concurrent sessions tracked per account
	maxBurstBuys = 4 // distinct issues bought in one liquidation burst
	numBands     = 8
)

// never is the age, in seconds, of something that never happened (2^40 s,
// about 35,000 years), so rules can write `account.bank_change_age_s < 86400`.
const never = int64(1) << 40

// profile is the long-lived, compact state of one account (about 500 bytes
// plus 16 bytes per holding). Identifiers are stored as 64-bit hashes.
type profile struct {
	devices   [maxDevices]uint64   // known devices (hashes), most recent first
	devDay    [maxDevices]uint16   // day (JST, since 1970) from which each device is established (establishedFrom)
	nets      [maxNets]uint64      // known networks (/24, /48)
	netDay    [maxNets]uint16      // day from which each network is established
	asns      [maxASNs]uint32      // known ASNs
	countries [maxCountries]uint16 // known countries
	hours     [24]uint8            // sign-ins per hour of day (JST), saturating
	issues    [8]uint64            // 512-bit bloom filter of issues ever held or traded
	bands     [numBands]uint16     // fills per price band

	logins        uint32
	orders        uint32
	foreignTrades uint16
	marginOrders  uint16
	lowpriceDays  uint16 // distinct days with a buy fill under ¥500
	lastLowDay    uint16 // day number (since 2000) of the last such fill
	failed        uint16 // consecutive failed logins
	factors       uint8  // enrolled factors (bit per factor)
	flags         uint8
	usualOrderLog float32 // EWMA of log(order value in yen)
	openedDay     int32   // days since the Unix epoch; 0 unknown
	daySoldDay    uint16  // day of daySold

	failedLast    int64 // stream time (unix s) of the last failed login
	contactChange int64 // unix s; 0 never
	factorChange  int64
	bankChange    int64
	firstSeen     int64
	watched       int64 // the engine's first record (unix s) when the profile was made: its history's start

	// Value at risk from new contexts: sells (allowed or challenged) in
	// sessions that began on a device and a network neither established,
	// without a passkey, over the last newContextWindow seconds.
	ncSold int64 // their value
	ncBase int64 // holdings value when the first of them was made
	ncAt   int64 // unix s of the last of them; 0 none
	// The account's own selling from established contexts: allowed sells
	// of the current day and the most it ever sold in one day.
	daySold, maxDaySold int64
	// Where value at risk goes with cash: buys (allowed or challenged) in
	// sessions at risk (atRisk) of issues the account had not held or
	// traded before, over the last newContextWindow seconds.
	nbBought int64
	nbBase   int64               // cash when the first of them was made
	nbAt     int64               // unix s of the last of them; 0 none
	nbIssues [maxNCIssues]uint64 // their issues (symbol hashes), so that a later part of the same buy still counts

	bank, email, phone uint64
	cash               int64
	holdings           []holding
	act                *activity // transient: sessions and the current burst; nil when idle
}

// Profile flags.
const (
	flagSnapshot uint8 = 1 << iota // an account snapshot was seen
	flagForeign                    // foreign_enabled
	flagMargin                     // margin_enabled
)

type holding struct {
	inst uint32 // index into the engine's instrument table
	qty  int64
}

// activity is the transient state of an account with recent actions: its
// live sessions and its current liquidation burst.
type activity struct {
	last     int64 // unix s of the last action
	sessions [maxSessions]session
	burst    burst
	// the last challenged order, so that its retry after the step-up (a
	// new record for the same order) is not counted twice in the burst
	chal   uint64 // orderKey; 0 none
	chalAt int64  // unix s
}

// retryWindow is how long after a challenge an identical order counts as
// its retry (seconds).
const retryWindow = 300

// session is what the engine knows of one session.
type session struct {
	id        uint64
	start     int64 // unix ns of sign-in (or of first sight)
	last      int64 // unix ns of last action
	first     int64 // unix ns of first action after sign-in; 0 none yet
	device    uint64
	net       uint64
	ua        uint64
	asn       uint32
	country   uint16
	actions   uint16
	factors   uint8
	newDevice bool // device was unknown to the account at sign-in
	newNet    bool // network and ASN were unknown at sign-in
	jumped    bool // a context jump was seen
	known     bool // its login was seen
	netKnown  bool // the sign-in network (/24, /48) was known to the account
	// newContext: at sign-in neither device nor network was established
	// and no passkey was proved
	newContext bool
	movedNet   uint64 // first network other than the sign-in's, unknown to the account, the session was used from; 0 none
}

// burst accumulates a run of selling and buying: it starts at a sell order
// and lasts 60 minutes, or as long as the session that started it.
type burst struct {
	start   int64 // unix s; 0 none
	session uint64
	base    int64 // holdings value when it started
	sold    int64 // value of sell orders (proceeds)
	bought  int64
	sells   uint16
	buys    uint16
	issues  [maxBurstBuys]burstBuy
}

type burstBuy struct {
	inst      uint32
	neverHeld bool
	jpy       int64
}

const burstWindow = 3600 // seconds

// maxNCIssues is how many issues bought from new contexts a profile
// remembers (the oldest is forgotten first).
const maxNCIssues = 4

// establishDays is how many days of history make a profile mature, and
// how long after a device or network is first learnt it becomes the
// customer's established own rather than merely known, when the account
// already had established ones (establishedFrom).
const establishDays = 7

// newContextWindow is how long sells from new contexts keep adding up
// (seconds): one sell per session, a session per day, still adds up.
const newContextWindow = establishDays * 86400

// dayOf returns the day number (JST, days since 1970) of unix time s.
func dayOf(s int64) uint16 { return uint16((s + jst) / 86400) }

// account store: shards of a hash->slot map and a slab of profiles.
const numShards = 256

type shard struct {
	mu    sync.Mutex
	index map[uint64]uint32
	slab  []profile
}

func (s *shard) get(key uint64, create bool) *profile {
	if i, ok := s.index[key]; ok {
		return &s.slab[i]
	}
	if !create {
		return nil
	}
	if s.index == nil {
		s.index = make(map[uint64]uint32)
	}
	s.index[key] = uint32(len(s.slab))
	s.slab = append(s.slab, profile{})
	return &s.slab[len(s.slab)-1]
}

// instrument is what the engine knows of one instrument.
type instrument struct {
	symbol      string
	market      string
	foreign     bool
	provisional bool    // seen only in holdings; price from cost
	price       float64 // last price in its currency
	priceJPY    float64
	fx          float64 // yen per unit of currency
	adv         int64
	halted      bool
	heat        int64
}

// instruments is the engine's instrument table.
type instruments struct {
	mu    sync.RWMutex
	index map[string]uint32
	list  []*instrument
}

// lookup returns the index of symbol (read-locked by the caller).
func (t *instruments) lookup(symbol string) (uint32, *instrument) {
	if i, ok := t.index[symbol]; ok {
		return i, t.list[i]
	}
	return 0, nil
}

// ensure returns symbol's entry, creating it (write-locked by the caller).
func (t *instruments) ensure(symbol string) (uint32, *instrument) {
	if i, ok := t.index[symbol]; ok {
		return i, t.list[i]
	}
	in := &instrument{symbol: symbol, provisional: true, fx: 1}
	t.index[symbol] = uint32(len(t.list))
	t.list = append(t.list, in)
	return uint32(len(t.list) - 1), in
}

// bands: price bands of the TSE price-limit table, coarsened.
func priceBand(p float64) int {
	switch {
	case p < 100:
		return 0
	case p < 200:
		return 1
	case p < 500:
		return 2
	case p < 1000:
		return 3
	case p < 3000:
		return 4
	case p < 10000:
		return 5
	case p < 50000:
		return 6
	}
	return 7
}

// mru helpers: find v; on insert move it to the front, evicting the last.
func mruHas[T comparable](a []T, v T) bool {
	var zero T
	if v == zero {
		return false
	}
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

func mruTouch[T comparable](a []T, v T) {
	var zero T
	if v == zero {
		return
	}
	i := 0
	for ; i < len(a)-1; i++ {
		if a[i] == v {
			break
		}
	}
	copy(a[1:i+1], a[:i])
	a[0] = v
}

// mruTouchDay is mruTouch for a list with a day beside each entry: a new
// entry gets day, a known one keeps its own.
func mruTouchDay[T comparable](a []T, days []uint16, v T, day uint16) {
	var zero T
	if v == zero {
		return
	}
	i := 0
	for ; i < len(a)-1; i++ {
		if a[i] == v {
			break
		}
	}
	d := day
	if a[i] == v {
		d = days[i]
	}
	copy(a[1:i+1], a[:i])
	copy(days[1:i+1], days[:i])
	a[0], days[0] = v, d
}

// mruDay returns the day beside v, and whether v is in a.
func mruDay[T comparable](a []T, days []uint16, v T) (uint16, bool) {
	var zero T
	if v == zero {
		return 0, false
	}
	for i, x := range a {
		if x == v {
			return days[i], true
		}
	}
	return 0, false
}

func (p *profile) issueBits(inst uint32) (uint64, uint64, uint64) {
	h := mix64(uint64(inst) + 0x51ed27)
	return h & 511, (h >> 9) & 511, (h >> 18) & 511
}

func (p *profile) addIssue(inst uint32) {
	a, b, c := p.issueBits(inst)
	p.issues[a>>6] |= 1 << (a & 63)
	p.issues[b>>6] |= 1 << (b & 63)
	p.issues[c>>6] |= 1 << (c & 63)
}

func (p *profile) hasIssue(inst uint32) bool {
	a, b, c := p.issueBits(inst)
	return p.issues[a>>6]&(1<<(a&63)) != 0 && p.issues[b>>6]&(1<<(b&63)) != 0 && p.issues[c>>6]&(1<<(c&63)) != 0
}

// holds reports whether inst is among p's holdings.
func (p *profile) holds(inst uint32) bool {
	for _, h := range p.holdings {
		if h.inst == inst {
			return true
		}
	}
	return false
}
