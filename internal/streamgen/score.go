package streamgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// The scorer's definitions.
//
// A fraudulent action (a record the labels give a family) is prevented
// when any of these holds:
//   - its decision is hold or deny;
//   - its decision is a challenge the attacker cannot pass: a
//     phishing_resistant challenge always; an mfa challenge (a code) unless
//     the label says the attacker passes one (MFAPassable: a real-time
//     phishing kit relays codes, and an attacker holding the victim's
//     mailbox reads email codes), so an mfa step-up is no prevention
//     against relayed phishing;
//   - the sign-in that opened its session was itself prevented (an
//     attacker refused at sign-in places no order in that session);
//   - it is a buy order of a symbol whose buying an alert halted before
//     it, or any action of an account an alert froze before it (the
//     alert's time is strictly earlier than the record's).
//
// An action with no decision is not prevented (and is counted as missing).
// Value is the order's value_jpy (sells and buys) or the withdrawal's
// amount_jpy, as the stream gives it.
//
// A legitimate action is any customer action the labels do not give a
// family, except a failed sign-in (the password did not verify: the
// brokerage refuses it whatever the guard says). A legitimate session is
// the set of legitimate actions sharing a session identifier; it is
// challenged when any of its actions got a challenge. A legitimate
// action is held or denied when its decision is hold or deny (or it came
// after its account was frozen). A halted symbol that is not a target,
// and a frozen account that is not a victim's, are harm, whatever the
// alert's kind.

// FamilyScore is one family's row of the table.
type FamilyScore struct {
	Family          Family  `json:"family"`
	Actions         int     `json:"actions"`
	Prevented       int     `json:"prevented"`
	SellJPY         int64   `json:"sell_jpy"`
	SellPrevented   int64   `json:"sell_prevented_jpy"`
	SellRate        float64 `json:"sell_prevented"` // fraction; 1 when there is nothing to prevent
	BuyJPY          int64   `json:"buy_jpy"`
	BuyPrevented    int64   `json:"buy_prevented_jpy"`
	BuyRate         float64 `json:"buy_prevented"`
	WithdrawJPY     int64   `json:"withdraw_jpy"`
	WithdrawStopped int64   `json:"withdraw_prevented_jpy"`
	WithdrawRate    float64 `json:"withdraw_prevented"`
	// FirstSellsPassed counts victims whose first fraudulent sell was not prevented.
	FirstSellsPassed int `json:"first_sells_passed"`
	Victims          int `json:"victims"`
}

// Harm is one halt of a symbol that is not a target, or one freeze of an
// account that is not a victim's.
type Harm struct {
	Name  string    `json:"name"` // symbol or account
	Kind  string    `json:"kind"` // the alert's kind
	Alert string    `json:"alert"`
	Time  time.Time `json:"time"`
	// Lookalike is the account's look-alike, if it is one.
	Lookalike string `json:"lookalike,omitempty"`
}

// LookalikeScore is the friction the look-alikes met.
type LookalikeScore struct {
	Name       string `json:"name"`
	Actions    int    `json:"actions"`
	Challenged int    `json:"challenged"`
	HeldDenied int    `json:"held_or_denied"`
}

// Table is the scorer's result.
type Table struct {
	Families []FamilyScore `json:"families"`
	Pooled   FamilyScore   `json:"pooled"`

	LegitSessions       int     `json:"legit_sessions"`
	LegitChallenged     int     `json:"legit_sessions_challenged"`
	LegitChallengedRate float64 `json:"legit_sessions_challenged_rate"`
	LegitActions        int     `json:"legit_actions"`
	LegitHeldDenied     int     `json:"legit_actions_held_or_denied"`
	LegitHeldDeniedRate float64 `json:"legit_actions_held_or_denied_rate"`

	NonTargetHalts      []Harm           `json:"non_target_halts"`
	LegitFrozenAccounts []Harm           `json:"legit_frozen_accounts"`
	Lookalikes          []LookalikeScore `json:"lookalikes"`
	// AlertKinds counts the alerts by kind.
	AlertKinds map[string]int `json:"alert_kinds"`
	// Missing counts customer actions with no decision.
	Missing int `json:"missing_decisions"`
}

// action is what the scorer keeps of one customer action.
type action struct {
	id, account, session, symbol, side string
	typ                                event.Type
	ok                                 bool
	time                               time.Time
	value                              int64
}

// Score computes the table of a replay: the stream, its labels, and the
// decisions and alerts the replay wrote (alerts may be nil).
func Score(stream io.Reader, truth *Truth, decisions, alerts io.Reader) (*Table, error) {
	dec := map[string]event.Decision{}
	if err := readJSONL(decisions, func(line int, b []byte) error {
		var d event.Decision
		if err := json.Unmarshal(b, &d); err != nil {
			return jsonLineError(line, err)
		}
		if d.Event == "" {
			return &LabelError{Line: line, Field: "event", Msg: "missing"}
		}
		switch d.Action {
		case event.Allow, event.Challenge, event.Hold, event.Deny:
		default:
			return &LabelError{Line: line, Field: "action", Msg: fmt.Sprintf("unknown action %q", d.Action)}
		}
		dec[d.Event] = d
		return nil
	}); err != nil {
		return nil, fmt.Errorf("decisions: %w", err)
	}
	halts := map[string]Harm{}  // symbol → first halt
	freeze := map[string]Harm{} // account → first freeze
	t := &Table{AlertKinds: map[string]int{}}
	if alerts != nil {
		if err := readJSONL(alerts, func(line int, b []byte) error {
			var a event.Alert
			if err := json.Unmarshal(b, &a); err != nil {
				return jsonLineError(line, err)
			}
			t.AlertKinds[a.Kind]++
			switch a.Action {
			case event.AlertHaltBuys:
				if h, ok := halts[a.Symbol]; !ok || a.Time.Before(h.Time) {
					halts[a.Symbol] = Harm{Name: a.Symbol, Kind: a.Kind, Alert: a.Alert, Time: a.Time}
				}
			case event.AlertFreezeAccounts:
				for _, acct := range a.Accounts {
					if h, ok := freeze[acct]; !ok || a.Time.Before(h.Time) {
						freeze[acct] = Harm{Name: acct, Kind: a.Kind, Alert: a.Alert, Time: a.Time}
					}
				}
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("alerts: %w", err)
		}
	}
	var acts []action
	rd := event.NewReader(stream)
	var r event.Record
	for {
		err := rd.NextInto(&r)
		if err == io.EOF {
			break
		}
		if event.IsUnknownType(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("stream: line %d: %w", rd.Line(), err)
		}
		if !r.Type.Action() {
			continue
		}
		acts = append(acts, action{id: r.ID, account: r.Account, session: r.Session, symbol: r.Symbol, side: r.Side, typ: r.Type,
			ok: r.OK, time: r.Time, value: r.ValueJPY + r.AmountJPY})
	}
	score(t, acts, truth, dec, halts, freeze)
	return t, nil
}

// stopped reports whether decision d stops an attacker labelled l.
func stopped(d event.Decision, l Label) bool {
	switch d.Action {
	case event.Hold, event.Deny:
		return true
	case event.Challenge:
		return d.Factor == event.FactorPhishingResistant || !l.MFAPassable
	}
	return false
}

func score(t *Table, acts []action, truth *Truth, dec map[string]event.Decision, halts, freeze map[string]Harm) {
	fams := map[Family]*FamilyScore{}
	for _, f := range Families {
		fams[f] = &FamilyScore{Family: f}
	}
	stoppedSessions := map[string]bool{}
	firstSell := map[string]bool{} // victim → first fraudulent sell seen
	victims := map[Family]map[string]bool{}
	legitSess := map[string]bool{} // session → challenged
	looks := map[string]*LookalikeScore{}
	for _, a := range acts {
		d, have := dec[a.id]
		if !have {
			t.Missing++
		}
		frozen := false
		if h, ok := freeze[a.account]; ok && h.Time.Before(a.time) {
			frozen = true
		}
		l, labelled := truth.Records[a.id]
		if labelled && l.Family != "" {
			fs := fams[l.Family]
			if fs == nil {
				continue
			}
			if victims[l.Family] == nil {
				victims[l.Family] = map[string]bool{}
			}
			victims[l.Family][a.account] = true
			prevented := have && stopped(d, l) || frozen || a.session != "" && stoppedSessions[a.session]
			if a.typ == event.TypeOrder && a.side == event.SideBuy {
				if h, ok := halts[a.symbol]; ok && h.Time.Before(a.time) {
					prevented = true
				}
			}
			if a.typ == event.TypeLogin && a.ok && a.session != "" && prevented {
				stoppedSessions[a.session] = true
			}
			fs.Actions++
			if prevented {
				fs.Prevented++
			}
			switch {
			case a.typ == event.TypeOrder && a.side == event.SideSell:
				fs.SellJPY += a.value
				if prevented {
					fs.SellPrevented += a.value
				}
				if !firstSell[a.account] {
					firstSell[a.account] = true
					if !prevented {
						fs.FirstSellsPassed++
					}
				}
			case a.typ == event.TypeOrder:
				fs.BuyJPY += a.value
				if prevented {
					fs.BuyPrevented += a.value
				}
			case a.typ == event.TypeWithdrawal:
				fs.WithdrawJPY += a.value
				if prevented {
					fs.WithdrawStopped += a.value
				}
			}
			continue
		}
		// Legitimate. A failed sign-in (wrong password) is refused by the
		// brokerage whatever the guard says: it is no friction.
		if a.typ == event.TypeLogin && !a.ok {
			continue
		}
		t.LegitActions++
		held := frozen || have && (d.Action == event.Hold || d.Action == event.Deny)
		chal := have && d.Action == event.Challenge
		if held {
			t.LegitHeldDenied++
		}
		key := a.session
		if key == "" {
			key = "record:" + a.id
		}
		legitSess[key] = legitSess[key] || chal
		if labelled && l.Lookalike != "" {
			ls := looks[l.Lookalike]
			if ls == nil {
				ls = &LookalikeScore{Name: l.Lookalike}
				looks[l.Lookalike] = ls
			}
			ls.Actions++
			if chal {
				ls.Challenged++
			}
			if held {
				ls.HeldDenied++
			}
		}
	}
	pooled := &t.Pooled
	pooled.Family = "pooled"
	for _, f := range Families {
		fs := fams[f]
		fs.Victims = len(victims[f])
		if fs.Actions == 0 {
			continue
		}
		fs.rates()
		t.Families = append(t.Families, *fs)
		pooled.Actions += fs.Actions
		pooled.Prevented += fs.Prevented
		pooled.SellJPY += fs.SellJPY
		pooled.SellPrevented += fs.SellPrevented
		pooled.BuyJPY += fs.BuyJPY
		pooled.BuyPrevented += fs.BuyPrevented
		pooled.WithdrawJPY += fs.WithdrawJPY
		pooled.WithdrawStopped += fs.WithdrawStopped
		pooled.FirstSellsPassed += fs.FirstSellsPassed
		pooled.Victims += fs.Victims
	}
	pooled.rates()
	t.LegitSessions = len(legitSess)
	for _, c := range legitSess {
		if c {
			t.LegitChallenged++
		}
	}
	t.LegitChallengedRate = ratio(int64(t.LegitChallenged), int64(t.LegitSessions))
	t.LegitHeldDeniedRate = ratio(int64(t.LegitHeldDenied), int64(t.LegitActions))
	lookOf := map[string]string{}
	for _, l := range truth.Records {
		if l.Lookalike != "" {
			lookOf[l.Account] = l.Lookalike
		}
	}
	t.NonTargetHalts = []Harm{}
	for sym, h := range halts {
		if _, ok := truth.Targets[sym]; !ok {
			t.NonTargetHalts = append(t.NonTargetHalts, h)
		}
	}
	t.LegitFrozenAccounts = []Harm{}
	for acct, h := range freeze {
		if _, ok := truth.Accounts[acct]; !ok {
			h.Lookalike = lookOf[acct]
			t.LegitFrozenAccounts = append(t.LegitFrozenAccounts, h)
		}
	}
	for _, l := range [][]Harm{t.NonTargetHalts, t.LegitFrozenAccounts} {
		sort.Slice(l, func(i, j int) bool {
			if !l[i].Time.Equal(l[j].Time) {
				return l[i].Time.Before(l[j].Time)
			}
			return l[i].Name < l[j].Name
		})
	}
	t.Lookalikes = []LookalikeScore{}
	for _, ls := range looks {
		t.Lookalikes = append(t.Lookalikes, *ls)
	}
	sort.Slice(t.Lookalikes, func(i, j int) bool { return t.Lookalikes[i].Name < t.Lookalikes[j].Name })
}

func (fs *FamilyScore) rates() {
	fs.SellRate = rate(fs.SellPrevented, fs.SellJPY)
	fs.BuyRate = rate(fs.BuyPrevented, fs.BuyJPY)
	fs.WithdrawRate = rate(fs.WithdrawStopped, fs.WithdrawJPY)
}

// rate is prevented/total, and 1 when there was nothing to prevent.
func rate(n, d int64) float64 {
	if d == 0 {
		return 1
	}
	return float64(n) / float64(d)
}

// ratio is n/d, and 0 when d is 0.
func ratio(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// Format writes the table for a person.
func (t *Table) Format(w io.Writer) {
	pct := func(r float64, total int64) string {
		if total == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", r*100)
	}
	fmt.Fprintf(w, "%-16s %8s %10s %8s %10s %9s %7s %12s\n", "family", "victims", "sell", "prevented", "buy", "prevented", "w/draw", "first sells")
	row := func(f *FamilyScore) {
		fmt.Fprintf(w, "%-16s %8d %10s %8s %10s %9s %7s %6d passed\n", f.Family, f.Victims, yen(f.SellJPY), pct(f.SellRate, f.SellJPY),
			yen(f.BuyJPY), pct(f.BuyRate, f.BuyJPY), pct(f.WithdrawRate, f.WithdrawJPY), f.FirstSellsPassed)
	}
	for i := range t.Families {
		row(&t.Families[i])
	}
	row(&t.Pooled)
	fmt.Fprintf(w, "\nlegitimate sessions challenged      %.2f%% (%d of %d)\n", t.LegitChallengedRate*100, t.LegitChallenged, t.LegitSessions)
	fmt.Fprintf(w, "legitimate actions held or denied   %.3f%% (%d of %d)\n", t.LegitHeldDeniedRate*100, t.LegitHeldDenied, t.LegitActions)
	fmt.Fprintf(w, "symbols halted that were not targets %d%s\n", len(t.NonTargetHalts), harmList(t.NonTargetHalts))
	fmt.Fprintf(w, "legitimate accounts frozen          %d%s\n", len(t.LegitFrozenAccounts), harmList(t.LegitFrozenAccounts))
	if len(t.Lookalikes) > 0 {
		fmt.Fprintln(w, "\nlook-alike          actions  challenged  held/denied")
		for _, l := range t.Lookalikes {
			fmt.Fprintf(w, "%-18s %8d %11d %12d\n", l.Name, l.Actions, l.Challenged, l.HeldDenied)
		}
	}
	if t.Missing > 0 {
		fmt.Fprintf(w, "\nwarning: %d customer actions have no decision (counted as not prevented)\n", t.Missing)
	}
}

func harmList(hs []Harm) string {
	if len(hs) == 0 {
		return ""
	}
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.Name + " (" + h.Kind
		if h.Lookalike != "" {
			parts[i] += ", " + h.Lookalike
		}
		parts[i] += " at " + h.Time.Format("01-02 15:04") + ")"
	}
	return ": " + strings.Join(parts, ", ")
}

func yen(v int64) string {
	switch {
	case v >= 100000000:
		return fmt.Sprintf("¥%.2fbn", float64(v)/1e9)
	case v >= 1000000:
		return fmt.Sprintf("¥%.1fm", float64(v)/1e6)
	}
	return fmt.Sprintf("¥%d", v)
}

// readJSONL calls fn with each line of r and its number; blank lines are
// an error.
func readJSONL(r io.Reader, fn func(line int, b []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<22)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			return &LabelError{Line: line, Msg: "blank line"}
		}
		if err := fn(line, b); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return &LabelError{Line: line + 1, Msg: err.Error()}
	}
	return nil
}

func jsonLineError(line int, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &LabelError{Line: line, Field: te.Field, Msg: "want " + te.Type.String()}
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return &LabelError{Line: line, Field: "time", Msg: "want an RFC 3339 time"}
	}
	return &LabelError{Line: line, Msg: "not a JSON object: " + err.Error()}
}
