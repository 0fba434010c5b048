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
	"unicode/utf8"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/cases"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// backOfficeRoutes are the back office's API routes: freezing an account
// (reopening goes only through the four-eyes flow of internal/cases) and
// the regulator's figures.
func (s *Server) backOfficeRoutes() []route {
	return []route{
		{"POST", "/api/v1/accounts/{account}/freeze", apikey.ScopeAdmin, s.freezeAccount},
		{"GET", "/api/v1/stats/fsa", apikey.ScopeAdmin, s.fsaStats},
	}
}

func (s *Server) backOffice() (*cases.Service, error) {
	if s.cfg.BackOffice == nil {
		return nil, reason.New(http.StatusServiceUnavailable, reason.Unavailable, "this server runs no back office")
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

// setHaltState halts or lifts buying of symbol through the back office
// (the halt list, the guard and the audit trail at once), or in the
// brokerage alone when the server runs none.
func (s *Server) setHaltState(r *http.Request, symbol string, halted bool, why string) error {
	if s.cfg.BackOffice == nil {
		return s.cfg.Broker.SetHalt(r.Context(), symbol, halted, why)
	}
	return s.cfg.BackOffice.SetHalt(r.Context(), s.actor(r).Principal, symbol, halted, why)
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
		return "", "", reason.New(http.StatusBadRequest, reason.IdempotencyKeyRequired, "send an Idempotency-Key header (a unique value per action, reused only when retrying it)")
	}
	if len(key) > 128 || !utf8.ValidString(key) {
		return "", "", reason.New(http.StatusBadRequest, reason.IdempotencyKeyRequired, "the Idempotency-Key must be at most 128 characters of UTF-8")
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
		return false, reason.New(http.StatusUnprocessableEntity, reason.IdempotencyKeyReused, "this Idempotency-Key was already used for a different request")
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
