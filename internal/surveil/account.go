package surveil

import (
	"github.com/kabuto-sec/kabuto/internal/event"
)

// acct is the state of one account.
type acct struct {
	id     string
	idx    int32
	frozen bool

	pos  []position // every issue ever held or bought; qty may be 0
	devs [3]seen    // devices seen, least recently used replaced
	nets [3]seen    // ASNs seen

	// current session
	sess       uint64
	loginAt    int64
	loginDev   uint64
	loginIP    uint64 // 0: the login carried no IP
	firstOrder int64
	sBits      uint64 // session bits from the login and its decision

	// R1 window
	r1Start    int64
	r1Sess     uint64
	r1MV       int64
	r1Sold     int64
	r1Proceeds int64
	r1Buys     []symValue
	r1Hit      *inst
	// r1Held: the window's proceeds are held (R1 in a takeover
	// context; see takeoverContext)
	r1Held bool

	holds []hold

	// evid is the strongest direct evidence of takeover seen on the
	// account: the suspicion points of its own sessions and trades (shared
	// infrastructure excluded). Only accounts with evid >= SuspectPoints
	// are ever frozen.
	evid     int
	evidBits uint64 // the bits behind evid
	evidIn   *inst  // the issue they were seen on

	// actDays counts the distinct days the account was seen acting (a
	// login or an order), lastAct is the latest of them: the maturity of
	// the watchtower's profile of the account (see Config.MatureDays).
	actDays uint16
	lastAct int32

	// thinDays counts the distinct days the account placed a first-ever
	// buy of an issue in the target profile (R2), thinDay the latest: a
	// day trader's habit, which the 2025 victims did not have.
	thinDays uint16
	thinDay  int32

	// R11: today's liquidation (holdings the account came into the day
	// with, sold today) and its first-ever buys of issues today.
	r11Day  int32
	r11MV   int64
	r11Sold int64
	r11Buys []symValue
	r11In   *inst // the issue R11 flagged the account's buying of today

	// ringAt is when R7 last flagged the account as the ring's seller:
	// its later sells into suspect buys of any issue it accumulated are
	// the ring at work, whether or not they execute.
	ringAt int64
}

// position is a holding; firstDay is the day of the first buy fill, or -1
// for a holding that predates the stream.
type position struct {
	in       *inst
	qty      int64
	cost     int64
	firstDay int32
}

// seen is a device or network the account used; first and last are days.
type seen struct {
	h           uint64
	first, last int32
	bad         bool // used in a flagged session: never becomes known
}

type symValue struct {
	in  *inst
	jpy int64
}

// hold is flagged proceeds held from a time.
type hold struct{ from, jpy int64 }

// shared is one IP address or device with the accounts recently seen on it.
type shared struct {
	last  int64
	n     int32
	accts [6]int32
}

func (w *Watch) account(id string) *acct {
	a := w.accts[id]
	if a == nil {
		a = &acct{id: id, idx: int32(len(w.acctList))}
		w.accts[id] = a
		w.acctList = append(w.acctList, a)
	}
	return a
}

// active records that a acted on day.
func (a *acct) active(day int32) {
	if a.actDays == 0 || a.lastAct != day {
		if a.actDays < ^uint16(0) {
			a.actDays++
		}
		a.lastAct = day
	}
}

// maturity returns the distinct days before day on which a was seen
// acting: how much history a new device or network is weighed against.
func (a *acct) maturity(day int32) int {
	n := int(a.actDays)
	if n > 0 && a.lastAct == day {
		n--
	}
	return n
}

// thinBuy records a first-ever buy of an issue in the target profile on
// day.
func (a *acct) thinBuy(day int32) {
	if a.thinDays == 0 || a.thinDay != day {
		if a.thinDays < ^uint16(0) {
			a.thinDays++
		}
		a.thinDay = day
	}
}

// habitual reports whether a bought issues in the target profile on at
// least two earlier days: liquidating into one is its habit, not a
// takeover's mark.
func (a *acct) habitual(day int32) bool {
	n := int(a.thinDays)
	if n > 0 && a.thinDay == day {
		n--
	}
	return n >= 2
}

// weighContext weighs the new-device and new-network bits of a session or
// order of a on day by the maturity of a's profile: against too little
// history they are missing knowledge, not evidence, and give way to
// immature_profile, which counts for nothing. A high guard score read on
// such a profile (the guard finds every device new at a cold start) is
// dropped for the same reason; the guard's own findings (failed logins, a
// context jump) stay.
func (w *Watch) weighContext(a *acct, bits uint64, fromScore bool, day int32) uint64 {
	if a.maturity(day) >= w.cfg.MatureDays {
		return bits
	}
	if bits&contextMask != 0 {
		bits = bits&^contextMask | bImmature
	}
	if fromScore {
		bits &^= bGuard
	}
	return bits
}

// position returns a's position in in, or nil.
func (a *acct) position(in *inst) *position {
	for i := range a.pos {
		if a.pos[i].in == in {
			return &a.pos[i]
		}
	}
	return nil
}

// marketValue is the yen value at the last prices of the holdings a came
// into day with: positions first bought on day are trading, not holdings.
func (a *acct) marketValue(day int32) int64 {
	var v int64
	for i := range a.pos {
		p := &a.pos[i]
		if p.qty <= 0 || p.firstDay == day {
			continue
		}
		px := p.in.last
		if px <= 0 {
			px = p.in.prevClose
		}
		if px > 0 {
			v += int64(float64(p.qty) * px * p.in.fx)
		} else {
			v += p.cost
		}
	}
	return v
}

func (w *Watch) onAccount(r *event.Record) {
	if r.Account == "" {
		return
	}
	a := w.account(r.Account)
	for i := range a.pos {
		a.pos[i].qty = 0
	}
	now := r.Time.UnixNano()
	for _, h := range r.Holdings {
		if h.Symbol == "" || h.Qty <= 0 {
			continue
		}
		in := w.instrument(h.Symbol, now)
		if p := a.position(in); p != nil {
			p.qty, p.cost = h.Qty, h.CostJPY
			continue
		}
		a.pos = append(a.pos, position{in: in, qty: h.Qty, cost: h.CostJPY, firstDay: -1})
	}
}

// touch records that a used h today and reports whether h was known: seen
// on an earlier day and never in a flagged session.
func touch(s *[3]seen, h uint64, day int32) (known bool) {
	lru := 0
	for i := range s {
		if s[i].h == h && s[i].last != 0 {
			known = s[i].first < day && !s[i].bad
			s[i].last = day
			return known
		}
		if s[i].last < s[lru].last {
			lru = i
		}
	}
	s[lru] = seen{h: h, first: day, last: day}
	return false
}

// known reports whether h is known without recording a use.
func known(s *[3]seen, h uint64, day int32) bool {
	for i := range s {
		if s[i].h == h && s[i].last != 0 {
			return s[i].first < day && !s[i].bad
		}
	}
	return false
}

// history reports whether a has devices or networks from earlier days, so
// that a new one means something.
func history(s *[3]seen, day int32) bool {
	for i := range s {
		if s[i].last != 0 && s[i].first < day {
			return true
		}
	}
	return false
}

// markBad records that h was used in a flagged session on day, so that it
// never becomes known. A device or network the account already knew from
// earlier days stays known: a customer's own home line or phone is not
// tainted because a session from it was flagged (a flag on the account's
// own device would feed on itself: new_device on every later order).
func markBad(s *[3]seen, h uint64, day int32) {
	for i := range s {
		if s[i].h == h && s[i].last != 0 && s[i].first >= day {
			s[i].bad = true
		}
	}
}

// guardBits reads the account-level signals out of a guard decision on a
// login: its reason codes (those of the built-in policy in internal/risk,
// and common names other policies use), and a high score.
func (w *Watch) guardBits(d *event.Decision) uint64 {
	b, _ := w.guardFindings(d)
	return b
}

// guardFindings is guardBits, and whether bGuard came from the score
// alone (no reason of the guard's that says takeover).
func (w *Watch) guardFindings(d *event.Decision) (uint64, bool) {
	if d == nil {
		return 0, false
	}
	var b uint64
	for _, r := range d.Reasons {
		switch r {
		case "new_device", "unknown_device":
			b |= bNewDevice
		case "new_network", "new_asn", "new_ip", "unusual_network", "watched_network":
			b |= bNewNetwork
		case "foreign_network", "foreign_ip", "foreign_country", "foreign":
			b |= bForeign
		case "hosting_asn", "datacenter_ip", "hosting":
			b |= bHosting
		case "proxy", "residential_proxy", "vpn", "tor", "anonymizer":
			b |= bProxy
		case "session_context_jump", "failed_logins", "passkey_bypass", "blocked_ip", "blocked_asn", "blocked_device", "impossible_travel", "credential_stuffing",
			"otp_relay", "relayed_otp", "phishing_kit":
			b |= bGuard | bGuardSaid
		}
	}
	fromScore := false
	if d.Score >= w.cfg.GuardScore && b&bGuard == 0 {
		b |= bGuard
		fromScore = true
	}
	return b, fromScore
}

// orderDecision reads the guard's decision on a buy order: the
// account-level reasons it gives (the instrument-level ones, such as a thin
// issue or surveillance heat, say nothing about the account), and whether
// the guard refused the order (challenge, hold or deny) for a reason other
// than a halt or a freeze already in force.
func (w *Watch) orderDecision(d *event.Decision) (bits uint64, refused bool) {
	if d == nil {
		return 0, false
	}
	why := false // a reason other than our own heat, a halt or a freeze
	for _, r := range d.Reasons {
		switch r {
		case "instrument_halted", "account_frozen":
			return 0, false
		case "surveillance_heat":
			// our own heat fed back: no new evidence
		case "liquidate_concentrate":
			bits |= bR1
			why = true
		default:
			why = true
		}
	}
	refused = why && (d.Action == event.Challenge || d.Action == event.Hold || d.Action == event.Deny)
	bits |= w.guardBits(&event.Decision{Reasons: d.Reasons})
	return bits, refused
}

// noteEvidence records the direct takeover evidence of bits on a.
func (w *Watch) noteEvidence(a *acct, in *inst, bits uint64) {
	if in.profBits&(bR2|bUnknownInstrument) == 0 && in.r11At == 0 {
		return // buying a large or liquid issue pumps nothing
	}
	if !hijacked(bits &^ (linkMask | bRefused)) {
		return // missing history and refusals are not a takeover
	}
	if p := directPoints(bits); p >= a.evid {
		a.evid, a.evidBits, a.evidIn = p, bits&^(linkMask|bRefused), in
	}
}

// evidenced reports whether a has direct evidence of takeover: its own
// sessions scored more than a suspect's points on a first-ever buy (or R1)
// of an issue that surveillance flagged, within the campaign window.
func (w *Watch) evidenced(a *acct) bool {
	in := a.evidIn
	return a.evid >= w.cfg.SuspectPoints+1 && in != nil && in.flaggedAt != 0 && w.now-in.flaggedAt <= w.campWin
}

func (w *Watch) onLogin(r *event.Record, d *event.Decision, now int64) {
	if r.Account == "" || !r.OK {
		return
	}
	a := w.account(r.Account)
	day := dayOf(now)
	a.sess = fnv(r.Session)
	a.loginAt = now
	a.loginDev = fnv(r.Device)
	a.loginIP = 0
	// with no client context the address is the gateway's: weighed as
	// unknown (no network facts, no sharing, no session-jump reference)
	ctxless := contextless(r)
	if ctxless {
		w.noClientContext(r, a, now)
	} else if r.IP != "" {
		a.loginIP = fnv(r.IP)
	}
	a.firstOrder = 0
	var fromScore bool
	a.sBits, fromScore = w.guardFindings(d)
	if ctxless {
		a.sBits &^= netMask | bNewDevice
	}
	if r.Method == event.FactorPasskey {
		a.sBits |= bPasskey
	}
	histD, histN := history(&a.devs, day), history(&a.nets, day)
	if r.Device != "" {
		h := fnv(r.Device)
		if touch(&a.devs, h, day) {
			a.sBits |= bKnownDevice
		} else if histD {
			a.sBits |= bNewDevice
		}
		if n := w.share(w.devs, h, a.idx, now); n >= 2 {
			a.sBits |= bSharedDevice
			if n >= w.cfg.SharedDeviceAccounts {
				w.sharedInfra("device:"+r.Device, h, w.devs, now, bSharedDevice, 60)
			}
		}
	}
	if r.ASN != 0 && !ctxless {
		if !touch(&a.nets, uint64(r.ASN), day) && histN {
			a.sBits |= bNewNetwork
		}
	}
	a.sBits = w.weighContext(a, a.sBits, fromScore, day)
	a.active(day)
	// a carrier's NAT pool puts thousands of its customers behind one
	// address: sharing it is no shared infrastructure
	if r.IP != "" && !ctxless && !w.carrier[r.ASN] {
		h := fnv(r.IP)
		if n := w.share(w.ips, h, a.idx, now); n >= w.cfg.SharedIPAccounts {
			w.sharedInfra("ip:"+r.IP, h, w.ips, now, bSharedIP, 40)
		}
	}
}

// share records account a on the address or device h and returns how many
// distinct accounts used it within the shared window.
func (w *Watch) share(m map[uint64]shared, h uint64, a int32, now int64) int {
	s := m[h]
	if now-s.last > w.sharedWin {
		s = shared{}
	}
	s.last = now
	found := false
	for i := 0; i < int(min(s.n, int32(len(s.accts)))); i++ {
		if s.accts[i] == a {
			found = true
			break
		}
	}
	if !found {
		if int(s.n) < len(s.accts) {
			s.accts[s.n] = a
		}
		s.n++
	}
	m[h] = s
	return int(s.n)
}

// sharedInfra raises the shared_infrastructure alert for one IP or device.
// Its score grows with the accounts on it and with how many of them are
// suspect; the accounts are linked for R10.
func (w *Watch) sharedInfra(key string, h uint64, m map[uint64]shared, now int64, bit uint64, base int) {
	s := m[h]
	n := int(min(s.n, int32(len(s.accts))))
	accts := append(w.scratch[:0], s.accts[:n]...)
	w.scratch = accts
	score := base + 5*(int(s.n)-2)
	for _, ai := range accts {
		if w.acctList[ai].r1Hit != nil {
			score += 10
		}
	}
	w.raise(KindSharedInfrastructure, key, "", now, min(score, 85), bit, accts)
}

// addHold holds jpy of a's proceeds from now.
func (w *Watch) addHold(a *acct, jpy, now int64) {
	if jpy <= 0 {
		return
	}
	a.holds = append(a.holds, hold{from: now, jpy: jpy})
	if len(a.holds) > 16 {
		k := 0
		for _, h := range a.holds {
			if now-h.from < w.hold {
				a.holds[k] = h
				k++
			}
		}
		a.holds = a.holds[:k]
	}
}
