package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/reason"
)

// chain runs an attacker's steps one after another, paced, until one of
// them gives up. Steps may add steps after themselves.
type chain struct {
	r     *run
	steps []func(*chain) bool
	i     int
	gap   func() time.Duration
}

func (ch *chain) then(fns ...func(*chain) bool) {
	rest := append([]func(*chain) bool(nil), ch.steps[ch.i+1:]...)
	ch.steps = append(append(ch.steps[:ch.i+1], fns...), rest...)
}

func (ch *chain) run() {
	if ch.i >= len(ch.steps) {
		return
	}
	if !ch.steps[ch.i](ch) {
		return
	}
	ch.i++
	if ch.i < len(ch.steps) {
		t := inSession(ch.r.clock.after(ch.gap()))
		ch.r.at(t, ch.run)
	}
}

// inSession moves t out of the lunch break.
func inSession(t time.Time) time.Time {
	if l, o := Day0.Add(market.TSEMorningClose), Day0.Add(market.TSEAfternoonOpen); !t.Before(l) && t.Before(o) {
		return o.Add(t.Sub(l) % (5 * time.Minute))
	}
	return t
}

// attackSession plays one attack session.
func (r *run) attackSession(st *atkStats) {
	p := st.plan
	if p.Adapt != nil {
		r.adaptiveSession(st)
		return
	}
	c := r.w.people[p.Acct]
	r.prog.add(1)
	lbl := label{Truth: "attack", Technique: p.Tech, Variant: p.Variant, Attack: p.ID}
	var wv *wave
	if p.Wave >= 0 {
		wv = r.w.waves[p.Wave]
		lbl.Wave, lbl.Target = wv.Name, wv.Symbol
	}
	rng := rand.New(rand.NewPCG(p.Seed, 2))
	sess := "S-" + p.ID
	if p.Tech == TechInfostealer {
		sess = p.Victim.Session
		if !r.sessionOK[sess] {
			return // no live session to steal
		}
	}
	st.valid = true
	w := &who{a: actor("sim:"+sess, sess, p.Net, p.Device, p.UA), acct: c.ID, c: c, lbl: lbl, atk: st, rng: rng}
	if !r.attackLogin(w, st) {
		return
	}
	ch := &chain{r: r, gap: func() time.Duration {
		return time.Duration(float64(p.Gap) * (0.5 + rng.Float64()))
	}}
	stop := func(o outcome, where string) bool {
		if o.challenged && o.stepFailed || o.held || o.denied {
			st.stoppedAt = where
			return false
		}
		return true
	}
	if p.Persist {
		ch.steps = append(ch.steps, func(*chain) bool {
			o := r.act(w, func(a broker.Actor) error {
				_, err := r.b.ChangeContact(r.ctx, a, c.ID, "email", fmt.Sprintf("notice-%s@mailbox.example.org", p.ID), r.key(p.ID))
				return err
			})
			st.persisted = st.persisted || o.ok
			return stop(o, "contact_change")
		})
	}
	if p.AddTOTP {
		ch.steps = append(ch.steps, func(*chain) bool {
			o := r.factorAdd(w, event.FactorTOTP)
			st.persisted = st.persisted || o.ok
			return stop(o, "factor_add")
		})
	}
	if wv != nil {
		ch.steps = append(ch.steps, func(ch *chain) bool { return r.liquidate(ch, w, st, wv, stop) })
	}
	if p.Withdraw {
		ch.steps = append(ch.steps, func(ch *chain) bool { return r.cashOut(ch, w, st, stop) })
	}
	if len(ch.steps) == 0 {
		return
	}
	r.at(inSession(r.clock.after(ch.gap())), ch.run)
}

// attackLogin gets the attacker a session: a password from the dump, a
// password and code relayed by a phishing kit, or a stolen live cookie.
func (r *run) attackLogin(w *who, st *atkStats) bool {
	c, p := w.c, st.plan
	var o outcome
	switch p.Tech {
	case TechInfostealer:
		st.access = true
		return true
	case TechStuffing:
		// The password from the dump; the code, if the front door asks
		// for one, is in the victim's hands.
		o = r.signIn(w, r.fd.password(c.ID), false)
	case TechPhishing:
		// The victim signs in on the kit's page, which relays to the real
		// one: a passkey there fails the origin check; a password and
		// the code the victim types pass.
		o = r.signIn(w, r.fd.password(c.ID), true)
	}
	if !o.ok {
		st.stoppedAt = "login"
		return false
	}
	st.access = true
	return true
}

// factorAdd emits the front door's factor_add record and meets its challenge.
func (r *run) factorAdd(w *who, factor string) outcome {
	r.cur = w.lbl
	rec := &event.Record{ID: r.key("FACTOR"), Type: event.TypeFactorAdd, Time: r.stamp(), Account: w.acct, Session: w.a.Session,
		IP: w.a.IP, ASN: w.a.ASN, Country: w.a.Country, Device: w.a.Device, UA: w.a.UA, Channel: w.a.Channel, Factor: factor}
	d, err := r.b.Decide(r.ctx, rec)
	var o outcome
	switch {
	case err != nil:
		o.other = true
	case d.Action == event.Allow:
		o.ok = true
	case d.Action == event.Challenge:
		o.challenged = true
		if _, ok := r.passStepUp(w, d.Factor, "factor_add:"+rec.ID); ok {
			o.ok = true
		} else {
			o.stepFailed = true
		}
	case d.Action == event.Hold:
		o.held = true
	default:
		o.denied = true
	}
	return o
}

// liquidate sells the victim's holdings (NISA included) as the variant
// says, then buys the wave's target with the proceeds.
func (r *run) liquidate(ch *chain, w *who, st *atkStats, wv *wave, stop func(outcome, string) bool) bool {
	p := st.plan
	acc, err := r.b.Account(r.ctx, w.acct)
	if err != nil {
		return false
	}
	pos := append([]broker.Position(nil), acc.Positions...)
	sort.Slice(pos, func(i, j int) bool {
		if pos[i].ValueJPY != pos[j].ValueJPY {
			return pos[i].ValueJPY > pos[j].ValueJPY
		}
		return pos[i].Symbol+pos[i].Kind < pos[j].Symbol+pos[j].Kind
	})
	variant := p.Variant
	if variant == VarCopyDevice || variant == VarSameISP || variant == "" {
		variant = VarFull
	}
	type sell struct {
		sym, kind string
		qty       int64
		each      float64 // the position's value per share, for an issue the world does not list
	}
	var sells []sell
	var total int64
	for _, ps := range pos {
		total += ps.ValueJPY
	}
	var planned int64
	for _, ps := range pos {
		free := ps.Qty - ps.ReservedQty
		if free <= 0 || ps.Symbol == wv.Symbol {
			continue
		}
		if variant == VarUnderShare {
			room := int64(float64(total)*0.45) - planned
			if room <= 0 {
				break
			}
			if ps.ValueJPY > room {
				lot := r.w.lot(ps.Symbol)
				q := int64(float64(free)*float64(room)/float64(ps.ValueJPY)) / lot * lot
				if q > 0 {
					sells = append(sells, sell{ps.Symbol, ps.Kind, q, float64(ps.ValueJPY) / float64(max(ps.Qty, 1))})
					planned += ps.ValueJPY * q / free
				}
				continue
			}
		}
		sells = append(sells, sell{ps.Symbol, ps.Kind, free, float64(ps.ValueJPY) / float64(max(ps.Qty, 1))})
		planned += ps.ValueJPY * free / max(ps.Qty, 1)
	}
	var steps []func(*chain) bool
	for _, s := range sells {
		steps = append(steps, func(*chain) bool {
			in := r.w.inst[s.sym]
			q, _ := r.b.Quote(s.sym)
			if _, known := r.w.inst[s.sym]; known {
				st.attemptSell += yen(s.qty, q.Bid, in)
			} else {
				st.attemptSell += int64(math.Round(float64(s.qty) * s.each))
			}
			var ord *broker.Order
			o := r.act(w, func(a broker.Actor) error {
				var err error
				ord, err = r.b.PlaceOrder(r.ctx, a, w.acct, broker.OrderRequest{Symbol: s.sym, Side: event.SideSell, Qty: s.qty, PriceType: event.PriceMarket, Kind: s.kind}, r.key(p.ID))
				return err
			})
			if o.ok && ord != nil && ord.Status == broker.StatusFilled {
				st.sold += ord.FilledJPY
				st.trades++
			}
			return stop(o, "sell")
		})
	}
	if variant == VarTwoSessions {
		steps = append(steps, func(ch *chain) bool {
			// Sign out; sign in again 70 minutes later in a new session.
			ch.r.at(inSession(r.clock.after(70*time.Minute)), func() {
				w2 := *w
				w2.a = actor("sim:S-"+p.ID+"-2", "S-"+p.ID+"-2", p.Net, p.Device, p.UA)
				if p.Tech == TechPhishing && w.rng.IntN(2) == 0 {
					st.stoppedAt = "second_login"
					return // the victim did not fall for it twice
				}
				if !r.attackLogin(&w2, st) {
					return
				}
				*w = w2
				ch.i++
				ch.run()
			})
			return false
		})
	}
	steps = append(steps, func(ch *chain) bool { return r.pump(ch, w, st, wv, variant, stop) })
	ch.then(steps...)
	return true
}

// pump buys the target with the available cash, in one to three orders.
func (r *run) pump(ch *chain, w *who, st *atkStats, wv *wave, variant string, stop func(outcome, string) bool) bool {
	halts, err := r.b.Halts(r.ctx)
	if err != nil {
		return false
	}
	if _, halted := halts[wv.Symbol]; halted {
		st.stoppedAt = "target_halted"
		return true // the ring moves on; a cash-out may still follow
	}
	acc, err := r.b.Account(r.ctx, w.acct)
	if err != nil {
		return false
	}
	in := r.w.inst[wv.Symbol]
	fx := in.PriceJPY(1)
	share := 0.97
	if variant == VarSplit {
		share = 0.6
	}
	q, _ := r.b.Quote(wv.Symbol)
	_, hi := market.Band(in.Market, in.PrevClose)
	if math.IsInf(hi, 1) {
		hi = q.Ask * 1.5
	}
	lot := r.w.lot(wv.Symbol)
	qty := int64(float64(acc.AvailableJPY)*share/(hi*fx)) / lot * lot
	var steps []func(*chain) bool
	if qty > 0 {
		n := int64(1 + w.rng.IntN(3))
		each := max(qty/n/lot*lot, lot)
		for left := qty; left > 0; {
			part := min(each, left)
			if left-part < lot {
				part = left
			}
			left -= part
			steps = append(steps, func(*chain) bool {
				req := broker.OrderRequest{Symbol: wv.Symbol, Side: event.SideBuy, Qty: part, PriceType: event.PriceMarket, Kind: event.KindCash}
				q, _ := r.b.Quote(wv.Symbol)
				if variant == VarWalkUp {
					lp := market.RoundTick(in.Market, q.Ask+3*market.TickSize(in.Market, q.Ask))
					req.PriceType, req.LimitPrice = event.PriceLimit, math.Min(lp, hi)
				}
				st.attemptBuy += yen(part, q.Ask, in)
				var ord *broker.Order
				o := r.act(w, func(a broker.Actor) error {
					var err error
					ord, err = r.b.PlaceOrder(r.ctx, a, w.acct, req, r.key(st.plan.ID))
					return err
				})
				if r.httpMode && !o.halted && (!o.other || o.code == reason.InsufficientCash) {
					r.targets[wv.Symbol].buys = append(r.targets[wv.Symbol].buys, r.stamp())
				}
				r.hijackedBuy(st, wv.Symbol, q.Ask, part, o.ok, ord)
				if o.halted {
					st.stoppedAt = "target_halted"
					return true
				}
				return stop(o, "buy")
			})
		}
	}
	if variant == VarSplit {
		steps = append(steps, func(*chain) bool {
			// The rest into a large cap, so the target gets under 70% of the proceeds.
			big := r.w.inst["9432"]
			acc, err := r.b.Account(r.ctx, w.acct)
			if err != nil {
				return false
			}
			_, hi := market.Band(big.Market, big.PrevClose)
			q := int64(float64(acc.AvailableJPY)*0.9/hi) / r.w.lot(big.Symbol) * r.w.lot(big.Symbol)
			if q <= 0 {
				return true
			}
			o := r.act(w, func(a broker.Actor) error {
				_, err := r.b.PlaceOrder(r.ctx, a, w.acct, broker.OrderRequest{Symbol: big.Symbol, Side: event.SideBuy, Qty: q, PriceType: event.PriceMarket, Kind: event.KindCash}, r.key(st.plan.ID))
				return err
			})
			return stop(o, "buy")
		})
	}
	ch.then(steps...)
	return true
}

// cashOut registers the ring's bank account and withdraws the cash.
func (r *run) cashOut(ch *chain, w *who, st *atkStats, stop func(outcome, string) bool) bool {
	p := st.plan
	ch.then(func(*chain) bool {
		acc, err := r.b.Account(r.ctx, w.acct)
		if err != nil {
			return false
		}
		amt := acc.AvailableJPY * 95 / 100 / 1000 * 1000
		if amt <= 0 {
			return false
		}
		st.attemptWd += amt
		o := r.act(w, func(a broker.Actor) error {
			_, err := r.b.Withdraw(r.ctx, a, w.acct, amt, r.key(p.ID))
			return err
		})
		if o.ok {
			st.withdrawn += amt
		}
		return stop(o, "withdrawal")
	})
	o := r.act(w, func(a broker.Actor) error {
		_, err := r.b.ChangeBank(r.ctx, a, w.acct, fmt.Sprintf("PayPay Bank 004-%07d", hash64(p.ID)%10000000), r.key(p.ID))
		return err
	})
	st.bankChanged = o.ok
	if !o.ok {
		// No new bank: the attacker cannot take the cash out, since
		// withdrawals go only to the registered account.
		if stop(o, "bank_change") {
			st.stoppedAt = "bank_change"
		}
		return false
	}
	return true
}

// targets are the symbols the session's strategy buys outside the waves.
func (p *attackPlan) targets() []string {
	if p.Adapt == nil || p.Adapt.Target == "" {
		return nil
	}
	return []string{p.Adapt.Target}
}
