package cases

import (
	"context"
	"time"

	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// BureauReport is the per-case incident report for the finance bureau
// (財務局): the account, the timeline of unauthorised accesses and trades
// with their values, the actions the firm took (freeze, re-verification,
// reopening, notes, decisions, each with who and when), and the
// compensation.
type BureauReport struct {
	Case     Case   `json:"case"`
	Account  string `json:"account"`
	Recorded bool   `json:"incident_recorded"`
	// FirstAccess is the first unauthorised access (zero until the
	// incident is recorded).
	FirstAccess time.Time `json:"first_unauthorised_access,omitzero"`
	Accesses    []Access  `json:"unauthorised_accesses"`
	// Trades are the fraudulent fills, each with its value in yen.
	Trades   []ReportTrade `json:"unauthorised_trades"`
	Totals   Month         `json:"totals"`
	Snapshot *Snapshot     `json:"snapshot_before,omitempty"`
	// Freeze is the account's freeze (current or last), if any.
	Freeze          *Freeze          `json:"freeze,omitempty"`
	Reverifications []Reverification `json:"reverifications"`
	// Actions are the case's timeline: everything done, by whom and when.
	Actions       []Entry        `json:"actions_taken"`
	Approvals     []Approval     `json:"approvals"`
	Compensations []Compensation `json:"compensations"`
	Generated     time.Time      `json:"generated_at"`
}

// ReportTrade is one unauthorised trade of the report.
type ReportTrade struct {
	Fill
	ValueJPY int64 `json:"value_jpy"`
}

// Bureau assembles the case's incident report for the finance bureau.
// A case without a recorded incident gets the report too, with no
// accesses or trades and incident_recorded false.
func (s *Service) Bureau(ctx context.Context, caseID string) (*BureauReport, error) {
	c, err := s.Case(ctx, caseID)
	if err != nil {
		return nil, err
	}
	rep := &BureauReport{Case: *c, Account: c.Account, Accesses: []Access{}, Trades: []ReportTrade{}, Reverifications: []Reverification{},
		Approvals: []Approval{}, Generated: s.cfg.Now()}
	rep.Totals.Month = "total"
	if in, err := s.Incident(ctx, caseID); err == nil {
		rep.Recorded, rep.FirstAccess, rep.Accesses, rep.Snapshot = true, in.From(), in.Accesses, &in.Snapshot
		rep.Totals.UnauthorisedAccesses = int64(len(in.Accesses))
		for _, f := range in.Fills {
			if !f.Fraudulent {
				continue
			}
			rep.Trades = append(rep.Trades, ReportTrade{Fill: f, ValueJPY: f.Value()})
			rep.Totals.UnauthorisedTrades++
			if f.Side == "sell" {
				rep.Totals.ValueSoldJPY += f.Value()
			} else {
				rep.Totals.ValueBoughtJPY += f.Value()
			}
		}
	} else if !isNoIncident(err) {
		return nil, err
	}
	if rep.Actions, err = s.Timeline(ctx, caseID); err != nil {
		return nil, err
	}
	if rep.Compensations, err = s.Compensations(ctx, caseID); err != nil {
		return nil, err
	}
	ids, err := strs(ctx, s.cfg.DB, `SELECT id FROM approvals WHERE case_id = $1 ORDER BY proposed_us, id`, caseID)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		ap, err := s.Approval(ctx, id)
		if err != nil {
			return nil, err
		}
		rep.Approvals = append(rep.Approvals, *ap)
	}
	if c.Account == "" {
		return rep, nil
	}
	if rep.Freeze, err = s.Frozen(ctx, c.Account); err != nil {
		return nil, err
	}
	rows, err := s.cfg.DB.QueryContext(ctx, `SELECT id, account, case_id, method, result, done_by, done_us, note FROM reverifications WHERE case_id = $1 ORDER BY done_us, id`, caseID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var rv Reverification
		var us int64
		if err := rows.Scan(&rv.ID, &rv.Account, &rv.Case, &rv.Method, &rv.Result, &rv.By, &us, &rv.Note); err != nil {
			return nil, err
		}
		rv.At = store.FromMicros(us)
		rep.Reverifications = append(rep.Reverifications, rv)
	}
	return rep, rows.Err()
}

func isNoIncident(err error) bool {
	e := reason.As(err)
	return e != nil && e.Code == ReasonNoIncident
}
