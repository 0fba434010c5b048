package surveil

import (
	"sort"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// maxAlertAccounts bounds the accounts one alert names.
const maxAlertAccounts = 500

// alertRec is one alert with its bookkeeping.
type alertRec struct {
	a       event.Alert
	key     string
	bits    uint64
	first   int64 // raised
	updated int64 // last emitted
	until   int64 // open to updates until
	emitted int   // score when last emitted
}

func (r *alertRec) copy() event.Alert {
	c := r.a
	c.Accounts = append([]string{}, r.a.Accounts...)
	c.Reasons = append([]string(nil), r.a.Reasons...)
	return c
}

// action is the automation an alert of kind with score gets.
func (w *Watch) action(kind, symbol string, score int, accounts bool) string {
	if symbolKind(kind) {
		if symbol != "" && w.cfg.HaltScore > 0 && score >= w.cfg.HaltScore {
			return event.AlertHaltBuys
		}
		return event.AlertNone
	}
	if freezes(kind) && accounts && w.cfg.FreezeScore > 0 && score >= w.cfg.FreezeScore {
		return event.AlertFreezeAccounts
	}
	return event.AlertNone
}

// freezes reports whether alerts of kind freeze the accounts they name.
// Only hijacked_accounts (which names only accounts with direct evidence of
// takeover) and ring_seller (the account's own trades) do; the other account
// alerts (R1, shared infrastructure, campaigns) link accounts by what they
// share, and at the freeze score raise a hijacked_accounts alert for those
// of their accounts with direct evidence.
func freezes(kind string) bool {
	return kind == KindHijackedAccounts || kind == KindRingSeller
}

// evidencedOnly returns the accounts of accts with direct evidence of
// takeover, in a new slice.
func (w *Watch) evidencedOnly(accts []int32) []int32 {
	var out []int32
	for _, ai := range accts {
		if w.evidenced(w.acctList[ai]) {
			out = append(out, ai)
		}
	}
	return out
}

// raise opens the alert of kind and key (a symbol, an address or a campaign
// id), or updates the open one: accounts are added, the score and reasons
// only grow and the action only strengthens. The alert is emitted when it is
// new or escalated, with the time of the emission, except that an alert
// that halted buying keeps the time of its halt (spec: buys are refused
// from its time on), so that a halt's time is the same in every copy.
func (w *Watch) raise(kind, key, symbol string, now int64, score int, bits uint64, accts []int32) *alertRec {
	score = max(0, min(100, score))
	if kind == KindHijackedAccounts {
		// a freeze rests on each account's own evidence, never on what
		// it shares with others (an ASN, a carrier, an issue)
		if accts = w.evidencedOnly(accts); len(accts) == 0 {
			return nil
		}
	}
	k := kind + "\x00" + key
	rec := w.open[k]
	if rec != nil && now > rec.until {
		delete(w.open, k)
		rec = nil
	}
	emit, added := false, false
	// a halt is in force from the time it was raised: the alert's later
	// updates (a higher score, more suspects named) keep that time
	halted := rec != nil && rec.a.Action == event.AlertHaltBuys
	if rec == nil {
		w.nextAlert++
		rec = &alertRec{key: k, first: now, emitted: -100}
		rec.a = event.Alert{
			Alert:    "sv-" + itoa(w.nextAlert),
			Kind:     kind,
			Symbol:   symbol,
			Accounts: []string{},
			Action:   event.AlertNone,
		}
		w.open[k] = rec
		w.alerts = append(w.alerts, rec)
		if len(w.alerts) > w.cfg.MaxAlerts {
			w.alerts = append(w.alerts[:0:0], w.alerts[len(w.alerts)-w.cfg.MaxAlerts:]...)
		}
		emit = true
	}
	rec.until = now + w.ttl
	for _, ai := range accts {
		id := w.acctList[ai].id
		as := rec.a.Accounts
		i := sort.SearchStrings(as, id)
		if i < len(as) && as[i] == id || len(as) >= maxAlertAccounts {
			continue
		}
		as = append(as, "")
		copy(as[i+1:], as[i:])
		as[i] = id
		rec.a.Accounts = as
		added = true
	}
	if score > rec.a.Score {
		rec.a.Score = score
	}
	if bits|rec.bits != rec.bits || rec.a.Reasons == nil {
		rec.bits |= bits
		rec.a.Reasons = reasonList(rec.bits)
	}
	if act := w.action(kind, symbol, rec.a.Score, len(rec.a.Accounts) > 0); act != event.AlertNone && rec.a.Action == event.AlertNone {
		rec.a.Action = act
		emit = true
	}
	if c := w.campaignOf(symbol, accts); c != "" && c != rec.a.Campaign {
		rec.a.Campaign = c
		emit = true
	}
	if !symbolKind(kind) && !freezes(kind) && w.cfg.FreezeScore > 0 && rec.a.Score >= w.cfg.FreezeScore && len(accts) > 0 {
		w.raise(KindHijackedAccounts, kind+":"+key, symbol, now, rec.a.Score, bits, accts)
	}
	if rec.a.Score >= rec.emitted+5 {
		emit = true
	}
	// New accounts are news when they are acted on or the alert is about
	// accounts; a market finding just collects them for the analyst.
	if added && (rec.a.Action != event.AlertNone || !symbolKind(kind) || kind == KindCrossAccountPump) {
		emit = true
	}
	if !emit {
		return rec
	}
	rec.emitted = rec.a.Score
	rec.updated = now
	if !halted {
		rec.a.Time = w.ts(now)
	}
	switch rec.a.Action {
	case event.AlertHaltBuys:
		if in := w.insts[symbol]; in != nil {
			in.halted = true
		}
	case event.AlertFreezeAccounts:
		for _, id := range rec.a.Accounts {
			if a := w.accts[id]; a != nil {
				a.frozen = true
			}
		}
	}
	w.out = append(w.out, rec.copy())
	if symbol != "" && (symbolKind(kind) || kind == KindRingSeller) && rec.a.Score >= w.cfg.CampaignScore {
		if in := w.insts[symbol]; in != nil {
			w.flagSymbol(in, now)
		}
	}
	return rec
}
