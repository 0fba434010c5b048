package surveil

// Reason bits: each finding carries a set of stable reason codes, kept as a
// bit set so that they cost nothing to merge and always render in the same
// order (the order of reasonNames).
const (
	bR1 uint64 = 1 << iota
	bR2
	bR2Band
	bR2Thin
	bR3
	bR3Fast
	bR4Thirty
	bR4Five
	bR5
	bR5HalfLimit
	bR6Sigma
	bR6PrevClose
	bR7
	bR7Matched
	bR7Accumulated
	bR9
	bR10
	bNewDevice
	bNewNetwork
	bForeign
	bHosting
	bProxy
	bFastLogin
	bSharedIP
	bSharedASN
	bSharedDevice
	bGuard
	bPasskey
	bUnknownInstrument
	bSessionJump
	bSoldHoldings
	bRefused
	bR3Repeat
	bR7Attempt
	bKnownDevice
	bNoClientContext
	bR11
	bImmature
	bNoHijackSignal
	numReasons = iota
)

// reasonNames are the codes of the reason bits, in bit order. They are
// stable: analysts' filters and the back office match on them.
var reasonNames = [numReasons]string{
	"R1_liquidate_concentrate",
	"R2_target_profile",
	"R2_price_band",
	"R2_thin",
	"R3_convergence",
	"R3_within_15m",
	"R4_participation_30m",
	"R4_participation_5m",
	"R5_walk_up",
	"R5_half_limit",
	"R6_vwap_sigma",
	"R6_above_prev_close",
	"R7_ring_seller",
	"R7_matched_prints",
	"R7_accumulated",
	"R9_spike_reversal",
	"R10_campaign",
	"new_device",
	"new_network",
	"foreign_ip",
	"hosting_asn",
	"proxy",
	"fast_login",
	"shared_ip",
	"shared_asn",
	"shared_device",
	"guard_flagged",
	"passkey",
	"instrument_unknown",
	"session_ip_change",
	"sold_holdings",
	"guard_refused",
	"R3_repeat_buys",
	"R7_ring_attempt",
	"known_device",
	"no_client_context",
	"R11_abnormal_buying",
	"immature_profile",
	"no_hijack_signal",
}

// ReasonCodes returns every reason code an alert may carry, in the order
// alerts list them.
func ReasonCodes() []string { return append([]string(nil), reasonNames[:]...) }

// reasonList renders a bit set as codes in the stable order.
func reasonList(bits uint64) []string {
	if bits == 0 {
		return nil
	}
	out := make([]string, 0, 8)
	for i := 0; i < numReasons; i++ {
		if bits&(1<<i) != 0 {
			out = append(out, reasonNames[i])
		}
	}
	return out
}

// suspicion points of the session and account bits that make a first-ever
// buyer look hijacked (R3). Points are summed; a passkey login and the
// account's own device (seen on earlier days) subtract, except in a session
// whose cookie was then used from another address: the cookie carries the
// passkey's proof and the device's identity to whoever stole it.
func points(bits uint64) int {
	if bits&bSessionJump != 0 {
		bits &^= bPasskey | bKnownDevice
	}
	p := 0
	for _, w := range pointWeights {
		if bits&w.bit != 0 {
			p += w.points
		}
	}
	return p
}

// pointWeights are the suspicion points of each bit.
var pointWeights = [...]struct {
	bit    uint64
	points int
}{
	{bNewDevice, 1},
	{bNewNetwork, 1},
	{bForeign, 2},
	{bHosting, 2},
	{bProxy, 2},
	{bFastLogin, 1},
	{bSharedIP, 2},
	{bSharedASN, 1},
	{bSharedDevice, 2},
	{bGuard, 1},
	{bR1, 2},
	{bSessionJump, 2},
	{bSoldHoldings, 1},
	{bRefused, 1},
	{bPasskey, -2},
	{bKnownDevice, -1},
}

// sessionMask selects the bits that describe a session or an account rather
// than an instrument.
const sessionMask = bR1 | bNewDevice | bNewNetwork | bForeign | bHosting | bProxy |
	bFastLogin | bSharedIP | bSharedASN | bSharedDevice | bGuard | bPasskey | bKnownDevice |
	bSessionJump | bSoldHoldings | bRefused | bImmature | bGuardSaid

// netMask selects the bits read from a record's IP address (its network,
// country, hosting or proxy): on a record with no client context the
// address is the brokerage's gateway's, not the customer's, and they say
// nothing about the customer.
const netMask = bNewNetwork | bForeign | bHosting | bProxy

// contextMask selects the bits that read a device or network as new to the
// account: evidence only against a history long enough to know the
// account's own (Config.MatureDays).
const contextMask = bNewDevice | bNewNetwork

// hijackMask selects the positive signs of a takeover a session can carry
// on its own: an address abroad or in a hosting network or proxy, a session
// cookie replayed from another address, or the guard's own takeover
// findings (failed logins, a context jump, a blocked address, a relayed
// code). No halt and no freeze is taken without one of them, a device
// shared across accounts or the ring's seller at work (see hijacked).
const hijackMask = bForeign | bHosting | bProxy | bSessionJump | bGuardSaid

// bGuardSaid marks a guard_flagged that the guard gave a takeover reason
// for (failed logins, a context jump, a blocked address, a relayed code),
// not a high score alone: a score can be all missing history and friction.
// It is bookkeeping, above the reason bits, and never rendered.
const bGuardSaid uint64 = 1 << 62

// the reason bits must stay below the bookkeeping bits
var _ [62 - numReasons]struct{}

// hijacked reports whether bits carry positive evidence of a takeover, not
// merely missing history or context: a hijack signal (hijackMask) or a
// device shared with other accounts. A new device and a new network on a
// Japanese carrier, with the holdings sold and the proceeds put into one
// issue, is what a hijacked session on the victim's own carrier looks
// like, and also what a customer with a new phone who rebalances looks
// like: the guard steps it up, the watchtower heats the issue, neither
// halts nor freezes on it.
func hijacked(bits uint64) bool {
	return bits&hijackMask != 0 || bits&bSharedDevice != 0
}

// liquidatedFromNewContext reports whether bits are holdings liquidated
// into the issue (R1, or sold in its window) from a device or network new
// to a mature profile: a hijacked session on the victim's own carrier, or
// a customer's new phone. One such account is context; several converging
// on one issue are the 2025 campaign.
func liquidatedFromNewContext(bits uint64) bool {
	return bits&(bR1|bSoldHoldings) != 0 && bits&contextMask != 0 && bits&bKnownDevice == 0
}

// takeoverContext reports whether a liquidation (R1) happened in a
// context that could be a takeover, so that its proceeds are held: a
// positive sign of takeover (hijacked), or a session on neither the
// account's own device (seen on earlier days) nor a passkey: a new
// device, or one the watchtower cannot tell (a cold start). A customer
// rebalancing from its own device, or signed in with a passkey, is R1
// for the analysts, not a reason to hold its money; the guard still
// decides its withdrawals on its own.
func takeoverContext(bits uint64) bool {
	return hijacked(bits) || bits&(bKnownDevice|bPasskey) == 0
}

// linkMask selects the bits that only say an account shares something with
// other buyers (an IP, an ASN, a device). They make a buyer a suspect for
// R3, but they are not evidence that the account itself was taken over.
const linkMask = bSharedIP | bSharedASN | bSharedDevice

// directPoints are the suspicion points of bits that come from the
// account's own sessions and trades: what a freeze may rest on.
// A refused order is left out too: the guard often refuses a first-ever
// buy of a thin issue for the sake alone.
func directPoints(bits uint64) int { return points(bits &^ (linkMask | bRefused)) }
