package server

import (
	_ "embed"
	"net/http"
	"strconv"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/reason"
)

//go:embed openapi.json
var openAPI []byte

func (s *Server) apiRoutes() []route {
	return []route{
		{"GET", "/api/v1/accounts", apikey.ScopeBroker, s.listAccounts},
		{"GET", "/api/v1/accounts/{account}", apikey.ScopeBroker, s.getAccount},
		{"GET", "/api/v1/accounts/{account}/orders", apikey.ScopeBroker, s.listOrders},
		{"POST", "/api/v1/accounts/{account}/orders", apikey.ScopeBroker, s.placeOrder},
		{"DELETE", "/api/v1/accounts/{account}/orders/{order}", apikey.ScopeBroker, s.cancelOrder},
		{"POST", "/api/v1/accounts/{account}/withdrawals", apikey.ScopeBroker, s.withdraw},
		{"PUT", "/api/v1/accounts/{account}/bank", apikey.ScopeBroker, s.changeBank},
		{"PUT", "/api/v1/accounts/{account}/contact", apikey.ScopeBroker, s.changeContact},
		{"GET", "/api/v1/instruments", apikey.ScopeBroker, s.listInstruments},
		{"GET", "/api/v1/halts", apikey.ScopeBroker, s.listHalts},
		{"PUT", "/api/v1/halts/{symbol}", apikey.ScopeAdmin, s.setHalt},
		{"DELETE", "/api/v1/halts/{symbol}", apikey.ScopeAdmin, s.clearHalt},
		{"GET", "/api/v1/stream", apikey.ScopeEvents, s.exportStream},
		{"POST", "/api/v1/events", apikey.ScopeEvents, s.postEvents},
		{"GET", "/api/v1/decisions", apikey.ScopeEvents, s.listDecisions},
		{"GET", "/api/v1/decisions/{event}", apikey.ScopeEvents, s.getDecision},
		{"GET", "/api/v1/alerts", apikey.ScopeEvents, s.listAlerts},
		{"GET", "/api/v1/lists", apikey.ScopeAdmin, s.getLists},
		{"PUT", "/api/v1/lists/{list}", apikey.ScopeAdmin, s.putListEntry},
		{"DELETE", "/api/v1/lists/{list}", apikey.ScopeAdmin, s.deleteListEntry},
		{"GET", "/metrics", ScopeMetrics, s.metrics},
	}
}

// intParam reads an optional integer query parameter within [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, reason.E("invalid_field.range", "field", name, "min", lo, "max", hi)
	}
	return n, nil
}

func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request) error {
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	ids, err := s.cfg.Broker.Accounts(r.Context(), r.URL.Query().Get("after"), limit)
	if err != nil {
		return err
	}
	if ids == nil {
		ids = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": ids})
	return nil
}

func (s *Server) getAccount(w http.ResponseWriter, r *http.Request) error {
	a, err := s.cfg.Broker.Account(r.Context(), r.PathValue("account"))
	if err != nil {
		return err
	}
	v, err := s.withFreeze(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) listOrders(w http.ResponseWriter, r *http.Request) error {
	limit, err := intParam(r, "limit", 50, 1, 500)
	if err != nil {
		return err
	}
	os, err := s.cfg.Broker.Orders(r.Context(), r.PathValue("account"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"orders": os})
	return nil
}

// respond writes a brokerage result: 201 for a new thing, or 202 with the
// result and the reason when it is held for review.
func respond(w http.ResponseWriter, r *http.Request, v any, err error, created bool) error {
	if e := reason.As(err); e != nil && e.Code == reason.Held && v != nil {
		writeJSON(w, http.StatusAccepted, map[string]any{"held": v, "error": e.Code, "message": e.Text(lang(r))})
		return nil
	}
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, v)
	return nil
}

func (s *Server) placeOrder(w http.ResponseWriter, r *http.Request) error {
	var req broker.OrderRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	a, err := s.stepUpActor(r)
	if err != nil {
		return err
	}
	o, err := s.cfg.Broker.PlaceOrder(r.Context(), a, r.PathValue("account"), req, r.Header.Get("Idempotency-Key"))
	if o == nil {
		return respond(w, r, nil, err, true)
	}
	return respond(w, r, o, err, true)
}

func (s *Server) cancelOrder(w http.ResponseWriter, r *http.Request) error {
	a, err := s.stepUpActor(r)
	if err != nil {
		return err
	}
	o, err := s.cfg.Broker.CancelOrder(r.Context(), a, r.PathValue("account"), r.PathValue("order"), r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

func (s *Server) withdraw(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		AmountJPY int64 `json:"amount_jpy"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	a, err := s.stepUpActor(r)
	if err != nil {
		return err
	}
	wd, err := s.cfg.Broker.Withdraw(r.Context(), a, r.PathValue("account"), req.AmountJPY, r.Header.Get("Idempotency-Key"))
	if wd == nil {
		return respond(w, r, nil, err, true)
	}
	return respond(w, r, wd, err, true)
}

func (s *Server) changeBank(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Bank string `json:"bank"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	a, err := s.stepUpActor(r)
	if err != nil {
		return err
	}
	c, err := s.cfg.Broker.ChangeBank(r.Context(), a, r.PathValue("account"), req.Bank, r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) changeContact(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Field string `json:"field"`
		Value string `json:"value"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	a, err := s.stepUpActor(r)
	if err != nil {
		return err
	}
	c, err := s.cfg.Broker.ChangeContact(r.Context(), a, r.PathValue("account"), req.Field, req.Value, r.Header.Get("Idempotency-Key"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) listInstruments(w http.ResponseWriter, r *http.Request) error {
	ls, err := s.cfg.Broker.Instruments(r.Context(), r.URL.Query().Get("q"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"instruments": ls})
	return nil
}

func (s *Server) listHalts(w http.ResponseWriter, r *http.Request) error {
	h, err := s.cfg.Broker.Halts(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"halts": h})
	return nil
}

func (s *Server) setHalt(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Reason == "" {
		return reason.E("invalid_field.halt_reason")
	}
	if err := s.setHaltState(r, r.PathValue("symbol"), true, req.Reason); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"symbol": r.PathValue("symbol"), "buy_halted": true, "reason": req.Reason})
	return nil
}

// clearHalt never lifts a halt in one call (four eyes): with an analyst's
// personal key it proposes the lift (202, backoffice_api.go), with any
// other key it is refused.
func (s *Server) clearHalt(w http.ResponseWriter, r *http.Request) error {
	return s.deleteHalt(w, r)
}

// exportStream writes the stored stream as JSON Lines, the format replay reads.
func (s *Server) exportStream(w http.ResponseWriter, r *http.Request) error {
	limit, err := intParam(r, "limit", 10000, 1, 100000)
	if err != nil {
		return err
	}
	var after time.Time
	if v := r.URL.Query().Get("after"); v != "" {
		if after, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return reason.E("invalid_field.time", "field", "after")
		}
	}
	recs, err := s.cfg.Broker.Events(r.Context(), r.URL.Query().Get("account"), after, limit)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	for _, rec := range recs {
		w.Write([]byte(rec))
		w.Write([]byte{'\n'})
	}
	return nil
}

// homePage is the front page of the reference brokerage: where customers,
// analysts and integrators go, in Japanese and English.
const homePage = `<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>Kabuto 証券 — Kabuto Securities</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:system-ui,"Hiragino Sans","Noto Sans JP",sans-serif;max-width:56rem;margin:2rem auto;padding:0 1rem;line-height:1.6;color:#1b1f23}
h1{font-size:1.7rem;margin-bottom:.2rem}.sub{color:#57606a;margin-top:0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(15rem,1fr));gap:1rem;margin:1.5rem 0}
a.card{display:block;border:1px solid #d0d7de;border-radius:8px;padding:1rem 1.2rem;text-decoration:none;color:inherit}
a.card:hover{border-color:#0969da;box-shadow:0 1px 4px rgba(0,0,0,.08)}
a.card b{display:block;font-size:1.1rem;color:#0969da}.en{color:#57606a;font-size:.92rem}
footer{border-top:1px solid #d0d7de;margin-top:2rem;padding-top:.8rem;color:#57606a;font-size:.88rem}</style></head>
<body><h1>Kabuto 証券 <span lang="en">Kabuto Securities</span></h1>
<p class="sub">Kabuto の参照証券会社(デモ)。<span lang="en">The reference brokerage that Kabuto's account-takeover defences run on (a demonstration).</span></p>
<div class="grid">
<a class="card" href="/portal"><b>お客さまログイン・口座開設</b>パスキーでログインし、お取引・出金・セキュリティ設定を行います。<br><span class="en" lang="en">Customers: sign in with a passkey, trade, withdraw and manage your security, or open an account.</span></a>
<a class="card" href="/portal/genuine"><b>このメッセージは本物?</b>当社からのメール・SMS に記載の参照コードで、本物かどうかを確認できます。<br><span class="en" lang="en">Did we send this? Check the reference code of an email or text that claims to be from us.</span></a>
<a class="card" href="/console"><b>アナリストコンソール</b>アラート、取引停止、審査待ち、事案の管理(社内向け)。<br><span class="en" lang="en">Analyst console: alerts, halts, the review queue and cases (staff only).</span></a>
<a class="card" href="/api/v1/openapi.json"><b>API(連携する証券会社向け)</b>判定 API とイベントの仕様(OpenAPI)。<br><span class="en" lang="en">API for integrating brokerages: the decision API and the event records (OpenAPI).</span></a>
</div>
<footer>当社がメールや SMS でログインページへのリンクを送ることはありません。<span lang="en">We never send a link to a sign-in page by email or text.</span></footer>
</body></html>`

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.Write([]byte(homePage))
}
