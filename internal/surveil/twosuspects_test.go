package surveil

import (
	"fmt"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// The ramp two hijacked accounts carry out between them, three or more
// hijacked buys of a thin target within a minute or two: one account's
// holdings liquidated into the target (R1), the other a session whose
// cookie is replayed from another address than its sign-in's (an
// infostealer's cookie, a positive sign of takeover). Neither is a third
// account (R3), neither liquidation looks hijacked without R1 on a
// watchtower that knows no device or network of the accounts (a cold
// start: every profile immature), and the ring's seller is not seen: the
// guard-off run of TestClusterSimulatedCampaignFailover halted 8032.HK
// only at a fourth account, 409 s after its third hijacked buy. The
// look-alikes, which must never be acted on, are one customer liquidating
// into a thin issue from a phone whose address changes in the session,
// and two customers liquidating into one from their own devices.

// cookieThief uses victim's session, signed in from its own device and
// line, from another address on the same carrier.
func cookieThief(victim string) actor {
	return actor{acct: victim, sess: "S-" + victim, ip: "192.0.2.215", asn: 9605, country: "JP", device: "dev-" + victim}
}

// sessionLogin signs a in with its session id on the record (a stolen
// cookie is recognised by it).
func (g *gen) sessionLogin(t time.Time, a actor) {
	r := a.rec(event.TypeLogin, t)
	r.Method, r.Factors, r.OK = event.FactorPassword, []string{"password", "totp"}, true
	g.add(r)
}

// liquidateInto sells acct's whole holding of heldSym from atk and puts
// the proceeds into target over buys orders (hijacked ones when hijack).
func (g *gen) liquidateInto(t0 time.Time, atk actor, heldSym string, heldQty int64, target string, buys int, qty int64, px float64, hijack bool) time.Time {
	g.order(t0, atk, heldSym, event.SideSell, heldQty, 0, 2400)
	g.fill(t0, atk.acct, heldSym, event.SideSell, heldQty, 2400)
	t := t0.Add(12 * time.Second)
	for i := range buys {
		g.order(t, atk, target, event.SideBuy, qty, 0, px)
		g.fill(t, atk.acct, target, event.SideBuy, qty, px+float64(i))
		if hijack {
			g.hijackBuys[target] = append(g.hijackBuys[target], t)
		}
		t = t.Add(4 * time.Second)
	}
	return t
}

// twoSuspectRamp builds the attack on target; mature gives every account
// three earlier days of sign-ins from home (otherwise the watchtower
// starts on the day, as a server whose history was never loaded).
func twoSuspectRamp(target string, mature bool, b2buys int) func(g *gen) {
	return func(g *gen) {
		g.market()
		g.background(20)
		g.thinTarget(target)
		g.account(clock(0, 7, 0, 0), "V01", holding("7203", 1000, 2400))
		g.account(clock(0, 7, 0, 0), "V02", holding("9432", 1000, 2400), holding("6758", 200, 2400))
		if mature {
			g.history("V01", 1)
			g.history("V02", 2)
		}
		// V01: phished, signed in through the kit's residential proxy,
		// liquidated, the proceeds into the target in two orders
		kit := proxyKit("V01", 1)
		t0 := clock(0, 9, 20, 10)
		g.login(t0, kit)
		g.liquidateInto(t0.Add(17*time.Second), kit, "7203", 1000, target, 2, 7000, 150, true)
		// V02: its own session, signed in from its phone at 9:08, then
		// its cookie replayed from another address
		own := cookieThief("V02")
		own.ip = "198.19.8.66"
		g.sessionLogin(clock(0, 9, 8, 58), own)
		g.liquidateInto(t0.Add(60*time.Second), cookieThief("V02"), "9432", 1000, target, b2buys, 4000, 152, true)
	}
}

// phoneLiquidation: one customer on its phone, the address changing
// within the session (the carrier moved it), sells its holding a few
// minutes after signing in and buys a thin issue in three orders.
func phoneLiquidation(g *gen) {
	g.market()
	g.background(20)
	g.thinTarget("5556")
	g.account(clock(0, 7, 0, 0), "P01", holding("7203", 1000, 2400))
	ph := cookieThief("P01")
	ph.ip = "198.19.8.66"
	g.sessionLogin(clock(0, 9, 27, 0), ph)
	g.liquidateInto(clock(0, 9, 31, 0), cookieThief("P01"), "7203", 1000, "5556", 3, 5000, 150, false)
}

// ownDevicesLiquidation: two customers, each from its own device and
// line, sell their holding and buy the same thin issue in two orders.
func ownDevicesLiquidation(g *gen) {
	g.market()
	g.background(20)
	g.thinTarget("5557")
	for i, acct := range []string{"Q01", "Q02"} {
		g.account(clock(0, 7, 0, 0), acct, holding("7203", 1000, 2400))
		h := home(acct, 300+i)
		t := clock(0, 10, 0, 0).Add(time.Duration(i) * 50 * time.Second)
		g.login(t, h)
		g.liquidateInto(t.Add(30*time.Second), h, "7203", 1000, "5557", 2, 7000, 150, false)
	}
}

var twoSuspectScenarios = []scenario{
	{"cold_liquidation_and_stolen_cookie", "5551", true, twoSuspectRamp("5551", false, 4)},
	{"cold_liquidation_and_stolen_cookie_one_buy", "5552", true, twoSuspectRamp("5552", false, 1)},
	{"mature_liquidation_and_stolen_cookie", "5553", true, twoSuspectRamp("5553", true, 4)},
	{"phone_liquidation_address_moves", "5556", false, phoneLiquidation},
	{"two_customers_own_devices_liquidate", "5557", false, ownDevicesLiquidation},
}

// TestTwoSuspectRamp: a thin target ramped by two hijacked accounts, one
// liquidating into it and one on a stolen session cookie, is halted
// within 60 s of its third hijacked buy, with a cold watchtower as with
// one that knows the accounts; the look-alikes are never acted on.
func TestTwoSuspectRamp(t *testing.T) {
	for _, sc := range twoSuspectScenarios {
		t.Run(sc.name, func(t *testing.T) {
			halt := runScenario(t, sc)
			if halt == nil {
				return
			}
			if fmt.Sprint(halt.Accounts) != "[V01 V02]" {
				t.Errorf("halting alert names %v, want [V01 V02]", halt.Accounts)
			}
		})
	}
}

// TestHaltKeepsItsTime: a halting alert that is updated after the halt
// (a higher score, more suspects named) keeps the time of the halt in
// every later emission: the alert as stored and served says when buying
// was halted, not when it was last updated.
func TestHaltKeepsItsTime(t *testing.T) {
	for _, name := range []string{"ramp_10_accounts_84_to_110", "cold_liquidation_and_stolen_cookie"} {
		t.Run(name, func(t *testing.T) {
			var recs []*event.Record
			var decide map[*event.Record]*event.Decision
			for _, sc := range twoSuspectScenarios {
				if sc.name == name {
					g := newGen()
					sc.build(g)
					recs, decide = g.stream(), g.decide
				}
			}
			if recs == nil {
				recs = findScenario(t, name)
			}
			var halt *event.Alert
			updates := 0
			for _, a := range replayWith(New(DefaultConfig()), recs, decide) {
				switch {
				case halt == nil && a.Action == event.AlertHaltBuys:
					halt = &a
				case halt != nil && a.Alert == halt.Alert:
					updates++
					if !a.Time.Equal(halt.Time) {
						t.Errorf("update of the halting alert at %s, want the halt's time %s", a.Time.Format("15:04:05"), halt.Time.Format("15:04:05"))
					}
				}
			}
			if halt == nil || updates == 0 {
				t.Fatalf("halt %v, %d updates of it: the check is empty", halt, updates)
			}
		})
	}
}
