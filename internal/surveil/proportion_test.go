package surveil

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// core30 are TOPIX Core 30 issues at approximate 2025 prices (yen) and
// average daily volumes (shares).
var core30 = []struct {
	sym   string
	price float64
	adv   int64
}{
	{"7203", 2700, 28_000_000}, {"6758", 3500, 9_000_000}, {"8306", 2000, 40_000_000},
	{"9984", 9000, 12_000_000}, {"9432", 152, 150_000_000}, {"7974", 11000, 5_000_000},
	{"8035", 25000, 3_000_000}, {"6861", 60000, 500_000}, {"9983", 47000, 600_000},
	{"6501", 3800, 8_000_000}, {"8058", 2700, 9_000_000}, {"4502", 4200, 4_000_000},
	{"7267", 1500, 12_000_000}, {"8316", 3700, 10_000_000}, {"6098", 9000, 4_000_000},
}

// TestLiquidIssuesNeverHalted is the abuse case of a halt out of
// proportion: any number of accounts sharing one address (and a hosting
// network, a foreign country, one device or none, the guard refusing some
// of them) buying a TOPIX Core 30 issue in ordinary sizes never halts it,
// with the issue's reference data or without it (a restart, an
// integration that sends none), with the market's bars or without. It is
// an account-level matter: the analysts get the cross_account_pump alert.
// Seeded cases over many counts, issues and contexts.
func TestLiquidIssuesNeverHalted(t *testing.T) {
	counts := []int{1, 2, 3, 4, 5, 8, 13, 20, 50, 120, 300}
	for i := range 66 {
		rng := rand.New(rand.NewPCG(uint64(i), 18))
		c := core30[rng.IntN(len(core30))]
		n := counts[i%len(counts)]
		reference := i%3 != 0
		bars := rng.IntN(2) == 0
		devMode := rng.IntN(3) // 0 none, 1 one shared device, 2 a new device each
		asn, country := int64(14618), "JP"
		if rng.IntN(2) == 0 {
			asn, country = 4713, "US"
		}
		name := fmt.Sprintf("%d_%s_%d_accounts_ref%v_bars%v_dev%d", i, c.sym, n, reference, bars, devMode)
		t.Run(name, func(t *testing.T) {
			g := newGen()
			if reference {
				g.instrument(clock(-1, 8, 0, 0), c.sym, "TSE_PRIME", c.price, c.adv)
			}
			px := c.price
			start := clock(0, 9, 5, 0)
			if bars {
				for m := range 120 {
					o := px
					px *= 1 + (rng.Float64()-0.5)*0.004
					g.bar(start.Add(time.Duration(m+1)*time.Minute), c.sym, o, px, c.adv/300)
				}
			}
			for k := range n {
				a := actor{acct: fmt.Sprintf("G%04d", k), sess: fmt.Sprintf("s%d", k), ip: "203.0.113.9", asn: asn, country: country}
				switch devMode {
				case 1:
					a.device = "shared-device"
				case 2:
					a.device = fmt.Sprintf("dev-%d", k)
				}
				at := start.Add(time.Duration(rng.IntN(110*60)) * time.Second)
				lg := g.login(at, a)
				g.guard(lg, event.Allow, 20, "new_device")
				lots := int64(1 + rng.IntN(5))
				o := g.order(at.Add(20*time.Second), a, c.sym, event.SideBuy, 100*lots, 0, c.price)
				if rng.IntN(3) == 0 {
					g.guard(o, event.Challenge, 50, "new_device", "hosting_asn")
					continue
				}
				g.guard(o, event.Allow, 20, "new_device")
				g.fill(at.Add(21*time.Second), a.acct, c.sym, event.SideBuy, 100*lots, c.price)
			}
			w := New(DefaultConfig())
			for _, al := range replayGen(w, g) {
				if al.Action == event.AlertHaltBuys {
					t.Fatalf("halted: %s", al.AppendJSON(nil))
				}
			}
			if w.Halted(c.sym) {
				t.Fatalf("%s halted", c.sym)
			}
		})
	}
}

// TestLiquidConvergenceIsForTheAnalysts checks that the account-level
// finding is still made: twenty hijacked-looking accounts converging on
// Toyota from one hosting address raise cross_account_pump naming them,
// with no halt.
func TestLiquidConvergenceIsForTheAnalysts(t *testing.T) {
	g := newGen()
	g.instrument(clock(-1, 8, 0, 0), "7203", "TSE_PRIME", 2700, 28_000_000)
	for k := range 20 {
		a := actor{acct: fmt.Sprintf("G%04d", k), sess: fmt.Sprintf("s%d", k), ip: "203.0.113.9", asn: 14618, country: "US", device: fmt.Sprintf("dev-%d", k)}
		at := clock(0, 9, 10, 10*k)
		g.guard(g.login(at, a), event.Allow, 45, "new_device", "hosting_asn", "foreign_network")
		g.order(at.Add(20*time.Second), a, "7203", event.SideBuy, 100, 0, 2700)
		g.fill(at.Add(21*time.Second), a.acct, "7203", event.SideBuy, 100, 2700)
	}
	w := New(DefaultConfig())
	var pump *event.Alert
	for _, al := range replayGen(w, g) {
		if al.Action == event.AlertHaltBuys {
			t.Fatalf("halted: %s", al.AppendJSON(nil))
		}
		if al.Kind == KindCrossAccountPump {
			pump = &al
		}
	}
	if pump == nil || len(pump.Accounts) < 3 {
		t.Fatalf("no cross_account_pump for the analysts: %v", pump)
	}
	if w.Heat("7203") >= DefaultConfig().HaltScore {
		t.Errorf("heat %d", w.Heat("7203"))
	}
}

// gatewayDay is the first-day reproduction: twenty customers buy one
// issue through the brokerage's gateway, which sends no client context
// (no X-Kabuto-Client-IP or X-Kabuto-Device): every record carries the
// gateway's address, a hosting network's, and no device. withDevices
// gives each customer a new device instead: the same address then is
// shared infrastructure.
func gatewayDay(sym string, price float64, adv int64, market string, withDevices bool) *gen {
	g := newGen()
	g.instrument(clock(-1, 8, 0, 0), sym, market, price, adv)
	for k := range 20 {
		a := actor{acct: fmt.Sprintf("C%07d", k+1), ip: "198.51.100.7", asn: 14618, country: "JP"}
		if withDevices {
			a.device, a.sess = fmt.Sprintf("dev-%d", k), fmt.Sprintf("s%d", k)
		}
		at := clock(0, 9, 30, 15*k)
		o := g.order(at, a, sym, event.SideBuy, 100, 0, price)
		// what the built-in guard says of such an order: a new device (none
		// known) on a hosting network
		g.guard(o, event.Allow, 20, "new_device", "hosting_asn")
		g.fill(at.Add(time.Second), a.acct, sym, event.SideBuy, 100, price)
	}
	return g
}

// TestGatewayIsNotAnAttacker: twenty customers through the brokerage's
// gateway without client context are not shared attacker infrastructure,
// whether they buy Toyota or a thin ¥150 issue: no halt, no freeze, no
// shared-infrastructure or pump alert; the address is recognised as a
// gateway once, for the operator (client_context_missing, Gateways).
func TestGatewayIsNotAnAttacker(t *testing.T) {
	for _, tc := range []struct {
		sym, market string
		price       float64
		adv         int64
	}{
		{"7203", "TSE_PRIME", 2700, 28_000_000},
		{"7777", "TSE_STANDARD", 150, 50_000},
	} {
		t.Run(tc.sym, func(t *testing.T) {
			w := New(DefaultConfig())
			alerts := replayGen(w, gatewayDay(tc.sym, tc.price, tc.adv, tc.market, false))
			gw := 0
			for _, al := range alerts {
				if al.Action != event.AlertNone {
					t.Errorf("acted on: %s", al.AppendJSON(nil))
				}
				switch al.Kind {
				case KindClientContext:
					gw++
					if len(al.Accounts) != 0 || al.Reasons[0] != "no_client_context" {
						t.Errorf("gateway alert %s", al.AppendJSON(nil))
					}
				case KindCrossAccountPump, KindSharedInfrastructure, KindHijackedAccounts, KindCampaign:
					t.Errorf("the gateway read as attacker infrastructure: %s", al.AppendJSON(nil))
				}
			}
			if gw != 1 {
				t.Errorf("%d client_context_missing alerts, want 1", gw)
			}
			gws := w.Gateways()
			if len(gws) != 1 || gws[0].IP != "198.51.100.7" || gws[0].Accounts != 20 || gws[0].Actions != 20 {
				t.Errorf("Gateways() = %+v", gws)
			}
			if w.Halted(tc.sym) || w.Frozen("C0000003") {
				t.Error("halted or frozen")
			}
		})
	}
	// The same address with a new device per customer, on a thin ¥150
	// issue, is shared infrastructure: the exemption is for records with
	// no client context only.
	w := New(DefaultConfig())
	replayGen(w, gatewayDay("7777", 150, 50_000, "TSE_STANDARD", true))
	if !w.Halted("7777") {
		t.Error("twenty new devices on one hosting address ramping a thin issue not halted")
	}
	if len(w.Gateways()) != 0 {
		t.Errorf("Gateways() = %+v for records with devices", w.Gateways())
	}
}
