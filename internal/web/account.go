package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/identity"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/session"
)

// pageFor renders a signed-in page, or sends a signed-out browser to sign-in.
func (p *Portal) pageFor(name string, data func(rq *req) (map[string]any, error)) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		rq := getReq(r)
		if rq.sess == nil {
			http.Redirect(w, r, "/portal/signin", http.StatusSeeOther)
			return nil
		}
		d, err := data(rq)
		if err != nil {
			return err
		}
		f, err := p.cfg.Identity.Factors(r.Context(), rq.sess.Account)
		if err != nil {
			return err
		}
		scope, _, err := p.cfg.Identity.SelfLock(r.Context(), rq.sess.Account)
		if err != nil {
			return err
		}
		d["Factors"], d["Interim"], d["Deadline"], d["Scope"] = f, f.Passkeys == 0, p.cfg.Policy.Deadline, scope
		d["BeforeDeadline"] = p.cfg.Identity.Now().Before(p.cfg.Policy.Deadline)
		p.render(w, r, name, d)
		return nil
	}
}

func (p *Portal) home(w http.ResponseWriter, r *http.Request) error {
	return p.pageFor("home", func(rq *req) (map[string]any, error) {
		os, err := p.cfg.Broker.Orders(r.Context(), rq.sess.Account, 10)
		return map[string]any{"Orders": os}, err
	})(w, r)
}

// marketOrder is the order in which the trade page groups the markets.
var marketOrder = []string{market.TSEPrime, market.TSEStandard, market.TSEGrowth, market.HK, market.SH, market.SZ, market.US}

// tradePage lists every issue, grouped by market, filtered by a search in
// the code or the name (English or Japanese) and by market.
func (p *Portal) tradePage(w http.ResponseWriter, r *http.Request) error {
	return p.pageFor("trade", func(rq *req) (map[string]any, error) {
		all, err := p.cfg.Broker.Instruments(r.Context(), "")
		if err != nil {
			return nil, err
		}
		q := strings.ToLower(strings.TrimSpace(r.URL.Query().Get("q")))
		mk := r.URL.Query().Get("market")
		type group struct {
			Market   string
			Listings []broker.Listing
		}
		var groups []group
		n := 0
		for _, m := range marketOrder {
			g := group{Market: m}
			for _, l := range all {
				if l.Market != m || mk != "" && mk != m {
					continue
				}
				if q != "" && !strings.Contains(strings.ToLower(l.Symbol+" "+l.Name+" "+p.instrumentName(l.Symbol, l.Name, "ja")), q) {
					continue
				}
				g.Listings = append(g.Listings, l)
			}
			if len(g.Listings) > 0 {
				groups = append(groups, g)
				n += len(g.Listings)
			}
		}
		return map[string]any{"Listings": all, "Groups": groups, "Shown": n, "Total": len(all), "Markets": marketOrder,
			"Q": r.URL.Query().Get("q"), "Market": mk, "Symbol": r.URL.Query().Get("symbol")}, nil
	})(w, r)
}

// apiOrderQuote answers the estimated amount of an order before the
// customer confirms it; nothing is placed.
func (p *Portal) apiOrderQuote(w http.ResponseWriter, r *http.Request) error {
	var in orderIn
	rq, err := signedInJSON(r, &in)
	if err != nil {
		return err
	}
	sym := strings.TrimSpace(in.Symbol)
	ins, ok := p.cfg.Broker.Exchange().Instrument(sym)
	if !ok {
		return reason.E("invalid_field.issue_code")
	}
	if in.Qty <= 0 || in.Side != "buy" && in.Side != "sell" {
		return reason.E("invalid_field.side_qty")
	}
	px := in.LimitPrice
	if in.PriceType == event.PriceMarket || px <= 0 {
		if qt, ok := p.cfg.Broker.Exchange().Quote(sym); ok {
			px = qt.Ask
			if in.Side == "sell" {
				px = qt.Bid
			}
			if px <= 0 {
				px = qt.Last
			}
		}
	}
	if px <= 0 {
		px = ins.PrevClose
	}
	amount := int64(ins.PriceJPY(px)*float64(in.Qty) + 0.5)
	kind := in.Kind
	if kind == "" {
		kind = event.KindCash
	}
	name := ins.NameIn(rq.lang)
	var msg string
	if rq.lang == "en" {
		msg = fmt.Sprintf("%s %s %s: %s shares, %s, %s. Estimated amount: about ¥%s (at %s). Place this order?",
			word("side", in.Side, "en"), sym, name, commas(in.Qty), word("price", orDefault(in.PriceType, event.PriceMarket), "en"), word("kind", kind, "en"), commas(amount), price(px))
	} else {
		msg = fmt.Sprintf("%s %s %s株 %s（%s・%s）。概算金額: 約 ¥%s（単価 %s）。この内容で注文しますか？",
			sym, name, commas(in.Qty), word("side", in.Side, "ja"), word("price", orDefault(in.PriceType, event.PriceMarket), "ja"), word("kind", kind, "ja"), commas(amount), price(px))
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "estimate_jpy": amount, "price": px, "confirm": msg})
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (p *Portal) withdrawPage(w http.ResponseWriter, r *http.Request) error {
	return p.pageFor("withdraw", func(rq *req) (map[string]any, error) { return map[string]any{}, nil })(w, r)
}

func (p *Portal) bankPage(w http.ResponseWriter, r *http.Request) error {
	return p.pageFor("bank", func(rq *req) (map[string]any, error) { return map[string]any{}, nil })(w, r)
}

func (p *Portal) securityPage(w http.ResponseWriter, r *http.Request) error {
	return p.pageFor("security", func(rq *req) (map[string]any, error) {
		ctx := r.Context()
		pks, err := p.cfg.Identity.Passkeys(ctx, rq.sess.Account)
		if err != nil {
			return nil, err
		}
		ss, err := p.cfg.Sessions.List(ctx, rq.sess.Account)
		if err != nil {
			return nil, err
		}
		hist, err := p.cfg.Identity.History(ctx, rq.sess.Account, 20)
		return map[string]any{"Passkeys": pks, "Sessions": ss, "History": hist, "Enrol": r.URL.Query().Get("enrol") != "",
			"Done": doneText(r.URL.Query().Get("done"), rq.lang)}, err
	})(w, r)
}

// action is an action waiting for its step-up, kept in the ceremony.
type action struct {
	Kind   string               `json:"kind"` // order, withdraw, bank, contact, prove, unlock, unlock_password
	Amount int64                `json:"amount,omitempty"`
	Field  string               `json:"field,omitempty"`
	Value  string               `json:"value,omitempty"`
	Order  *broker.OrderRequest `json:"order,omitempty"`
	Idem   string               `json:"idem"`
	Want   string               `json:"want,omitempty"` // strength asked for
	Prev   string               `json:"prev,omitempty"` // previous contact, for the notice
}

// need returns the strength an action of type t needs from this customer
// now, by the step-up rule, raised to the strongest factor the customer
// has when the session's context jumped.
func (p *Portal) need(rq *req, want string, f identity.Factors, t event.Type) string {
	want = p.rule().Need(want, t, f.Passkeys > 0, p.cfg.Identity.Now())
	if !rq.sess.Jumped.IsZero() && session.Rank(f.Strongest()) > session.Rank(want) {
		want = f.Strongest()
	}
	return want
}

// stepUp begins the step-up ceremony for act bound to binding and answers
// the page with what it needs to run it.
func (p *Portal) stepUp(w http.ResponseWriter, r *http.Request, rq *req, f identity.Factors, want, binding string, act action, purpose string) error {
	ctx := r.Context()
	act.Want = want
	body := map[string]any{}
	jumped := !rq.sess.Jumped.IsZero()
	if want == session.StrengthPhishingResistant && f.Passkeys == 0 {
		// Only a passkey will do and there is none: guide the customer to
		// enrol one now (after a fresh proof of what they have), then
		// approve the action with it.
		writeJSON(w, http.StatusAccepted, map[string]any{"step_up": map[string]any{"kind": "enrol", "summary": purpose,
			"message": localize("この操作はパスキーで承認していただく必要があります。いまパスキーを登録し、そのパスキーで承認してください / this needs your approval with a passkey: set one up now, then approve with it", rq.lang)}})
		return nil
	}
	if f.Passkeys > 0 {
		id, opts, err := p.cfg.Identity.BeginStepUp(ctx, rq.sess.Account, rq.sess.ID, binding, act)
		if err != nil {
			return err
		}
		body = map[string]any{"ceremony": id, "kind": "passkey", "publicKey": opts.Response}
	} else {
		method := event.FactorEmailOTP
		if f.TOTP {
			method = event.FactorTOTP
		}
		id, err := p.cfg.Identity.BeginCodeStepUp(ctx, rq.sess.Account, rq.sess.ID, binding, act, method, purpose, rq.client)
		if err != nil {
			return err
		}
		prompt := localize("ご登録のメールアドレスに届いた6桁の確認コードを入力してください。メールに書かれた操作内容が、いま行おうとしている操作と同じか確かめてください / enter the 6-digit code we just emailed you; check that the email describes exactly what you are doing now", rq.lang)
		if method == event.FactorTOTP {
			prompt = localize("認証アプリに表示されている6桁のコードを入力してください / enter the 6-digit code shown in your authenticator app", rq.lang)
		}
		body = map[string]any{"ceremony": id, "kind": "code", "method": method, "prompt": prompt}
	}
	msg := localize("確認のため、パスキーでこの操作を承認してください / confirm this with your passkey", rq.lang)
	if f.Passkeys == 0 {
		msg = localize("確認コードでこの操作を承認してください。コードは偽サイトに中継されると防げない確認方法です（フィッシング耐性なし）。パスキーの登録をおすすめします / approve this with a one-time code. A code can be relayed by a fake site (it is not phishing-resistant): we recommend setting up a passkey", rq.lang)
	}
	if jumped {
		msg = localize("このログインはいつもと違うネットワークやブラウザから使われています。続けるには、いちばん強い認証方法で本人確認をしてください / this session is now being used from a different network or browser; to continue, confirm it is you with your strongest sign-in method", rq.lang)
	}
	body["message"] = msg
	body["summary"] = purpose
	writeJSON(w, http.StatusAccepted, map[string]any{"step_up": body})
	return nil
}

func stepUpFactor(factor string) string {
	if factor == event.FactorPasskey {
		return event.FactorPhishingResistant
	}
	return event.FactorMFA
}

func newIdem() string {
	return broker.RandomID("web-")
}

// selfLocked refuses op when the account's self-lock covers it.
func (p *Portal) selfLocked(ctx context.Context, rq *req, op identity.Op) error {
	return p.cfg.Identity.CheckSelfLock(ctx, rq.sess.Account, op)
}

type orderIn struct {
	Symbol     string  `json:"symbol"`
	Side       string  `json:"side"`
	Qty        int64   `json:"qty"`
	PriceType  string  `json:"price_type"`
	LimitPrice float64 `json:"limit_price"`
	Kind       string  `json:"account_kind"`
}

func (p *Portal) apiOrder(w http.ResponseWriter, r *http.Request) error {
	var in orderIn
	rq, err := signedInJSON(r, &in)
	if err != nil {
		return err
	}
	req := broker.OrderRequest{Symbol: strings.TrimSpace(in.Symbol), Side: in.Side, Qty: in.Qty, PriceType: in.PriceType, LimitPrice: in.LimitPrice, Kind: in.Kind}
	if req.Kind == "" {
		req.Kind = event.KindCash
	}
	if req.PriceType == event.PriceMarket {
		req.LimitPrice = 0
	}
	foreign := false
	if in, ok := p.cfg.Broker.Exchange().Instrument(req.Symbol); ok {
		foreign = !market.Domestic(in.Market)
	}
	if err := p.selfLocked(r.Context(), rq, identity.Op{Kind: "order", Foreign: foreign, Side: req.Side}); err != nil {
		return err
	}
	act := action{Kind: "order", Order: &req, Idem: newIdem()}
	f, err := p.cfg.Identity.Factors(r.Context(), rq.sess.Account)
	if err != nil {
		return err
	}
	if !rq.sess.Jumped.IsZero() {
		// A session whose context jumped places no order without a fresh
		// proof of the strongest factor.
		rec := &event.Record{Type: event.TypeOrder, Account: rq.sess.Account, Session: rq.sess.ID, Symbol: req.Symbol, Side: req.Side, Qty: req.Qty,
			PriceType: req.PriceType, LimitPrice: req.LimitPrice, AccountKind: req.Kind}
		return p.stepUp(w, r, rq, f, p.need(rq, f.Strongest(), f, event.TypeOrder), broker.Binding(rec), act, orderText(req, rq.lang))
	}
	return p.run(w, r, rq, act, nil, f)
}

func orderText(o broker.OrderRequest, lang string) string {
	side := map[string][2]string{"buy": {"買い", "buy"}, "sell": {"売り", "sell"}}[o.Side]
	price := map[bool][2]string{true: {"成行", "at market"}, false: {fmt.Sprintf("指値 %g", o.LimitPrice), fmt.Sprintf("limit %g", o.LimitPrice)}}[o.PriceType == event.PriceMarket]
	if lang == "en" {
		return fmt.Sprintf("order: %s %s %s %s", side[1], commas(o.Qty), o.Symbol, price[1])
	}
	return fmt.Sprintf("注文: %s %s %s株 %s", o.Symbol, side[0], commas(o.Qty), price[0])
}

type amountIn struct {
	Amount int64 `json:"amount_jpy"`
}

func (p *Portal) apiWithdraw(w http.ResponseWriter, r *http.Request) error {
	var in amountIn
	rq, err := signedInJSON(r, &in)
	if err != nil {
		return err
	}
	if in.Amount <= 0 || in.Amount > 1_000_000_000_000 {
		return reason.E("invalid_field.withdraw_amount")
	}
	if err := p.selfLocked(r.Context(), rq, identity.Op{Kind: "withdrawal"}); err != nil {
		return err
	}
	a, err := p.cfg.Broker.Account(r.Context(), rq.sess.Account)
	if err != nil {
		return err
	}
	if in.Amount > a.AvailableJPY {
		return reason.E("insufficient_cash.available", "available_jpy", reason.Yen(a.AvailableJPY))
	}
	f, err := p.cfg.Identity.Factors(r.Context(), rq.sess.Account)
	if err != nil {
		return err
	}
	rec := &event.Record{Type: event.TypeWithdrawal, Account: rq.sess.Account, Session: rq.sess.ID, AmountJPY: in.Amount, BankHash: a.BankHash}
	purpose := localize(fmt.Sprintf("出金 ¥%s（出金先 %s） / withdrawal of ¥%s to %s", commas(in.Amount), broker.MaskBank(a.Bank), commas(in.Amount), broker.MaskBank(a.Bank)), rq.lang)
	return p.stepUp(w, r, rq, f, p.need(rq, p.cfg.Policy.Withdrawal, f, event.TypeWithdrawal), broker.Binding(rec), action{Kind: "withdraw", Amount: in.Amount, Idem: newIdem()}, purpose)
}

type valueIn struct {
	Field string `json:"field,omitempty"`
	Value string `json:"value"`
}

func (p *Portal) apiBank(w http.ResponseWriter, r *http.Request) error {
	var in valueIn
	rq, err := signedInJSON(r, &in)
	if err != nil {
		return err
	}
	in.Value = strings.TrimSpace(in.Value)
	if in.Value == "" || len(in.Value) > 100 {
		return reason.E("invalid_field.bank")
	}
	if err := p.selfLocked(r.Context(), rq, identity.Op{Kind: "change"}); err != nil {
		return err
	}
	f, err := p.cfg.Identity.Factors(r.Context(), rq.sess.Account)
	if err != nil {
		return err
	}
	rec := &event.Record{Type: event.TypeBankChange, Account: rq.sess.Account, Session: rq.sess.ID, BankHash: p.cfg.Broker.Hash("bank", in.Value)}
	purpose := localize("出金先口座の変更: "+broker.MaskBank(in.Value)+" / changing the withdrawal bank account to "+broker.MaskBank(in.Value), rq.lang)
	return p.stepUp(w, r, rq, f, p.need(rq, p.cfg.Policy.BankChange, f, event.TypeBankChange), broker.Binding(rec), action{Kind: "bank", Value: in.Value, Idem: newIdem()}, purpose)
}

func (p *Portal) apiContact(w http.ResponseWriter, r *http.Request) error {
	var in valueIn
	rq, err := signedInJSON(r, &in)
	if err != nil {
		return err
	}
	in.Value = strings.TrimSpace(in.Value)
	if in.Field != "email" && in.Field != "phone" && in.Field != "address" || in.Value == "" || len(in.Value) > 200 {
		return reason.E("invalid_field.contact")
	}
	if err := p.selfLocked(r.Context(), rq, identity.Op{Kind: "change"}); err != nil {
		return err
	}
	a, err := p.cfg.Broker.Account(r.Context(), rq.sess.Account)
	if err != nil {
		return err
	}
	f, err := p.cfg.Identity.Factors(r.Context(), rq.sess.Account)
	if err != nil {
		return err
	}
	rec := &event.Record{Type: event.TypeContactChange, Account: rq.sess.Account, Session: rq.sess.ID, Field: in.Field, NewHash: p.cfg.Broker.Hash(in.Field, in.Value)}
	purpose := localize("連絡先の変更 / changing your contact details", rq.lang)
	// Changing contact details needs the strongest factor the account has.
	want := p.need(rq, p.cfg.Policy.ContactChange, f, event.TypeContactChange)
	if session.Rank(f.Strongest()) > session.Rank(want) {
		want = f.Strongest()
	}
	return p.stepUp(w, r, rq, f, want, broker.Binding(rec), action{Kind: "contact", Field: in.Field, Value: in.Value, Idem: newIdem(), Prev: a.Email}, purpose)
}

// apiStepUp finishes a step-up ceremony and carries out its action.
func (p *Portal) apiStepUp(w http.ResponseWriter, r *http.Request) error {
	var in credentialIn
	rq, err := signedInJSON(r, &in)
	if err != nil {
		return err
	}
	ctx := r.Context()
	var binding, factor string
	var raw json.RawMessage
	if len(in.Credential) > 0 {
		binding, raw, err = p.cfg.Identity.FinishStepUp(ctx, rq.sess.Account, rq.sess.ID, in.Ceremony, in.Credential)
		factor = event.FactorPasskey
	} else {
		binding, raw, factor, err = p.cfg.Identity.FinishCodeStepUpBy(ctx, rq.sess.Account, in.Ceremony, in.Code, p.try(rq))
	}
	if err != nil {
		return err
	}
	var act action
	if err := json.Unmarshal(raw, &act); err != nil {
		return err
	}
	f, err := p.cfg.Identity.Factors(ctx, rq.sess.Account)
	if err != nil {
		return err
	}
	if session.Rank(identity.Strength(factor)) < session.Rank(act.Want) {
		return reason.E("step_up_required.stronger")
	}
	// A new session token at every step-up; a proof of the strongest
	// factor from here makes this context the session's own.
	var here *session.Client
	if !rq.sess.Jumped.IsZero() && identity.Strength(factor) == f.Strongest() {
		here = &rq.client
	}
	if err := p.cfg.Sessions.Prove(ctx, rq.sess, factor, identity.Strength(factor), here); err != nil {
		return err
	}
	p.setSession(w, rq.sess)
	return p.run(w, r, rq, act, &broker.StepUp{Factor: stepUpFactor(factor), Binding: binding}, f)
}

// run carries out act, with the step-up passed for it (if any).
func (p *Portal) run(w http.ResponseWriter, r *http.Request, rq *req, act action, su *broker.StepUp, f identity.Factors) error {
	ctx := r.Context()
	a := p.actor(rq)
	a.StepUp = su
	var msg string
	switch act.Kind {
	case "order":
		if act.Order == nil {
			return reason.E("bad_request.no_order")
		}
		o, err := p.cfg.Broker.PlaceOrder(ctx, a, rq.sess.Account, *act.Order, act.Idem)
		if e := reason.As(err); e != nil && e.Code == reason.StepUpRequired && su == nil {
			want := session.StrengthMFA
			if e.Decision != nil && e.Decision.Factor == event.FactorPhishingResistant {
				want = session.StrengthPhishingResistant
			}
			want = p.need(rq, want, f, event.TypeOrder)
			return p.stepUp(w, r, rq, f, want, e.Binding, act, orderText(*act.Order, rq.lang))
		}
		if err != nil {
			return err
		}
		status := map[string][2]string{broker.StatusFilled: {"約定しました", "filled"}, broker.StatusOpen: {"注文を受け付けました", "accepted"}, broker.StatusHeld: {"確認のため保留中です", "held for review"}}[o.Status]
		if status[0] == "" {
			status = [2]string{word("status", o.Status, "ja"), word("status", o.Status, "en")}
		}
		msg = localize(fmt.Sprintf("%s（%s） / %s (%s)", status[0], orderText(*act.Order, "ja"), status[1], orderText(*act.Order, "en")), rq.lang)
		if o.FilledQty > 0 {
			msg += localize(fmt.Sprintf("。約定: %s株 × %s、約定金額 ¥%s / . Filled: %s shares at %s, amount ¥%s", commas(o.FilledQty), price(o.FillPrice), commas(o.FilledJPY), commas(o.FilledQty), price(o.FillPrice), commas(o.FilledJPY)), rq.lang)
		}
	case "withdraw":
		wd, err := p.cfg.Broker.Withdraw(ctx, a, rq.sess.Account, act.Amount, act.Idem)
		if err != nil && !(reason.As(err) != nil && reason.As(err).Code == reason.Held) {
			return err
		}
		msg = localize(fmt.Sprintf("¥%s の出金を受け付けました（出金先 %s） / ¥%s is on its way to %s", commas(wd.AmountJPY), wd.Bank, commas(wd.AmountJPY), wd.Bank), rq.lang)
		if wd.Status == broker.StatusHeld {
			msg = localize("出金は確認のため保留中です。結果はお知らせします / the withdrawal is held for review; we will tell you the outcome", rq.lang)
		}
	case "bank":
		c, err := p.cfg.Broker.ChangeBank(ctx, a, rq.sess.Account, act.Value, act.Idem)
		if err != nil {
			return err
		}
		msg = localize("出金先口座を "+broker.MaskBank(c.Value)+" に変更しました / your withdrawal bank account is now "+broker.MaskBank(c.Value), rq.lang)
	case "contact":
		ctx = WithPrevious(ctx, act.Prev)
		if _, err := p.cfg.Broker.ChangeContact(ctx, a, rq.sess.Account, act.Field, act.Value, act.Idem); err != nil {
			return err
		}
		msg = localize("連絡先を変更しました。変更前の連絡先にもお知らせしました / your contact details are changed; we told your previous contact too", rq.lang)
	case "prove":
		msg = localize("確認できました / confirmed", rq.lang)
	case "unlock":
		if err := p.cfg.Identity.ClearSelfLock(ctx, rq.sess.Account, factorOf(su), rq.client); err != nil {
			return err
		}
		msg = localize("ロックを解除しました / your lock is removed", rq.lang)
	case "unlock_password":
		if err := p.cfg.Identity.Unlock(ctx, rq.sess.Account, factorOf(su), rq.client); err != nil {
			return err
		}
		msg = localize("パスワードでのログインのロックを解除しました / password sign-in is unlocked", rq.lang)
	default:
		return reason.E("bad_request.unknown_action")
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "message": msg})
	return nil
}

func factorOf(su *broker.StepUp) string {
	if su != nil && su.Factor == event.FactorPhishingResistant {
		return event.FactorPasskey
	}
	return event.FactorEmailOTP
}

type prevKey struct{}

// WithPrevious returns ctx carrying the contact detail a change replaces,
// so the notice of the change can go to the previous address.
func WithPrevious(ctx context.Context, prev string) context.Context {
	return context.WithValue(ctx, prevKey{}, prev)
}

// Previous returns the contact detail carried by WithPrevious.
func Previous(ctx context.Context) string {
	s, _ := ctx.Value(prevKey{}).(string)
	return s
}

// fresh reports whether the session proved the customer's strongest
// factor within the policy's freshness window (needed to add or remove an
// authenticator).
func (p *Portal) fresh(rq *req, f identity.Factors) bool {
	since := p.cfg.Identity.Now().Add(-p.cfg.Policy.Fresh)
	if !rq.sess.Jumped.IsZero() && rq.sess.Jumped.After(since) {
		since = rq.sess.Jumped
	}
	switch f.Strongest() {
	case session.StrengthPhishingResistant:
		return rq.sess.ProvenSince(event.FactorPasskey, since)
	case session.StrengthMFA:
		return rq.sess.ProvenSince(event.FactorTOTP, since) || rq.sess.ProvenSince(event.FactorEmailOTP, since) || rq.sess.ProvenSince(event.FactorPasskey, since)
	}
	return true
}

func (p *Portal) factorBinding(rq *req, f string) string {
	return broker.Binding(&event.Record{Type: event.TypeFactorAdd, Account: rq.sess.Account, Session: rq.sess.ID, Factor: f})
}

// apiPasskeyBegin starts enrolling a passkey once the strongest factor
// the account has was proven freshly; otherwise it asks for that first.
func (p *Portal) apiPasskeyBegin(w http.ResponseWriter, r *http.Request) error {
	rq, err := signedIn(r)
	if err != nil {
		return err
	}
	f, err := p.cfg.Identity.Factors(r.Context(), rq.sess.Account)
	if err != nil {
		return err
	}
	if !p.fresh(rq, f) {
		return p.stepUp(w, r, rq, f, f.Strongest(), p.factorBinding(rq, event.FactorPasskey), action{Kind: "prove", Idem: newIdem()},
			localize("パスキーの追加 / adding a passkey", rq.lang))
	}
	id, opts, err := p.cfg.Identity.BeginRegistration(r.Context(), rq.sess.Account, rq.sess.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"ceremony": id, "publicKey": opts.Response})
	return nil
}

func (p *Portal) apiPasskeyFinish(w http.ResponseWriter, r *http.Request) error {
	var in credentialIn
	rq, err := signedInJSON(r, &in)
	if err != nil {
		return err
	}
	if err := p.cfg.Identity.FinishRegistration(r.Context(), rq.sess.Account, rq.sess.ID, in.Ceremony, in.Credential, in.Name, rq.client); err != nil {
		return err
	}
	if p.cfg.Reopened != nil {
		if err := p.cfg.Reopened.PasskeyEnrolled(r.Context(), rq.sess.Account); err != nil {
			return err
		}
	}
	// The new passkey was just made with user verification on this device.
	if err := p.cfg.Sessions.Prove(r.Context(), rq.sess, event.FactorPasskey, session.StrengthPhishingResistant, nil); err != nil {
		return err
	}
	p.setSession(w, rq.sess)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "message": localize("パスキーを登録しました。次回からはパスキーでログインできます / your passkey is registered; next time, sign in with it", rq.lang), "redirect": "/portal/security?done=passkey"})
	return nil
}

func (p *Portal) apiPasskeyRemove(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		ID string `json:"id"`
	}
	rq, err := signedInJSON(r, &in)
	if err != nil {
		return err
	}
	f, err := p.cfg.Identity.Factors(r.Context(), rq.sess.Account)
	if err != nil {
		return err
	}
	if !p.fresh(rq, f) {
		return p.stepUp(w, r, rq, f, f.Strongest(), broker.Binding(&event.Record{Type: event.TypeFactorRemove, Account: rq.sess.Account, Session: rq.sess.ID, Factor: event.FactorPasskey}),
			action{Kind: "prove", Idem: newIdem()}, localize("パスキーの削除 / removing a passkey", rq.lang))
	}
	if err := p.cfg.Identity.RemovePasskey(r.Context(), rq.sess.Account, in.ID, rq.client); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "message": localize("パスキーを削除しました / the passkey is removed", rq.lang), "redirect": "/portal/security?done=passkey_removed"})
	return nil
}

func (p *Portal) apiTOTPBegin(w http.ResponseWriter, r *http.Request) error {
	rq, err := signedIn(r)
	if err != nil {
		return err
	}
	f, err := p.cfg.Identity.Factors(r.Context(), rq.sess.Account)
	if err != nil {
		return err
	}
	if !p.fresh(rq, f) {
		return p.stepUp(w, r, rq, f, f.Strongest(), p.factorBinding(rq, event.FactorTOTP), action{Kind: "prove", Idem: newIdem()}, localize("認証アプリの追加 / adding an authenticator app", rq.lang))
	}
	secret, url, err := p.cfg.Identity.NewTOTP(rq.sess.Account)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"secret": secret, "url": url, "token": p.signed("totp:"+secret, rq.sess.Account, rq.device, 10*60*1e9)})
	return nil
}

func (p *Portal) apiTOTPConfirm(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Secret string `json:"secret"`
		Token  string `json:"token"`
		Code   string `json:"code"`
	}
	rq, err := signedInJSON(r, &in)
	if err != nil {
		return err
	}
	if acct, ok := p.verifySigned("totp:"+in.Secret, in.Token, rq.device); !ok || acct != rq.sess.Account {
		return reason.E("forbidden.start_again")
	}
	if err := p.cfg.Identity.ConfirmTOTP(r.Context(), rq.sess.Account, in.Secret, in.Code); err != nil {
		return err
	}
	p.cfg.Identity.Notify(r.Context(), nil, rq.sess.Account, notify.KindFactorAdded, rq.client, map[string]string{"Factor": identity.FactorName(event.FactorTOTP, rq.lang)})
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "message": localize("認証アプリを登録しました / your authenticator app is registered", rq.lang), "redirect": "/portal/security?done=totp"})
	return nil
}

func (p *Portal) apiRevoke(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		ID  string `json:"id"`
		All bool   `json:"all"`
	}
	rq, err := signedInJSON(r, &in)
	if err != nil {
		return err
	}
	if in.All {
		err = p.cfg.Sessions.RevokeAll(r.Context(), p.cfg.DB, rq.sess.Account, rq.sess.ID)
	} else {
		err = p.cfg.Sessions.Revoke(r.Context(), rq.sess.Account, in.ID)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "message": localize("ログアウトさせました / signed out", rq.lang), "redirect": "/portal/security?done=signout"})
	return nil
}

// apiLock sets a self-lock while signed in: no step-up, locking is
// always allowed.
func (p *Portal) apiLock(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Scope int `json:"scope"`
	}
	rq, err := signedInJSON(r, &in)
	if err != nil {
		return err
	}
	if in.Scope < 1 || in.Scope > 5 {
		return reason.E("invalid_field.lock_scope")
	}
	ctx := r.Context()
	err = p.cfg.Identity.SetSelfLock(ctx, rq.sess.Account, in.Scope, "session:"+rq.sess.ID, rq.client, nil)
	if err != nil {
		return err
	}
	redirect := "/portal/security?done=lock"
	if in.Scope == identity.LockTradingAndLogin {
		p.cfg.Sessions.RevokeAll(ctx, p.cfg.DB, rq.sess.Account, "")
		redirect = "/portal/signin?locked=1&autofill=0"
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "message": localize("ロックしました: "+identity.ScopeText(in.Scope, "ja")+" / locked: "+identity.ScopeText(in.Scope, "en"), rq.lang), "redirect": redirect})
	return nil
}

// apiUnlock removes a self-lock: a passkey, or re-verification for a
// customer without one, bound to this unlock.
func (p *Portal) apiUnlock(w http.ResponseWriter, r *http.Request) error {
	rq, err := signedIn(r)
	if err != nil {
		return err
	}
	f, err := p.cfg.Identity.Factors(r.Context(), rq.sess.Account)
	if err != nil {
		return err
	}
	b := sha256.Sum256([]byte("unlock|" + rq.sess.Account + "|" + rq.sess.ID))
	return p.stepUp(w, r, rq, f, f.Strongest(), hex.EncodeToString(b[:]), action{Kind: "unlock", Idem: newIdem()}, localize("ロックの解除 / removing your lock", rq.lang))
}

// apiUnlockPassword lifts the password lock after wrong passwords, with
// the strongest factor.
func (p *Portal) apiUnlockPassword(w http.ResponseWriter, r *http.Request) error {
	rq, err := signedIn(r)
	if err != nil {
		return err
	}
	f, err := p.cfg.Identity.Factors(r.Context(), rq.sess.Account)
	if err != nil {
		return err
	}
	b := sha256.Sum256([]byte("unlock_password|" + rq.sess.Account + "|" + rq.sess.ID))
	return p.stepUp(w, r, rq, f, f.Strongest(), hex.EncodeToString(b[:]), action{Kind: "unlock_password", Idem: newIdem()}, localize("パスワードのロック解除 / unlocking password sign-in", rq.lang))
}

// signedInJSON returns the signed-in customer's request and reads the
// request's JSON body into in.
func signedInJSON(r *http.Request, in any) (*req, error) {
	rq, err := signedIn(r)
	if err != nil {
		return nil, err
	}
	return rq, readJSON(r, in)
}

// doneText is the success message the security page shows after the
// action done (a fixed set: the page never shows text from the URL).
func doneText(done, lang string) string {
	m := map[string]string{
		"passkey":         "パスキーを登録しました。次回からはパスキーでログインできます / Your passkey is registered: next time, sign in with it",
		"passkey_removed": "パスキーを削除しました / The passkey is removed",
		"totp":            "認証アプリを登録しました / Your authenticator app is registered",
		"signout":         "ログアウトさせました / The device is signed out",
		"fresh_passkey":   "口座を再開しました。ご本人確認のため、この端末で新しいパスキーを登録してください。登録が済むまで、ほかの操作はできません / Your account is reopened. To confirm it is you, register a new passkey on this device: until then nothing else can be done",
		"lock":            "ロックしました。下の「現在のロック」で範囲を確かめられます / Your account is locked: see what is locked under \"Locked now\" below",
	}[done]
	if m == "" {
		return ""
	}
	return localize(m, lang)
}
