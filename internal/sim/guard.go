package sim

import (
	"bufio"
	"context"
	"encoding/json"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/risk"
)

// label is the ground truth of who acts.
type label struct {
	Truth     string `json:"truth"` // legit, attack or ring
	Technique string `json:"technique,omitempty"`
	Variant   string `json:"variant,omitempty"`
	Attack    string `json:"attack_session,omitempty"`
	Wave      string `json:"wave,omitempty"`
	Target    string `json:"target,omitempty"`
}

var legitLabel = label{Truth: "legit"}

// stack is the guard the simulated brokerage asks: the real pipeline (risk
// engine and watchtower) with the layers of the variant switched off as
// asked, recording the stream it sees when asked to.
type stack struct {
	run   *run
	pipe  *pipeline.Pipeline // nil: surveillance off
	eng   *risk.Engine
	guard bool // off: every action is allowed whatever the engine says
	sink  *collectSink
	res   risk.Result

	events *bufio.Writer // the stream, spec format
	labels *bufio.Writer // ground truth per customer action
	buf    []byte
}

// Decide implements guard.Guard.
func (s *stack) Decide(ctx context.Context, r *event.Record) (event.Decision, error) {
	s.record(r)
	if s.run.office != nil && !s.run.inHistory {
		s.run.office.decided(r, s.run.cur)
	}
	if s.labels != nil {
		l := struct {
			Event   string    `json:"event"`
			Time    time.Time `json:"time"`
			Account string    `json:"account"`
			Type    string    `json:"type"`
			label
		}{r.ID, r.Time, r.Account, string(r.Type), s.run.cur}
		b, _ := json.Marshal(l)
		s.labels.Write(b)
		s.labels.WriteByte('\n')
	}
	cur := s.run.cur
	if cur.Truth == "attack" && r.Type == event.TypeOrder && r.Side == event.SideBuy {
		if t := s.run.targets[r.Symbol]; t != nil {
			t.buys = append(t.buys, r.Time)
		}
	}
	var d event.Decision
	var err error
	if s.pipe != nil {
		d, err = s.pipe.Decide(ctx, r)
	} else {
		s.eng.DecideInto(r, &s.res, false)
		err = s.sink.Decision(ctx, r, &s.res)
		d = s.res.Decision
	}
	if err != nil {
		return d, err
	}
	if d.Action != event.Allow && (cur.Truth == "legit" || cur.Truth == "attack") && !s.run.inHistory {
		m := s.run.legitReasons
		if cur.Truth == "attack" {
			m = s.run.attackReasons
		}
		for _, rc := range d.Reasons {
			m[string(r.Type)+"/"+d.Action+"/"+rc]++
		}
	}
	if !s.guard {
		return event.Decision{Event: r.ID, Time: r.Time, Account: r.Account, Action: event.Allow, Reasons: []string{"no_guard"}, Policy: "allow-all"}, nil
	}
	return d, nil
}

// Observe implements guard.Guard.
func (s *stack) Observe(ctx context.Context, r *event.Record) error {
	s.record(r)
	if s.pipe != nil {
		return s.pipe.Observe(ctx, r)
	}
	if r.Type.Action() {
		_, err := s.Decide(ctx, r)
		return err
	}
	s.eng.Observe(r)
	return nil
}

func (s *stack) record(r *event.Record) {
	if s.events == nil {
		return
	}
	s.buf = r.AppendJSON(s.buf[:0])
	s.buf = append(s.buf, '\n')
	s.events.Write(s.buf)
}

// collectSink keeps what the pipeline decides and raises.
type collectSink struct {
	run       *run
	keep      bool // keep every decision (for the events backtest)
	decisions []event.Decision
	alerts    []event.Alert
}

// Decision implements pipeline.Sink.
func (s *collectSink) Decision(_ context.Context, r *event.Record, res *risk.Result) error {
	if s.keep {
		d := res.Decision
		d.Reasons = append([]string(nil), d.Reasons...)
		s.decisions = append(s.decisions, d)
	}
	return nil
}

// Alert implements pipeline.Sink.
func (s *collectSink) Alert(_ context.Context, a *event.Alert) error {
	c := *a
	c.Accounts = append([]string(nil), a.Accounts...)
	c.Reasons = append([]string(nil), a.Reasons...)
	s.alerts = append(s.alerts, c)
	if a.Action == event.AlertHaltBuys && a.Symbol != "" {
		if t := s.run.targets[a.Symbol]; t != nil && t.haltAt.IsZero() {
			t.haltAt = a.Time
		}
		if _, ok := s.run.haltAt[a.Symbol]; !ok {
			s.run.haltAt[a.Symbol] = a.Time
		}
	}
	return nil
}
