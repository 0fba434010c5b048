package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/kabuto-sec/kabuto/internal/analyst"
	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/cases"
	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

//go:embed templates/*.html
var templates embed.FS

// Alerts gives the stored alerts.
type Alerts interface {
	Alerts(ctx context.Context, symbol string, since time.Time, limit int) ([]event.Alert, error)
}

// Halter lists and changes buy halts.
type Halter interface {
	Halts(ctx context.Context) (map[string]string, error)
	SetHalt(ctx context.Context, symbol string, halted bool, why string) error
}

// Reviewer lists and decides the actions the guard held for an analyst.
type Reviewer interface {
	Held(ctx context.Context, limit int) ([]broker.HeldAction, error)
	ReleaseWithdrawal(ctx context.Context, id string, approve bool) error
	ReleaseOrder(ctx context.Context, id string, approve bool) (*broker.Order, error)
}

// Config configures the console.
type Config struct {
	Review Reviewer
	Keys   *apikey.Store
	Alerts Alerts
	Halts  Halter
	// GuardHalt, when set, is told when an analyst halts or lifts a halt,
	// so the guard refuses (or again decides) buys of the symbol.
	GuardHalt func(symbol string, halted bool)
	Tape      *Tape
	Audit     *audit.Log
	Log       *slog.Logger
	Now       func() time.Time
	// CheckKey checks an API key presented at sign-in on request r (nil:
	// Keys.Check), so the server's rules for keys (the demo key on
	// loopback only) hold here too.
	CheckKey func(r *http.Request, secret string) (*apikey.Key, error)
	// DB keeps the sign-in throttle, shared by every process (nil: no
	// throttle; tests of other things only).
	DB *store.DB
	// Passkeys gives the WebAuthn relying party id and origins (the
	// portal's); nil: analysts cannot sign in with passkeys.
	Passkeys func() (rpID string, origins []string)
	// Office is the back office (cases, freezes, four-eyes); nil: no
	// case pages.
	Office *cases.Service
	// Prices gives current prices in yen for compensation proposals.
	Prices cases.Prices
}

// Console serves the analyst pages.
type Console struct {
	cfg  Config
	tmpl *template.Template

	mu         sync.Mutex
	sessions   map[string]*analystSession
	ceremonies map[string]*ceremony
}

// analystSession is a signed-in console session: an analyst by passkey
// (person and role set), or an admin API key (bootstrap; person empty).
type analystSession struct {
	key     string // API key id, when signed in with one
	name    string
	person  string // the analyst, when signed in with a passkey
	role    string
	csrf    string
	created time.Time
	seen    time.Time
}

// Session limits: NIST AAL2 allows at most 1 h of inactivity and 24 h overall.
const (
	idleLimit = 30 * time.Minute
	lifeLimit = 8 * time.Hour
	cookie    = "__Host-kabuto_console"
)

// New returns the console.
func New(cfg Config) *Console {
	if cfg.Now == nil {
		cfg.Now = clock.Real{}.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.CheckKey == nil && cfg.Keys != nil {
		cfg.CheckKey = func(r *http.Request, secret string) (*apikey.Key, error) { return cfg.Keys.Check(r.Context(), secret) }
	}
	t := template.Must(template.New("").Funcs(template.FuncMap{
		"hhmmss": func(t time.Time) string { return t.In(clock.JST).Format("15:04:05") },
		"date":   func(t time.Time) string { return t.In(clock.JST).Format("2006-01-02 15:04:05 JST") },
		"pathq":  url.PathEscape,
		"yen":    cases.Yen,
		"say":    say,
		"age":    age,
		"sayall": sayAll,
		"num": func(v any) string {
			switch n := v.(type) {
			case int64:
				return num(float64(n))
			case float64:
				return num(n)
			}
			return fmt.Sprint(v)
		},
	}).ParseFS(templates, "templates/*.html"))
	return &Console{cfg: cfg, tmpl: t, sessions: map[string]*analystSession{}, ceremonies: map[string]*ceremony{}}
}

// Mount registers the console's routes on mux.
func (c *Console) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /console", c.page(c.home))
	mux.HandleFunc("GET /console/instruments/{symbol}", c.page(c.instrument))
	mux.HandleFunc("POST /console/login", c.one(c.login))
	mux.HandleFunc("POST /console/logout", c.page(c.logout))
	mux.HandleFunc("POST /console/halts/{symbol}", c.page(c.setHalt))
	mux.HandleFunc("POST /console/held/{kind}/{id}", c.page(c.review))
	mux.HandleFunc("GET /console/mail", c.page(c.mail))
	mux.HandleFunc("GET /console/enrol", c.one(c.enrolPage))
	mux.HandleFunc("POST /console/enrol/begin", c.one(c.enrolBegin))
	mux.HandleFunc("POST /console/enrol/finish", c.one(c.enrolFinish))
	mux.HandleFunc("POST /console/passkey/begin", c.one(c.signinBegin))
	mux.HandleFunc("POST /console/passkey/finish", c.one(c.signinFinish))
	mux.HandleFunc("GET /console/static/console.js", c.script)
	c.mountCases(mux)
}

func headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Cache-Control", "no-store")
	// Not no-referrer: with it Chromium sends Origin: null on the
	// sign-in form's POST, which the origin check must refuse.
	h.Set("Referrer-Policy", "same-origin")
}

func (c *Console) render(w http.ResponseWriter, status int, name string, data any) {
	headers(w)
	w.WriteHeader(status)
	if err := c.tmpl.ExecuteTemplate(w, name, data); err != nil {
		c.cfg.Log.Error("console template", "name", name, "err", err)
	}
}

// pageFunc is a console page that returns its error to one writer.
type pageFunc func(w http.ResponseWriter, r *http.Request, a *analystSession) error

// page wraps a handler that needs a signed-in analyst; POSTs also need the
// session's CSRF token and a same-origin request (sameOrigin).
func (c *Console) page(h pageFunc) http.HandlerFunc {
	return c.one(func(w http.ResponseWriter, r *http.Request) error {
		a := c.session(r)
		if a != nil && a.person != "" && c.cfg.DB != nil {
			// A disabled analyst's sessions end at their next request.
			if _, err := analyst.Active(r.Context(), c.cfg.DB, a.person); err != nil {
				if reason.As(err) == nil {
					return err
				}
				c.endSession(r)
				a = nil
			}
		}
		if a == nil {
			c.render(w, http.StatusUnauthorized, "login.html", map[string]any{"Next": safeNext(r.URL.Path)})
			return nil
		}
		if r.Method == http.MethodPost {
			if !sameOrigin(r) {
				return errCrossOrigin
			}
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(a.csrf)) != 1 {
				return errFormExpired
			}
		}
		return h(w, r, a)
	})
}

var (
	errCrossOrigin = reason.E("forbidden.cross_origin")
	errFormExpired = reason.E("forbidden.form_expired")
)

// one serves h and writes its error, the one place console errors become
// responses: a reason error's status and message as text; anything else
// logged and answered 500 without detail.
func (c *Console) one(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		if e := reason.As(err); e != nil {
			http.Error(w, e.Text("en"), e.HTTPStatus())
			return
		}
		if errors.Is(err, context.Canceled) {
			return
		}
		c.cfg.Log.ErrorContext(r.Context(), "console", "path", r.URL.Path, "err", err)
		http.Error(w, "the console could not load this page; see the server log · ページを表示できませんでした", http.StatusInternalServerError)
	}
}

func (c *Console) session(r *http.Request) *analystSession {
	ck, err := r.Cookie(cookie)
	if err != nil {
		return nil
	}
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.sessions[ck.Value]
	if a == nil {
		return nil
	}
	if now.Sub(a.seen) > idleLimit || now.Sub(a.created) > lifeLimit {
		delete(c.sessions, ck.Value)
		return nil
	}
	a.seen = now
	return a
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) error {
	headers(w)
	if !sameOrigin(r) {
		return errCrossOrigin
	}
	client := clientOf(r)
	if wait, err := c.throttled(r.Context(), client); err != nil {
		return err
	} else if wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		c.render(w, http.StatusTooManyRequests, "login.html", map[string]any{"Error": "Too many failed sign-ins from here; wait and try again. · 失敗が続いたため、しばらくしてからお試しください。", "Next": safeNext(r.PostFormValue("next"))})
		return nil
	}
	k, err := c.cfg.CheckKey(r, r.PostFormValue("key"))
	if err != nil || !k.Has(apikey.ScopeAdmin) {
		if err := c.failed(r.Context(), client); err != nil {
			c.cfg.Log.Error("console sign-in throttle", "err", err)
		}
		c.render(w, http.StatusUnauthorized, "login.html", map[string]any{"Error": "That key is not an analyst (admin) key. · 管理者キーではありません。", "Next": safeNext(r.PostFormValue("next"))})
		return nil
	}
	id := randHex(32)
	now := c.cfg.Now()
	c.mu.Lock()
	c.sessions[id] = &analystSession{key: k.ID, name: k.Name, csrf: randHex(16), created: now, seen: now}
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookie, Value: id, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	c.audit(r.Context(), "analyst:"+k.Name, "console_login", k.ID, map[string]any{"ip": client})
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
	return nil
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, a *analystSession) error {
	c.endSession(r)
	http.SetCookie(w, &http.Cookie{Name: cookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/console", http.StatusSeeOther)
	return nil
}

func (c *Console) endSession(r *http.Request) {
	if ck, err := r.Cookie(cookie); err == nil {
		c.mu.Lock()
		delete(c.sessions, ck.Value)
		c.mu.Unlock()
	}
}

func (c *Console) audit(ctx context.Context, actor, action, subject string, detail map[string]any) {
	if c.cfg.Audit == nil {
		return
	}
	if err := c.cfg.Audit.Append(ctx, audit.Entry{Time: c.cfg.Now(), Actor: actor, Action: action, Subject: subject, Detail: detail}); err != nil {
		c.cfg.Log.Error("audit", "action", action, "err", err)
	}
}

type alertRow struct {
	event.Alert
	Accounts int
	// AtStake is the value of the orders of the alert's accounts in its
	// instrument seen on the tape (executed, held or refused).
	AtStake int64
}

// alertRows ranks alerts for triage: by severity (score), then money at
// stake, then the newest first.
func (c *Console) alertRows(as []event.Alert) []alertRow {
	rows := make([]alertRow, 0, len(as))
	orders := map[string][]order{}
	for _, al := range as {
		row := alertRow{Alert: al, Accounts: len(al.Accounts)}
		if al.Symbol != "" && c.cfg.Tape != nil {
			os, ok := orders[al.Symbol]
			if !ok {
				_, os = c.cfg.Tape.snapshot(al.Symbol)
				orders[al.Symbol] = os
			}
			named := map[string]bool{}
			for _, a := range al.Accounts {
				named[a] = true
			}
			for _, o := range os {
				if named[o.Account] {
					row.AtStake += o.Value
				}
			}
		}
		rows = append(rows, row)
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		if a.AtStake != b.AtStake {
			return a.AtStake > b.AtStake
		}
		return a.Time.After(b.Time)
	})
	return rows
}

func (c *Console) home(w http.ResponseWriter, r *http.Request, a *analystSession) error {
	ctx := r.Context()
	since := c.cfg.Now().Add(-24 * time.Hour)
	as, err := c.cfg.Alerts.Alerts(ctx, "", time.Time{}, 200)
	if err != nil {
		return err
	}
	halts, err := c.cfg.Halts.Halts(ctx)
	if err != nil {
		return err
	}
	rows := c.alertRows(as)
	symbols := map[string]int{}
	for _, al := range as {
		if al.Symbol != "" {
			symbols[al.Symbol]++
		}
	}
	type halt struct{ Symbol, Why string }
	var hs []halt
	for s, why := range halts {
		hs = append(hs, halt{s, why})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Symbol < hs[j].Symbol })
	var held []broker.HeldAction
	if c.cfg.Review != nil {
		if held, err = c.cfg.Review.Held(ctx, 200); err != nil {
			return err
		}
	}
	c.render(w, http.StatusOK, "home.html", map[string]any{"Analyst": a.label(), "CSRF": a.csrf, "Alerts": rows, "Halts": hs, "Held": held,
		"Since": since, "Now": c.cfg.Now(), "Symbols": len(symbols), "MailWarnings": c.mailWarnings(ctx),
		"Gateway": gatewayWarning(as, since)})
	return nil
}

func (c *Console) instrument(w http.ResponseWriter, r *http.Request, a *analystSession) error {
	ctx := r.Context()
	sym := r.PathValue("symbol")
	if c.cfg.Prices != nil {
		if _, ok := c.cfg.Prices(sym); !ok {
			return c.notFound(w, a, fmt.Sprintf("No instrument %q is listed. · 銘柄 %q は上場していません。", sym, sym))
		}
	}
	as, err := c.cfg.Alerts.Alerts(ctx, sym, time.Time{}, 200)
	if err != nil {
		return err
	}
	halts, err := c.cfg.Halts.Halts(ctx)
	if err != nil {
		return err
	}
	in := chartInput{Symbol: sym, Flagged: map[string]bool{}}
	in.Bars, in.Orders = c.cfg.Tape.snapshot(sym)
	for _, al := range as {
		for _, acct := range al.Accounts {
			in.Flagged[acct] = true
		}
		in.Alerts = append(in.Alerts, al.Time)
		if al.Action == event.AlertHaltBuys {
			in.Halts = append(in.Halts, al.Time)
		}
	}
	var flagged []order
	for i := len(in.Orders) - 1; i >= 0; i-- {
		if in.Flagged[in.Orders[i].Account] {
			flagged = append(flagged, in.Orders[i])
		}
	}
	why, halted := halts[sym]
	c.render(w, http.StatusOK, "instrument.html", map[string]any{"Analyst": a.label(), "CSRF": a.csrf, "Symbol": sym, "Chart": chart(in),
		"Alerts": as, "Orders": flagged, "Halted": halted, "HaltWhy": why})
	return nil
}

func (c *Console) setHalt(w http.ResponseWriter, r *http.Request, a *analystSession) error {
	sym := r.PathValue("symbol")
	if r.PostFormValue("halt") != "on" {
		return c.proposeLift(w, r, a, sym)
	}
	why := r.PostFormValue("why")
	if why == "" {
		why = "halted by analyst " + a.name
	}
	if err := c.cfg.Halts.SetHalt(r.Context(), sym, true, why); err != nil {
		return err
	}
	if c.cfg.GuardHalt != nil {
		c.cfg.GuardHalt(sym, true)
	}
	c.audit(r.Context(), "analyst:"+a.name, "halt_buys", sym, map[string]any{"why": why})
	http.Redirect(w, r, "/console/instruments/"+url.PathEscape(sym), http.StatusSeeOther)
	return nil
}

// proposeLift proposes, as the signed-in analyst, that buying of sym
// resume, confirmed with a note; a supervisor who is not the proposer
// approves it on the instrument's case. No one lifts a halt alone.
func (c *Console) proposeLift(w http.ResponseWriter, r *http.Request, a *analystSession, sym string) error {
	if c.cfg.Office == nil {
		return reason.E("four_eyes_required.lift_no_office")
	}
	if a.person == "" {
		return errPasskeyNeeded
	}
	n, err := note(r)
	if err != nil {
		return err
	}
	ap, err := c.cfg.Office.ProposeLiftHalt(r.Context(), a.person, sym, n)
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/console/cases/"+url.PathEscape(ap.Case), http.StatusSeeOther)
	return nil
}

// review approves or rejects a held action.
func (c *Console) review(w http.ResponseWriter, r *http.Request, a *analystSession) error {
	kind, id := r.PathValue("kind"), r.PathValue("id")
	approve := r.PostFormValue("decision") == "approve"
	n, err := note(r)
	if err != nil {
		return err
	}
	switch kind {
	case "withdrawal":
		if approve {
			return c.proposeRelease(w, r, a, id)
		}
		err = c.cfg.Review.ReleaseWithdrawal(r.Context(), id, false)
	case "order":
		_, err = c.cfg.Review.ReleaseOrder(r.Context(), id, approve)
	default:
		return reason.E("bad_request.unknown_action")
	}
	if err != nil {
		return err
	}
	action := kind + "_rejected"
	if approve {
		action = kind + "_approved"
	}
	who := a.name
	if a.person != "" {
		who = a.person
	}
	c.audit(r.Context(), "analyst:"+who, action, id, map[string]any{"kind": kind, "note": n})
	http.Redirect(w, r, "/console", http.StatusSeeOther)
	return nil
}

// proposeRelease proposes, as the signed-in analyst, that a held
// withdrawal be released, confirmed with a note: the money leaves only
// when a supervisor who is not the proposer approves it on the account's
// case. No one releases held money alone.
func (c *Console) proposeRelease(w http.ResponseWriter, r *http.Request, a *analystSession, id string) error {
	if c.cfg.Office == nil {
		return reason.E("four_eyes_required.release_no_office")
	}
	if a.person == "" {
		return errPasskeyNeeded
	}
	n, err := note(r)
	if err != nil {
		return err
	}
	ap, err := c.cfg.Office.ProposeRelease(r.Context(), a.person, id, n)
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/console/cases/"+url.PathEscape(ap.Case), http.StatusSeeOther)
	return nil
}

//go:embed static/console.js
var script []byte

func (c *Console) script(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(script)
}
