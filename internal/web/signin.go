package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/identity"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/session"
)

func (p *Portal) root(w http.ResponseWriter, r *http.Request) error {
	if getReq(r).sess != nil {
		http.Redirect(w, r, "/portal/home", http.StatusSeeOther)
	} else {
		http.Redirect(w, r, "/portal/signin", http.StatusSeeOther)
	}
	return nil
}

func (p *Portal) signinPage(w http.ResponseWriter, r *http.Request) error {
	p.render(w, r, "signin", map[string]any{"Error": r.URL.Query().Get("e"), "Deadline": p.cfg.Policy.Deadline, "Out": r.URL.Query().Get("out") == "1",
		"Locked": r.URL.Query().Get("locked") == "1"})
	return nil
}

// passkeyBegin starts a discoverable passkey sign-in for this browser.
func (p *Portal) passkeyBegin(w http.ResponseWriter, r *http.Request) error {
	rq := getReq(r)
	id, opts, err := p.cfg.Identity.BeginSignIn(r.Context(), rq.device)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"ceremony": id, "publicKey": opts.Response})
	return nil
}

type credentialIn struct {
	Ceremony   string          `json:"ceremony"`
	Credential json.RawMessage `json:"credential"`
	Code       string          `json:"code,omitempty"`
	Name       string          `json:"name,omitempty"`
}

func (p *Portal) passkeyFinish(w http.ResponseWriter, r *http.Request) error {
	rq := getReq(r)
	var in credentialIn
	if err := readJSON(r, &in); err != nil {
		return err
	}
	account, err := p.cfg.Identity.FinishSignIn(r.Context(), rq.device, in.Ceremony, in.Credential)
	if err != nil {
		p.cfg.Identity.Record(r.Context(), "", event.FactorPasskey, nil, false, "passkey_refused", rq.client, "")
		return err
	}
	factors := []string{event.FactorPasskey}
	if err := p.cfg.Identity.CheckSelfLock(r.Context(), account, identity.Op{Kind: "signin"}); err != nil && !identity.IsSelfLocked(err) {
		return err
	} else if err != nil {
		// The passkey proves the owner: offer to unlock, once, right here.
		tok := p.signed("selfunlock", account, rq.device, 3*time.Minute)
		p.cfg.Identity.Record(r.Context(), account, event.FactorPasskey, factors, false, "self_locked", rq.client, "")
		writeJSON(w, http.StatusOK, map[string]any{"locked": true, "token": tok, "message": localize(
			"この口座はお客様のご依頼で「すべての取引とログイン」が停止されています。いまのパスキーで本人確認ができました。停止を解除しますか？ / Your account is locked for all trading and sign-in at your request. Your passkey just confirmed it is you. Unlock it now?", rq.lang)})
		return nil
	}
	return p.startSession(w, r, account, event.FactorPasskey, factors, true)
}

// signinUnlock clears a self-lock after a passkey sign-in proved the owner.
func (p *Portal) signinUnlock(w http.ResponseWriter, r *http.Request) error {
	rq := getReq(r)
	var in struct {
		Token string `json:"token"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	account, ok := p.verifySigned("selfunlock", in.Token, rq.device)
	if !ok {
		return reason.E("forbidden.confirmation_expired")
	}
	if err := p.cfg.Identity.ClearSelfLock(r.Context(), account, event.FactorPasskey, rq.client); err != nil {
		return err
	}
	return p.startSession(w, r, account, event.FactorPasskey, []string{event.FactorPasskey}, true)
}

// startSession asks the guard about the login and, if allowed, starts a
// session, notifies the customer and answers with where to go next.
func (p *Portal) startSession(w http.ResponseWriter, r *http.Request, account, method string, factors []string, asJSON bool) error {
	rq := getReq(r)
	ctx := r.Context()
	strength := identity.Proved(factors)
	sid := session.NewID()
	d, err := p.cfg.Identity.Login(ctx, account, sid, method, factors, true, rq.client)
	if err != nil {
		p.cfg.Identity.Record(ctx, account, method, factors, false, "guard_unavailable", rq.client, "")
		return reason.E("guard_unavailable.signin")
	}
	switch d.Action {
	case event.Deny, event.Hold:
		p.cfg.Identity.Record(ctx, account, method, factors, false, "guard_"+d.Action, rq.client, "")
		return reason.E("denied.signin")
	case event.Challenge:
		f, err := p.cfg.Identity.Factors(ctx, account)
		if err != nil {
			return err
		}
		switch out := identity.LoginChallenge(d.Factor, strength, f); out {
		case "guard_wants_passkey":
			p.cfg.Identity.Record(ctx, account, method, factors, false, out, rq.client, "")
			return reason.E("step_up_required.signin_passkey")
		case "guard_wants_mfa":
			p.cfg.Identity.Record(ctx, account, method, factors, false, out, rq.client, "")
			return reason.E("step_up_required.signin_code")
		}
	}
	s, err := p.cfg.Sessions.Create(ctx, sid, account, strength, factors, rq.client)
	if err != nil {
		return err
	}
	p.cfg.Identity.Record(ctx, account, method, factors, true, "signed_in", rq.client, s.ID)
	names := []string{}
	a, _ := p.cfg.Identity.LookupAccount(ctx, nil, account)
	loc := "ja"
	if a != nil {
		loc = a.Locale
	}
	for _, f := range factors {
		names = append(names, identity.FactorName(f, loc))
	}
	p.cfg.Identity.Notify(ctx, nil, account, notify.KindSignIn, rq.client, map[string]string{"Factor": strings.Join(names, " + ")})
	p.setSession(w, s)
	clearCookie(w, p.cfg.Secure, "kabuto_pending")
	next := "/portal/home"
	if f, err := p.cfg.Identity.Factors(ctx, account); err == nil && f.Passkeys == 0 {
		next = "/portal/security?enrol=1"
	}
	if asJSON {
		writeJSON(w, http.StatusOK, map[string]any{"redirect": next})
	} else {
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
	return nil
}

func clearCookie(w http.ResponseWriter, secure bool, name string) {
	setCookie(w, secure, name, "", -1)
}

// signed makes a short-lived token for kind and account, bound to the
// browser's device cookie.
func (p *Portal) signed(kind, account, device string, ttl time.Duration) string {
	body := fmt.Sprintf("%s|%s|%d", kind, account, p.cfg.Identity.Now().Add(ttl).Unix())
	m := hmac.New(sha256.New, p.cfg.Key)
	m.Write([]byte(body + "|" + device))
	return base64.RawURLEncoding.EncodeToString([]byte(body)) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (p *Portal) verifySigned(kind, tok, device string) (string, bool) {
	b, sig, ok := strings.Cut(tok, ".")
	if !ok || len(tok) > 300 {
		return "", false
	}
	body, err1 := base64.RawURLEncoding.DecodeString(b)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return "", false
	}
	m := hmac.New(sha256.New, p.cfg.Key)
	m.Write([]byte(string(body) + "|" + device))
	if !hmac.Equal(mac, m.Sum(nil)) {
		return "", false
	}
	parts := strings.Split(string(body), "|")
	if len(parts) != 3 || parts[0] != kind {
		return "", false
	}
	var exp int64
	fmt.Sscan(parts[2], &exp)
	if p.cfg.Identity.Now().Unix() > exp {
		return "", false
	}
	return parts[1], true
}

// passwordSignin checks the password; the second factor follows.
func (p *Portal) passwordSignin(w http.ResponseWriter, r *http.Request) error {
	rq := getReq(r)
	ctx := r.Context()
	account := strings.ToUpper(strings.TrimSpace(r.PostFormValue("account")))
	pw := r.PostFormValue("password")
	if account == "" || len(account) > 20 || pw == "" {
		return p.signinError(w, r, reason.E("unauthenticated.signin_fields").Text(rq.lang))
	}
	if err := p.cfg.Identity.CheckPassword(ctx, account, pw, rq.client); err != nil {
		if e := reason.As(err); e != nil {
			// Only a password checked and found wrong is a failed sign-in
			// for the guard: one refused unchecked (throttled, locked)
			// tested nothing, and anyone can make those.
			if identity.WrongPassword(err) {
				p.cfg.Identity.Login(ctx, account, "", event.FactorPassword, nil, false, rq.client)
			}
			return p.signinError(w, r, e.Text(rq.lang))
		}
		return err
	}
	f, err := p.cfg.Identity.Factors(ctx, account)
	if err != nil {
		return err
	}
	if err := p.cfg.Identity.CheckSelfLock(ctx, account, identity.Op{Kind: "signin"}); err != nil && !identity.IsSelfLocked(err) {
		return err
	} else if err != nil {
		p.cfg.Identity.Record(ctx, account, event.FactorPassword, []string{event.FactorPassword}, false, "self_locked", rq.client, "")
		return p.signinError(w, r, reason.E("account_locked.signin").Text(rq.lang))
	}
	if f.Passkeys > 0 && p.cfg.Policy.SignIn == session.StrengthPhishingResistant {
		// A passkey customer signs in with the passkey: a password and a
		// code can be relayed by a phishing site, a passkey cannot.
		p.cfg.Identity.Record(ctx, account, event.FactorPassword, []string{event.FactorPassword}, false, "passkey_required", rq.client, "")
		return p.signinError(w, r, reason.E("step_up_required.passkey_signin").Text(rq.lang))
	}
	setCookie(w, p.cfg.Secure, "kabuto_pending", p.signed("pending", account, rq.device, 5*time.Minute), 5*time.Minute)
	if !f.TOTP {
		if _, err := p.cfg.Identity.SendCodeBy(ctx, account, "signin:"+rq.device, localize("ログイン / sign-in", rq.lang), p.try(rq)); err != nil {
			return err
		}
	}
	http.Redirect(w, r, "/portal/signin/second", http.StatusSeeOther)
	return nil
}

func (p *Portal) signinError(w http.ResponseWriter, r *http.Request, msg string) error {
	w.WriteHeader(http.StatusUnauthorized)
	p.render(w, r, "signin", map[string]any{"Error": localize(msg, getReq(r).lang), "Deadline": p.cfg.Policy.Deadline,
		"Account": strings.ToUpper(strings.TrimSpace(r.PostFormValue("account")))})
	return nil
}

func (p *Portal) pending(r *http.Request) (string, bool) {
	rq := getReq(r)
	c, err := r.Cookie(session.CookieName(p.cfg.Secure, "kabuto_pending"))
	if err != nil {
		return "", false
	}
	return p.verifySigned("pending", c.Value, rq.device)
}

func (p *Portal) secondPage(w http.ResponseWriter, r *http.Request) error {
	account, ok := p.pending(r)
	if !ok {
		http.Redirect(w, r, "/portal/signin", http.StatusSeeOther)
		return nil
	}
	f, err := p.cfg.Identity.Factors(r.Context(), account)
	if err != nil {
		return err
	}
	method := r.URL.Query().Get("method")
	if method == "" {
		method = event.FactorEmailOTP
		if f.TOTP {
			method = event.FactorTOTP
		}
	}
	p.render(w, r, "second", map[string]any{"Factors": f, "Method": method, "Error": r.URL.Query().Get("e"), "Deadline": p.cfg.Policy.Deadline})
	return nil
}

// secondFactor checks the TOTP or email code of a pending sign-in.
func (p *Portal) secondFactor(w http.ResponseWriter, r *http.Request) error {
	rq := getReq(r)
	ctx := r.Context()
	account, ok := p.pending(r)
	if !ok {
		http.Redirect(w, r, "/portal/signin", http.StatusSeeOther)
		return nil
	}
	method := r.PostFormValue("method")
	if r.PostFormValue("send") != "" {
		if _, err := p.cfg.Identity.SendCodeBy(ctx, account, "signin:"+rq.device, localize("ログイン / sign-in", rq.lang), p.try(rq)); err != nil {
			return err
		}
		http.Redirect(w, r, "/portal/signin/second?method=email_otp", http.StatusSeeOther)
		return nil
	}
	code := strings.TrimSpace(r.PostFormValue("code"))
	var err error
	switch method {
	case event.FactorTOTP:
		err = p.cfg.Identity.VerifyTOTPBy(ctx, account, code, p.try(rq))
	default:
		method = event.FactorEmailOTP
		err = p.cfg.Identity.VerifyCodeBy(ctx, account, "signin:"+rq.device, code, p.try(rq))
	}
	factors := []string{event.FactorPassword, method}
	if err != nil {
		p.cfg.Identity.Record(ctx, account, event.FactorPassword, []string{event.FactorPassword}, false, "wrong_code", rq.client, "")
		p.cfg.Identity.Login(ctx, account, "", event.FactorPassword, []string{event.FactorPassword}, false, rq.client)
		http.Redirect(w, r, "/portal/signin/second?method="+method+"&e="+urlq(reason.As(err).Text(rq.lang)), http.StatusSeeOther)
		return nil
	}
	return p.startSession(w, r, account, event.FactorPassword, factors, false)
}

func urlq(s string) string {
	return strings.NewReplacer("%", "%25", "&", "%26", "#", "%23", "+", "%2B", " ", "+", "?", "%3F").Replace(s)
}

func (p *Portal) signout(w http.ResponseWriter, r *http.Request) error {
	rq := getReq(r)
	if rq.sess != nil {
		p.cfg.Sessions.Revoke(r.Context(), rq.sess.Account, rq.sess.ID)
	}
	clearCookie(w, p.cfg.Secure, "kabuto_sid")
	http.Redirect(w, r, "/portal/signin?out=1", http.StatusSeeOther)
	return nil
}

func (p *Portal) signupPage(w http.ResponseWriter, r *http.Request) error {
	p.render(w, r, "signup", map[string]any{})
	return nil
}

// validName reports whether a display name is made of letters (any
// script), combining marks, spaces and the few marks names use (・ - '),
// at most 40 of them: no digits, dots, slashes or colons, so no link, host
// name or telephone number. Messages never show the name (they address
// the customer by account number); the portal and the console do.
func validName(name string) bool {
	n := 0
	for _, r := range name {
		n++
		if !(unicode.IsLetter(r) || unicode.Is(unicode.Mn, r) || r == ' ' || r == '\u3000' || r == '・' || r == '-' || r == '\'') {
			return false
		}
	}
	return n > 0 && n <= 40
}

// signup opens an account with a password and confirms the email
// address with a code; the customer then enrols a passkey. It is
// throttled per client, network and email address, so it cannot be used
// to send mail to anyone's address at will.
func (p *Portal) signup(w http.ResponseWriter, r *http.Request) error {
	rq := getReq(r)
	ctx := r.Context()
	f := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	name, email, phone, bank, pw := f("name"), f("email"), f("phone"), f("bank"), r.PostFormValue("password")
	fail := func(msg string) error {
		w.WriteHeader(http.StatusBadRequest)
		p.render(w, r, "signup", map[string]any{"Error": localize(msg, rq.lang), "Name": name, "Email": email, "Phone": phone, "Bank": bank})
		return nil
	}
	if name == "" || len(name) > 100 || !strings.Contains(email, "@") || len(email) > 200 || phone == "" || len(phone) > 30 || bank == "" || len(bank) > 100 {
		return fail(reason.E("invalid_field.signup_fields").Text(rq.lang))
	}
	if !validName(name) {
		return fail(reason.E("invalid_field.signup_name").Text(rq.lang))
	}
	if err := p.cfg.Identity.Anonymous(ctx, "signup", p.cfg.Broker.Hash("email", email), rq.client); err != nil {
		if e := reason.As(err); e != nil {
			w.WriteHeader(e.HTTPStatus())
			p.render(w, r, "signup", map[string]any{"Error": e.Text(rq.lang), "Name": name, "Email": email, "Phone": phone, "Bank": bank})
			return nil
		}
		return err
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(9_000_000))
	account := fmt.Sprintf("N%07d", 1_000_000+n.Int64())
	if err := identity.CheckPassword(pw, account, email); err != nil {
		return fail(reason.As(err).Text(rq.lang))
	}
	hash, err := p.cfg.Identity.HashPassword(ctx, pw)
	if err != nil {
		return err
	}
	loc := rq.lang
	if err := p.cfg.Broker.OpenAccount(ctx, broker.NewAccount{ID: account, Name: name, Locale: loc, Email: email, Phone: phone, Bank: bank,
		CashJPY: p.cfg.SignUpCash, Factors: []string{event.FactorPassword, event.FactorEmailOTP}}); err != nil {
		return err
	}
	if err := p.cfg.Identity.Enrol(ctx, nil, account, "", hash); err != nil {
		return err
	}
	if _, err := p.cfg.Identity.SendCodeBy(ctx, account, "signin:"+rq.device, localize("口座開設のメールアドレス確認 / confirming your email address", rq.lang), p.try(rq)); err != nil {
		return err
	}
	setCookie(w, p.cfg.Secure, "kabuto_pending", p.signed("pending", account, rq.device, 10*time.Minute), 10*time.Minute)
	http.Redirect(w, r, "/portal/signin/second?method=email_otp&new="+account, http.StatusSeeOther)
	return nil
}

func (p *Portal) lockPage(w http.ResponseWriter, r *http.Request) error {
	p.render(w, r, "lock", map[string]any{})
	return nil
}

// lockWithoutSignin stops all trading and sign-in from the sign-in page:
// the account number plus a registered email or phone number. It is
// throttled per client, network and account number; the answer is the
// same whether or not the account exists, the contact matches or a limit
// refused it, and a lock already set sends no second message.
func (p *Portal) lockWithoutSignin(w http.ResponseWriter, r *http.Request) error {
	rq := getReq(r)
	ctx := r.Context()
	account := strings.ToUpper(strings.TrimSpace(r.PostFormValue("account")))
	contact := strings.TrimSpace(r.PostFormValue("contact"))
	if account != "" && contact != "" && len(account) <= 20 && len(contact) <= 200 {
		// The lock is set before the answer, so that "done" is true when
		// the customer reads it; its timing may tell a matching contact
		// from another, within the limits (a few tries per account a day).
		if err := p.cfg.Identity.Anonymous(ctx, "selflock", account, rq.client); err == nil {
			if p.cfg.Identity.MatchContact(ctx, account, p.cfg.Broker.Hash, contact) {
				err := p.cfg.Identity.SetSelfLock(ctx, account, identity.LockTradingAndLogin, "signin-page", rq.client, func(tx *sql.Tx) error {
					return p.cfg.Sessions.RevokeAll(ctx, tx, account, "")
				})
				if err != nil {
					return err
				}
			}
		} else if reason.As(err) == nil {
			return err
		}
	}
	p.render(w, r, "lock", map[string]any{"Done": true})
	return nil
}

func (p *Portal) unlockPage(w http.ResponseWriter, r *http.Request) error {
	p.render(w, r, "unlock", map[string]any{})
	return nil
}

// unlockWithCode re-verifies a customer without a passkey: a code sent to
// the registered email, plus the authenticator app when there is one. It
// clears the password lock and a self-lock. "Send me a code" is throttled
// per client, network and account number (and the codes per account), and
// answers with the same page, before the account is even looked up,
// whether or not the account exists or has an authenticator app.
func (p *Portal) unlockWithCode(w http.ResponseWriter, r *http.Request) error {
	rq := getReq(r)
	ctx := r.Context()
	account := strings.ToUpper(strings.TrimSpace(r.PostFormValue("account")))
	if len(account) > 20 {
		account = account[:20]
	}
	data := map[string]any{"Account": account}
	if r.PostFormValue("send") != "" {
		if account != "" {
			if err := p.cfg.Identity.Anonymous(ctx, "unlock", account, rq.client); err == nil {
				try, purpose := p.try(rq), localize("ロックの解除 / unlocking your account", rq.lang)
				p.later(ctx, func(ctx context.Context) error {
					f, err := p.cfg.Identity.Factors(ctx, account)
					if err != nil || f.Passkeys > 0 {
						return nil
					}
					_, err = p.cfg.Identity.SendCodeBy(ctx, account, "unlock:"+try.Session, purpose, try)
					if reason.As(err) != nil {
						return nil
					}
					return err
				})
			} else if reason.As(err) == nil {
				return err
			}
		}
		data["Sent"] = true
		p.render(w, r, "unlock", data)
		return nil
	}
	f, err := p.cfg.Identity.Factors(ctx, account)
	bad := func() error {
		data["Sent"], data["Error"] = true, reason.E("unauthenticated.unlock").Text(rq.lang)
		w.WriteHeader(http.StatusUnauthorized)
		p.render(w, r, "unlock", data)
		return nil
	}
	// The code is checked (and counted) for unknown accounts too, so the
	// answer takes as long.
	codeErr := p.cfg.Identity.VerifyCodeBy(ctx, account, "unlock:"+rq.device, r.PostFormValue("code"), p.try(rq))
	if err != nil || f.Passkeys > 0 || codeErr != nil {
		return bad()
	}
	factor := event.FactorEmailOTP
	if f.TOTP {
		if err := p.cfg.Identity.VerifyTOTPBy(ctx, account, r.PostFormValue("totp"), p.try(rq)); err != nil {
			return bad()
		}
		factor = event.FactorTOTP
	}
	if err := p.cfg.Identity.Unlock(ctx, account, factor, rq.client); err != nil {
		return err
	}
	if scope, _, _ := p.cfg.Identity.SelfLock(ctx, account); scope != 0 {
		if err := p.cfg.Identity.ClearSelfLock(ctx, account, factor, rq.client); err != nil {
			return err
		}
	}
	data["Done"] = true
	p.render(w, r, "unlock", data)
	return nil
}

func (p *Portal) mailbox(w http.ResponseWriter, r *http.Request) error {
	if !p.demo.Load() {
		return reason.E(reason.NotFound)
	}
	msgs, err := notify.Messages(r.Context(), p.cfg.DB, strings.TrimSpace(r.URL.Query().Get("account")), 100)
	if err != nil {
		return err
	}
	p.render(w, r, "mailbox", map[string]any{"Messages": msgs, "Filter": r.URL.Query().Get("account")})
	return nil
}
