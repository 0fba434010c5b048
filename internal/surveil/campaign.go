package surveil

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// linker is R10: a union-find over flagged accounts, issues and the
// infrastructure behind them (IPs, devices, hosting or foreign ASNs). Nodes
// are named "a:" account, "s:" symbol, "i:" IP, "d:" device, "n:" ASN. A
// component holding CampaignIssues flagged issues is a campaign. Links older
// than the campaign window are dropped by rebuilding the forest once a day.
type linker struct {
	ids     map[string]int32
	names   []string
	parent  []int32
	flagged []int32 // per root: flagged issues in the component
	camp    []int32 // per root: campaign number, 0 for none
	// members lists, per root, the nodes of its component (in no order),
	// so that a campaign's check reads its component alone.
	members [][]int32
	// taken holds, per node, the campaign check that took it in
	// (campMeta.mark); joined lists, per root of a campaign, the nodes that
	// joined its component since that campaign's last check.
	taken  []uint64
	joined [][]int32
	edges  []edge
	flags  map[string]int64 // flagged symbol → last flagged
	camps  []*campMeta      // campaign number n is camps[n-1]
}

type edge struct {
	a, b string
	at   int64
}

type campMeta struct {
	id          string
	first, last int64
	anchor      int32 // a member node
	alive       bool
	// mark is what linker.taken holds for the member nodes a check of
	// the campaign took in (each check takes in only the new ones): the
	// campaign's number and a generation, 0 until its first check. syms
	// are its issues, sorted.
	mark uint64
	syms []string
	// root is the root of the component the last check read: after a
	// rebuild splits a campaign, its parts have roots of their own, and a
	// check of another part than the last reads it whole.
	root int32
	// evid holds the members (account indexes) with evidence of their
	// own, pending those without it yet.
	evid, pending []int32
}

func newLinker() linker {
	return linker{ids: map[string]int32{}, flags: map[string]int64{}}
}

func (l *linker) node(name string) int32 {
	if id, ok := l.ids[name]; ok {
		return id
	}
	id := int32(len(l.names))
	l.ids[name] = id
	l.names = append(l.names, name)
	l.parent = append(l.parent, id)
	l.flagged = append(l.flagged, 0)
	l.camp = append(l.camp, 0)
	l.members = append(l.members, []int32{id})
	l.taken = append(l.taken, 0)
	l.joined = append(l.joined, nil)
	return id
}

func (l *linker) find(x int32) int32 {
	for l.parent[x] != x {
		l.parent[x] = l.parent[l.parent[x]]
		x = l.parent[x]
	}
	return x
}

// union joins the components of x and y and returns the root. Campaign
// numbers merge to the older campaign.
func (l *linker) union(x, y int32) int32 {
	rx, ry := l.find(x), l.find(y)
	if rx == ry {
		return rx
	}
	if rx > ry { // the older node stays the root: deterministic
		rx, ry = ry, rx
	}
	l.parent[ry] = rx
	l.flagged[rx] += l.flagged[ry]
	mx, my := l.members[rx], l.members[ry]
	jx, jy := l.joined[rx], l.joined[ry]
	l.joined[ry] = nil
	// the shorter list joins the longer (each node moves O(log n) times)
	if len(mx) < len(my) {
		l.members[rx] = append(my, mx...)
	} else {
		l.members[rx] = append(mx, my...)
	}
	l.members[ry] = nil
	cx, cy := l.camp[rx], l.camp[ry]
	// the nodes of the side without the campaign that survives join it
	switch c := min(cx, cy); {
	case cx == 0 && cy == 0:
		l.joined[rx] = nil
	case cy == 0 || cx != 0 && c == cx:
		l.joined[rx] = append(jx, my...)
	default:
		l.joined[rx] = append(jy, mx...)
	}
	switch {
	case cx == 0:
		l.camp[rx] = cy
	case cy != 0 && cy < cx:
		l.camp[rx] = cy
	}
	if cx != 0 && cy != 0 && cx != cy {
		// the younger campaign is absorbed (two parts of one campaign,
		// split by a rebuild, simply join again)
		lo, hi := min(cx, cy), max(cx, cy)
		l.camps[hi-1].alive = false
		l.camps[lo-1].anchor = rx
	}
	return rx
}

// addEdge links two named nodes at now and returns the root.
func (w *Watch) addEdge(a, b string, now int64) int32 {
	l := &w.link
	l.edges = append(l.edges, edge{a: a, b: b, at: now})
	return l.union(l.node(a), l.node(b))
}

// linkSuspect links a suspect first-ever buyer to the issue, its IP, its
// device and an unusual ASN.
func (w *Watch) linkSuspect(a *acct, in *inst, e *entry, now int64) {
	an := "a:" + a.id
	root := w.link.find(w.link.node(an))
	// an issue outside the target profile (a large cap, a popular liquid
	// name) is bought by everyone: it links nothing
	if in.profBits&(bR2|bUnknownInstrument) != 0 || in.flaggedAt != 0 {
		root = w.addEdge(an, "s:"+in.sym, now)
	}
	// an address in a carrier's NAT pool is many customers' at once
	if e.ipS != "" && !w.carrier[e.asn] {
		root = w.addEdge(an, "i:"+e.ipS, now)
	}
	if e.devS != "" {
		root = w.addEdge(an, "d:"+e.devS, now)
	}
	// a hosting network links its users; a big residential carrier's
	// network (millions of customers) never does, even behind a proxy
	if e.asn != 0 && !w.carrier[e.asn] && (w.hosting[e.asn] || e.bits&(bHosting|bForeign|bProxy) != 0) {
		root = w.addEdge(an, "n:"+strconv.FormatInt(e.asn, 10), now)
	}
	w.checkCampaign(root, now)
}

// linkRing links a ring seller to the issue.
func (w *Watch) linkRing(a *acct, in *inst, now int64) {
	w.checkCampaign(w.addEdge("a:"+a.id, "s:"+in.sym, now), now)
}

// flagSymbol marks in as a flagged issue for campaign linking.
func (w *Watch) flagSymbol(in *inst, now int64) {
	l := &w.link
	last, ok := l.flags[in.sym]
	l.flags[in.sym] = now
	in.flaggedAt = now
	if ok && now-last <= w.campWin {
		return
	}
	r := l.find(l.node("s:" + in.sym))
	l.flagged[r]++
	w.checkCampaign(r, now)
}

// checkCampaign forms or updates the campaign of the component rooted at r.
// Each check takes in only the nodes that joined the component since the
// last one (linker.joined), so that a campaign of thousands of accounts
// costs a new suspect its own few nodes, not a scan and a sort of them all.
func (w *Watch) checkCampaign(r int32, now int64) {
	l := &w.link
	r = l.find(r)
	if int(l.flagged[r]) < w.cfg.CampaignIssues {
		return
	}
	if l.camp[r] == 0 {
		n := int32(len(l.camps) + 1)
		l.camps = append(l.camps, &campMeta{id: "c-" + itoa(int(n)), first: now, anchor: r, alive: true})
		l.camp[r] = n
	}
	m := l.camps[l.camp[r]-1]
	m.last = now
	// A first check, a check of another part of a campaign split by the
	// daily rebuild, and a check after the campaign's alert lapsed take in
	// every member.
	rec := w.open[KindCampaign+"\x00"+m.id]
	fresh := m.mark == 0 || m.root != r || rec == nil || now > rec.until || w.checkAll
	m.root = r
	if fresh {
		m.mark = uint64(l.camp[r])<<32 | (m.mark+1)&math.MaxUint32
		m.syms, m.evid, m.pending = nil, nil, nil
	}
	var newSyms, newAccts []string
	scan := l.joined[r]
	if fresh {
		scan = l.members[r]
	}
	l.joined[r] = nil
	for _, n := range scan {
		if l.taken[n] == m.mark {
			continue
		}
		l.taken[n] = m.mark
		switch name := l.names[n]; {
		case strings.HasPrefix(name, "s:"):
			newSyms = append(newSyms, name[2:])
		case strings.HasPrefix(name, "a:"):
			newAccts = append(newAccts, name[2:])
		}
	}
	if len(newSyms) > 0 {
		m.syms = append(m.syms, newSyms...)
		sort.Strings(m.syms)
		sort.Strings(newSyms)
	}
	sort.Strings(newAccts)
	score := 0
	for _, s := range m.syms {
		if in := w.insts[s]; in != nil {
			score = max(score, in.peak)
			in.campaign = l.camp[r]
		}
	}
	var ids []int32
	for _, id := range newAccts {
		if a := w.accts[id]; a != nil {
			ids = append(ids, a.idx)
		}
	}
	// Open alerts of the new members join the campaign (those raised
	// since, on members it had, were given it when raised).
	if len(newSyms) > 0 || len(newAccts) > 0 {
		for _, rec := range w.open {
			if rec.a.Campaign != "" || rec.a.Kind == KindCampaign {
				continue
			}
			if contains(newSyms, rec.a.Symbol) || overlaps(newAccts, rec.a.Accounts) {
				rec.a.Campaign = m.id
			}
		}
	}
	// A campaign at the freeze score freezes its members on their own
	// evidence (raise): every member with evidence is put to it on every
	// check, as a check of all members would, and the others wait in
	// pending, looked at again on each check, until they have some.
	for _, ai := range ids {
		if w.evidenced(w.acctList[ai]) {
			m.evid = append(m.evid, ai)
		} else {
			m.pending = append(m.pending, ai)
		}
	}
	k := 0
	for _, ai := range m.pending {
		if w.evidenced(w.acctList[ai]) {
			m.evid = append(m.evid, ai)
		} else {
			m.pending[k] = ai
			k++
		}
	}
	m.pending = m.pending[:k]
	if fs := w.cfg.FreezeScore; fs > 0 && !fresh && max(rec.a.Score, min(100, score)) >= fs && len(m.evid) > 0 {
		ids = append(ids, m.evid...)
		sort.Slice(ids, func(i, j int) bool { return w.acctList[ids[i]].id < w.acctList[ids[j]].id })
		ids = slices.Compact(ids)
	}
	w.raise(KindCampaign, m.id, "", now, score, bR10, ids)
}

// members returns the symbols and accounts of the component rooted at r,
// sorted.
func (w *Watch) members(r int32) (syms, accts []string) {
	l := &w.link
	for _, i := range l.members[r] {
		switch n := l.names[i]; {
		case strings.HasPrefix(n, "s:"):
			syms = append(syms, n[2:])
		case strings.HasPrefix(n, "a:"):
			accts = append(accts, n[2:])
		}
	}
	sort.Strings(syms)
	sort.Strings(accts)
	return
}

// campaignOf returns the campaign of symbol, or of the first of accts in
// one.
func (w *Watch) campaignOf(symbol string, accts []int32) string {
	l := &w.link
	if len(l.camps) == 0 {
		return ""
	}
	if symbol != "" {
		if id, ok := l.ids["s:"+symbol]; ok {
			if c := l.camp[l.find(id)]; c != 0 {
				return l.camps[c-1].id
			}
		}
	}
	for _, ai := range accts {
		if id, ok := l.ids["a:"+w.acctList[ai].id]; ok {
			if c := l.camp[l.find(id)]; c != 0 {
				return l.camps[c-1].id
			}
		}
	}
	return ""
}

// expire drops links made before cutoff and rebuilds the forest; campaigns
// that survive keep their identifiers.
func (l *linker) expire(cutoff int64, w *Watch) {
	if len(l.edges) == 0 || l.edges[0].at >= cutoff {
		return
	}
	k := 0
	for k < len(l.edges) && l.edges[k].at < cutoff {
		k++
	}
	edges := append([]edge(nil), l.edges[k:]...)
	flags := map[string]int64{}
	for s, t := range l.flags {
		if t >= cutoff {
			flags[s] = t
		}
	}
	camps := l.camps
	*l = newLinker()
	l.camps = camps
	for _, m := range camps {
		m.alive, m.mark, m.syms, m.evid, m.pending = false, 0, nil, nil, nil
	}
	l.flags = flags
	for _, e := range edges {
		l.edges = append(l.edges, e)
		l.union(l.node(e.a), l.node(e.b))
	}
	syms := make([]string, 0, len(flags))
	for s := range flags {
		syms = append(syms, s)
	}
	sort.Strings(syms)
	for _, s := range syms {
		r := l.find(l.node("s:" + s))
		l.flagged[r]++
	}
	// campaigns keep the identifier their symbols last had
	for i := range l.names {
		r := l.find(int32(i))
		if int32(i) != r || int(l.flagged[r]) < w.cfg.CampaignIssues {
			continue
		}
		syms, _ := w.members(r)
		best := int32(0)
		for _, s := range syms {
			if in := w.insts[s]; in != nil && in.campaign != 0 && (best == 0 || in.campaign < best) {
				best = in.campaign
			}
		}
		if best == 0 {
			best = int32(len(l.camps) + 1)
			l.camps = append(l.camps, &campMeta{id: "c-" + itoa(int(best)), first: w.now, last: w.now})
		}
		l.camp[r] = best
		l.camps[best-1].alive = true
		l.camps[best-1].anchor = r
	}
}

// campaigns lists the live campaigns in the order they were formed.
func (l *linker) campaigns(w *Watch) []Campaign {
	var out []Campaign
	for n, m := range l.camps {
		if !m.alive || int(m.anchor) >= len(l.names) {
			continue
		}
		r := l.find(m.anchor)
		if l.camp[r] != int32(n+1) {
			continue
		}
		c := Campaign{ID: m.id, First: w.ts(m.first), Last: w.ts(m.last)}
		for i, name := range l.names {
			if l.find(int32(i)) != r {
				continue
			}
			v := name[2:]
			switch name[:2] {
			case "s:":
				c.Symbols = append(c.Symbols, v)
				if in := w.insts[v]; in != nil {
					c.Score = max(c.Score, in.peak)
				}
			case "a:":
				c.Accounts = append(c.Accounts, v)
			case "i:":
				c.IPs = append(c.IPs, v)
			case "d:":
				c.Devices = append(c.Devices, v)
			case "n:":
				if asn, err := strconv.ParseInt(v, 10, 64); err == nil {
					c.ASNs = append(c.ASNs, asn)
				}
			}
		}
		sort.Strings(c.Symbols)
		sort.Strings(c.Accounts)
		sort.Strings(c.IPs)
		sort.Strings(c.Devices)
		sort.Slice(c.ASNs, func(i, j int) bool { return c.ASNs[i] < c.ASNs[j] })
		for _, a := range w.alerts {
			if a.a.Campaign == m.id {
				c.Alerts = append(c.Alerts, a.a.Alert)
			}
		}
		out = append(out, c)
	}
	return out
}

func contains(s []string, v string) bool {
	if v == "" {
		return false
	}
	i := sort.SearchStrings(s, v)
	return i < len(s) && s[i] == v
}

func overlaps(a, b []string) bool {
	for _, v := range b {
		if contains(a, v) {
			return true
		}
	}
	return false
}
