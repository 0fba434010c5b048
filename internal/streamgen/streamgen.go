// Package streamgen generates independent test streams for Kabuto: seeded,
// deterministic streams in the public record format (shared/spec/events.md)
// of a brokerage's ordinary customers over weeks of history and then an
// attack day, with seven families of account-takeover attack and hard
// legitimate look-alikes on the same day, and the ground truth in a separate
// labels file. It is written apart from the simulator's attackers and the
// guard's rules (from the incident reference and the record format only), so
// that detection is measured on attacks its authors did not write; Score
// computes the detection table from a replay's decisions and alerts.
//
// A stream holds, in time order: instrument and account reference records,
// one-minute bars of every instrument, and the customers' sign-ins, orders,
// fills, withdrawals and changes of settings, on TSE trading days
// (9:00-11:30 and 12:30-15:30 JST; Hong Kong and Shanghai names trade in
// their own hours). Nothing in the stream tells an attack from a customer:
// record, session, order and device identifiers are random or sequential in
// stream order.
package streamgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
)

// Family names one family of attack.
type Family string

// The seven families of attack.
const (
	// PhishRelay is real-time phishing through a residential proxy: the
	// password and a relayed one-time code, a new device on a Japanese
	// residential network (often the victim's own carrier); the first
	// sell is the largest holding.
	PhishRelay Family = "phish_relay"
	// SlowTarget is a slow campaign: one victim per target, a thin
	// mid-priced issue (¥800-3000) bought over hours in small limit
	// orders.
	SlowTarget Family = "slow_target"
	// FastPump is the classic ramp: many hijacked accounts from hosting
	// and foreign networks liquidate and buy a thin ¥100-200 issue within
	// about two hours.
	FastPump Family = "fast_pump"
	// CookieReplay is an infostealer's session replay: the victim's own
	// session, device identifier and user agent, from another network.
	CookieReplay Family = "cookie_replay"
	// BankTakeover changes the contact details, adds the attacker's
	// authenticator and the withdrawal bank account, and withdraws.
	BankTakeover Family = "bank_takeover"
	// ForeignPump ramps thin Hong Kong and Shanghai names.
	ForeignPump Family = "foreign_pump"
	// CleanHistory acts through accounts with long clean histories, split
	// over two days, in the lunch break and the closing auction, with
	// limit orders at the ask, from the victim's own carrier.
	CleanHistory Family = "clean_history"
)

// Families lists every family, in the order reports show them.
var Families = []Family{PhishRelay, SlowTarget, FastPump, CookieReplay, BankTakeover, ForeignPump, CleanHistory}

// ParseFamilies parses a comma-separated list of family names; "all" is
// every family and "none" (or "") no attack at all.
func ParseFamilies(s string) ([]Family, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "all":
		return append([]Family(nil), Families...), nil
	case "", "none":
		return []Family{}, nil
	}
	var out []Family
	for _, p := range strings.Split(s, ",") {
		f := Family(strings.TrimSpace(p))
		ok := false
		for _, k := range Families {
			ok = ok || k == f
		}
		if !ok {
			names := make([]string, len(Families))
			for i, k := range Families {
				names[i] = string(k)
			}
			return nil, fmt.Errorf("unknown family %q: want all, none or some of %s", p, strings.Join(names, ","))
		}
		out = append(out, f)
	}
	return out, nil
}

// Config says what stream to generate.
type Config struct {
	// Seed makes the stream: the same Config gives byte-identical output.
	Seed uint64
	// Customers is how many customers the brokerage has (2,000 for the
	// bench; fewer in unit tests).
	Customers int
	// Days is how many trading days of ordinary history come before the
	// attack day.
	Days int
	// Families are the attacks of the attack day; nil means every family,
	// an empty slice none (an ordinary day with look-alikes).
	Families []Family
	// NoLookalikes leaves the legitimate look-alikes out.
	NoLookalikes bool
	// AttackDay is the date of the attack day (JST); zero means
	// 2025-04-22, in the April 2025 peak.
	AttackDay time.Time
}

// Stats tells what was generated.
type Stats struct {
	Records, Actions, Fraudulent int
	First, AttackDay             time.Time
}

// gen is one generation under way.
type gen struct {
	cfg     Config
	rng     *rand.Rand // ordinary life
	arng    *rand.Rand // attacks and look-alikes
	insts   []*inst
	bySym   map[string]*inst
	byClass map[int][]*inst
	custs   []*cust
	late    []*cust // customers who open their account on the attack day or the day before
	ids     map[string]bool
	dates   []time.Time
	day     int
	recs    []*event.Record
	marks   map[*event.Record]Label
	plan    *plan
	out     *bufio.Writer
	labels  *bufio.Writer
	buf     []byte
	n       int
	stats   Stats
}

// Outputs says where a generated stream goes.
type Outputs struct {
	// Stream receives the stream (every day, or only the attack day when
	// History is set).
	Stream io.Writer
	// History, when set, receives the days before the attack day: the
	// history a guard learns from (kabuto replay --learn) before the
	// attack day is replayed.
	History io.Writer
	// Labels receives the ground truth (nil: not written).
	Labels io.Writer
}

// Generate writes the stream cfg describes and its ground truth to o,
// calling progress (when set) after each day with the days done and the
// days in all.
func Generate(ctx context.Context, cfg Config, o Outputs, progress func(done, total int)) (Stats, error) {
	if cfg.Customers < 20 {
		return Stats{}, fmt.Errorf("customers: want at least 20, have %d", cfg.Customers)
	}
	if cfg.Days < 1 || cfg.Days > 250 {
		return Stats{}, fmt.Errorf("days: want 1 to 250 days of history, have %d", cfg.Days)
	}
	if cfg.Families == nil {
		cfg.Families = append([]Family(nil), Families...)
	}
	if cfg.AttackDay.IsZero() {
		cfg.AttackDay = time.Date(2025, 4, 22, 0, 0, 0, 0, clock.JST)
	}
	g := &gen{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x73747265616d)), arng: rand.New(rand.NewPCG(cfg.Seed, 0x61747461636b)),
		bySym: map[string]*inst{}, byClass: map[int][]*inst{}, ids: map[string]bool{}, marks: map[*event.Record]Label{},
		out: bufio.NewWriterSize(o.Stream, 1<<16)}
	if o.Labels != nil {
		g.labels = bufio.NewWriterSize(o.Labels, 1<<16)
	}
	stream := g.out
	if o.History != nil {
		g.out = bufio.NewWriterSize(o.History, 1<<16)
	}
	g.dates = tradingDays(midnight(cfg.AttackDay), cfg.Days)
	g.insts = universe(cfg.Seed, g.rng)
	for _, in := range g.insts {
		g.bySym[in.Symbol] = in
		g.byClass[in.class] = append(g.byClass[in.class], in)
	}
	first := g.dates[0]
	for i := 0; i < cfg.Customers; i++ {
		opened := first.AddDate(-1-g.rng.IntN(12), -g.rng.IntN(12), -g.rng.IntN(28))
		if g.rng.Float64() < 0.04 { // opened during the history
			opened = g.dates[g.rng.IntN(len(g.dates)-1)]
		}
		g.custs = append(g.custs, g.newCustomer(i, opened, g.rng))
	}
	g.plan = g.makePlan()
	g.stats.First, g.stats.AttackDay = first, g.dates[len(g.dates)-1]
	if err := g.writeHeader(); err != nil {
		return g.stats, err
	}
	for d, day := range g.dates {
		if err := ctx.Err(); err != nil {
			return g.stats, err
		}
		g.day = d
		if d == len(g.dates)-1 && g.out != stream {
			if err := g.out.Flush(); err != nil {
				return g.stats, err
			}
			g.out = stream
		}
		g.genDay(day)
		if err := g.flushDay(); err != nil {
			return g.stats, err
		}
		if progress != nil {
			progress(d+1, len(g.dates))
		}
	}
	if err := g.out.Flush(); err != nil {
		return g.stats, err
	}
	if g.labels != nil {
		if err := g.labels.Flush(); err != nil {
			return g.stats, err
		}
	}
	return g.stats, nil
}

// tradingDays returns the attack day and the n TSE trading days before it,
// oldest first: weekdays that are not Japanese public holidays or the
// exchange's year-end closure.
func tradingDays(attack time.Time, n int) []time.Time {
	out := []time.Time{attack}
	for d := attack.AddDate(0, 0, -1); len(out) <= n; d = d.AddDate(0, 0, -1) {
		if d.Weekday() == time.Saturday || d.Weekday() == time.Sunday || holiday(d) {
			continue
		}
		out = append(out, d)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// holiday reports whether d is a day the TSE is closed on a weekday: the
// year-end closure and the fixed-date and Monday public holidays.
func holiday(d time.Time) bool {
	m, day := d.Month(), d.Day()
	switch {
	case m == 1 && day <= 3, m == 12 && day == 31:
		return true
	case m == 2 && (day == 11 || day == 23), m == 4 && day == 29, m == 5 && day >= 3 && day <= 6,
		m == 8 && day == 11, m == 11 && (day == 3 || day == 23), m == 3 && day == 20, m == 9 && day == 23:
		return true
	case d.Weekday() == time.Monday && (m == 1 || m == 7 || m == 9 || m == 10):
		// Coming of Age, Marine, Respect for the Aged, Sports Day: second
		// or third Monday.
		nth := (day-1)/7 + 1
		return (m == 1 || m == 10) && nth == 2 || (m == 7 || m == 9) && nth == 3
	}
	return false
}

// genDay generates one day: reference records before the open, every
// customer's activity, the attacks and look-alikes, and the bars.
func (g *gen) genDay(day time.Time) {
	attackDay := g.day == len(g.dates)-1
	for _, in := range g.insts {
		g.emit(in.record(day.Add(7 * time.Hour)))
		in.shock = in.shock[:0]
	}
	if attackDay {
		g.custs = append(g.custs, g.late...)
	}
	for _, c := range g.custs {
		if !c.opened.After(day) && (c.dirty || g.day == 0 || c.opened.Equal(day)) {
			g.emit(c.snapshot(day.Add(7*time.Hour + 30*time.Minute)))
		}
	}
	if attackDay {
		g.shocks()
	}
	for _, in := range g.insts {
		in.walk(g.rng)
	}
	for _, c := range g.custs {
		if attackDay && c.busy {
			continue
		}
		g.ordinaryDay(c, day, g.rng)
	}
	if g.day == len(g.dates)-2 {
		g.eve(day)
	}
	if attackDay {
		g.attackDay(day)
	}
	for _, in := range g.insts {
		g.emit(in.bars(day)...)
		in.close = in.px[len(in.px)-1]
	}
}

func (g *gen) emit(rs ...*event.Record) { g.recs = append(g.recs, rs...) }

// mark labels r as l (its id is filled in when the day is written).
func (g *gen) mark(l Label, rs ...*event.Record) []*event.Record {
	for _, r := range rs {
		g.marks[r] = l
	}
	return rs
}

// flushDay sorts the day's records by time (stable), numbers them and
// writes them and their labels.
func (g *gen) flushDay() error {
	sort.SliceStable(g.recs, func(i, j int) bool { return g.recs[i].Time.Before(g.recs[j].Time) })
	for _, r := range g.recs {
		g.n++
		r.ID = "r" + strconv.Itoa(g.n)
		r.Time = r.Time.Truncate(time.Millisecond)
		g.buf = r.AppendJSON(g.buf[:0])
		g.buf = append(g.buf, '\n')
		if _, err := g.out.Write(g.buf); err != nil {
			return err
		}
		g.stats.Records++
		if r.Type.Action() {
			g.stats.Actions++
		}
		if l, ok := g.marks[r]; ok {
			l.ID, l.Type, l.Account, l.Session = r.ID, string(r.Type), r.Account, r.Session
			l.Symbol, l.Side, l.ValueJPY = r.Symbol, r.Side, r.ValueJPY+r.AmountJPY
			if l.Family != "" && r.Type.Action() {
				g.stats.Fraudulent++
			}
			if err := g.writeLabel(&l); err != nil {
				return err
			}
		}
	}
	g.recs = g.recs[:0]
	clear(g.marks)
	return nil
}
