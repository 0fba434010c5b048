// Package guard defines what the reference brokerage (and integration mode)
// asks before a customer action executes, and what it tells afterwards: a
// Guard decides each customer action record and observes every other record
// (fills, bars, reference data). Implementations compose the risk engine and
// the watchtower; AllowAll is the default before they are wired in.
package guard

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
)

// Guard decides customer actions and observes the rest of the stream.
type Guard interface {
	// Decide returns the decision for a customer action record. An error
	// means no decision could be had: callers fail closed for money movement.
	Decide(ctx context.Context, r *event.Record) (event.Decision, error)
	// Observe feeds a record that needs no decision (fill, bar, instrument,
	// account snapshot).
	Observe(ctx context.Context, r *event.Record) error
}

// Batcher is a Guard that can take a whole batch of records at once.
type Batcher interface {
	// DecideBatch decides the customer actions among recs and observes
	// the rest, in order, and returns the actions' decisions in order. It
	// returns ErrNoBatch when the records are to be taken one by one.
	DecideBatch(ctx context.Context, recs []*event.Record) ([]event.Decision, error)
}

// ErrNoBatch is DecideBatch's answer when the guard takes records one by
// one (a single process): Decide and Observe each of them.
var ErrNoBatch = errors.New("guard: no batches here; take records one by one")

// AllowAll is a Guard that allows every action, with the reason code
// no_guard so its decisions are never mistaken for a policy's.
type AllowAll struct{}

// Decide allows r.
func (AllowAll) Decide(_ context.Context, r *event.Record) (event.Decision, error) {
	return event.Decision{Event: r.ID, Time: r.Time, Account: r.Account, Action: event.Allow, Reasons: []string{"no_guard"}, Policy: "allow-all"}, nil
}

// Observe ignores r.
func (AllowAll) Observe(context.Context, *event.Record) error { return nil }

// Clock tells the time; tests and replays inject their own (package clock).
type Clock = clock.Clock

// SystemClock is the wall clock, in Japan Standard Time.
type SystemClock = clock.Real

// Explained is a stored decision with what explains it: the rules that
// fired, the feature values they read, the shadow policy's decision and
// the record decided.
// It does not embed event.Decision: the decision's MarshalJSON would be
// promoted and hide every other field.
type Explained struct {
	Event    string          `json:"event"`
	Time     time.Time       `json:"time"`
	Account  string          `json:"account"`
	Action   string          `json:"action"`
	Factor   string          `json:"factor,omitempty"`
	Score    int             `json:"score"`
	Reasons  []string        `json:"reasons"`
	Policy   string          `json:"policy"`
	Type     string          `json:"type"`
	Rules    json.RawMessage `json:"rules"`
	Features json.RawMessage `json:"features"`
	Shadow   json.RawMessage `json:"shadow,omitempty"`
	Record   json.RawMessage `json:"record"`
}
