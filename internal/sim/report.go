package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// FSARow is one column of the FSA's table of unauthorised trading.
type FSARow struct {
	UnauthorisedAccesses int   `json:"unauthorised_accesses"`
	UnauthorisedTrades   int   `json:"unauthorised_trades"`
	ValueSoldJPY         int64 `json:"value_sold_jpy"`
	ValueBoughtJPY       int64 `json:"value_bought_jpy"`
}

// FSATable is the FSA's table for the simulated day, defences off and on.
type FSATable struct {
	DefencesOff *FSARow `json:"defences_off,omitempty"`
	DefencesOn  FSARow  `json:"defences_on"`
}

// TechScore is how one technique fared in a run.
type TechScore struct {
	Sessions  int   `json:"sessions"`
	Accesses  int   `json:"accesses"`
	Stopped   int   `json:"stopped"`
	SoldJPY   int64 `json:"sold_jpy"`
	BoughtJPY int64 `json:"bought_jpy"`
}

// TargetScore is what happened to one target issue in a run.
type TargetScore struct {
	Symbol       string   `json:"symbol"`
	Wave         string   `json:"wave"`
	HijackedBuys int      `json:"hijacked_buys"`
	ThirdBuy     string   `json:"third_buy,omitempty"`
	HaltedAt     string   `json:"halted_at,omitempty"`
	LatencyS     *float64 `json:"halt_latency_s"`
	OpenPrice    float64  `json:"open"`
	HighPrice    float64  `json:"high"`
	ClosePrice   float64  `json:"close"`
}

// RunScore scores one variant.
type RunScore struct {
	Variant                 string               `json:"variant"`
	Layers                  Layers               `json:"layers"`
	FSA                     FSARow               `json:"fsa"`
	AttackSessions          int                  `json:"attack_sessions"`
	StoppedSessions         int                  `json:"stopped_sessions"`
	StoppedSessionRatio     float64              `json:"stopped_session_ratio"`
	AttemptedSellJPY        int64                `json:"attempted_sell_jpy"`
	AttemptedBuyJPY         int64                `json:"attempted_buy_jpy"`
	PreventedSellJPY        int64                `json:"prevented_sell_jpy"`
	PreventedBuyJPY         int64                `json:"prevented_buy_jpy"`
	PreventedSellRatio      float64              `json:"prevented_sell_ratio"`
	PreventedBuyRatio       float64              `json:"prevented_buy_ratio"`
	AttemptedWithdrawJPY    int64                `json:"attempted_withdrawal_jpy"`
	WithdrawnJPY            int64                `json:"withdrawn_jpy"`
	PreventedWithdrawRatio  float64              `json:"prevented_withdrawal_ratio"`
	Persistence             int                  `json:"persistence_changes"`
	BankChanges             int                  `json:"bank_changes"`
	StoppedAt               map[string]int       `json:"stopped_at"`
	ByTechnique             map[string]TechScore `json:"by_technique"`
	ByVariant               map[string]TechScore `json:"by_variant"`
	StuffingFailures        int                  `json:"stuffing_failures"`
	LegitSessions           int                  `json:"legit_sessions"`
	LegitChallengedSessions int                  `json:"legit_challenged_sessions"`
	LegitChallengedRatio    float64              `json:"legit_challenged_session_ratio"`
	LegitActions            int                  `json:"legit_actions"`
	LegitBlockedActions     int                  `json:"legit_blocked_actions"`
	LegitBlockedRatio       float64              `json:"legit_blocked_action_ratio"`
	LegitBrokerRefused      int                  `json:"legit_refused_by_brokerage"`
	Alerts                  int                  `json:"alerts"`
	AlertKinds              map[string]int       `json:"alert_kinds"`
	Halts                   map[string]string    `json:"halts"`
	NewsHalted              bool                 `json:"news_issue_halted"`
	Targets                 []TargetScore        `json:"targets"`
	HaltLatency             map[string]*float64  `json:"halt_latency_seconds"`
	// LegitFriction counts the guard's non-allow decisions on legitimate
	// actions by type/action/reason; AttackDecisions the same for attacks.
	LegitFriction   map[string]int `json:"legit_friction_reasons"`
	AttackDecisions map[string]int `json:"attack_decision_reasons"`
	// NonTargetHalts lists the symbols whose buying was halted that no
	// attacker bought or tried to buy (the news issue, a day trader's
	// favourite), with the time and the alert kind: each one is a false
	// halt.
	NonTargetHalts []NamedHalt `json:"non_target_halts"`
	// LegitFrozenAccounts lists the accounts frozen that no attacker got
	// into in this run (ring accounts aside), with the alert kind that froze
	// them: each one is a customer denied every action.
	LegitFrozenAccounts []NamedFreeze `json:"legit_frozen_accounts"`
}

// NamedHalt is one buy halt of a symbol.
type NamedHalt struct {
	Symbol string `json:"symbol"`
	At     string `json:"at"`
	Kind   string `json:"kind"`
	Alert  string `json:"alert"`
}

// NamedFreeze is one account frozen.
type NamedFreeze struct {
	Account string `json:"account"`
	At      string `json:"at"`
	Kind    string `json:"kind"`
	Alert   string `json:"alert"`
}

// AblationRow is one layer switched off.
type AblationRow struct {
	Off                    string  `json:"off"`
	PreventedSellRatio     float64 `json:"prevented_sell_ratio"`
	PreventedBuyRatio      float64 `json:"prevented_buy_ratio"`
	StoppedSessionRatio    float64 `json:"stopped_session_ratio"`
	PreventedWithdrawRatio float64 `json:"prevented_withdrawal_ratio"`
	TargetsHalted          int     `json:"targets_halted"`
	LegitChallengedRatio   float64 `json:"legit_challenged_session_ratio"`
	LegitBlockedRatio      float64 `json:"legit_blocked_action_ratio"`
	FSA                    FSARow  `json:"fsa"`
}

// Acceptance holds the thresholds of issue 6 and whether the all-on run met them.
type Acceptance struct {
	SellPrevented99  bool     `json:"sell_prevented_99"`
	BuyPrevented995  bool     `json:"buy_prevented_99_5"`
	HaltedWithin60s  bool     `json:"every_target_halted_within_60s"`
	LegitChallenged2 bool     `json:"legit_challenged_at_most_2pct"`
	LegitBlocked01   bool     `json:"legit_blocked_at_most_0_1pct"`
	NoNonTargetHalt  bool     `json:"no_non_target_halted"`
	NoLegitFrozen    bool     `json:"no_legit_account_frozen"`
	Met              bool     `json:"met"`
	Notes            []string `json:"notes"`
}

// Report is the scorecard.
type Report struct {
	Scenario                    string              `json:"scenario"`
	Seed                        uint64              `json:"seed"`
	Customers                   int                 `json:"customers"`
	Enrolment                   string              `json:"enrolment"`
	Day                         string              `json:"day"`
	Mode                        string              `json:"mode"`
	LegitSessions               int                 `json:"legit_sessions"`
	AttackSessions              int                 `json:"attack_sessions"`
	PreventedSellRatio          float64             `json:"prevented_sell_ratio"`
	PreventedBuyRatio           float64             `json:"prevented_buy_ratio"`
	PreventedWithdrawRatio      float64             `json:"prevented_withdrawal_ratio"`
	StoppedSessionRatio         float64             `json:"stopped_session_ratio"`
	LegitChallengedSessionRatio float64             `json:"legit_challenged_session_ratio"`
	LegitBlockedActionRatio     float64             `json:"legit_blocked_action_ratio"`
	HaltLatencySeconds          map[string]*float64 `json:"halt_latency_seconds"`
	FSATable                    FSATable            `json:"fsa_table"`
	BackOffice                  *BackOffice         `json:"back_office,omitempty"` // the back office of the run with the defences on (in process)
	Ablation                    []AblationRow       `json:"ablation"`
	Acceptance                  Acceptance          `json:"acceptance"`
	Runs                        []RunScore          `json:"runs"`
	// Evasions are the adaptive scenario's strategies, best first: what
	// each got through in the rehearsal and on the day, and what stopped
	// it (absent in other scenarios).
	Evasions []EvasionScore `json:"evasions,omitempty"`

	// Elapsed is the wall time of the simulation (not in the JSON, which
	// depends on the seed alone).
	Elapsed time.Duration `json:"-"`
	// Decisions are the all-on run's decisions in stream order, kept when
	// Config.Events was set (for backtests of the written stream).
	Decisions []event.Decision `json:"-"`

	charts *charts
}

type charts struct {
	targets    []*target
	offTargets []*target // the same issues with the defences off, if run
	alerts     []event.Alert
	news       []pricePoint
	newsSym    string
}

func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return math.Round(a/b*1e6) / 1e6
}

// preventedRatio is the share of the attempted value (base) that did not go
// through (got). When nothing was attempted and nothing went through,
// everything there was to prevent was prevented: 1, not 0 (a run in which no
// hijacked buy was even tried must not read as one that let every buy pass).
func preventedRatio(base, got float64) float64 {
	if base <= 0 && got <= 0 {
		return 1
	}
	return ratio(math.Max(base-got, 0), base)
}

func timeOfDay(t time.Time) string { return t.In(jst).Format("15:04:05") }

func scoreRun(res *runResult, off *runResult) RunScore {
	s := RunScore{Variant: res.variant.Name, Layers: res.variant.Layers, StoppedAt: map[string]int{}, ByTechnique: map[string]TechScore{},
		ByVariant: map[string]TechScore{}, AlertKinds: map[string]int{}, Halts: map[string]string{}, HaltLatency: map[string]*float64{},
		StuffingFailures: res.noise, LegitFriction: res.legitReasons, AttackDecisions: res.attackReasons}
	for _, a := range res.atk {
		// A session counts when its credentials (or stolen cookie) work
		// and the ring had something for it to do.
		p := a.plan
		if !a.valid {
			continue
		}
		if a.access {
			s.FSA.UnauthorisedAccesses++
		}
		if p.Wave < 0 && !p.Withdraw && !p.Persist && !p.AddTOTP {
			continue // signed in, looked, left: an access, not a session to stop
		}
		s.AttackSessions++
		t := s.ByTechnique[a.plan.Tech]
		v := s.ByVariant[a.plan.Variant]
		t.Sessions++
		v.Sessions++
		if a.access {
			t.Accesses++
			v.Accesses++
		}
		s.FSA.UnauthorisedTrades += a.trades
		s.FSA.ValueSoldJPY += a.sold
		s.FSA.ValueBoughtJPY += a.bought
		t.SoldJPY += a.sold
		t.BoughtJPY += a.bought
		v.SoldJPY += a.sold
		v.BoughtJPY += a.bought
		s.AttemptedSellJPY += a.attemptSell
		s.AttemptedBuyJPY += a.attemptBuy
		s.AttemptedWithdrawJPY += a.attemptWd
		s.WithdrawnJPY += a.withdrawn
		if a.persisted {
			s.Persistence++
		}
		if a.bankChanged {
			s.BankChanges++
		}
		if a.trades == 0 && a.withdrawn == 0 && !a.persisted {
			s.StoppedSessions++
			t.Stopped++
			v.Stopped++
			w := a.stoppedAt
			if w == "" {
				w = "nothing_to_do"
			}
			s.StoppedAt[w]++
		}
		s.ByTechnique[a.plan.Tech] = t
		s.ByVariant[a.plan.Variant] = v
	}
	s.StoppedSessionRatio = ratio(float64(s.StoppedSessions), float64(s.AttackSessions))
	baseSell, baseBuy, baseWd := float64(s.AttemptedSellJPY), float64(s.AttemptedBuyJPY), float64(s.AttemptedWithdrawJPY)
	if off != nil {
		var o FSARow
		var wd int64
		for _, a := range off.atk {
			if a.valid {
				o.ValueSoldJPY += a.sold
				o.ValueBoughtJPY += a.bought
				wd += a.withdrawn
			}
		}
		baseSell, baseBuy, baseWd = float64(o.ValueSoldJPY), float64(o.ValueBoughtJPY), float64(wd)
	}
	s.PreventedSellJPY = int64(baseSell) - s.FSA.ValueSoldJPY
	s.PreventedBuyJPY = int64(baseBuy) - s.FSA.ValueBoughtJPY
	s.PreventedSellRatio = preventedRatio(baseSell, float64(s.FSA.ValueSoldJPY))
	s.PreventedBuyRatio = preventedRatio(baseBuy, float64(s.FSA.ValueBoughtJPY))
	s.PreventedWithdrawRatio = preventedRatio(baseWd, float64(s.WithdrawnJPY))
	for _, l := range res.legit {
		s.LegitSessions++
		if l.challenged {
			s.LegitChallengedSessions++
		}
		s.LegitActions += l.actions
		s.LegitBlockedActions += l.blocked
		s.LegitBrokerRefused += l.refused
	}
	s.LegitChallengedRatio = ratio(float64(s.LegitChallengedSessions), float64(s.LegitSessions))
	s.LegitBlockedRatio = ratio(float64(s.LegitBlockedActions), float64(s.LegitActions))
	for _, a := range res.alerts {
		s.Alerts++
		s.AlertKinds[a.Kind]++
		if a.Action == event.AlertHaltBuys {
			if _, ok := s.Halts[a.Symbol]; !ok {
				s.Halts[a.Symbol] = timeOfDay(a.Time)
			}
		}
	}
	_, s.NewsHalted = s.Halts[res.newsSym]
	s.NonTargetHalts, s.LegitFrozenAccounts = falseActions(res)
	for _, t := range res.targets {
		ts := TargetScore{Symbol: t.sym, Wave: t.wave, HijackedBuys: len(t.buys)}
		if len(t.prices) > 0 {
			ts.OpenPrice, ts.ClosePrice = t.prices[0].Price, t.prices[len(t.prices)-1].Price
			for _, p := range t.prices {
				ts.HighPrice = math.Max(ts.HighPrice, p.Price)
			}
		}
		if !t.haltAt.IsZero() {
			ts.HaltedAt = timeOfDay(t.haltAt)
		}
		if len(t.buys) >= 3 {
			ts.ThirdBuy = timeOfDay(t.buys[2])
			if !t.haltAt.IsZero() {
				l := math.Round(t.haltAt.Sub(t.buys[2]).Seconds()*1000) / 1000
				ts.LatencyS = &l
			}
		}
		s.HaltLatency[t.sym] = ts.LatencyS
		s.Targets = append(s.Targets, ts)
	}
	return s
}

// score assembles the report from the runs.
func score(cfg *Config, w *world, runs []*runResult) *Report {
	rep := &Report{Scenario: cfg.Scenario, Seed: cfg.Seed, Customers: cfg.Customers, Enrolment: cfg.Enrolment.Name,
		Day: Day0.Format(time.DateOnly), Mode: "in_process", LegitSessions: len(w.legit)}
	if cfg.Target != "" {
		rep.Mode = "http"
	}
	var on, off *runResult
	for _, r := range runs {
		switch r.variant.Name {
		case "all_on", "as_deployed":
			on = r
		case "all_off":
			off = r
		}
	}
	if on == nil {
		on = runs[0]
	}
	for _, r := range runs {
		o := off
		if r == off {
			o = nil
		}
		rep.Runs = append(rep.Runs, scoreRun(r, o))
	}
	onS := scoreRun(on, off)
	rep.AttackSessions = onS.AttackSessions
	rep.PreventedSellRatio, rep.PreventedBuyRatio, rep.PreventedWithdrawRatio = onS.PreventedSellRatio, onS.PreventedBuyRatio, onS.PreventedWithdrawRatio
	rep.StoppedSessionRatio = onS.StoppedSessionRatio
	rep.LegitChallengedSessionRatio, rep.LegitBlockedActionRatio = onS.LegitChallengedRatio, onS.LegitBlockedRatio
	rep.HaltLatencySeconds = onS.HaltLatency
	rep.FSATable.DefencesOn = onS.FSA
	if on.office != nil {
		bo := *on.office
		bo.FSAMatches = bo.FSA == onS.FSA
		rep.BackOffice = &bo
	}
	if off != nil {
		o := scoreRun(off, nil).FSA
		rep.FSATable.DefencesOff = &o
	}
	for _, rs := range rep.Runs {
		if !strings.HasPrefix(rs.Variant, "no_") {
			continue
		}
		halted := 0
		for _, t := range rs.Targets {
			if t.HaltedAt != "" {
				halted++
			}
		}
		rep.Ablation = append(rep.Ablation, AblationRow{Off: strings.TrimPrefix(rs.Variant, "no_"), PreventedSellRatio: rs.PreventedSellRatio,
			PreventedBuyRatio: rs.PreventedBuyRatio, StoppedSessionRatio: rs.StoppedSessionRatio, PreventedWithdrawRatio: rs.PreventedWithdrawRatio,
			TargetsHalted: halted, LegitChallengedRatio: rs.LegitChallengedRatio, LegitBlockedRatio: rs.LegitBlockedRatio, FSA: rs.FSA})
	}
	if rep.Ablation == nil {
		rep.Ablation = []AblationRow{}
	}
	a := &rep.Acceptance
	a.Notes = []string{}
	a.SellPrevented99 = rep.PreventedSellRatio >= 0.99
	a.BuyPrevented995 = rep.PreventedBuyRatio >= 0.995
	a.HaltedWithin60s = true
	for _, t := range onS.Targets {
		switch {
		case t.HijackedBuys == 0:
			a.Notes = append(a.Notes, fmt.Sprintf("%s: no hijacked buy reached the guard, so no halt was needed", t.Symbol))
		case t.HijackedBuys < 3:
			a.Notes = append(a.Notes, fmt.Sprintf("%s: only %s reached the guard, so no halt was needed", t.Symbol, plural(t.HijackedBuys, "hijacked buy", "hijacked buys")))
		case t.LatencyS == nil:
			a.HaltedWithin60s = false
			a.Notes = append(a.Notes, fmt.Sprintf("%s: %d hijacked buys, never halted", t.Symbol, t.HijackedBuys))
		case *t.LatencyS > 60:
			a.HaltedWithin60s = false
			a.Notes = append(a.Notes, fmt.Sprintf("%s: halted %.0f s after the third hijacked buy", t.Symbol, *t.LatencyS))
		}
	}
	a.LegitChallenged2 = rep.LegitChallengedSessionRatio <= 0.02
	a.LegitBlocked01 = rep.LegitBlockedActionRatio <= 0.001
	a.NoNonTargetHalt = len(onS.NonTargetHalts) == 0
	a.NoLegitFrozen = len(onS.LegitFrozenAccounts) == 0
	for _, h := range onS.NonTargetHalts {
		a.Notes = append(a.Notes, fmt.Sprintf("%s halted at %s by %s, and no attacker bought it", h.Symbol, h.At, h.Kind))
	}
	for _, f := range onS.LegitFrozenAccounts {
		a.Notes = append(a.Notes, fmt.Sprintf("legitimate account %s frozen at %s by %s", f.Account, f.At, f.Kind))
	}
	a.Met = a.SellPrevented99 && a.BuyPrevented995 && a.HaltedWithin60s && a.LegitChallenged2 && a.LegitBlocked01 && a.NoNonTargetHalt && a.NoLegitFrozen
	if off == nil {
		a.Notes = append(a.Notes, "no defences-off run: prevented value is measured against the value the attackers attempted")
	}
	rep.charts = &charts{targets: on.targets, alerts: on.alerts, news: on.news, newsSym: on.newsSym}
	if off != nil {
		rep.charts.offTargets = off.targets
	}
	rep.Decisions = on.decisions
	return rep
}

// WriteJSON writes the report as indented JSON.
func (rep *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

func pct(x float64) string { return fmt.Sprintf("%.2f%%", x*100) }

// yenM formats yen in millions.
func yenM(v int64) string { return "¥" + groupDigits(float64(v)/1e6, 1) + "m" }

// Format writes the scorecard for a person.
func (rep *Report) Format(w io.Writer) {
	fmt.Fprintf(w, "Kabuto simulator: %s, seed %d, %d customers, enrolment %s, %s (%s)\n", rep.Scenario, rep.Seed, rep.Customers, rep.Enrolment, rep.Day, strings.ReplaceAll(rep.Mode, "_", " "))
	fmt.Fprintf(w, "%d legitimate sessions, %d attack sessions with working credentials and work to do\n\n", rep.LegitSessions, rep.AttackSessions)
	fmt.Fprintln(w, "FSA table for the simulated day")
	fmt.Fprintf(w, "  %-26s %16s %16s\n", "", "defences off", "defences on")
	off := rep.FSATable.DefencesOff
	row := func(name string, f func(FSARow) string) {
		o := "-"
		if off != nil {
			o = f(*off)
		}
		fmt.Fprintf(w, "  %-26s %16s %16s\n", name, o, f(rep.FSATable.DefencesOn))
	}
	row("unauthorised accesses", func(r FSARow) string { return fmt.Sprint(r.UnauthorisedAccesses) })
	row("unauthorised trades", func(r FSARow) string { return fmt.Sprint(r.UnauthorisedTrades) })
	row("value sold", func(r FSARow) string { return yenM(r.ValueSoldJPY) })
	row("value bought", func(r FSARow) string { return yenM(r.ValueBoughtJPY) })
	fmt.Fprintln(w)
	rep.BackOffice.format(w)
	var onRun *RunScore
	for i := range rep.Runs {
		if rep.Runs[i].Variant == "all_on" || rep.Runs[i].Variant == "as_deployed" {
			onRun = &rep.Runs[i]
		}
	}
	check := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "MISSED"
	}
	a := rep.Acceptance
	fmt.Fprintln(w, "Defences on")
	fmt.Fprintf(w, "  fraudulent sell value prevented   %8s   (target ≥ 99%%: %s)\n", pct(rep.PreventedSellRatio), check(a.SellPrevented99))
	fmt.Fprintf(w, "  fraudulent buy value prevented    %8s   (target ≥ 99.5%%: %s)\n", pct(rep.PreventedBuyRatio), check(a.BuyPrevented995))
	fmt.Fprintf(w, "  withdrawals prevented             %8s\n", pct(rep.PreventedWithdrawRatio))
	fmt.Fprintf(w, "  attack sessions stopped           %8s\n", pct(rep.StoppedSessionRatio))
	fmt.Fprintf(w, "  legit sessions challenged         %8s   (target ≤ 2%%: %s)\n", pct(rep.LegitChallengedSessionRatio), check(a.LegitChallenged2))
	fmt.Fprintf(w, "  legit actions held or denied      %8s   (target ≤ 0.1%%: %s)\n", pct(rep.LegitBlockedActionRatio), check(a.LegitBlocked01))
	if onRun != nil {
		fmt.Fprintf(w, "  non-target issues halted          %8d   (target 0: %s)\n", len(onRun.NonTargetHalts), check(a.NoNonTargetHalt))
		fmt.Fprintf(w, "  legitimate accounts frozen        %8d   (target 0: %s)\n", len(onRun.LegitFrozenAccounts), check(a.NoLegitFrozen))
	}
	if onRun != nil {
		fmt.Fprintf(w, "  alerts                            %8d   %s\n", onRun.Alerts, kinds(onRun.AlertKinds))
		fmt.Fprintf(w, "  news issue %s halted              %v\n", rep.charts.newsSym, onRun.NewsHalted)
		fmt.Fprintln(w, "\n  target      wave  hijacked buys  3rd buy   halted    time to halt   open → high → close")
		for _, t := range onRun.Targets {
			lat := "-"
			if t.LatencyS != nil {
				lat = fmt.Sprintf("%.0f s", *t.LatencyS)
			}
			fmt.Fprintf(w, "  %-11s %-5s %13d  %-9s %-9s %13s   %g → %g → %g\n", t.Symbol, t.Wave, t.HijackedBuys, dash(t.ThirdBuy), dash(t.HaltedAt), lat, t.OpenPrice, t.HighPrice, t.ClosePrice)
		}
		fmt.Fprintln(w, "\n  by technique        sessions  accesses  stopped        sold      bought")
		for _, k := range sortedKeys(onRun.ByTechnique) {
			t := onRun.ByTechnique[k]
			fmt.Fprintf(w, "  %-20s %8d %9d %8d %11s %11s\n", k, t.Sessions, t.Accesses, t.Stopped, yenM(t.SoldJPY), yenM(t.BoughtJPY))
		}
		// The adaptive scenario's variants are evasions joined by "+":
		// the name goes last when any is too long for the column.
		long := false
		for k := range onRun.ByVariant {
			long = long || len(k) > 20
		}
		if long {
			fmt.Fprintln(w, "\n  sessions  accesses  stopped        sold      bought   variant")
		} else {
			fmt.Fprintln(w, "\n  by variant          sessions  accesses  stopped        sold      bought")
		}
		for _, k := range sortedKeys(onRun.ByVariant) {
			t := onRun.ByVariant[k]
			if long {
				fmt.Fprintf(w, "  %8d %9d %8d %11s %11s   %s\n", t.Sessions, t.Accesses, t.Stopped, yenM(t.SoldJPY), yenM(t.BoughtJPY), k)
				continue
			}
			fmt.Fprintf(w, "  %-20s %8d %9d %8d %11s %11s\n", k, t.Sessions, t.Accesses, t.Stopped, yenM(t.SoldJPY), yenM(t.BoughtJPY))
		}
	}
	if len(rep.Ablation) > 0 {
		fmt.Fprintln(w, "\nAblation (one layer off, the rest on)")
		fmt.Fprintf(w, "  %-14s %10s %10s %10s %10s %8s %11s %9s\n", "off", "sell prev", "buy prev", "stopped", "wd prev", "halted", "legit chal", "legit blk")
		fmt.Fprintf(w, "  %-14s %10s %10s %10s %10s %8d %11s %9s\n", "(none)", pct(rep.PreventedSellRatio), pct(rep.PreventedBuyRatio), pct(rep.StoppedSessionRatio), pct(rep.PreventedWithdrawRatio), countHalted(onRun), pct(rep.LegitChallengedSessionRatio), pct(rep.LegitBlockedActionRatio))
		for _, ab := range rep.Ablation {
			fmt.Fprintf(w, "  %-14s %10s %10s %10s %10s %8d %11s %9s\n", ab.Off, pct(ab.PreventedSellRatio), pct(ab.PreventedBuyRatio), pct(ab.StoppedSessionRatio), pct(ab.PreventedWithdrawRatio), ab.TargetsHalted, pct(ab.LegitChallengedRatio), pct(ab.LegitBlockedRatio))
		}
	}
	formatEvasions(w, rep.Evasions)
	fmt.Fprintln(w)
	if a.Met {
		fmt.Fprintln(w, "Acceptance: every threshold met.")
	} else {
		fmt.Fprintln(w, "Acceptance: NOT every threshold met.")
	}
	for _, n := range a.Notes {
		fmt.Fprintf(w, "  - %s\n", n)
	}
	if rep.Elapsed > 0 {
		fmt.Fprintf(w, "\nsimulated in %v\n", rep.Elapsed.Round(100*time.Millisecond))
	}
}

func countHalted(r *RunScore) int {
	if r == nil {
		return 0
	}
	n := 0
	for _, t := range r.Targets {
		if t.HaltedAt != "" {
			n++
		}
	}
	return n
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func kinds(m map[string]int) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// plural is n with the singular or the plural noun.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// falseActions lists a run's halts of symbols no attacker bought or tried
// to buy, and its freezes of accounts no attacker got into (the ring's own
// accounts aside), in the order the alerts were raised.
func falseActions(res *runResult) ([]NamedHalt, []NamedFreeze) {
	targets := map[string]bool{}
	for _, t := range res.targets {
		targets[t.sym] = true
	}
	hijacked := map[string]bool{}
	for _, a := range res.atk {
		for _, sym := range a.plan.targets() {
			targets[sym] = true
		}
		if a.access {
			hijacked[a.plan.Acct] = true
		}
	}
	halts, freezes := []NamedHalt{}, []NamedFreeze{}
	halted, frozen := map[string]bool{}, map[string]bool{}
	for _, al := range res.alerts {
		switch al.Action {
		case event.AlertHaltBuys:
			if al.Symbol != "" && !targets[al.Symbol] && !halted[al.Symbol] {
				halted[al.Symbol] = true
				halts = append(halts, NamedHalt{Symbol: al.Symbol, At: timeOfDay(al.Time), Kind: al.Kind, Alert: al.Alert})
			}
		case event.AlertFreezeAccounts:
			for _, acct := range al.Accounts {
				if acct == "" || acct[0] == 'R' || hijacked[acct] || frozen[acct] {
					continue
				}
				frozen[acct] = true
				freezes = append(freezes, NamedFreeze{Account: acct, At: timeOfDay(al.Time), Kind: al.Kind, Alert: al.Alert})
			}
		}
	}
	return halts, freezes
}
