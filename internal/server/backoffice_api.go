package server

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/cases"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// backOfficeRoutes are the back office's API routes: freezing an account
// (reopening goes only through the four-eyes flow of internal/cases) and
// the regulator's figures.
func (s *Server) backOfficeRoutes() []route {
	return append([]route{
		{"POST", "/api/v1/accounts/{account}/freeze", apikey.ScopeAdmin, s.freezeAccount},
		{"GET", "/api/v1/stats/fsa", apikey.ScopeAdmin, s.fsaStats},
		{"POST", "/api/v1/accounts/{account}/reports", apikey.ScopeBroker, s.customerReport},
	}, s.analystRoutes()...)
}

func (s *Server) backOffice() (*cases.Service, error) {
	if s.cfg.BackOffice == nil {
		return nil, reason.E("unavailable.back_office")
	}
	return s.cfg.BackOffice, nil
}

// accountView is an account with its freeze.
type accountView struct {
	*broker.Account
	Frozen bool   `json:"frozen"`
	Case   string `json:"case,omitempty"`
}

// withFreeze adds the account's freeze, when there is a back office.
func (s *Server) withFreeze(ctx context.Context, a *broker.Account) (any, error) {
	if s.cfg.BackOffice == nil {
		return a, nil
	}
	f, err := s.cfg.BackOffice.Frozen(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	v := accountView{Account: a}
	if f != nil && f.Frozen {
		v.Frozen, v.Case = true, f.Case
	}
	return v, nil
}

// setHaltState halts buying of symbol through the back office (the halt
// list, the guard and the audit trail at once), or in the brokerage alone
// when the server runs none. Lifting is never done here: it needs four
// eyes (liftNeedsFourEyes).
func (s *Server) setHaltState(r *http.Request, symbol string, halted bool, why string) error {
	if !halted {
		return liftNeedsFourEyes(symbol)
	}
	if s.cfg.BackOffice == nil {
		return s.cfg.Broker.SetHalt(r.Context(), symbol, halted, why)
	}
	return s.cfg.BackOffice.SetHalt(r.Context(), s.actor(r).Principal, symbol, halted, why)
}

// liftNeedsFourEyes is the answer to lifting a halt in one call, whoever
// asks: an analyst proposes the lift and a supervisor who is not the
// proposer approves it.
func liftNeedsFourEyes(symbol string) error {
	return reason.E("four_eyes_required.lift_halt_api", "symbol", symbol)
}

func (s *Server) freezeAccount(w http.ResponseWriter, r *http.Request) error {
	bo, err := s.backOffice()
	if err != nil {
		return err
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	account := r.PathValue("account")
	principal := s.actor(r).Principal
	key, hash, err := idemKey(r.Header.Get("Idempotency-Key"), "freeze:"+account, req)
	if err != nil {
		return err
	}
	if done, err := s.replayIdem(r.Context(), w, principal, key, hash); done || err != nil {
		return err
	}
	if _, err := s.cfg.Broker.Account(r.Context(), account); err != nil {
		return err
	}
	f, err := bo.Freeze(r.Context(), principal, account, req.Reason, cases.Link{})
	if err != nil {
		return err
	}
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	// A freeze is idempotent in itself; the key makes a retry answer
	// exactly as the first call did.
	if _, err := s.cfg.DB.ExecContext(r.Context(), `INSERT INTO idempotency (principal, idem_key, request_hash, status, response, created_us)
		VALUES ($1, $2, $3, 200, $4, $5) ON CONFLICT (principal, idem_key) DO NOTHING`, principal, key, hash, string(body), store.Micros(f.Since)); err != nil {
		return err
	}
	if done, err := s.replayIdem(r.Context(), w, principal, key, hash); done || err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, f)
	return nil
}

// idemKey checks the Idempotency-Key of a back-office call and
// fingerprints the request.
func idemKey(key, op string, args any) (string, string, error) {
	if key == "" {
		return "", "", reason.E(reason.IdempotencyKeyRequired)
	}
	if len(key) > 128 || !utf8.ValidString(key) {
		return "", "", reason.E("idempotency_key_required.too_long")
	}
	b, _ := json.Marshal(args)
	h := sha256.Sum256(append([]byte("backoffice\x00"+op+"\x00"), b...))
	return key, hex.EncodeToString(h[:16]), nil
}

// replayIdem writes the stored answer of an earlier call with the key.
func (s *Server) replayIdem(ctx context.Context, w http.ResponseWriter, principal, key, hash string) (bool, error) {
	var h, resp string
	err := s.cfg.DB.QueryRowContext(ctx, `SELECT request_hash, response FROM idempotency WHERE principal = $1 AND idem_key = $2`, principal, key).Scan(&h, &resp)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if h != hash {
		return false, reason.E(reason.IdempotencyKeyReused)
	}
	writeCompact(w, http.StatusOK, []byte(resp))
	return true, nil
}

// fsaStats writes the FSA's monthly table as JSON, or as CSV when the
// caller accepts text/csv.
func (s *Server) fsaStats(w http.ResponseWriter, r *http.Request) error {
	bo, err := s.backOffice()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	months, err := bo.FSA(r.Context(), q.Get("from"), q.Get("to"))
	if err != nil {
		return err
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/csv") {
		writeJSON(w, http.StatusOK, map[string]any{"months": months})
		return nil
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="fsa-`+q.Get("from")+`-`+q.Get("to")+`.csv"`)
	cw := csv.NewWriter(w)
	cw.Write([]string{"month", "unauthorised_accesses", "unauthorised_trades", "value_sold_jpy", "value_bought_jpy"})
	for _, m := range months {
		cw.Write([]string{m.Month, strconv.FormatInt(m.UnauthorisedAccesses, 10), strconv.FormatInt(m.UnauthorisedTrades, 10),
			strconv.FormatInt(m.ValueSoldJPY, 10), strconv.FormatInt(m.ValueBoughtJPY, 10)})
	}
	cw.Flush()
	return cw.Error()
}

// analystRoutes are the four-eyes flow for analysts, each calling with
// the personal key `kabuto analyst --create` issued them: the key names
// the person, and the back office checks the role and that the approver
// is not the proposer.
func (s *Server) analystRoutes() []route {
	return []route{
		{"GET", "/api/v1/cases", apikey.ScopeAdmin, s.listCases},
		{"GET", "/api/v1/cases/{case}", apikey.ScopeAdmin, s.getCase},
		{"GET", "/api/v1/cases/{case}/report", apikey.ScopeAdmin, s.caseReport},
		{"POST", "/api/v1/accounts/{account}/reverifications", apikey.ScopeAdmin, s.reverify},
		{"POST", "/api/v1/accounts/{account}/reopen", apikey.ScopeAdmin, s.proposeReopen},
		{"POST", "/api/v1/cases/{case}/compensations", apikey.ScopeAdmin, s.proposeCompensation},
		{"POST", "/api/v1/approvals/{approval}", apikey.ScopeAdmin, s.decideApproval},
		{"POST", "/api/v1/halts/{symbol}/lift", apikey.ScopeAdmin, s.proposeLiftHalt},
		{"POST", "/api/v1/withdrawals/{withdrawal}/release", apikey.ScopeAdmin, s.proposeRelease},
		{"PUT", "/api/v1/cases/{case}/assignee", apikey.ScopeAdmin, s.assignCase},
		{"GET", "/api/v1/cases/{case}/incident-draft", apikey.ScopeAdmin, s.draftIncident},
		{"PUT", "/api/v1/cases/{case}/incident", apikey.ScopeAdmin, s.recordIncident},
	}
}

// ReasonAnalystKeyRequired refuses a four-eyes call made with a key that
// names no analyst: a system's key is nobody's pair of eyes.
const ReasonAnalystKeyRequired = "analyst_key_required"

// analystOf returns the analyst whose personal key made the call.
func analystOf(r *http.Request) (string, error) {
	if k, ok := r.Context().Value(keyCtx).(*apikey.Key); ok {
		if name, ok := strings.CutPrefix(k.Name, "analyst:"); ok && name != "" {
			return name, nil
		}
	}
	return "", reason.E(ReasonAnalystKeyRequired + ".issue")
}

// once answers a mutating back-office call at most once per
// Idempotency-Key: a retry gets the first answer, the same key with
// another request 422.
func (s *Server) once(w http.ResponseWriter, r *http.Request, op string, req any, status int, fn func() (any, error)) error {
	principal := s.actor(r).Principal
	key, hash, err := idemKey(r.Header.Get("Idempotency-Key"), op, req)
	if err != nil {
		return err
	}
	if done, err := s.replayIdem(r.Context(), w, principal, key, hash); done || err != nil {
		return err
	}
	v, err := fn()
	if err != nil {
		return err
	}
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := s.cfg.DB.ExecContext(r.Context(), `INSERT INTO idempotency (principal, idem_key, request_hash, status, response, created_us)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (principal, idem_key) DO NOTHING`, principal, key, hash, status, string(body), store.Micros(s.cfg.Clock.Now())); err != nil {
		return err
	}
	writeJSON(w, status, v)
	return nil
}

func (s *Server) getCase(w http.ResponseWriter, r *http.Request) error {
	bo, err := s.backOffice()
	if err != nil {
		return err
	}
	id := r.PathValue("case")
	c, err := bo.Case(r.Context(), id)
	if err != nil {
		return err
	}
	tl, err := bo.Timeline(r.Context(), id)
	if err != nil {
		return err
	}
	comps, err := bo.Compensations(r.Context(), id)
	if err != nil {
		return err
	}
	out := map[string]any{"case": c, "timeline": tl, "compensations": comps}
	if in, err := bo.Incident(r.Context(), id); err == nil {
		out["incident"] = in
	} else if e := reason.As(err); e == nil || e.Code != cases.ReasonNoIncident {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// caseReport writes the case's incident report for the finance bureau:
// the account, the unauthorised accesses and trades with their values,
// the actions taken and the compensation.
func (s *Server) caseReport(w http.ResponseWriter, r *http.Request) error {
	bo, err := s.backOffice()
	if err != nil {
		return err
	}
	rep, err := bo.Bureau(r.Context(), r.PathValue("case"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// analystRequest reads what every four-eyes call starts with: the back
// office, the analyst behind the personal key, and the JSON body into req.
func (s *Server) analystRequest(r *http.Request, req any) (*cases.Service, string, error) {
	bo, err := s.backOffice()
	if err != nil {
		return nil, "", err
	}
	name, err := analystOf(r)
	if err != nil {
		return nil, "", err
	}
	return bo, name, decodeJSON(r, req)
}

func (s *Server) reverify(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Method string `json:"method"`
		Result string `json:"result"`
		Note   string `json:"note"`
	}
	bo, name, err := s.analystRequest(r, &req)
	if err != nil {
		return err
	}
	account := r.PathValue("account")
	return s.once(w, r, "reverify:"+account, req, http.StatusCreated, func() (any, error) {
		return bo.Reverify(r.Context(), name, account, req.Method, req.Result, req.Note)
	})
}

func (s *Server) proposeReopen(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Note string `json:"note"`
	}
	bo, name, err := s.analystRequest(r, &req)
	if err != nil {
		return err
	}
	account := r.PathValue("account")
	return s.once(w, r, "reopen:"+account, req, http.StatusCreated, func() (any, error) {
		return bo.ProposeReopen(r.Context(), name, account, req.Note)
	})
}

func (s *Server) proposeCompensation(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Method string `json:"method"`
	}
	bo, name, err := s.analystRequest(r, &req)
	if err != nil {
		return err
	}
	caseID := r.PathValue("case")
	x := s.cfg.Broker.Exchange()
	prices := func(sym string) (float64, bool) {
		q, ok := x.Quote(sym)
		in, known := x.Instrument(sym)
		if !ok || !known {
			return 0, false
		}
		fx, ok := market.FX(in.Currency)
		return q.Last * fx, ok && q.Last > 0
	}
	return s.once(w, r, "compensate:"+caseID, req, http.StatusCreated, func() (any, error) {
		c, ap, err := bo.ProposeCompensation(r.Context(), name, caseID, req.Method, prices)
		if err != nil {
			return nil, err
		}
		return map[string]any{"compensation": c, "approval": ap}, nil
	})
}

func (s *Server) decideApproval(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Decision string `json:"decision"`
		Note     string `json:"note"`
	}
	bo, name, err := s.analystRequest(r, &req)
	if err != nil {
		return err
	}
	if req.Decision != "approve" && req.Decision != "reject" {
		return reason.E("invalid_field.decision")
	}
	id := r.PathValue("approval")
	return s.once(w, r, "decide:"+id, req, http.StatusOK, func() (any, error) {
		return bo.Decide(r.Context(), name, id, req.Decision == "approve", req.Note)
	})
}

// customerReport opens or joins the account's case for what the customer
// told the brokerage ("that was not me").
func (s *Server) customerReport(w http.ResponseWriter, r *http.Request) error {
	bo, err := s.backOffice()
	if err != nil {
		return err
	}
	var req struct {
		Text string `json:"text"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	account := r.PathValue("account")
	return s.once(w, r, "report:"+account, req, http.StatusCreated, func() (any, error) {
		if _, err := s.cfg.Broker.Account(r.Context(), account); err != nil {
			return nil, err
		}
		id, err := bo.Report(r.Context(), s.actor(r).Principal, account, req.Text)
		if err != nil {
			return nil, err
		}
		return map[string]string{"account": account, "case": id}, nil
	})
}

func (s *Server) proposeLiftHalt(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Note string `json:"note"`
	}
	bo, name, err := s.analystRequest(r, &req)
	if err != nil {
		return err
	}
	symbol := r.PathValue("symbol")
	return s.once(w, r, "lift:"+symbol, req, http.StatusCreated, func() (any, error) {
		return bo.ProposeLiftHalt(r.Context(), name, symbol, req.Note)
	})
}

// proposeRelease proposes, with an analyst's personal key, that a
// withdrawal the guard held be released; a supervisor who is not the
// proposer approves it at /api/v1/approvals/{approval}.
func (s *Server) proposeRelease(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Note string `json:"note"`
	}
	bo, name, err := s.analystRequest(r, &req)
	if err != nil {
		return err
	}
	id := r.PathValue("withdrawal")
	return s.once(w, r, "release:"+id, req, http.StatusCreated, func() (any, error) {
		return bo.ProposeRelease(r.Context(), name, id, req.Note)
	})
}

// assignCase sets, with an analyst's personal key, the case's assignee
// (an active analyst, or "" for nobody), with a note.
func (s *Server) assignCase(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Assignee string `json:"assignee"`
		Note     string `json:"note"`
	}
	bo, name, err := s.analystRequest(r, &req)
	if err != nil {
		return err
	}
	id := r.PathValue("case")
	return s.once(w, r, "assign:"+id, req, http.StatusOK, func() (any, error) {
		return bo.Assign(r.Context(), name, id, req.Assignee, req.Note)
	})
}

// deleteHalt answers DELETE /api/v1/halts/{symbol}: the request to lift
// is accepted as a proposal (202) when an analyst's personal key makes it,
// and a supervisor who is not the proposer approves it; any other key
// (an admin's system key) is refused with four_eyes_required. The body,
// {"note": "..."}, may be left out.
func (s *Server) deleteHalt(w http.ResponseWriter, r *http.Request) error {
	symbol := r.PathValue("symbol")
	bo, err := s.backOffice()
	if err != nil {
		return liftNeedsFourEyes(symbol)
	}
	name, err := analystOf(r)
	if err != nil {
		return liftNeedsFourEyes(symbol)
	}
	var req struct {
		Note string `json:"note"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil {
			return err
		}
	}
	return s.once(w, r, "lift:"+symbol, req, http.StatusAccepted, func() (any, error) {
		return bo.ProposeLiftHalt(r.Context(), name, symbol, req.Note)
	})
}

// draftIncident drafts the case's incident from the ledger and the
// sign-in history between from and until (RFC 3339), for an analyst to
// check and record.
func (s *Server) draftIncident(w http.ResponseWriter, r *http.Request) error {
	bo, err := s.backOffice()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	from, err1 := time.Parse(time.RFC3339, q.Get("from"))
	until, err2 := time.Parse(time.RFC3339, q.Get("until"))
	if err1 != nil || err2 != nil {
		return reason.E("invalid_field.incident_times")
	}
	in, err := bo.DraftIncident(r.Context(), r.PathValue("case"), from, until)
	if err != nil {
		return err
	}
	// The ledger keeps a fill's price in the instrument's currency; the
	// incident's prices are yen, so values and compensation are.
	x := s.cfg.Broker.Exchange()
	for i, f := range in.Fills {
		if inst, ok := x.Instrument(f.Symbol); ok {
			in.Fills[i].Price = inst.PriceJPY(f.Price)
		}
	}
	writeJSON(w, http.StatusOK, in)
	return nil
}

// recordIncident records, with an analyst's personal key, the case's
// incident: its unauthorised accesses, its fills, the snapshot before.
func (s *Server) recordIncident(w http.ResponseWriter, r *http.Request) error {
	bo, err := s.backOffice()
	if err != nil {
		return err
	}
	name, err := analystOf(r)
	if err != nil {
		return err
	}
	var in cases.Incident
	if err := decodeJSON(r, &in); err != nil {
		return err
	}
	caseID := r.PathValue("case")
	return s.once(w, r, "incident:"+caseID, in, http.StatusOK, func() (any, error) {
		if err := bo.RecordIncident(r.Context(), name, caseID, in); err != nil {
			return nil, err
		}
		return bo.Incident(r.Context(), caseID)
	})
}

// listCases lists cases, open ones first by severity; with campaign, the
// linked cases of one campaign.
func (s *Server) listCases(w http.ResponseWriter, r *http.Request) error {
	bo, err := s.backOffice()
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	cs, err := bo.Cases(r.Context(), r.URL.Query().Get("campaign"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"cases": cs})
	return nil
}
