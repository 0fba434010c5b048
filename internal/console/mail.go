package console

import (
	"context"
	"net/http"

	"github.com/kabuto-sec/kabuto/internal/maildomain"
)

// mailPosture is what the mail page and the home page's warning show: the
// latest check of each configured mail domain.
type mailPosture struct {
	Reports []maildomain.Report
	// NotReject lists the domains whose DMARC policy is not reject (the
	// JSDA guideline requires reject).
	NotReject []string
	Failed    []string // domains failing any required point
}

// mailPosture reads the latest checks; nil when there is no database.
func (c *Console) mailPosture(ctx context.Context) (*mailPosture, error) {
	if c.cfg.DB == nil {
		return &mailPosture{}, nil
	}
	reports, err := maildomain.Latest(ctx, c.cfg.DB)
	if err != nil {
		return nil, err
	}
	p := &mailPosture{Reports: reports}
	for _, r := range reports {
		if r.DMARCPolicy != "reject" {
			p.NotReject = append(p.NotReject, r.Domain)
		}
		if r.Failed() {
			p.Failed = append(p.Failed, r.Domain)
		}
	}
	return p, nil
}

// mailWarnings is the home page's warning: the domains whose DMARC is not
// reject. A failed read shows no warning (the mail page says why).
func (c *Console) mailWarnings(ctx context.Context) []string {
	p, err := c.mailPosture(ctx)
	if err != nil {
		c.cfg.Log.ErrorContext(ctx, "console mail posture", "err", err)
		return nil
	}
	return p.NotReject
}

// mail shows the firm's mail posture: the latest check-domain result of
// each configured domain, every finding with its fix.
func (c *Console) mail(w http.ResponseWriter, r *http.Request, a *analystSession) error {
	p, err := c.mailPosture(r.Context())
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "mail.html", map[string]any{"Analyst": a.label(), "CSRF": a.csrf, "Posture": p})
	return nil
}
