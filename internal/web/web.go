// Package web is the customer portal, in Japanese and English: sign-in
// (passkey first, with autofill; password plus a second factor for
// customers still in interim mode), sign-up, passkey enrolment, security
// settings (factors, sessions, self-lock, sign-in history with device and
// place), portfolio, order entry, withdrawal and bank and contact changes
// with the step-up ceremony in the page, and the self-lock a customer can
// reach from the sign-in page without signing in.
//
// Pages are html/template with one static script (no inline script, so the
// Content-Security-Policy allows scripts from this origin only). Every
// POST carries a CSRF token bound to the browser's device cookie and
// session, and must come from an allowed origin.
package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kabuto-sec/kabuto/internal/assurance"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/identity"
	"github.com/kabuto-sec/kabuto/internal/netinfo"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/session"
	"github.com/kabuto-sec/kabuto/internal/store"
)

//go:embed templates/*.html static/*
var assets embed.FS

// Policy says which strength each action needs. Orders need what the
// guard asks for. Which proof meets which need is the one step-up rule
// (assurance.Rule): a customer without a passkey may approve a withdrawal
// with a one-time code until Deadline, and is guided to enrol a passkey
// for anything that needs one.
type Policy struct {
	SignIn, Withdrawal, BankChange, ContactChange, FactorChange string
	// Deadline is when passkeys become mandatory for withdrawals (the
	// step-up rule's PasskeyDeadline, which New gives the brokerage too);
	// zero: they are already.
	Deadline time.Time
	// Fresh is how long a proof counts as fresh for authenticator
	// changes (default 5 min).
	Fresh time.Duration
}

// DefaultPolicy follows the JSDA guideline of October 2025, with no
// interim: set Deadline for one.
func DefaultPolicy() Policy {
	pr := session.StrengthPhishingResistant
	return Policy{SignIn: pr, Withdrawal: pr, BankChange: pr, ContactChange: pr, FactorChange: pr, Fresh: 5 * time.Minute}
}

// Config configures the portal.
type Config struct {
	DB       *store.DB
	Broker   *broker.Broker
	Identity *identity.Service
	Sessions *session.Store
	Net      *netinfo.Table // nil: netinfo.Builtin()
	Log      *slog.Logger
	Policy   Policy
	// Secure marks cookies Secure and names them with the __Host- prefix;
	// set it whenever the portal is served over TLS.
	Secure bool
	// ClientIPHeader, when set, names a header holding the client's
	// address (e.g. X-Forwarded-For from a trusted proxy); the first
	// address in it is used.
	ClientIPHeader string
	// Key signs CSRF tokens (32 random bytes if nil).
	Key []byte
	// Demo shows the mailbox page, fills sign-up with demo money, and
	// offers the demo's hints.
	Demo bool
	// SignUpCash is the opening cash of accounts opened in the portal.
	SignUpCash int64
	// Reopened, when set, is the back office's word on accounts reopened
	// after a freeze: until such an account enrols a passkey afresh, its
	// signed-in customer can do nothing else.
	Reopened Reopened
}

// Reopened tells whether an account reopened after a freeze still owes a
// fresh passkey, and hears that it enrolled one (cases.Service).
type Reopened interface {
	FreshPasskeyDue(ctx context.Context, account string) (bool, error)
	PasskeyEnrolled(ctx context.Context, account string) error
}

// freshPasskeyPaths are what a reopened account owing a fresh passkey may
// still reach: the security page and its passkey enrolment, signing out,
// and the pages that need no account.
var freshPasskeyPaths = map[string]bool{
	"/portal/security": true, "/portal/api/passkeys/begin": true, "/portal/api/passkeys/finish": true,
	"/portal/signout": true, "/portal/mailbox": true, "/portal/genuine": true,
}

// owesFreshPasskey reports whether rq's account was reopened after a
// freeze and must enrol a passkey afresh before anything else. A back
// office that cannot answer is taken as a yes: the account was frozen.
func (p *Portal) owesFreshPasskey(r *http.Request, rq *req) (bool, error) {
	if rq.sess == nil || p.cfg.Reopened == nil || freshPasskeyPaths[r.URL.Path] || strings.HasPrefix(r.URL.Path, "/portal/signin") {
		return false, nil
	}
	return p.cfg.Reopened.FreshPasskeyDue(r.Context(), rq.sess.Account)
}

// Portal is the customer portal.
type Portal struct {
	cfg  Config
	tmpl *template.Template
	demo atomic.Bool
	bg   sync.WaitGroup
	// hold, when set (tests), runs before every piece of deferred work.
	hold func()
}

// later runs fn after the answer, off the request: the work of anonymous
// endpoints that depends on whether an account exists (looking it up,
// sending its mail, locking it), so that neither the answer nor its
// timing depends on it.
func (p *Portal) later(ctx context.Context, fn func(ctx context.Context) error) {
	ctx = context.WithoutCancel(ctx)
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		if p.hold != nil {
			p.hold()
		}
		if err := fn(ctx); err != nil {
			p.cfg.Log.ErrorContext(ctx, "portal deferred work failed", "err", err)
		}
	}()
}

// Wait waits for the work deferred by anonymous endpoints (mail sent,
// self-locks set after the answer).
func (p *Portal) Wait() { p.bg.Wait() }

// try is who makes an attempt at a code in rq: the session, or before
// sign-in the browser's device id, and the client.
func (p *Portal) try(rq *req) identity.Try {
	t := identity.Try{Session: "dev:" + rq.device, Client: rq.client}
	if rq.sess != nil {
		t.Session = rq.sess.ID
	}
	return t
}

// SetDemo turns the demo's mailbox page and hints on or off.
func (p *Portal) SetDemo(on bool) { p.demo.Store(on) }

// New returns a Portal.
func New(c Config) (*Portal, error) {
	if c.Net == nil {
		c.Net = netinfo.Builtin()
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Policy.SignIn == "" {
		c.Policy = DefaultPolicy()
	}
	if c.Policy.Fresh == 0 {
		c.Policy.Fresh = 5 * time.Minute
	}
	if len(c.Key) == 0 {
		c.Key = make([]byte, 32)
		rand.Read(c.Key)
	}
	fm := template.FuncMap{"iname": func(symbol, fallback, lang string) string {
		return (&Portal{cfg: c}).instrumentName(symbol, fallback, lang)
	}}
	t, err := template.New("").Funcs(funcs).Funcs(fm).ParseFS(assets, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &Portal{cfg: c, tmpl: t}
	p.demo.Store(c.Demo)
	// The brokerage checks every step-up, from any channel, by the same
	// rule the portal runs its ceremonies by.
	if c.Broker != nil && c.Identity != nil {
		c.Broker.SetStepUpRule(p.rule(), c.Identity.HasPasskey)
	}
	return p, nil
}

// rule is the step-up rule.
func (p *Portal) rule() assurance.Rule {
	return assurance.Rule{PasskeyDeadline: p.cfg.Policy.Deadline}
}

// handler is a handler that returns its error to one place.
type handler func(w http.ResponseWriter, r *http.Request) error

// Register adds the portal's routes to mux.
func (p *Portal) Register(mux *http.ServeMux) {
	h := func(pattern string, fn handler) { mux.Handle(pattern, p.wrap(fn)) }
	h("GET /portal", p.root)
	h("GET /portal/{$}", p.root)
	h("GET /portal/signin", p.signinPage)
	h("POST /portal/signin/passkey/begin", p.passkeyBegin)
	h("POST /portal/signin/passkey/finish", p.passkeyFinish)
	h("POST /portal/signin/unlock", p.signinUnlock)
	h("POST /portal/signin/password", p.passwordSignin)
	h("GET /portal/signin/second", p.secondPage)
	h("POST /portal/signin/second", p.secondFactor)
	h("POST /portal/signout", p.signout)
	h("GET /portal/signup", p.signupPage)
	h("POST /portal/signup", p.signup)
	h("GET /portal/lock", p.lockPage)
	h("POST /portal/lock", p.lockWithoutSignin)
	h("GET /portal/unlock", p.unlockPage)
	h("POST /portal/unlock", p.unlockWithCode)
	h("GET /portal/home", p.home)
	h("GET /portal/trade", p.tradePage)
	h("GET /portal/withdraw", p.withdrawPage)
	h("GET /portal/bank", p.bankPage)
	h("GET /portal/security", p.securityPage)
	h("POST /portal/api/order", p.apiOrder)
	h("POST /portal/api/order/quote", p.apiOrderQuote)
	h("POST /portal/api/withdraw", p.apiWithdraw)
	h("POST /portal/api/bank", p.apiBank)
	h("POST /portal/api/contact", p.apiContact)
	h("POST /portal/api/step-up", p.apiStepUp)
	h("POST /portal/api/passkeys/begin", p.apiPasskeyBegin)
	h("POST /portal/api/passkeys/finish", p.apiPasskeyFinish)
	h("POST /portal/api/passkeys/remove", p.apiPasskeyRemove)
	h("POST /portal/api/totp/begin", p.apiTOTPBegin)
	h("POST /portal/api/totp/confirm", p.apiTOTPConfirm)
	h("POST /portal/api/sessions/revoke", p.apiRevoke)
	h("POST /portal/api/lock", p.apiLock)
	h("POST /portal/api/unlock", p.apiUnlock)
	h("POST /portal/api/unlock-password", p.apiUnlockPassword)
	h("GET /portal/mailbox", p.mailbox)
	p.registerGenuine(h)
	mux.Handle("GET /portal/static/", http.StripPrefix("/portal/", http.FileServerFS(assets)))
}

// securityHeaders are the portal's headers on every response.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), publickey-credentials-get=(self), publickey-credentials-create=(self)")
	h.Set("Cache-Control", "no-store")
}

// req is the per-request state.
type req struct {
	device string
	client session.Client
	sess   *session.Session // nil when signed out
	lang   string
}

type reqKey struct{}

func (p *Portal) wrap(fn handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		rq := &req{lang: lang(r)}
		if l := r.URL.Query().Get("lang"); l == "en" || l == "ja" {
			// The language the customer picked holds on every page after.
			http.SetCookie(w, &http.Cookie{Name: "kabuto_lang", Value: l, Path: "/", MaxAge: 365 * 86400, SameSite: http.SameSiteLaxMode, Secure: p.cfg.Secure, HttpOnly: true})
		}
		if c, err := r.Cookie(session.CookieName(p.cfg.Secure, "kabuto_dev")); err == nil && len(c.Value) >= 16 && len(c.Value) <= 64 {
			rq.device = c.Value
		} else {
			var b [16]byte
			rand.Read(b[:])
			rq.device = "d" + hex.EncodeToString(b[:])
			setCookie(w, p.cfg.Secure, "kabuto_dev", rq.device, 400*24*time.Hour)
		}
		rq.client = p.clientOf(r, rq.device)
		if c, err := r.Cookie(session.CookieName(p.cfg.Secure, "kabuto_sid")); err == nil {
			s, err := p.cfg.Sessions.Lookup(r.Context(), c.Value, rq.client)
			if err == nil {
				rq.sess = s
			} else if !errors.Is(err, session.ErrNone) && !errors.Is(err, session.ErrExpired) {
				p.fail(w, r, rq, err)
				return
			}
		}
		r = r.WithContext(context.WithValue(r.Context(), reqKey{}, rq))
		if r.Method == http.MethodPost {
			if err := p.checkCSRF(r, rq); err != nil {
				p.fail(w, r, rq, err)
				return
			}
		}
		if owes, err := p.owesFreshPasskey(r, rq); owes || err != nil {
			if err != nil {
				p.cfg.Log.ErrorContext(r.Context(), "could not read whether a fresh passkey is due", "account", rq.sess.Account, "err", err)
			}
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/portal/security?done=fresh_passkey", http.StatusSeeOther)
				return
			}
			p.fail(w, r, rq, reason.E(ReasonFreshPasskey))
			return
		}
		if err := fn(w, r); err != nil {
			p.fail(w, r, rq, err)
		}
	})
}

// ReasonFreshPasskey refuses the actions of a reopened account until it
// enrols a passkey afresh.
const ReasonFreshPasskey = "fresh_passkey_required"

func getReq(r *http.Request) *req { return r.Context().Value(reqKey{}).(*req) }

func lang(r *http.Request) string {
	if l := r.URL.Query().Get("lang"); l == "en" || l == "ja" {
		return l
	}
	if c, err := r.Cookie("kabuto_lang"); err == nil && (c.Value == "en" || c.Value == "ja") {
		return c.Value
	}
	al := strings.ToLower(r.Header.Get("Accept-Language"))
	if strings.HasPrefix(al, "en") {
		return "en"
	}
	return "ja"
}

// clientOf returns the device and network context of r.
func (p *Portal) clientOf(r *http.Request, device string) session.Client {
	ip := ""
	if p.cfg.ClientIPHeader != "" {
		v, _, _ := strings.Cut(r.Header.Get(p.cfg.ClientIPHeader), ",")
		if a := net.ParseIP(strings.TrimSpace(v)); a != nil {
			ip = a.String()
		}
	}
	if ip == "" {
		ip, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	c := session.Client{IP: ip, Network: session.NetworkOf(ip), UA: truncate(r.UserAgent(), 300), Device: device}
	if info, ok := p.cfg.Net.Lookup(ip); ok {
		c.ASN, c.Country = info.ASN, info.Country
	}
	return c
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// csrfToken is the CSRF token of a browser (device cookie) and session.
func (p *Portal) csrfToken(rq *req) string {
	m := hmac.New(sha256.New, p.cfg.Key)
	m.Write([]byte("csrf\x00" + rq.device + "\x00"))
	if rq.sess != nil {
		m.Write([]byte(rq.sess.ID))
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var errCSRF = reason.E("forbidden.page_expired")

func (p *Portal) checkCSRF(r *http.Request, rq *req) error {
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		_, origins := p.cfg.Identity.Origins()
		ok := false
		for _, a := range origins {
			ok = ok || a == o
		}
		if !ok {
			return errCSRF
		}
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		return errCSRF
	}
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" {
		tok = r.PostFormValue("csrf")
	}
	if !hmac.Equal([]byte(tok), []byte(p.csrfToken(rq))) {
		return errCSRF
	}
	return nil
}

// isJSON reports whether the request wants a JSON answer.
func isJSON(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/portal/api/") || strings.HasSuffix(r.URL.Path, "/begin") || strings.HasSuffix(r.URL.Path, "/finish") || strings.HasSuffix(r.URL.Path, "/signin/unlock")
}

// fail is the one place errors become responses.
func (p *Portal) fail(w http.ResponseWriter, r *http.Request, rq *req, err error) {
	e := reason.As(err)
	if e == nil {
		if errors.Is(err, context.Canceled) {
			return
		}
		p.cfg.Log.ErrorContext(r.Context(), "portal request failed", "path", r.URL.Path, "err", err)
		e = reason.E(reason.Internal)
	}
	msg := capital(e.Text(rq.lang))
	if isJSON(r) {
		writeJSON(w, e.HTTPStatus(), map[string]any{"error": e.Code, "message": msg})
		return
	}
	w.WriteHeader(e.HTTPStatus())
	p.render(w, r, "error", map[string]any{"Message": msg, "Code": e.Code})
}

// localize picks one side of a "日本語 / English" message.
func localize(msg, lang string) string {
	ja, en, ok := strings.Cut(msg, " / ")
	if !ok {
		return msg
	}
	if lang == "en" {
		return capital(en)
	}
	return ja
}

// capital starts an English sentence with a capital letter.
func capital(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// readJSON strictly decodes a small JSON body into v.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 128<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return reason.E(reason.BadRequest)
	}
	if dec.More() {
		return reason.E(reason.BadRequest)
	}
	return nil
}

// page is what every template gets.
type page struct {
	Lang    string
	CSRF    string
	Session *session.Session
	Account *broker.Account
	Path    string
	Demo    bool
	Data    map[string]any
}

// T picks the Japanese or English text.
func (pg *page) T(ja, en string) string {
	if pg.Lang == "en" {
		return en
	}
	return ja
}

// EN reports whether the page is in English.
func (pg *page) EN() bool { return pg.Lang == "en" }

func (p *Portal) render(w http.ResponseWriter, r *http.Request, name string, data map[string]any) {
	rq := getReq(r)
	pg := &page{Lang: rq.lang, CSRF: p.csrfToken(rq), Session: rq.sess, Path: r.URL.Path, Demo: p.demo.Load(), Data: data}
	if rq.sess != nil {
		if a, err := p.cfg.Broker.Account(r.Context(), rq.sess.Account); err == nil {
			pg.Account = a
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := p.tmpl.ExecuteTemplate(w, name, pg); err != nil {
		p.cfg.Log.ErrorContext(r.Context(), "template", "name", name, "err", err)
	}
}

var funcs = template.FuncMap{
	"yen": func(v int64) string { return "¥" + commas(v) },
	"num": func(v int64) string { return commas(v) },
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.In(clock.JST).Format("2006-01-02 15:04")
	},
	"date":    func(t time.Time) string { return t.In(clock.JST).Format("2006-01-02") },
	"device":  identity.DeviceText,
	"place":   identity.PlaceText,
	"scope":   identity.ScopeText,
	"factor":  identity.FactorName,
	"factors": factorsText,
	"word":    word,
	"mask":    broker.MaskBank,
	"price":   price,
	"seq": func(a, b int) []int {
		var s []int
		for i := a; i <= b; i++ {
			s = append(s, i)
		}
		return s
	},
}

func commas(v int64) string {
	neg := v < 0
	if neg {
		v = -v
	}
	s := []byte{}
	d := []byte(itoa(v))
	for i := range d {
		if i > 0 && (len(d)-i)%3 == 0 {
			s = append(s, ',')
		}
		s = append(s, d[i])
	}
	if neg {
		return "-" + string(s)
	}
	return string(s)
}

func itoa(v int64) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}

// actor builds the brokerage actor of a signed-in request.
func (p *Portal) actor(rq *req) broker.Actor {
	c := rq.client
	return broker.Actor{Principal: "session:" + rq.sess.ID, Session: rq.sess.ID, IP: c.IP, ASN: c.ASN, Country: c.Country,
		Device: c.Device, UA: c.UA, Channel: event.ChannelWeb}
}

var errSignIn = reason.E(reason.Unauthenticated)

// signedIn returns the request state of a signed-in request, or an error.
func signedIn(r *http.Request) (*req, error) {
	rq := getReq(r)
	if rq.sess == nil {
		return nil, errSignIn
	}
	return rq, nil
}

// setSession sends s's (new) token as the session cookie.
func (p *Portal) setSession(w http.ResponseWriter, s *session.Session) {
	if s.Token != "" {
		setCookie(w, p.cfg.Secure, "kabuto_sid", s.Token, 0)
	}
}
