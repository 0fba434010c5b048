// Package pipeline runs the guard: the risk engine decides each customer
// action, the watchtower watches every record with its decision, alert
// actions take effect for every later record, and decisions and alerts are
// kept (in the database live, as JSON Lines in a replay). The live server,
// integration mode and replay all run through one Pipeline.
package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/guard"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// Sink keeps what the pipeline decides and raises.
type Sink interface {
	// Decision records the decision on r. For money movement it must not
	// return before the decision is durable; an error refuses the action.
	// It must not keep r or res's Features (Decide uses the map again for
	// a later decision).
	Decision(ctx context.Context, r *event.Record, res *risk.Result) error
	// Alert records an alert.
	Alert(ctx context.Context, a *event.Alert) error
}

// Pipeline is the guard: the risk engine decides each customer action,
// the watchtower watches every record with the decision made on it, alert
// actions (buy halts, freezes) take effect for every later record, and
// surveillance heat feeds the engine's instrument features. The live
// server, integration mode and replay all run through a Pipeline, so a
// backtest answers exactly as production would.
type Pipeline struct {
	Risk  *risk.Engine
	Watch *surveil.Watch
	Sink  Sink
	// OnAlert, when set, is told of every alert after its action took
	// effect in the pipeline (the live server halts the brokerage's
	// buying, audits, opens cases).
	OnAlert func(ctx context.Context, a event.Alert)
	// Explain keeps the feature values of each decision (live: yes, to
	// store them; replay: only when asked).
	Explain bool
	// Tap, when set, sees every record after it was processed, with the
	// decision on it for customer actions (the analyst console keeps its
	// charts from it). It must be fast and must not block.
	Tap func(r *event.Record, d *event.Decision)
	// AlertPrefix is put before every alert id, so that ids stay unique
	// across restarts of a live server (replay leaves it empty, so its
	// output depends on the input alone).
	AlertPrefix string

	// Log receives the operator's warnings (nil: slog.Default()).
	Log *slog.Logger

	// Cluster, when set, is the cluster node this pipeline runs in
	// (internal/cluster): Decide and Observe hand every record to it, and
	// it has it decided by the node that owns the account, with that
	// node's engine; halts and freezes set here are written through to it.
	Cluster Cluster

	mu sync.Mutex // orders the watchtower's view of the stream
}

// Cluster is a cluster node as a pipeline sees it.
type Cluster interface {
	Decide(ctx context.Context, r *event.Record) (event.Decision, error)
	Observe(ctx context.Context, r *event.Record) error
	DecideBatch(ctx context.Context, recs []*event.Record) ([]event.Decision, error)
	// SetHalt and SetFrozen tell every node of a halt or freeze.
	SetHalt(symbol string, halted bool)
	SetFrozen(account string, frozen bool)
}

// NewPipeline returns a pipeline over the engine and the watchtower.
func NewPipeline(e *risk.Engine, w *surveil.Watch, s Sink) *Pipeline {
	return &Pipeline{Risk: e, Watch: w, Sink: s}
}

// ErrNotAction is returned by Decide for a record that is not a customer action.
var ErrNotAction = errors.New("pipeline: not a customer action")

// Decide decides the customer action r, records the decision, and lets
// the watchtower see it. An error means no decision could be had.
func (p *Pipeline) Decide(ctx context.Context, r *event.Record) (event.Decision, error) {
	if !r.Type.Action() {
		return event.Decision{}, ErrNotAction
	}
	if p.Cluster != nil {
		return p.Cluster.Decide(ctx, r)
	}
	if err := ctx.Err(); err != nil {
		return event.Decision{}, err
	}
	var res risk.Result
	if p.Explain {
		// A map of an earlier decision (the engine clears it): the
		// largest thing a decision would allocate.
		res.Features = features.Get().(map[string]any)
		defer releaseFeatures(res.Features)
	}
	p.Risk.DecideInto(r, &res, p.Explain)
	p.holdProceeds(r, &res)
	if err := p.Sink.Decision(ctx, r, &res); err != nil {
		return res.Decision, err
	}
	if err := p.watch(ctx, r, &res.Decision); err != nil {
		return res.Decision, err
	}
	return res.Decision, nil
}

// DecideBatch hands a batch of records to the cluster node, which has
// them decided by their accounts' owners at once (guard.Batcher); a
// single process answers guard.ErrNoBatch, and its callers take the
// records one by one.
func (p *Pipeline) DecideBatch(ctx context.Context, recs []*event.Record) ([]event.Decision, error) {
	if p.Cluster == nil {
		return nil, guard.ErrNoBatch
	}
	return p.Cluster.DecideBatch(ctx, recs)
}

// Observe feeds a record that needs no decision: reference data, bars, fills.
func (p *Pipeline) Observe(ctx context.Context, r *event.Record) error {
	if p.Cluster != nil {
		return p.Cluster.Observe(ctx, r)
	}
	if r.Type.Action() {
		_, err := p.Decide(ctx, r)
		return err
	}
	p.Risk.Observe(r)
	return p.watch(ctx, r, nil)
}

func (p *Pipeline) watch(ctx context.Context, r *event.Record, d *event.Decision) error {
	p.mu.Lock()
	alerts := p.Watch.Observe(r, d)
	if r.Symbol != "" {
		p.Risk.SetHeat(r.Symbol, p.Watch.Heat(r.Symbol))
	}
	for i := range alerts {
		alerts[i].Alert = p.AlertPrefix + alerts[i].Alert
		if alerts[i].Campaign != "" {
			alerts[i].Campaign = p.AlertPrefix + alerts[i].Campaign
		}
		p.apply(&alerts[i])
	}
	p.mu.Unlock()
	if p.Tap != nil {
		p.Tap(r, d)
	}
	var err error
	for i := range alerts {
		if alerts[i].Kind == surveil.KindClientContext {
			p.warnGateway(ctx, r)
		}
		if e := p.Sink.Alert(ctx, &alerts[i]); e != nil && err == nil {
			err = e
		}
		if p.OnAlert != nil {
			p.OnAlert(ctx, alerts[i])
		}
	}
	return err
}

// ReasonProceedsHeld is the reason code of a withdrawal held because the
// account holds proceeds of flagged trades (surveillance keeps them for
// surveil.Config.HoldProceeds, as Malaysia's exchange did for 14 days).
const ReasonProceedsHeld = "proceeds_held"

// surveilHeldProceeds is the feature of a withdrawal held for held
// proceeds: how much of the account's money surveillance holds.
const surveilHeldProceeds = "surveil.held_proceeds_jpy"

// holdProceeds sends a withdrawal from an account with held proceeds to
// an analyst, unless the policy already refused it outright.
func (p *Pipeline) holdProceeds(r *event.Record, res *risk.Result) {
	if r.Type != event.TypeWithdrawal {
		return
	}
	d := &res.Decision
	if d.Action == event.Deny || d.Action == event.Hold {
		return
	}
	p.mu.Lock()
	held := p.Watch.HeldProceeds(r.Account, r.Time)
	p.mu.Unlock()
	if held <= 0 {
		return
	}
	d.Action, d.Factor = event.Hold, ""
	d.Score = max(d.Score, 70)
	d.Reasons = append(d.Reasons, ReasonProceedsHeld)
	res.Rules = append(res.Rules, risk.Hit{ID: ReasonProceedsHeld, Reason: ReasonProceedsHeld, Action: risk.ActionHold})
	if res.Features != nil {
		res.Features[surveilHeldProceeds] = held
	}
}

// features are feature maps used again from one decision to the next.
var features = sync.Pool{New: func() any { return make(map[string]any, 32) }}

// releaseFeatures gives m back for a later decision; nothing may use it
// after.
func releaseFeatures(m map[string]any) {
	if len(m) <= 256 {
		clear(m)
		features.Put(m)
	}
}

// apply makes an alert's action take effect for every later record.
func (p *Pipeline) apply(a *event.Alert) {
	switch a.Action {
	case event.AlertHaltBuys:
		if a.Symbol != "" {
			p.Risk.SetHalt(a.Symbol, true)
		}
	case event.AlertFreezeAccounts:
		for _, acct := range a.Accounts {
			p.Risk.SetFrozen(acct, true)
		}
	}
}

// SetHalt halts (or resumes) buying of symbol by hand, as an analyst does.
func (p *Pipeline) SetHalt(symbol string, halted bool) {
	p.mu.Lock()
	p.Risk.SetHalt(symbol, halted)
	if !halted {
		p.Watch.Release(symbol)
	}
	p.mu.Unlock()
	if p.Cluster != nil {
		p.Cluster.SetHalt(symbol, halted)
	}
}

// SetFrozen freezes (or unfreezes) an account, as the back office does.
func (p *Pipeline) SetFrozen(account string, frozen bool) {
	p.Risk.SetFrozen(account, frozen)
	if p.Cluster != nil {
		p.Cluster.SetFrozen(account, frozen)
	}
}

// warnGateway tells the operator that many accounts act from r's address
// with no client context.
func (p *Pipeline) warnGateway(ctx context.Context, r *event.Record) {
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	log.WarnContext(ctx, "many accounts act from one address with no client context: this looks like the brokerage's gateway, not its customers; "+
		"surveillance weighs the address as unknown, and loses the customers' address and device signals until the integration sends them "+
		"(X-Kabuto-Client-IP and X-Kabuto-Device headers, or the ip and device fields of each record)",
		"ip", r.IP, "account", r.Account, "type", r.Type)
}

// Gateways returns the addresses the watchtower recognised as gateways:
// many accounts acted from each with no client context (see
// surveil.Watch.Gateways).
func (p *Pipeline) Gateways() []surveil.Gateway { return p.Watch.Gateways() }
