package maildomain

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/kabuto-sec/kabuto/internal/store"
)

// Save stores r as the latest result for its domain.
func Save(ctx context.Context, db *store.DB, r Report) error {
	js, err := json.Marshal(r)
	if err != nil {
		return err
	}
	failed, sending := 0, 0
	if r.Failed() {
		failed = 1
	}
	if r.Sending {
		sending = 1
	}
	_, err = db.ExecContext(ctx, `INSERT INTO mail_checks (domain, checked_us, sending, failed, dmarc_policy, report) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (domain, checked_us) DO UPDATE SET report = excluded.report, failed = excluded.failed, dmarc_policy = excluded.dmarc_policy, sending = excluded.sending`,
		r.Domain, store.Micros(r.Checked), sending, failed, r.DMARCPolicy, string(js))
	return err
}

// Latest returns the latest stored result of every domain, by domain name.
func Latest(ctx context.Context, db *store.DB) ([]Report, error) {
	rows, err := db.QueryContext(ctx, `SELECT report FROM mail_checks m
		WHERE checked_us = (SELECT MAX(checked_us) FROM mail_checks WHERE domain = m.domain) ORDER BY domain`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Report
	for rows.Next() {
		var js string
		if err := rows.Scan(&js); err != nil {
			return nil, err
		}
		var r Report
		if err := json.Unmarshal([]byte(js), &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Monitor checks the firm's configured domains now and every Every, and
// stores each result for the console.
type Monitor struct {
	DB      *store.DB
	Checker *Checker
	Sending []string // domains the firm sends from
	NoMail  []string // look-alikes that send no mail
	Every   time.Duration
	Log     *slog.Logger
}

// RunOnce checks every domain once and stores the results.
func (m *Monitor) RunOnce(ctx context.Context) ([]Report, error) {
	var out []Report
	for _, list := range []struct {
		domains []string
		sending bool
	}{{m.Sending, true}, {m.NoMail, false}} {
		for _, d := range list.domains {
			r := m.Checker.Check(ctx, d, list.sending)
			if err := Save(ctx, m.DB, r); err != nil {
				return out, err
			}
			if m.Log != nil && r.Failed() {
				m.Log.WarnContext(ctx, "mail domain fails a required point", "domain", r.Domain, "dmarc", r.DMARCPolicy)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// Run checks now and every m.Every until ctx ends.
func (m *Monitor) Run(ctx context.Context) {
	every := m.Every
	if every <= 0 {
		every = 6 * time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := m.RunOnce(ctx); err != nil && ctx.Err() == nil && m.Log != nil {
			m.Log.ErrorContext(ctx, "mail domain check", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
