package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/risk"
)

// ErrLearnCluster is returned by Learn for a pipeline that runs in a
// cluster: each node learns its own accounts from the stream.
var ErrLearnCluster = errors.New("pipeline: learning from a file is for a single process, not a cluster node")

// LearnSummary tells what Learn took in.
type LearnSummary struct {
	Records, Actions int
	// Findings counts the alerts the watchtower would have raised on the
	// history; they were dropped, not acted on.
	Findings int
	From, To time.Time
	Unknown  map[event.Type]int
	Elapsed  time.Duration
}

// Learn warms p from a brokerage's own history before it goes live or
// replays: it reads the records of in (JSON Lines of spec/events.md, in
// time order) and lets the risk engine and the watchtower learn from each
// exactly as they would live (customer profiles: devices, networks, hours,
// holdings, trading; instruments' volumes and prices), but acts on
// nothing. Each customer action is decided only to learn from it: no
// decision is written, no alert is raised to p's sink or OnAlert, and no
// halt or freeze takes effect. At the end the watchtower forgets its
// findings on the history (surveil.Watch.ForgetFindings: open alerts,
// halts, freezes, held proceeds, evidence of takeover) and keeps what it
// learnt; a finding that returns live is raised afresh.
//
// A malformed record stops learning with an error naming its line and
// field; records of unknown types are counted and skipped. progress, when
// set, is called every 10,000 records with the count so far.
func Learn(ctx context.Context, in io.Reader, p *Pipeline, progress func(int)) (*LearnSummary, error) {
	if p.Cluster != nil {
		return nil, ErrLearnCluster
	}
	start := clock.Mono{}.Now()
	sum := &LearnSummary{}
	rd := event.NewReader(in)
	var r event.Record
	var res risk.Result
	for {
		err := rd.NextInto(&r)
		if err == io.EOF {
			break
		}
		if event.IsUnknownType(err) {
			continue
		}
		if err != nil {
			return sum, err
		}
		if sum.Records%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return sum, err
			}
		}
		sum.Records++
		if sum.From.IsZero() {
			sum.From = r.Time
		}
		sum.To = r.Time
		var d *event.Decision
		if r.Type.Action() {
			sum.Actions++
			p.Risk.DecideInto(&r, &res, false)
			d = &res.Decision
		} else {
			p.Risk.Observe(&r)
		}
		p.mu.Lock()
		alerts := p.Watch.Observe(&r, d)
		p.mu.Unlock()
		for i := range alerts {
			sum.Findings++
			if alerts[i].Action == event.AlertHaltBuys && alerts[i].Symbol != "" {
				p.Watch.Release(alerts[i].Symbol) // history is learnt as it was, unhalted
			}
		}
		if progress != nil && sum.Records%10000 == 0 {
			progress(sum.Records)
		}
	}
	p.Watch.ForgetFindings()
	sum.Unknown = rd.Unknown
	sum.Elapsed = clock.Mono{}.Now().Sub(start)
	return sum, nil
}

// Format writes the summary for a person.
func (s *LearnSummary) Format(w io.Writer) {
	fmt.Fprintf(w, "learned  %d records (%d customer actions) from %s to %s in %v; %d findings on the history dropped, not acted on\n",
		s.Records, s.Actions, s.From.Format(time.DateOnly), s.To.Format(time.DateOnly), s.Elapsed.Round(time.Millisecond), s.Findings)
}
