package surveil

import (
	"sort"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// A brokerage calls Kabuto from its own servers. When it leaves out the
// customer's context (the X-Kabuto-Client-IP and X-Kabuto-Device headers of
// the reference brokerage's API, or the ip and device fields of a record),
// every customer seems to act from one address, the gateway's, with no
// device. Read as customers' sessions, that is exactly what shared attacker
// infrastructure looks like: many accounts, one address, every device new.
// The watchtower reads it as what it is instead: an address it knows
// nothing about the customer from.

// gateway is one address that accounts acted from with no client context.
type gateway struct {
	ip          string
	first, last int64
	actions     int64
	accts       shared // distinct accounts, counted as for shared addresses
	recognised  bool
}

// Gateway is an address that many accounts acted from with no client
// context (no device): the brokerage's gateway, or a proxy in front of
// Kabuto, calling without the customer's address and device.
type Gateway struct {
	IP string `json:"ip"`
	// Accounts is how many distinct accounts acted from it without client
	// context within the shared window.
	Accounts int `json:"accounts"`
	// Actions counts those actions.
	Actions int64     `json:"actions"`
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
}

// contextless reports whether r carries no client context: no device. Its
// IP address is then weighed as unknown: it may be the gateway's.
func contextless(r *event.Record) bool { return r.Device == "" }

// noClientContext counts an action of a taken with no client context from
// r's address, and recognises the address as a gateway once
// GatewayAccounts distinct accounts acted so from it.
func (w *Watch) noClientContext(r *event.Record, a *acct, now int64) {
	if r.IP == "" {
		return
	}
	h := fnv(r.IP)
	g := w.gws[h]
	if g == nil || now-g.last > w.sharedWin {
		g = &gateway{ip: r.IP, first: now}
		w.gws[h] = g
	}
	g.last = now
	g.actions++
	n := g.accts.add(a.idx, now)
	if g.recognised || n < w.cfg.GatewayAccounts {
		return
	}
	g.recognised = true
	w.raise(KindClientContext, "ip:"+g.ip, "", now, 30, bNoClientContext, nil)
}

// Gateways returns the addresses recognised as gateways within the shared
// window, by address: many accounts acted from each with no client
// context. The operator should make the integration send each customer's
// address and device; until then surveillance weighs these addresses as
// unknown, not as infrastructure the accounts share.
func (w *Watch) Gateways() []Gateway {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Gateway
	for _, g := range w.gws {
		if !g.recognised || w.now-g.last > w.sharedWin {
			continue
		}
		out = append(out, Gateway{IP: g.ip, Accounts: int(g.accts.n), Actions: g.actions, First: w.ts(g.first), Last: w.ts(g.last)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP < out[j].IP })
	return out
}

// add records account a on s at now and returns how many distinct
// accounts s has seen (those past the first few are counted, not kept).
func (s *shared) add(a int32, now int64) int {
	s.last = now
	for i := 0; i < int(min(s.n, int32(len(s.accts)))); i++ {
		if s.accts[i] == a {
			return int(s.n)
		}
	}
	if int(s.n) < len(s.accts) {
		s.accts[s.n] = a
	}
	s.n++
	return int(s.n)
}
