package sim

import (
	"bufio"
	"container/heap"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"sync/atomic"
	"time"

	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/identity"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/population"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/session"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// simClock is the stream time of one run.
type simClock struct{ ns atomic.Int64 }

// Now implements guard.Clock.
func (c *simClock) Now() time.Time                  { return time.Unix(0, c.ns.Load()).In(jst) }
func (c *simClock) set(t time.Time)                 { c.ns.Store(t.UnixNano()) }
func (c *simClock) after(d time.Duration) time.Time { return c.Now().Add(d) }

// brokerage is what the simulator drives: the reference brokerage in
// process, or a running Kabuto over HTTP.
type brokerage interface {
	PlaceOrder(ctx context.Context, a broker.Actor, account string, req broker.OrderRequest, key string) (*broker.Order, error)
	Withdraw(ctx context.Context, a broker.Actor, account string, amount int64, key string) (*broker.Withdrawal, error)
	ChangeBank(ctx context.Context, a broker.Actor, account, bank, key string) (*broker.Change, error)
	ChangeContact(ctx context.Context, a broker.Actor, account, field, value, key string) (*broker.Change, error)
	Account(ctx context.Context, id string) (*broker.Account, error)
	Halts(ctx context.Context) (map[string]string, error)
	// Decide asks the guard about a record the front door emits (login, factor_add).
	Decide(ctx context.Context, r *event.Record) (event.Decision, error)
	Quote(sym string) (market.Quote, bool)
}

// inProcess is the reference brokerage in process with the sim's guard.
type inProcess struct {
	*broker.Broker
	g *stack
}

func (p inProcess) Decide(ctx context.Context, r *event.Record) (event.Decision, error) {
	return p.g.Decide(ctx, r)
}
func (p inProcess) Quote(sym string) (market.Quote, bool) { return p.Exchange().Quote(sym) }

// target is what a run records of one attacked issue.
type target struct {
	sym    string
	wave   string
	buys   []time.Time // hijacked buy orders the guard was asked about
	haltAt time.Time
	prices []pricePoint
	orders []orderMark // the hijacked buys placed, executed or refused
	sells  []orderMark // the ring's sells into them
}

// orderMark is one order on a target's chart.
type orderMark struct {
	T        time.Time
	Price    float64 // the fill, or the ask when refused
	Executed bool
}

type pricePoint struct {
	T     time.Time
	Price float64
}

// sessStats is what happened to one legitimate session.
type sessStats struct {
	challenged bool
	actions    int
	blocked    int // held, denied, halted, or a step-up not passed
	refused    int // refused by the brokerage itself (cash, holdings, hours)
}

// atkStats is what happened in one attack session.
type atkStats struct {
	plan        *attackPlan
	valid       bool // would have got in with every defence off
	access      bool // got a working session
	stoppedAt   string
	attemptSell int64
	sold        int64
	attemptBuy  int64
	bought      int64
	trades      int
	attemptWd   int64
	withdrawn   int64
	persisted   bool
	bankChanged bool
}

// run is one variant being played.
type run struct {
	ctx   context.Context
	cfg   *Config
	w     *world
	v     Variant
	clock *simClock
	b     brokerage
	bk    *broker.Broker // in process only
	x     *market.Exchange
	g     *stack
	fd    *frontDoor
	prog  *progress
	cur   label

	q      stepQueue
	seq    int
	ids    int
	minute time.Time

	targets   map[string]*target
	haltAt    map[string]time.Time
	sessionOK map[string]bool
	legit     map[string]*sessStats
	atk       []*atkStats
	noiseN    int
	muleHeld  map[string]map[string]int64
	muleSess  map[string]bool
	brokerErr int
	news      []pricePoint

	httpMode      bool
	inHistory     bool
	office        *office // the back office of the run with the defences on (in process)
	legitReasons  map[string]int
	attackReasons map[string]int
}

// step is something that happens at a time.
type step struct {
	at  time.Time
	seq int
	fn  func()
}

type stepQueue []*step

func (q stepQueue) Len() int { return len(q) }
func (q stepQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q stepQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *stepQueue) Push(x any)   { *q = append(*q, x.(*step)) }
func (q *stepQueue) Pop() any {
	old := *q
	s := old[len(old)-1]
	*q = old[:len(old)-1]
	return s
}

func (r *run) at(t time.Time, fn func()) {
	r.seq++
	heap.Push(&r.q, &step{at: t, seq: r.seq, fn: fn})
}

// stamp is the time of a record the front door emits: stream time, or
// against a server over HTTP the wall clock, as the server stamps its own.
func (r *run) stamp() time.Time {
	if r.httpMode && r.cfg.Advance == nil {
		return r.cfg.Clock.Now().In(jst)
	}
	return r.clock.Now()
}

func (r *run) key(prefix string) string {
	r.ids++
	return fmt.Sprintf("%s-%08d", prefix, r.ids)
}

// tempDB opens a fresh, migrated SQLite database in a new temporary
// directory; done closes and removes it.
func tempDB(ctx context.Context, cfg *Config, prefix string) (db *store.DB, done func(), err error) {
	dir, err := os.MkdirTemp(cfg.TempDir, prefix)
	if err != nil {
		return nil, nil, err
	}
	// a throwaway database: nothing in it needs to survive a power loss
	if db, err = store.OpenScratch(ctx, dir); err == nil {
		if _, err = db.Migrate(ctx); err != nil {
			db.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return db, func() { db.Close(); os.RemoveAll(dir) }, nil
}

// runVariant plays the day once with the layers of v.
func runVariant(ctx context.Context, cfg *Config, w *world, v Variant, events, labels io.Writer, prog *progress) (*runResult, error) {
	db, done, err := tempDB(ctx, cfg, "kabuto-sim-")
	if err != nil {
		return nil, err
	}
	defer done()
	r := newRun(ctx, cfg, w, v, prog)
	if r.fd, err = newFrontDoor(db, r.clock.Now, w.seed, cfg.Log); err != nil {
		return nil, err
	}
	r.x = market.NewExchange(w.universe, w.seed, market.Hours{}, at(8, 0))
	eng := risk.NewEngine(cfg.policy())
	sink := &collectSink{run: r, keep: events != nil}
	r.g = &stack{run: r, eng: eng, guard: v.Layers.Guard, sink: sink}
	if events != nil {
		r.g.events = bufio.NewWriterSize(events, 1<<16)
	}
	if labels != nil {
		r.g.labels = bufio.NewWriterSize(labels, 1<<16)
	}
	var nid int64
	b := broker.New(broker.Config{DB: db, Exchange: r.x, Guard: r.g, Clock: r.clock, HashKey: []byte(fmt.Sprintf("kabuto-simulator-hash-key-%016x", w.seed)),
		IDs: func(p string) string { nid++; return fmt.Sprintf("%s%010d", p, nid) }, Log: cfg.Log})
	if v.Layers.Surveillance {
		wc := cfg.watch()
		if !v.Layers.Halts {
			wc.HaltScore = 0
		}
		r.g.pipe = pipeline.NewPipeline(eng, surveil.New(wc), sink)
		r.g.pipe.OnAlert = func(ctx context.Context, a event.Alert) {
			if a.Action == event.AlertHaltBuys && a.Symbol != "" {
				if err := b.SetHalt(ctx, a.Symbol, true, "surveillance "+a.Kind+" "+a.Alert); err != nil {
					cfg.Log.Error("could not halt buying", "symbol", a.Symbol, "err", err)
				}
			}
			if r.office != nil {
				r.office.alert(ctx, a)
			}
		}
	}
	r.bk, r.b = b, inProcess{Broker: b, g: r.g}
	if v.Name == "all_on" || v.Name == "as_deployed" {
		var closeOffice func()
		if r.office, closeOffice, err = newOffice(r, b, db); err != nil {
			return nil, fmt.Errorf("back office: %w", err)
		}
		defer closeOffice()
	}
	if err := r.setup(); err != nil {
		return nil, err
	}
	if err := r.play(); err != nil {
		return nil, err
	}
	for _, bw := range []*bufio.Writer{r.g.events, r.g.labels} {
		if bw != nil {
			if err := bw.Flush(); err != nil {
				return nil, err
			}
		}
	}
	res := r.result()
	if r.office != nil {
		if res.office = r.office.close(r); r.office.err != nil {
			return nil, fmt.Errorf("back office: %w", r.office.err)
		}
	}
	res.alerts = sink.alerts
	res.decisions = sink.decisions
	return res, nil
}

func newRun(ctx context.Context, cfg *Config, w *world, v Variant, prog *progress) *run {
	r := &run{ctx: ctx, cfg: cfg, w: w, v: v, clock: &simClock{}, prog: prog, cur: legitLabel,
		targets: map[string]*target{}, haltAt: map[string]time.Time{}, sessionOK: map[string]bool{}, legit: map[string]*sessStats{},
		muleHeld: map[string]map[string]int64{}, muleSess: map[string]bool{},
		legitReasons: map[string]int{}, attackReasons: map[string]int{}}
	for _, wv := range w.waves {
		r.targets[wv.Symbol] = &target{sym: wv.Symbol, wave: wv.Name}
	}
	return r
}

// factors returns c's authenticators as this variant enrols them.
func (r *run) factors(c *population.Customer) []string {
	if r.v.Layers.Passkeys {
		return c.Factors
	}
	var out []string
	for _, f := range c.Factors {
		if f != event.FactorPasskey {
			out = append(out, f)
		}
	}
	return out
}

// setup lists the instruments, feeds the guard the acting customers'
// history, and opens their accounts.
func (r *run) setup() error {
	ctx := r.ctx
	dates := tradingDaysBefore(r.cfg.HistoryDays)
	r.clock.set(dates[0])
	if err := r.bk.SeedInstruments(ctx, r.w.universe); err != nil {
		return err
	}
	chunk := max(len(r.w.history)/60, 1)
	r.inHistory = true
	defer func() { r.inHistory = false }()
	for i := range r.w.history {
		rec := r.w.history[i]
		rec.Factors = append([]string(nil), rec.Factors...)
		r.clock.set(rec.Time)
		if rec.Account[0] == 'R' {
			r.cur = label{Truth: "ring"}
		} else {
			r.cur = legitLabel
		}
		var err error
		if rec.Type.Action() {
			_, err = r.g.Decide(ctx, &rec)
		} else {
			err = r.g.Observe(ctx, &rec)
		}
		if err != nil {
			return err
		}
		if i%chunk == 0 {
			r.prog.add(1)
		}
	}
	r.cur = legitLabel
	r.clock.set(at(7, 30))
	if err := r.openBook(r.bk); err != nil {
		return err
	}
	for _, m := range r.w.mules {
		held := map[string]int64{}
		for _, h := range m.c.Holdings {
			held[h.Symbol] += h.Qty
		}
		r.muleHeld[m.c.ID] = held
	}
	r.prog.add(40 - 1)
	return nil
}

// openBook opens the acting customers' accounts in b and enrols them at
// the front door.
func (r *run) openBook(b *broker.Broker) error {
	ctx := r.ctx
	if r.httpMode {
		if err := b.SeedInstruments(ctx, r.w.universe); err != nil {
			return err
		}
	}
	var batch []broker.NewAccount
	people := make([]*population.Customer, 0, len(r.w.order))
	for _, id := range r.w.order {
		c := r.w.people[id]
		people = append(people, c)
		na := c.NewAccount
		na.Factors = r.factors(c)
		batch = append(batch, na)
		if len(batch) == 500 {
			if err := b.OpenAccounts(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := b.OpenAccounts(ctx, batch); err != nil {
			return err
		}
	}
	return r.fd.enrol(ctx, people, r.factors)
}

// play schedules the day and runs it to the close.
func (r *run) play() error {
	for _, lp := range r.w.legit {
		r.at(lp.Start, func() { r.legitSession(lp) })
	}
	for _, p := range r.w.attacks {
		st := &atkStats{plan: p}
		r.atk = append(r.atk, st)
		r.at(p.Start, func() { r.attackSession(st) })
	}
	for _, n := range r.w.noise {
		r.at(n.At, func() { r.noiseLogin(n) })
	}
	for i, m := range r.w.mules {
		if r.httpMode {
			break // the ring has no accounts at the server
		}
		r.at(at(9, 0).Add(time.Duration(10+i*17)*time.Second), func() { r.muleLogin(m) })
	}
	// The news: the market (other brokers' customers) buys the news issue
	// hard for half an hour.
	for k := range 30 {
		if r.httpMode {
			break
		}
		r.at(at(10, 40).Add(time.Duration(k)*time.Minute+20*time.Second), func() {
			in := r.w.inst[r.w.news]
			qty := int64(float64(in.ADVShares)*0.03) / in.Lot * in.Lot
			if k > 20 {
				qty /= 3
			}
			r.x.Execute(in.Symbol, event.SideBuy, max(qty, in.Lot), 0, r.clock.Now())
		})
	}
	r.minute = at(8, 0)
	for r.q.Len() > 0 {
		if err := r.ctx.Err(); err != nil {
			return err
		}
		s := heap.Pop(&r.q).(*step)
		if err := r.advance(s.at); err != nil {
			return err
		}
		s.fn()
	}
	return r.advance(at(15, 31))
}

// advance moves stream time to t, ticking the market at every minute.
func (r *run) advance(t time.Time) error {
	for !r.minute.Add(time.Minute).After(t) {
		r.minute = r.minute.Add(time.Minute)
		r.clock.set(r.minute)
		r.cur = label{Truth: "market"}
		if r.httpMode && r.cfg.Advance != nil {
			if err := r.cfg.Advance(r.ctx, r.minute); err != nil {
				return err
			}
		}
		if r.bk != nil {
			if err := r.bk.Tick(r.ctx, r.minute); err != nil {
				return err
			}
		}
		if market.Hours.Open(market.Hours{}, r.minute.Add(-time.Minute)) {
			for _, tg := range r.targets {
				if q, ok := r.b.Quote(tg.sym); ok {
					tg.prices = append(tg.prices, pricePoint{r.minute, q.Last})
				}
			}
			if q, ok := r.b.Quote(r.w.news); ok {
				r.news = append(r.news, pricePoint{r.minute, q.Last})
			}
		}
	}
	if t.After(r.clock.Now()) {
		r.clock.set(t)
		if r.httpMode && r.cfg.Advance != nil {
			return r.cfg.Advance(r.ctx, t)
		}
	}
	return nil
}

// who acts: the actor context and how they meet a challenge.
type who struct {
	a     broker.Actor
	acct  string
	c     *population.Customer
	lbl   label
	legit bool
	atk   *atkStats
	rng   *rand.Rand
	ss    *sessStats
}

// typer says what the person at the keyboard types when the customer is
// shown a one-time code: the customer types it; a phishing kit gets it
// when the victim, still on the kit's page, types it there; an attacker
// with the victim's mailbox reads it; anyone else has nothing to type.
func (r *run) typer(w *who, atStepUp bool) func(shown string) string {
	if w.legit {
		return func(shown string) string { return shown }
	}
	switch w.atk.plan.Tech {
	case TechPhishing:
		if !atStepUp || w.rng.Float64() < 0.85 {
			return func(shown string) string { return shown }
		}
	case TechInfostealer:
		if otpFactor(w.c) == event.FactorEmailOTP && w.rng.Float64() < 0.3 { // the mailbox cookie was stolen too
			return func(shown string) string { return shown }
		}
	}
	return func(string) string { return "" }
}

// origin is the page the actor's browser shows: the real site, or the
// phishing kit's look-alike.
func origin(w *who) string {
	if !w.legit && w.atk != nil && w.atk.plan.Tech == TechPhishing {
		return PhishingOrigin
	}
	return RealOrigin
}

// passStepUp: the actor meets a challenge of factor bound to binding
// through the front door's step-up ceremony. It reports the factor the
// front door then vouches for. A customer asked for a passkey who has
// none makes one there and then on their own device (friction, counted
// as a challenge); an attacker in the victim's session cannot, because
// the factor_add record goes to the guard (see factorAdd).
func (r *run) passStepUp(w *who, factor, binding string) (string, bool) {
	pr := factor == event.FactorPhishingResistant && r.v.Layers.Passkeys
	passkey := r.v.Layers.Passkeys && r.fd.hasPasskey(w.acct)
	if pr && !passkey {
		if !w.legit {
			return factor, false
		}
		if err := r.fd.register(r.ctx, w.acct, w.a.Session, client(w.a)); err != nil {
			r.doorErr(err)
			return factor, false
		}
		passkey = true
	}
	if passkey && !w.legit && w.atk.plan.Tech != TechPhishing {
		return factor, false // the passkey is on the victim's phone
	}
	got, err := r.fd.stepUp(r.ctx, w.acct, w.a.Session, binding, passkey, origin(w), client(w.a), r.typer(w, true))
	if err != nil {
		r.doorErr(err)
	}
	return got, got != ""
}

// doorErr counts a front-door failure that was not a refusal.
func (r *run) doorErr(err error) {
	r.brokerErr++
	r.cfg.Log.Debug("simulated front door failed", "err", err)
}

func client(a broker.Actor) session.Client {
	return session.Client{IP: a.IP, Network: session.NetworkOf(a.IP), ASN: a.ASN, Country: a.Country, UA: a.UA, Device: a.Device}
}

// signIn takes w through the front door: a passkey sign-in when the
// customer has a passkey and the actor can only use one there, otherwise
// the password (right or wrong) and the second factor the front door asks
// for, then the guard's login decision.
func (r *run) signIn(w *who, password string, withPasskey bool) outcome {
	ctx, c := r.ctx, client(w.a)
	if withPasskey && r.v.Layers.Passkeys && r.fd.hasPasskey(w.acct) {
		ok, err := r.fd.signInWithPasskey(ctx, w.acct, w.a.Device, origin(w))
		if err != nil {
			r.doorErr(err)
		}
		return r.login(w, event.FactorPasskey, []string{event.FactorPasskey}, ok)
	}
	code, err := r.fd.checkPassword(ctx, w.acct, password, c)
	if err != nil {
		r.doorErr(err)
		return outcome{other: true, code: "error"}
	}
	unlocked := false
	if code == reason.AccountLocked && w.legit {
		// The owner finds password sign-in locked by someone's guessing
		// and unlocks it with a code to the registered address.
		if ok, err := r.fd.unlock(ctx, w.acct, w.a.Device, c); err != nil || !ok {
			return outcome{denied: true, code: code}
		}
		unlocked = true
		if code, err = r.fd.checkPassword(ctx, w.acct, password, c); err != nil {
			r.doorErr(err)
			return outcome{other: true, code: "error"}
		}
	}
	if code != "" {
		o := r.login(w, event.FactorPassword, []string{event.FactorPassword}, false)
		o.code = code
		return o
	}
	if r.v.Layers.Passkeys && r.fd.hasPasskey(w.acct) {
		// Kabuto's front door: a passkey holder signs in with the passkey
		// (a password and a code can be relayed, a passkey cannot).
		return outcome{denied: true, code: "passkey_required"}
	}
	factors := []string{event.FactorPassword}
	if r.v.Layers.Passkeys || r.w.loginMFA[w.acct] {
		// Kabuto's front door asks every password sign-in for a code.
		f, err := r.fd.sendCode(ctx, w.acct, w.a.Device, c)
		if err == nil {
			var shown string
			if shown, err = r.fd.code(ctx, w.acct, f); err == nil {
				var ok bool
				typed := r.typer(w, false)(shown)
				if ok, err = r.fd.verifyCode(ctx, w.acct, w.a.Device, f, typed); err == nil && !ok {
					return r.login(w, event.FactorPassword, factors, false)
				}
			}
		}
		if err != nil {
			r.doorErr(err)
			return outcome{other: true, code: "error"}
		}
		if f != event.FactorTOTP {
			f = otpFactor(w.c) // the record names the customer's own code channel
		}
		factors = append(factors, f)
	}
	o := r.login(w, event.FactorPassword, factors, true)
	o.challenged = o.challenged || unlocked
	return o
}

// outcome of one attempted action.
type outcome struct {
	ok         bool
	challenged bool
	held       bool
	denied     bool
	halted     bool
	stepFailed bool
	other      bool // refused by the brokerage's own checks
	code       string
}

func (o outcome) blocked() bool { return o.held || o.denied || o.halted || o.stepFailed }

// act runs one brokerage call for w, meeting a challenge once.
func (r *run) act(w *who, call func(a broker.Actor) error) outcome {
	r.cur = w.lbl
	a := w.a
	err := call(a)
	var o outcome
	for range 2 {
		e := reason.As(err)
		if err == nil {
			o.ok = true
			return o
		}
		if e == nil {
			r.brokerErr++
			r.cfg.Log.Debug("simulated action failed", "account", w.acct, "err", err)
			o.other, o.code = true, "error"
			return o
		}
		o.code = e.Code
		switch e.Code {
		case reason.StepUpRequired:
			o.challenged = true
			if a.StepUp != nil {
				o.stepFailed = true
				return o
			}
			f := event.FactorMFA
			if e.Decision != nil {
				f = e.Decision.Factor
			}
			got, ok := r.passStepUp(w, f, e.Binding)
			if !ok {
				o.stepFailed = true
				return o
			}
			a.StepUp = &broker.StepUp{Factor: got, Binding: e.Binding}
			if !r.v.Layers.Passkeys {
				a.StepUp.Factor = f // codes satisfy every step-up without passkeys
			}
			r.cur = w.lbl
			err = call(a)
			continue
		case reason.Held:
			o.held = true
			r.heldCase(w.acct, e)
		case reason.Denied:
			o.denied = true
		case reason.InstrumentHalted:
			o.halted = true
		default:
			o.other = true
		}
		return o
	}
	return o
}

// login emits a sign-in record through the guard and meets its challenge.
func (r *run) login(w *who, method string, factors []string, ok bool) outcome {
	r.cur = w.lbl
	rec := &event.Record{ID: r.key("LOGIN"), Type: event.TypeLogin, Time: r.stamp(), Account: w.acct, Session: w.a.Session,
		IP: w.a.IP, ASN: w.a.ASN, Country: w.a.Country, Device: w.a.Device, UA: w.a.UA, Channel: w.a.Channel, Method: method, Factors: factors, OK: ok}
	if !ok {
		rec.Session = ""
	}
	d, err := r.b.Decide(r.ctx, rec)
	var o outcome
	if err != nil {
		o.other, o.code = true, "guard_unavailable"
		return o
	}
	if !ok {
		o.denied, o.code = true, "invalid_credentials"
		return o
	}
	switch d.Action {
	case event.Allow:
		o.ok = true
	case event.Challenge:
		if r.v.Layers.Passkeys {
			// Kabuto's front door: the portal's own rule for a challenged
			// sign-in (identity.LoginChallenge).
			f, err := r.fd.svc.Factors(r.ctx, w.acct)
			if err != nil {
				r.doorErr(err)
				o.other = true
				return o
			}
			if identity.LoginChallenge(d.Factor, identity.Proved(factors), f) == "" {
				o.ok = true
			} else {
				o.challenged, o.stepFailed = true, true
			}
			break
		}
		// The brokerage's old front door asks for a code.
		o.challenged = true
		if _, passed := r.passStepUp(w, event.FactorMFA, "login:"+w.a.Session); passed {
			o.ok = true
		} else {
			o.stepFailed = true
		}
	case event.Hold:
		o.held = true
	default:
		o.denied = true
	}
	if o.ok {
		r.sessionOK[w.a.Session] = true
	}
	return o
}

func actor(principal, session string, n netw, device, ua string) broker.Actor {
	ch := event.ChannelWeb
	if len(ua) > 5 && ua[:5] == "Kabut" {
		ch = event.ChannelApp
	}
	return broker.Actor{Principal: principal, Session: session, IP: n.IP, ASN: n.ASN, Country: n.Country, Device: device, UA: ua, Channel: ch}
}

// legitSession plays one customer's session.
func (r *run) legitSession(lp *legitPlan) {
	c := r.w.people[lp.Acct]
	ss := &sessStats{}
	r.legit[lp.Session] = ss
	r.prog.add(1)
	w := &who{a: actor("sim:"+lp.Session, lp.Session, lp.Net, lp.Device, lp.UA), acct: c.ID, c: c, lbl: legitLabel, legit: true,
		rng: rand.New(rand.NewPCG(lp.Seed, 1)), ss: ss}
	o := r.signIn(w, r.fd.password(c.ID), true)
	r.legitCount(ss, o)
	if !o.ok {
		return
	}
	t := r.clock.Now()
	for i, act := range lp.Acts {
		t = t.Add(time.Duration(20+w.rng.IntN(100)) * time.Second)
		if market.InLunch(t) {
			t = Day0.Add(market.TSEAfternoonOpen).Add(time.Duration(w.rng.IntN(300)) * time.Second)
		}
		r.at(t, func() {
			key := fmt.Sprintf("%s-%d", lp.Session, i)
			var o outcome
			switch act.Kind {
			case "order":
				o = r.act(w, func(a broker.Actor) error { _, err := r.b.PlaceOrder(r.ctx, a, c.ID, act.Order, key); return err })
			case "withdrawal":
				o = r.act(w, func(a broker.Actor) error { _, err := r.b.Withdraw(r.ctx, a, c.ID, act.Amount, key); return err })
			case "contact_change":
				o = r.act(w, func(a broker.Actor) error {
					_, err := r.b.ChangeContact(r.ctx, a, c.ID, act.Field, act.Value, key)
					return err
				})
			case "bank_change":
				o = r.act(w, func(a broker.Actor) error { _, err := r.b.ChangeBank(r.ctx, a, c.ID, act.Value, key); return err })
			}
			r.legitCount(ss, o)
		})
	}
}

func (r *run) legitCount(ss *sessStats, o outcome) {
	ss.actions++
	if o.challenged {
		ss.challenged = true
	}
	if o.blocked() {
		ss.blocked++
	}
	if o.other {
		ss.refused++
	}
}

// noiseLogin is a stuffing attempt that fails at the front door.
func (r *run) noiseLogin(n noiseLogin) {
	r.noiseN++
	w := &who{a: actor("bot", "", n.Net, n.Device, n.UA), acct: n.Acct, lbl: label{Truth: "attack", Technique: TechStuffing},
		atk: &atkStats{plan: &attackPlan{Tech: TechStuffing}}}
	pw := "dump-" + n.Acct // a stale password from another site's leak
	if n.PasswordOK {
		pw = r.fd.password(n.Acct)
	}
	r.signIn(w, pw, false)
}

// muleLogin signs a ring account in for the day.
func (r *run) muleLogin(m mule) {
	sess := "S-" + m.c.ID + "-d0"
	ua, _ := uaFor(m.dev)
	w := &who{a: actor("sim:"+sess, sess, m.net, m.dev, ua), acct: m.c.ID, c: &m.c, lbl: label{Truth: "ring"}, legit: true, rng: rngFor(r.w.seed, "mule", m.c.ID)}
	fs := []string{event.FactorPassword, event.FactorSMSOTP}
	if o := r.login(w, event.FactorPassword, fs, true); o.ok {
		r.muleSess[m.c.ID] = true
	}
}

// ringDump: a ring account sells into a hijacked buy of sym moments later.
// hijackedBuy records a hijacked buy of sym placed at the ask: the mark on
// the target's chart (at the fill price when it filled) and, when it filled,
// the value bought, the trade and the ring's sale into it.
func (r *run) hijackedBuy(st *atkStats, sym string, ask float64, qty int64, ok bool, ord *broker.Order) {
	filled := ok && ord != nil && ord.Status == broker.StatusFilled
	if t := r.targets[sym]; t != nil {
		px := ask
		if filled && ord.FillPrice > 0 {
			px = ord.FillPrice
		}
		t.orders = append(t.orders, orderMark{T: r.stamp(), Price: px, Executed: filled})
	}
	if filled {
		st.bought += ord.FilledJPY
		st.trades++
		r.ringDump(sym, qty)
	}
}

func (r *run) ringDump(sym string, qty int64) {
	for i, m := range r.w.mules {
		if !r.muleSess[m.c.ID] || r.muleHeld[m.c.ID][sym] <= 0 || (int(hash64(sym, qty))+i)%len(r.w.mules) != 0 && i != len(r.w.mules)-1 {
			continue
		}
		lot := r.w.lot(sym)
		q := min(r.muleHeld[m.c.ID][sym], (qty*7/10)/lot*lot)
		if q <= 0 {
			return
		}
		sess := "S-" + m.c.ID + "-d0"
		ua, _ := uaFor(m.dev)
		w := &who{a: actor("sim:"+sess, sess, m.net, m.dev, ua), acct: m.c.ID, c: &m.c, lbl: label{Truth: "ring"}, legit: true, rng: rngFor(r.w.seed, "dump", m.c.ID, qty)}
		r.at(r.clock.after(time.Duration(3+int(qty%5))*time.Second), func() {
			o := r.act(w, func(a broker.Actor) error {
				_, err := r.b.PlaceOrder(r.ctx, a, m.c.ID, broker.OrderRequest{Symbol: sym, Side: event.SideSell, Qty: q, PriceType: event.PriceMarket, Kind: event.KindCash}, r.key("dump"))
				return err
			})
			if o.ok {
				r.muleHeld[m.c.ID][sym] -= q
				if t := r.targets[sym]; t != nil {
					qt, _ := r.b.Quote(sym)
					t.sells = append(t.sells, orderMark{T: r.stamp(), Price: qt.Bid, Executed: true})
				}
			}
		})
		return
	}
}

// Results of one run.
type runResult struct {
	variant   Variant
	legit     []*sessStats
	atk       []*atkStats
	noise     int
	targets   []*target
	alerts    []event.Alert
	decisions []event.Decision
	news      []pricePoint
	newsSym   string
	brokerErr int
	office    *BackOffice // nil: no back office in this run

	legitReasons, attackReasons map[string]int
}

func (r *run) result() *runResult {
	res := &runResult{variant: r.v, atk: r.atk, noise: r.noiseN, news: r.news, newsSym: r.w.news, brokerErr: r.brokerErr,
		legitReasons: r.legitReasons, attackReasons: r.attackReasons}
	keys := make([]string, 0, len(r.legit))
	for k := range r.legit {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		res.legit = append(res.legit, r.legit[k])
	}
	for _, wv := range r.w.waves {
		res.targets = append(res.targets, r.targets[wv.Symbol])
	}
	return res
}

func yen(q int64, px float64, in market.Instrument) int64 {
	return int64(math.Round(float64(q) * in.PriceJPY(px)))
}
