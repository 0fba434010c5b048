// Package surveil is Kabuto's watchtower: streaming detectors that run
// across accounts and instruments and catch a ramp through hijacked accounts
// while it happens.
//
// A Watch is fed every record of the event stream in order (Observe) with the
// guard's decision for customer actions. It keeps small incremental state per
// instrument (one-minute market volume, session VWAP, recent aggressive
// buys, first-ever buyers) and per account (positions, known devices and
// networks, the current session), and evaluates the detection rules R1-R7,
// R9 and R10 of the incident reference on each record in O(1)-ish time:
//
//	R1  liquidate then concentrate            liquidate_concentrate
//	R2  target profile (price, thinness)      feeds the other scores
//	R3  cross-account convergence             cross_account_pump, hijacked_accounts
//	R4  firm participation (関与率)            firm_participation
//	R5  aggressive walk-up (買い上がり)         walk_up
//	R6  price-deviation fill                  price_deviation
//	R7  the ring's seller                     ring_seller
//	R9  spike and reversal                    spike_reversal
//	R10 campaign linking (union-find)         campaign
//	R11 one account's abnormal buying         abnormal_buying
//	    accounts sharing an IP or device      shared_infrastructure
//
// Every instrument has a heat (0..100) that combines account-takeover
// evidence (R1, R3 and the sessions behind the buys) with market evidence
// (R2, R4-R7). Market evidence alone is capped below the default halt score:
// a news spike bought by many customers on their own devices, or one busy
// day trader, is never halted; three or more first-ever buyers of a thin
// issue from sessions that look hijacked are, and so are three hijacked buys
// placed by fewer accounts when the ring's seller sells (or tries to sell)
// into them or an account liquidated its holdings into the issue
// (R3_repeat_buys): a hijacked account ramps a target over several orders.
// R11 sees the target one hijacked account works alone, a mid-priced issue
// bought over hours, on the issue's own baseline (its traded value, the
// firm's usual buying of it) and the buyer's own day (holdings liquidated,
// a new context): the issue's heat rises so that the guard steps up the
// next buys.
//
// Missing history is not evidence. A new device or network counts only on
// a profile the watchtower has seen act on Config.MatureDays earlier days,
// and no halt or freeze is taken without a positive sign of takeover (an
// address abroad or in a data centre or proxy, a replayed session cookie,
// the guard's own findings, a device shared across accounts, holdings
// liquidated from a new context, the ring's seller at work). A carrier's
// NAT address is shared by strangers: it links no one and marks no buyer.
//
// Alerts are deduplicated: one alert stays open per kind and symbol (or
// shared address) and is updated and escalated, keeping its identifier,
// rather than repeated. Observe returns an alert when it is raised and again
// when it escalates (higher score, new accounts, a stronger action).
//
// Nothing reads the wall clock: all time is stream time, identifiers are
// counters and every output is sorted, so the same stream always gives
// byte-identical alerts.
package surveil

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// Alert kinds.
const (
	KindCrossAccountPump     = "cross_account_pump"
	KindHijackedAccounts     = "hijacked_accounts"
	KindLiquidateConcentrate = "liquidate_concentrate"
	KindFirmParticipation    = "firm_participation"
	KindWalkUp               = "walk_up"
	KindPriceDeviation       = "price_deviation"
	KindRingSeller           = "ring_seller"
	KindSpikeReversal        = "spike_reversal"
	KindSharedInfrastructure = "shared_infrastructure"
	KindCampaign             = "campaign"
	// KindClientContext is raised once many accounts act from one address
	// with no client context (no device): the brokerage's gateway calling
	// without the customer's address and device (see Gateways). It names
	// no accounts and takes no action: it tells the operator that the
	// integration leaves out the headers surveillance needs.
	KindClientContext = "client_context_missing"
)

// symbolKind reports whether alerts of kind are about an instrument: such
// an alert at or above the halt score halts buying of its symbol. The other
// kinds are about accounts: at or above the freeze score they freeze them.
func symbolKind(kind string) bool {
	switch kind {
	case KindCrossAccountPump, KindFirmParticipation, KindWalkUp, KindPriceDeviation, KindSpikeReversal, KindAbnormalBuying:
		return true
	}
	return false
}

// Config holds the automation thresholds and the detectors' parameters.
// DefaultConfig gives the incident reference's starting values.
type Config struct {
	// HaltScore is the score at or above which an instrument alert gets the
	// action halt_buys (0: never act).
	HaltScore int
	// FreezeScore is the score at or above which an alert naming accounts
	// gets the action freeze_accounts (0: never act). An instrument alert
	// that reaches it also raises a hijacked_accounts alert that freezes the
	// accounts behind it.
	FreezeScore int
	// HoldProceeds is how long the proceeds of flagged trades (the ring's
	// sells, a hijacked account's liquidation) are held; see HeldProceeds.
	HoldProceeds time.Duration
	// AlertScore is the lowest instrument heat that raises a
	// cross_account_pump alert (with at least two suspect buyers).
	AlertScore int
	// AlertTTL is how long an alert stays open to updates after it was last
	// updated; a later finding of the same kind and symbol opens a new one.
	AlertTTL time.Duration
	// MaxAlerts bounds the alerts kept for queries (oldest dropped first).
	MaxAlerts int

	// R1: within LiquidateWindow (or one session) an account sells at least
	// LiquidateShare of its holdings' market value and puts at least
	// ConcentrateShare of the proceeds into one issue it never held, over
	// one buy order or several. Holdings are what the account came into
	// the day with: selling a position bought the same day is a day
	// trader's round trip, not a liquidation.
	LiquidateWindow  time.Duration
	LiquidateShare   float64
	ConcentrateShare float64

	// R2: the target profile. Price (yen) under TargetMaxPriceJPY, weighted
	// up inside [TargetBandLowJPY, TargetBandHighJPY]; average daily traded
	// value under ThinValueJPY; a TSE Prime issue trading LargeCapValueJPY
	// a day or more is a large cap and never a target.
	TargetMaxPriceJPY float64
	TargetBandLowJPY  float64
	TargetBandHighJPY float64
	ThinValueJPY      float64
	LargeCapValueJPY  float64

	// R3: at least ConvergeAccounts distinct suspect accounts make a
	// first-ever buy of one issue (one they did not hold before the day)
	// within ConvergeWindow (weighted up inside ConvergeFast). A buyer is a
	// suspect with SuspectPoints or more points from its session: new
	// device 1, new network 1, foreign IP 2, hosting ASN 2, proxy 2, first
	// order within FastLogin of login 1, IP shared with another buyer 2, new
	// ASN (not one of CarrierASNs) shared with another buyer 1, device
	// shared across accounts 2, guard score at login >= GuardScore 1, R1 2,
	// the session's cookie used from another IP than its login 2, holdings
	// sold in the R1 window without R1's concentration 1, the buy refused by
	// the guard (challenge, hold or deny; not for heat, a halt or a freeze)
	// 1, passkey login -2, the account's own device (seen on earlier days)
	// -1; neither discount holds once the session's cookie is used from
	// another IP. A refused buy counts as much as an executed one: each
	// suspect whose buy was refused also adds heat in place of the market
	// evidence its fill would have given. Two suspects do when the ring's
	// seller (R7) sold to them; suspects outnumbered more than three to one
	// by clean first-ever buyers (a news spike) do not.
	//
	// Every buy order of a suspect counts (up to ConvergeAccounts per
	// account): ConvergeAccounts hijacked buy orders from fewer accounts
	// are a ramp too (R3_repeat_buys) when the ring's seller sold into
	// them, or an account R7 flagged tried to sell into them (refused or
	// not), or one of the suspects liquidated its holdings into the issue
	// (R1) from a session that looks hijacked without it, or, with two
	// suspects or more, one liquidated into it (R1) and one carries a
	// positive sign of takeover (a stolen cookie replayed, an address
	// abroad, in a data centre or a proxy): on a cold start the
	// liquidator's new device counts for nothing.
	//
	// Freezes rest on each account's own evidence: only accounts whose own
	// sessions scored more than SuspectPoints (shared IPs, ASNs, devices and
	// refusals left out) on a first-ever buy or R1 of an issue surveillance
	// flagged, and ring sellers, are ever frozen; campaign, R1 and shared
	// infrastructure alerts at the freeze score raise hijacked_accounts for
	// those of their accounts only.
	ConvergeAccounts int
	ConvergeWindow   time.Duration
	ConvergeFast     time.Duration
	FastLogin        time.Duration
	SuspectPoints    int
	GuardScore       int
	// HomeCountry is the country whose IPs are not foreign.
	HomeCountry string
	// HostingASNs are cloud, hosting and VPN networks.
	HostingASNs []int64
	// CarrierASNs are large residential and mobile carriers: millions of
	// customers share each, so R10 never links accounts through them.
	CarrierASNs []int64

	// R4: own customers' buy volume at least Participation30 of market
	// volume over 30 minutes or Participation5 over 5 minutes, with market
	// volume at least VolumeSurge times normal (ADV / 330 a minute).
	Participation30 float64
	Participation5  float64
	VolumeSurge     float64

	// R5: at least WalkUpOrders aggressive buys (market, or limit above the
	// last price) within WalkUpWindow while the price is up WalkUpRise from
	// the previous close and by at least WalkUpMinTicks ticks; more severe
	// past half the daily price limit.
	WalkUpOrders   int
	WalkUpWindow   time.Duration
	WalkUpRise     float64
	WalkUpMinTicks int

	// R6: a buy fill above session VWAP + DeviationSigma standard
	// deviations (sigma at least one tick and 1% of VWAP, after
	// DeviationBars bars), or at least DeviationRise above the previous close.
	DeviationSigma float64
	DeviationRise  float64
	DeviationBars  int

	// R7: an account that bought the issue 1..RingAccumDays days before
	// sells at least RingShare of the spike's volume, with prints at the
	// same price as a suspect buyer's within RingMatch.
	RingShare     float64
	RingAccumDays int
	RingMatch     time.Duration

	// R9: the day's high at least SpikeRise above the previous close and the
	// close giving back at least SpikeGiveBack of the gain.
	SpikeRise     float64
	SpikeGiveBack float64

	// R10: flagged accounts, issues, IPs, hosting ASNs and devices are
	// linked over CampaignWindow; CampaignIssues flagged issues in one
	// component make a campaign. An issue is flagged by an instrument alert
	// scoring CampaignScore or more.
	CampaignWindow time.Duration
	CampaignIssues int
	CampaignScore  int

	// Shared infrastructure: SharedIPAccounts distinct accounts logging in
	// from one IP, or SharedDeviceAccounts from one device, within
	// SharedWindow.
	SharedIPAccounts     int
	SharedDeviceAccounts int
	SharedWindow         time.Duration

	// Gateways: a record with no device carries no client context, and
	// its IP address may be the brokerage's gateway's rather than the
	// customer's: the watchtower weighs that address as unknown (no
	// shared IP, network, country, hosting or new-device points, no
	// campaign link, no shared-infrastructure alert). GatewayAccounts
	// distinct accounts acting so from one address within SharedWindow
	// make it a recognised gateway (Gateways) and raise
	// client_context_missing.
	GatewayAccounts int

	// MatureDays is how many earlier days the watchtower must have seen
	// an account act (sign in or order) before a device or network new to
	// it counts as evidence (new_device, new_network, and a high guard
	// score read on such a profile). Before that they are missing
	// history, recorded as immature_profile and weighed as nothing. Halts
	// and freezes need a positive sign of takeover besides (see
	// hijacked): missing history never decides one.
	MatureDays int

	// R11: one account's abnormal buying of an issue, seen on the issue's
	// own baseline rather than by convergence across accounts. Within a
	// day an account sells at least R11SoldShare of the holdings it came
	// into the day with and buys an issue it never held for at least
	// R11ProceedsShare of the proceeds, from a new context (a new device
	// or network on a mature profile, or a hijack signal), and that
	// buying is abnormal for the issue: at least R11ADVShare of its
	// average daily traded value, or R11FirmTimes the firm's customers'
	// usual daily buying of it. The issue's heat rises so that the guard
	// steps up further buys of it (surveillance_heat); a halt needs a
	// hijack signal or the ring's seller besides. R11Window is how long
	// the finding keeps the issue warm after the account's last buy.
	R11SoldShare     float64
	R11ProceedsShare float64
	R11ADVShare      float64
	R11FirmTimes     float64
	R11Window        time.Duration
}

// DefaultConfig returns the reference's starting thresholds, halting buys at
// score 80 and freezing accounts at 90, with proceeds held 14 days.
func DefaultConfig() Config {
	return Config{
		HaltScore:    80,
		FreezeScore:  90,
		HoldProceeds: 14 * 24 * time.Hour,
		AlertScore:   50,
		AlertTTL:     24 * time.Hour,
		MaxAlerts:    10000,

		LiquidateWindow:  60 * time.Minute,
		LiquidateShare:   0.5,
		ConcentrateShare: 0.7,

		TargetMaxPriceJPY: 500,
		TargetBandLowJPY:  80,
		TargetBandHighJPY: 200,
		ThinValueJPY:      10e6,
		LargeCapValueJPY:  1e9,

		ConvergeAccounts: 3,
		ConvergeWindow:   120 * time.Minute,
		ConvergeFast:     15 * time.Minute,
		FastLogin:        60 * time.Second,
		SuspectPoints:    3,
		GuardScore:       60,
		HomeCountry:      "JP",
		HostingASNs:      append([]int64(nil), defaultHostingASNs...),
		CarrierASNs:      append([]int64(nil), defaultCarrierASNs...),

		Participation30: 0.30,
		Participation5:  0.50,
		VolumeSurge:     10,

		WalkUpOrders:   3,
		WalkUpWindow:   5 * time.Minute,
		WalkUpRise:     0.10,
		WalkUpMinTicks: 5,

		DeviationSigma: 3,
		DeviationRise:  0.20,
		DeviationBars:  5,

		RingShare:     0.20,
		RingAccumDays: 10,
		RingMatch:     10 * time.Second,

		SpikeRise:     0.20,
		SpikeGiveBack: 0.50,

		CampaignWindow: 30 * 24 * time.Hour,
		CampaignIssues: 2,
		CampaignScore:  50,

		SharedIPAccounts:     5,
		SharedDeviceAccounts: 3,
		SharedWindow:         24 * time.Hour,

		GatewayAccounts: 3,

		MatureDays: 2,

		R11SoldShare:     0.1,
		R11ProceedsShare: 0.1,
		R11ADVShare:      0.01,
		R11FirmTimes:     5,
		R11Window:        4 * time.Hour,
	}
}

// Watch is the watchtower's state. Its methods are safe for concurrent use;
// Observe must still be called in stream order.
type Watch struct {
	mu  sync.Mutex
	cfg Config
	// checkAll makes every campaign check take in every member, as the
	// first one does: the reference the incremental checks are tested
	// against.
	checkAll bool
	// durations in nanoseconds, copied from cfg
	liqWin, convWin, convFast, fastLogin, walkWin, ringMatch, ttl, hold, sharedWin, campWin, r11Win int64
	hosting, carrier                                                                                map[int64]bool

	now  int64
	day  int32
	loc  *time.Location
	tday bool // day has been set

	insts    map[string]*inst
	accts    map[string]*acct
	acctList []*acct

	ips  map[uint64]shared
	devs map[uint64]shared
	gws  map[uint64]*gateway

	alerts    []*alertRec
	open      map[string]*alertRec
	nextAlert int
	out       []event.Alert
	scratch   []int32
	sus       []int32

	link linker
}

// New returns a Watch with cfg. Zero durations and thresholds in cfg are
// taken from DefaultConfig, except HaltScore and FreezeScore, where 0 means
// never act.
func New(cfg Config) *Watch {
	cfg = withDefaults(cfg)
	w := &Watch{
		cfg:       cfg,
		liqWin:    int64(cfg.LiquidateWindow),
		convWin:   int64(cfg.ConvergeWindow),
		convFast:  int64(cfg.ConvergeFast),
		fastLogin: int64(cfg.FastLogin),
		walkWin:   int64(cfg.WalkUpWindow),
		ringMatch: int64(cfg.RingMatch),
		ttl:       int64(cfg.AlertTTL),
		hold:      int64(cfg.HoldProceeds),
		sharedWin: int64(cfg.SharedWindow),
		campWin:   int64(cfg.CampaignWindow),
		r11Win:    int64(cfg.R11Window),
		hosting:   make(map[int64]bool, len(cfg.HostingASNs)),
		insts:     make(map[string]*inst),
		accts:     make(map[string]*acct),
		ips:       make(map[uint64]shared),
		devs:      make(map[uint64]shared),
		gws:       make(map[uint64]*gateway),
		open:      make(map[string]*alertRec),
		link:      newLinker(),
	}
	for _, a := range cfg.HostingASNs {
		w.hosting[a] = true
	}
	w.carrier = make(map[int64]bool, len(cfg.CarrierASNs))
	for _, a := range cfg.CarrierASNs {
		w.carrier[a] = true
	}
	return w
}

func withDefaults(c Config) Config {
	d := DefaultConfig()
	setD := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	setF := func(p *float64, v float64) {
		if *p <= 0 {
			*p = v
		}
	}
	setI := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	setD(&c.HoldProceeds, d.HoldProceeds)
	setI(&c.AlertScore, d.AlertScore)
	setD(&c.AlertTTL, d.AlertTTL)
	setI(&c.MaxAlerts, d.MaxAlerts)
	setD(&c.LiquidateWindow, d.LiquidateWindow)
	setF(&c.LiquidateShare, d.LiquidateShare)
	setF(&c.ConcentrateShare, d.ConcentrateShare)
	setF(&c.TargetMaxPriceJPY, d.TargetMaxPriceJPY)
	setF(&c.TargetBandLowJPY, d.TargetBandLowJPY)
	setF(&c.TargetBandHighJPY, d.TargetBandHighJPY)
	setF(&c.ThinValueJPY, d.ThinValueJPY)
	setF(&c.LargeCapValueJPY, d.LargeCapValueJPY)
	setI(&c.ConvergeAccounts, d.ConvergeAccounts)
	setD(&c.ConvergeWindow, d.ConvergeWindow)
	setD(&c.ConvergeFast, d.ConvergeFast)
	setD(&c.FastLogin, d.FastLogin)
	setI(&c.SuspectPoints, d.SuspectPoints)
	setI(&c.GuardScore, d.GuardScore)
	if c.HomeCountry == "" {
		c.HomeCountry = d.HomeCountry
	}
	if c.HostingASNs == nil {
		c.HostingASNs = d.HostingASNs
	}
	if c.CarrierASNs == nil {
		c.CarrierASNs = d.CarrierASNs
	}
	setF(&c.Participation30, d.Participation30)
	setF(&c.Participation5, d.Participation5)
	setF(&c.VolumeSurge, d.VolumeSurge)
	setI(&c.WalkUpOrders, d.WalkUpOrders)
	setD(&c.WalkUpWindow, d.WalkUpWindow)
	setF(&c.WalkUpRise, d.WalkUpRise)
	setI(&c.WalkUpMinTicks, d.WalkUpMinTicks)
	setF(&c.DeviationSigma, d.DeviationSigma)
	setF(&c.DeviationRise, d.DeviationRise)
	setI(&c.DeviationBars, d.DeviationBars)
	setF(&c.RingShare, d.RingShare)
	setI(&c.RingAccumDays, d.RingAccumDays)
	setD(&c.RingMatch, d.RingMatch)
	setF(&c.SpikeRise, d.SpikeRise)
	setF(&c.SpikeGiveBack, d.SpikeGiveBack)
	setD(&c.CampaignWindow, d.CampaignWindow)
	setI(&c.CampaignIssues, d.CampaignIssues)
	setI(&c.CampaignScore, d.CampaignScore)
	setI(&c.SharedIPAccounts, d.SharedIPAccounts)
	setI(&c.SharedDeviceAccounts, d.SharedDeviceAccounts)
	setD(&c.SharedWindow, d.SharedWindow)
	setI(&c.GatewayAccounts, d.GatewayAccounts)
	setI(&c.MatureDays, d.MatureDays)
	setF(&c.R11SoldShare, d.R11SoldShare)
	setF(&c.R11ProceedsShare, d.R11ProceedsShare)
	setF(&c.R11ADVShare, d.R11ADVShare)
	setF(&c.R11FirmTimes, d.R11FirmTimes)
	setD(&c.R11Window, d.R11Window)
	return c
}

// Config returns the configuration in effect, defaults filled in.
func (w *Watch) Config() Config { return w.cfg }

// Observe feeds one record of the stream, in stream order. d is the guard's
// decision for a customer action and nil for other records. It returns the
// alerts this record raised or escalated, usually none; the slice is the
// caller's.
func (w *Watch) Observe(r *event.Record, d *event.Decision) []event.Alert {
	if r == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := r.Time.UnixNano()
	if now > w.now {
		w.now = now
	}
	if w.loc == nil {
		w.loc = r.Time.Location()
	}
	if day := dayOf(now); !w.tday || day > w.day {
		w.rollDay(day, now)
	}
	w.out = w.out[:0]
	switch r.Type {
	case event.TypeBar:
		w.onBar(r, now)
	case event.TypeOrder:
		w.onOrder(r, d, now)
	case event.TypeFill:
		w.onFill(r, now)
	case event.TypeLogin:
		w.onLogin(r, d, now)
	case event.TypeInstrument:
		w.onInstrument(r, now)
	case event.TypeAccount:
		w.onAccount(r)
	}
	if len(w.out) == 0 {
		return nil
	}
	return append([]event.Alert(nil), w.out...)
}

// rollDay runs the once-a-day housekeeping: forgetting shared addresses
// outside their window and links older than the campaign window.
func (w *Watch) rollDay(day int32, now int64) {
	w.day, w.tday = day, true
	for k, s := range w.ips {
		if now-s.last > w.sharedWin {
			delete(w.ips, k)
		}
	}
	for k, s := range w.devs {
		if now-s.last > w.sharedWin {
			delete(w.devs, k)
		}
	}
	for k, g := range w.gws {
		if now-g.last > w.sharedWin {
			delete(w.gws, k)
		}
	}
	for k, a := range w.open {
		if now > a.until {
			delete(w.open, k)
		}
	}
	w.link.expire(now-w.campWin, w)
}

// Heat returns how strongly symbol looks under attack right now, 0 to 100.
// The guard adds it to the risk of buy orders so that they are stepped up
// before the halt threshold is reached. A halted symbol has heat 100; heat
// fades over two hours without new evidence.
func (w *Watch) Heat(symbol string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	in := w.insts[symbol]
	if in == nil {
		return 0
	}
	if in.halted {
		return 100
	}
	return max(in.heatNow(w.now), in.r11Heat(w.now, w.r11Win), in.r3Heat(w.now, w.r11Win))
}

// Halted reports whether buying of symbol has been halted by an alert.
func (w *Watch) Halted(symbol string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	in := w.insts[symbol]
	return in != nil && in.halted
}

// Release lifts the halt on symbol (an analyst's decision) and reports
// whether it was halted. The alert that halted it stays as it was.
func (w *Watch) Release(symbol string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	in := w.insts[symbol]
	if in == nil || !in.halted {
		return false
	}
	in.halted = false
	return true
}

// Frozen reports whether an alert has frozen account.
func (w *Watch) Frozen(account string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.accts[account]
	return a != nil && a.frozen
}

// HeldProceeds returns the yen of flagged-trade proceeds of account still
// held at now: each is held for Config.HoldProceeds from its trade.
func (w *Watch) HeldProceeds(account string, now time.Time) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	a := w.accts[account]
	if a == nil {
		return 0
	}
	t := now.UnixNano()
	var sum int64
	for _, h := range a.holds {
		if h.from <= t && t < h.from+w.hold {
			sum += h.jpy
		}
	}
	return sum
}

// AlertQuery selects alerts; zero fields match everything.
type AlertQuery struct {
	Since   time.Time // last updated at or after
	Kind    string
	Symbol  string
	Account string
	// Campaign selects the alerts of one campaign.
	Campaign string
	// Limit keeps the most recent Limit alerts (0: all kept).
	Limit int
}

// Alerts returns the kept alerts that match q, oldest first, each as last
// updated.
func (w *Watch) Alerts(q AlertQuery) []event.Alert {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []event.Alert
	since := int64(0)
	if !q.Since.IsZero() {
		since = q.Since.UnixNano()
	}
	for _, a := range w.alerts {
		if since != 0 && a.updated < since ||
			q.Kind != "" && a.a.Kind != q.Kind ||
			q.Symbol != "" && a.a.Symbol != q.Symbol ||
			q.Campaign != "" && a.a.Campaign != q.Campaign {
			continue
		}
		if q.Account != "" {
			i := sort.SearchStrings(a.a.Accounts, q.Account)
			if i == len(a.a.Accounts) || a.a.Accounts[i] != q.Account {
				continue
			}
		}
		out = append(out, a.copy())
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[len(out)-q.Limit:]
	}
	return out
}

// Campaign is a connected group of flagged accounts, issues and session
// infrastructure (R10).
type Campaign struct {
	ID       string
	First    time.Time // when the campaign was formed
	Last     time.Time // its last update
	Score    int
	Symbols  []string
	Accounts []string
	// IPs, ASNs and Devices are the shared infrastructure linked in.
	IPs     []string
	ASNs    []int64
	Devices []string
	// Alerts are the identifiers of the campaign's alerts.
	Alerts []string
}

// Campaigns returns the current campaigns, in the order they were formed.
func (w *Watch) Campaigns() []Campaign {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.link.campaigns(w)
}

// ts turns stream nanoseconds back into a time in the stream's zone.
func (w *Watch) ts(ns int64) time.Time {
	t := time.Unix(0, ns)
	if w.loc != nil {
		t = t.In(w.loc)
	}
	return t
}

func itoa(n int) string { return strconv.Itoa(n) }
