package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/cases"
	"github.com/kabuto-sec/kabuto/internal/reason"
)

// The back office's triage pages: cases by severity and money at stake, a
// case (the customer's timeline, notes, assignee, status, age, and the
// four-eyes actions, each confirmed with a note), and a campaign
// (accounts, instruments, shared infrastructure, money at stake). Every
// action is taken as the analyst signed in with a passkey, so the case
// and the audit trail name the person; the four-eyes rule itself is the
// back office's (cases, analyst).

func (c *Console) mountCases(mux *http.ServeMux) {
	if c.cfg.Office == nil {
		return
	}
	mux.HandleFunc("GET /console/cases", c.page(c.casesPage))
	mux.HandleFunc("GET /console/cases/{case}", c.page(c.casePage))
	mux.HandleFunc("GET /console/cases/{case}/report", c.page(c.reportPage))
	mux.HandleFunc("GET /console/campaigns/{campaign}", c.page(c.campaignPage))
	mux.HandleFunc("POST /console/cases/{case}/{action}", c.page(c.caseAction))
	mux.HandleFunc("POST /console/cases/{case}/approvals/{id}", c.page(c.decide))
}

// caseRow is a case with what the list shows of it.
type caseRow struct {
	cases.Case
	AtStake int64
	Frozen  bool
}

// atStake is the money at stake in a case: the value of the fraudulent
// fills of its recorded incident (0 until one is recorded).
func (c *Console) atStake(ctx context.Context, id string) (int64, *cases.Incident) {
	in, err := c.cfg.Office.Incident(ctx, id)
	if err != nil || in == nil {
		return 0, nil
	}
	var n int64
	for _, f := range in.Fills {
		if f.Fraudulent {
			n += f.Value()
		}
	}
	return n, in
}

func (c *Console) rows(ctx context.Context, campaign string) ([]caseRow, error) {
	cs, err := c.cfg.Office.Cases(ctx, campaign, 500)
	if err != nil {
		return nil, err
	}
	out := make([]caseRow, 0, len(cs))
	for _, k := range cs {
		r := caseRow{Case: k}
		r.AtStake, _ = c.atStake(ctx, k.ID)
		if k.Account != "" {
			if f, err := c.cfg.Office.Frozen(ctx, k.Account); err == nil && f != nil && f.Frozen {
				r.Frozen = true
			}
		}
		out = append(out, r)
	}
	// Open first, then by severity, then by money at stake, oldest first.
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Status != b.Status {
			return a.Status == cases.StatusOpen
		}
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if a.AtStake != b.AtStake {
			return a.AtStake > b.AtStake
		}
		return a.Opened.Before(b.Opened)
	})
	return out, nil
}

func (c *Console) casesPage(w http.ResponseWriter, r *http.Request, a *analystSession) error {
	rows, err := c.rows(r.Context(), "")
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "cases.html", map[string]any{"Analyst": a.label(), "CSRF": a.csrf, "Cases": rows, "Now": c.cfg.Now()})
	return nil
}

// notFound answers 404 with a page that says what was not found.
func (c *Console) notFound(w http.ResponseWriter, a *analystSession, what string) error {
	c.render(w, http.StatusNotFound, "notfound.html", map[string]any{"Analyst": a.label(), "CSRF": a.csrf, "What": what})
	return nil
}

type approvalRow struct {
	*cases.Approval
	Summary string
}

func (c *Console) casePage(w http.ResponseWriter, r *http.Request, a *analystSession) error {
	return c.showCase(w, r, a, http.StatusOK, "")
}

func (c *Console) showCase(w http.ResponseWriter, r *http.Request, a *analystSession, status int, problem string) error {
	ctx := r.Context()
	id := r.PathValue("case")
	k, err := c.cfg.Office.Case(ctx, id)
	if e := reason.As(err); e != nil && e.HTTPStatus() == http.StatusNotFound {
		return c.notFound(w, a, fmt.Sprintf("No case %q. · 事件 %q はありません。", id, id))
	}
	if err != nil {
		return err
	}
	timeline, err := c.cfg.Office.Timeline(ctx, id)
	if err != nil {
		return err
	}
	var notes []cases.Entry
	for _, e := range timeline {
		if e.Kind == "note" {
			notes = append(notes, e)
		}
	}
	stake, in := c.atStake(ctx, id)
	var freeze *cases.Freeze
	if k.Account != "" {
		if freeze, err = c.cfg.Office.Frozen(ctx, k.Account); err != nil {
			return err
		}
	}
	approvals, err := c.approvals(ctx, id)
	if err != nil {
		return err
	}
	comps, err := c.cfg.Office.Compensations(ctx, id)
	if err != nil {
		return err
	}
	// The people a case can be assigned to.
	people, err := c.strs(ctx, `SELECT name FROM analysts WHERE disabled_us = 0 ORDER BY name`)
	if err != nil {
		return err
	}
	// The campaign's other cases, linked.
	var linked []caseRow
	if k.Campaign != "" {
		all, err := c.rows(ctx, k.Campaign)
		if err != nil {
			return err
		}
		for _, o := range all {
			if o.ID != k.ID {
				linked = append(linked, o)
			}
		}
	}
	c.render(w, status, "case.html", map[string]any{"Analyst": a.label(), "CSRF": a.csrf, "Person": a.person, "Role": a.role,
		"Case": k, "Timeline": timeline, "Notes": notes, "AtStake": stake, "Incident": in, "Freeze": freeze,
		"Approvals": approvals, "Compensations": comps, "Linked": linked, "Now": c.cfg.Now(), "Problem": problem, "Analysts": people})
	return nil
}

// approvals returns the case's proposals, oldest first.
func (c *Console) approvals(ctx context.Context, caseID string) ([]approvalRow, error) {
	ids, err := c.strs(ctx, `SELECT id FROM approvals WHERE case_id = $1 ORDER BY proposed_us, id`, caseID)
	if err != nil {
		return nil, err
	}
	var out []approvalRow
	for _, id := range ids {
		ap, err := c.cfg.Office.Approval(ctx, id)
		if err != nil {
			return nil, err
		}
		row := approvalRow{Approval: ap, Summary: say("proposed_" + ap.Kind)}
		out = append(out, row)
	}
	return out, nil
}

func (c *Console) strs(ctx context.Context, q string, args ...any) ([]string, error) {
	rows, err := c.cfg.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

var errPasskeyNeeded = reason.E("forbidden.analyst_passkey")

// note returns the form's note, required for every decision.
func note(r *http.Request) (string, error) {
	n := strings.TrimSpace(r.PostFormValue("note"))
	if n == "" {
		return "", reason.E("invalid_field.note")
	}
	if len(n) > 2000 {
		return "", reason.E("invalid_field.note")
	}
	return n, nil
}

// caseAction runs one analyst action on a case: note, freeze, reverify,
// reopen (a proposal), compensate (a proposal).
func (c *Console) caseAction(w http.ResponseWriter, r *http.Request, a *analystSession) error {
	ctx := r.Context()
	id := r.PathValue("case")
	k, err := c.cfg.Office.Case(ctx, id)
	if e := reason.As(err); e != nil && e.HTTPStatus() == http.StatusNotFound {
		return c.notFound(w, a, fmt.Sprintf("No case %q. · 事件 %q はありません。", id, id))
	}
	if err != nil {
		return err
	}
	err = c.act(ctx, r, a, k)
	if e := reason.As(err); e != nil {
		return c.showCase(w, r, a, e.HTTPStatus(), e.Code+": "+e.Text("en"))
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/console/cases/"+url.PathEscape(id), http.StatusSeeOther)
	return nil
}

func (c *Console) act(ctx context.Context, r *http.Request, a *analystSession, k *cases.Case) error {
	if a.person == "" {
		return errPasskeyNeeded
	}
	n, err := note(r)
	if err != nil {
		return err
	}
	actor := "analyst:" + a.person
	needAccount := func() error {
		if k.Account == "" {
			return reason.E("invalid_field.case_not_account")
		}
		return nil
	}
	switch r.PathValue("action") {
	case "note":
		_, err = c.cfg.Office.Open(ctx, cases.Link{Kind: "note", Account: k.Account, Symbol: k.Symbol, Actor: actor, Text: n})
	case "assign":
		_, err = c.cfg.Office.Assign(ctx, a.person, k.ID, r.PostFormValue("assignee"), n)
	case "freeze":
		if err = needAccount(); err == nil {
			_, err = c.cfg.Office.Freeze(ctx, actor, k.Account, n, cases.Link{})
		}
	case "reverify":
		if err = needAccount(); err == nil {
			_, err = c.cfg.Office.Reverify(ctx, a.person, k.Account, r.PostFormValue("method"), r.PostFormValue("result"), n)
		}
	case "reopen":
		if err = needAccount(); err == nil {
			_, err = c.cfg.Office.ProposeReopen(ctx, a.person, k.Account, n)
		}
	case "compensate":
		if c.cfg.Prices == nil {
			return reason.E("unavailable.prices")
		}
		var comp *cases.Compensation
		comp, _, err = c.cfg.Office.ProposeCompensation(ctx, a.person, k.ID, r.PostFormValue("method"), c.cfg.Prices)
		if err == nil {
			_, err = c.cfg.Office.Open(ctx, cases.Link{Kind: "note", Account: k.Account, Symbol: k.Symbol, Actor: actor,
				Text: fmt.Sprintf("compensation proposed (%s, %s): %s", say(comp.Method), cases.Yen(comp.AmountJPY), n)})
		}
	default:
		return reason.E("not_found.case_action")
	}
	return err
}

// decide approves or rejects a proposal of the case, as the signed-in
// analyst; the back office refuses it to its own proposer.
func (c *Console) decide(w http.ResponseWriter, r *http.Request, a *analystSession) error {
	ctx := r.Context()
	caseID, id := r.PathValue("case"), r.PathValue("id")
	if _, err := c.cfg.Office.Case(ctx, caseID); err != nil {
		if e := reason.As(err); e != nil && e.HTTPStatus() == http.StatusNotFound {
			return c.notFound(w, a, fmt.Sprintf("No case %q. · 事件 %q はありません。", caseID, caseID))
		}
		return err
	}
	err := func() error {
		if a.person == "" {
			return errPasskeyNeeded
		}
		n, err := note(r)
		if err != nil {
			return err
		}
		ap, err := c.cfg.Office.Approval(ctx, id)
		if err != nil {
			return err
		}
		if ap.Case != caseID {
			return reason.E("unknown_approval.case", "proposal", id)
		}
		_, err = c.cfg.Office.Decide(ctx, a.person, id, r.PostFormValue("decision") == "approve", n)
		return err
	}()
	if e := reason.As(err); e != nil {
		return c.showCase(w, r, a, e.HTTPStatus(), e.Code+": "+e.Text("en"))
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/console/cases/"+url.PathEscape(caseID), http.StatusSeeOther)
	return nil
}

// infra is an address and the accounts of a campaign seen on it.
type infra struct {
	IP       string
	Accounts []string
}

func (c *Console) campaignPage(w http.ResponseWriter, r *http.Request, a *analystSession) error {
	ctx := r.Context()
	id := r.PathValue("campaign")
	rows, err := c.rows(ctx, id)
	if err != nil {
		return err
	}
	accounts, symbols, ips := map[string]bool{}, map[string]bool{}, map[string]map[string]bool{}
	var total int64
	for _, k := range rows {
		total += k.AtStake
		if k.Account != "" {
			accounts[k.Account] = true
		}
		if k.Symbol != "" {
			symbols[k.Symbol] = true
		}
		if _, in := c.atStake(ctx, k.ID); in != nil {
			for _, f := range in.Fills {
				symbols[f.Symbol] = true
			}
			for _, ac := range in.Accesses {
				if ac.IP != "" {
					if ips[ac.IP] == nil {
						ips[ac.IP] = map[string]bool{}
					}
					ips[ac.IP][in.Account] = true
				}
			}
		}
	}
	var reasons []string
	if c.cfg.Alerts != nil {
		as, err := c.cfg.Alerts.Alerts(ctx, "", time.Time{}, 500)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, al := range as {
			if al.Campaign != id {
				continue
			}
			for _, acct := range al.Accounts {
				accounts[acct] = true
			}
			if al.Symbol != "" {
				symbols[al.Symbol] = true
			}
			for _, rc := range al.Reasons {
				if !seen[rc] {
					seen[rc] = true
					reasons = append(reasons, rc)
				}
			}
		}
	}
	if len(rows) == 0 && len(accounts) == 0 {
		return c.notFound(w, a, fmt.Sprintf("No campaign %q. · キャンペーン %q はありません。", id, id))
	}
	var shared []infra
	for ip, accts := range ips {
		shared = append(shared, infra{IP: ip, Accounts: keys(accts)})
	}
	sort.Slice(shared, func(i, j int) bool {
		if len(shared[i].Accounts) != len(shared[j].Accounts) {
			return len(shared[i].Accounts) > len(shared[j].Accounts)
		}
		return shared[i].IP < shared[j].IP
	})
	c.render(w, http.StatusOK, "campaign.html", map[string]any{"Analyst": a.label(), "CSRF": a.csrf, "Campaign": id, "Cases": rows,
		"Accounts": keys(accounts), "Symbols": keys(symbols), "Infra": shared, "Reasons": reasons, "AtStake": total, "Now": c.cfg.Now()})
	return nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// label is how the header names the session.
func (a *analystSession) label() string {
	if a.person != "" {
		return a.person + " (" + a.role + ")"
	}
	return a.name + " (API key)"
}

// age says how long ago t was, in days, hours and minutes.
func age(now, t time.Time) string {
	d := now.Sub(t)
	if d < time.Minute {
		return "<1m"
	}
	days, h, m := int(d/(24*time.Hour)), int(d/time.Hour)%24, int(d/time.Minute)%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh %dm", h, m)
	}
	return fmt.Sprintf("%dm", m)
}

// reportPage is the case's incident report for the finance bureau, in
// Japanese and English, to print.
func (c *Console) reportPage(w http.ResponseWriter, r *http.Request, a *analystSession) error {
	id := r.PathValue("case")
	rep, err := c.cfg.Office.Bureau(r.Context(), id)
	if e := reason.As(err); e != nil && e.Status == http.StatusNotFound {
		return c.notFound(w, a, fmt.Sprintf("No case %q. · 事件 %q はありません。", id, id))
	}
	if err != nil {
		return err
	}
	c.render(w, http.StatusOK, "report.html", map[string]any{"Analyst": a.label(), "CSRF": a.csrf, "R": rep})
	return nil
}
