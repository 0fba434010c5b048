// Package identity proves who a customer is: passwords (argon2id at OWASP
// parameters, hashed in a bounded pool, common and breached-looking ones
// refused), passkeys (WebAuthn: discoverable sign-in with autofill, user
// verification required, RP ID and origin checked, sign count and backup
// flags stored), TOTP, and email one-time codes delivered through the
// notification outbox. Each factor has a strength: phishing_resistant
// (passkey), mfa (TOTP, one-time code) or password.
//
// It also keeps the lockout: consecutive wrong passwords lock password
// sign-in at a threshold (an atomic conditional UPDATE, exact under any
// concurrency), and a login history of every attempt with device and
// place. A lock from wrong passwords does not stop passkey sign-in: a
// password flood is a guessing attack on the password, and a passkey
// cannot be guessed, so an attacker who knows only an account number
// cannot lock its owner out; only passwords checked and found wrong are
// failed sign-ins for the guard (WrongPassword).
//
// Throttle is the one rate limit of the front door, with exponential
// back-off and its state in the database (shared by every process):
// password attempts per IP and network; code guesses (TOTP, emailed codes)
// per account, session and network, and per step-up ceremony, which a few
// wrong codes consume; codes emailed per account, session and network;
// and the anonymous endpoints (self-lock, unlock, sign-up) per client,
// network and target (Anonymous). Each limit has its own keys, so one an
// attacker exhausts never stops another path, passkey sign-in above all.
//
// Step-up ceremonies bind a WebAuthn challenge (or a one-time code) to one
// action: the challenge is SHA-256 over a fresh random nonce and the
// action's binding (broker.Binding), it is stored server-side and consumed
// once, within a short time, by the session that began it.
package identity

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/guard"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/session"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Strength of each factor.
func Strength(factor string) string {
	switch factor {
	case event.FactorPasskey:
		return session.StrengthPhishingResistant
	case event.FactorTOTP, event.FactorEmailOTP, event.FactorSMSOTP:
		return session.StrengthMFA
	case event.FactorPassword:
		return session.StrengthPassword
	}
	return session.StrengthNone
}

// Config configures a Service.
type Config struct {
	DB     *store.DB
	Guard  guard.Guard // asked about every login; nil: guard.AllowAll
	Outbox *notify.Outbox
	Now    func() time.Time // nil: clock.Real
	Log    *slog.Logger

	// RPID is the WebAuthn relying party id (the site's domain, e.g.
	// "kabuto.example" or "localhost"); Origins are the exact origins
	// allowed to make passkey ceremonies for it.
	RPID, RPName string
	Origins      []string

	Argon      Params // zero: OWASP
	Workers    int    // password pool workers (0: GOMAXPROCS)
	Queue      int    // password pool queue (0: 64 per worker)
	PerAccount int    // password checks in flight per account (0: 8; -1: no cap)

	LockThreshold int           // consecutive wrong passwords that lock (0: 5)
	PerIP         int           // password attempts per IP per window (0: 30)
	PerNetwork    int           // per /24 or /48 per window (0: 120)
	Window        time.Duration // throttle window (0: 5 min)
	CeremonyTTL   time.Duration // passkey and step-up ceremonies (0: 3 min)
	CodeTTL       time.Duration // email codes (0: 10 min)
	// Limits are the throttles of codes and anonymous endpoints (zero
	// fields: DefaultLimits).
	Limits Limits
	// CeremonyTries is how many codes one step-up ceremony takes before it
	// is consumed (0: 3).
	CeremonyTries int
	// LoginRecords, when true, also stores each login record in the event
	// stream (the events table), where replay and the guard find it.
	LoginRecords bool
}

// Service is the identity service.
type Service struct {
	cfg    Config
	pool   *Pool
	thr    *Throttle
	wa     *webauthn.WebAuthn
	waMu   sync.RWMutex
	dummy  string // a hash verified for unknown accounts, so timing says nothing
	logger *slog.Logger
}

// New returns a Service.
func New(c Config) (*Service, error) {
	if c.Guard == nil {
		c.Guard = guard.AllowAll{}
	}
	if c.Now == nil {
		c.Now = clock.Real{}.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Argon == (Params{}) {
		c.Argon = OWASP
	}
	if c.PerAccount == 0 {
		c.PerAccount = 8
	}
	if c.LockThreshold <= 0 {
		c.LockThreshold = 5
	}
	if c.PerIP == 0 {
		c.PerIP = 30
	}
	if c.PerNetwork == 0 {
		c.PerNetwork = 120
	}
	if c.Window == 0 {
		c.Window = 5 * time.Minute
	}
	if c.CeremonyTTL == 0 {
		c.CeremonyTTL = 3 * time.Minute
	}
	if c.CodeTTL == 0 {
		c.CodeTTL = 10 * time.Minute
	}
	if c.CeremonyTries <= 0 {
		c.CeremonyTries = 3
	}
	c.Limits.fill()
	if c.RPName == "" {
		c.RPName = "Kabuto Securities"
	}
	s := &Service{cfg: c, pool: NewPool(c.Workers, c.Queue, max(c.PerAccount, 0)), thr: NewThrottle(c.DB, c.Now), logger: c.Log}
	s.dummy = Hash("not-a-real-password", c.Argon)
	if c.RPID != "" {
		if err := s.SetOrigins(c.RPID, c.Origins); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// SetOrigins sets the relying party id and the origins passkey ceremonies
// may come from.
func (s *Service) SetOrigins(rpID string, origins []string) error {
	wa, err := webauthn.New(&webauthn.Config{RPID: rpID, RPDisplayName: s.cfg.RPName, RPOrigins: origins})
	if err != nil {
		return fmt.Errorf("identity: webauthn: %w", err)
	}
	s.waMu.Lock()
	s.wa, s.cfg.RPID, s.cfg.Origins = wa, rpID, origins
	s.waMu.Unlock()
	return nil
}

// Origins returns the relying party id and the allowed origins.
func (s *Service) Origins() (string, []string) {
	s.waMu.RLock()
	defer s.waMu.RUnlock()
	return s.cfg.RPID, s.cfg.Origins
}

func (s *Service) webauthn() (*webauthn.WebAuthn, error) {
	s.waMu.RLock()
	defer s.waMu.RUnlock()
	if s.wa == nil {
		return nil, errors.New("identity: passkeys are not configured (no relying party id)")
	}
	return s.wa, nil
}

// Now returns the service's time.
func (s *Service) Now() time.Time { return s.cfg.Now() }

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// Refusals.
var (
	errWrong  = reason.E("unauthenticated.password")
	errLocked = reason.E("account_locked.password")
	// errLockedNow is errLocked answering the wrong password that set the lock.
	errLockedNow = reason.E("account_locked.password")
	errBusy      = reason.E("rate_limited.busy")
	errThrottle  = reason.E("rate_limited.connection")
)

// WrongPassword reports whether err (from CheckPassword) answers a
// password that was checked and found wrong. Only those are failed
// sign-ins for the guard: an attempt refused unchecked (throttled, locked,
// busy) tested nothing, and counting it would let anyone who knows an
// account number run up its failures.
func WrongPassword(err error) bool { return err == errWrong || err == errLockedNow }

// Account is what identity needs to know of a brokerage account.
type Account struct {
	ID, Name, Email, Locale string
}

// LookupAccount returns the account's name, email and locale.
func (s *Service) LookupAccount(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id string) (*Account, error) {
	if q == nil {
		q = s.cfg.DB
	}
	a := &Account{ID: id}
	err := q.QueryRowContext(ctx, `SELECT name, email, locale FROM accounts WHERE id = $1`, id).Scan(&a.Name, &a.Email, &a.Locale)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, reason.E(reason.UnknownAccount, "account", id)
	}
	return a, err
}

// Enrol gives account an identity with password (which must pass
// CheckPassword unless hash is given precomputed).
func (s *Service) Enrol(ctx context.Context, ex notify.Execer, account, password, hash string) error {
	if hash == "" {
		a, err := s.LookupAccount(ctx, nil, account)
		email := ""
		if err == nil {
			email = a.Email
		}
		if err := CheckPassword(password, account, email); err != nil {
			return err
		}
		if err := s.pool.Do(ctx, account, func() { hash = Hash(password, s.cfg.Argon) }); err != nil {
			return errBusy
		}
	}
	if ex == nil {
		ex = s.cfg.DB
	}
	var h [16]byte
	rand.Read(h[:])
	_, err := ex.ExecContext(ctx, `INSERT INTO identities (account, user_handle, password_hash, created_us) VALUES ($1, $2, $3, $4)`,
		account, hex.EncodeToString(h[:]), hash, store.Micros(s.cfg.Now()))
	return err
}

// HashPassword hashes password in the pool with the configured parameters.
func (s *Service) HashPassword(ctx context.Context, password string) (string, error) {
	var h string
	if err := s.pool.Do(ctx, "", func() { h = Hash(password, s.cfg.Argon) }); err != nil {
		return "", errBusy
	}
	return h, nil
}

// Factors are the authenticators of an account.
type Factors struct {
	Password bool
	Passkeys int
	TOTP     bool
	EmailOTP bool
	Locked   time.Time // password sign-in locked since; zero if not
	Failed   int
}

// List returns the factor names, as in the account snapshot record.
func (f Factors) List() []string {
	var out []string
	if f.Password {
		out = append(out, event.FactorPassword)
	}
	if f.Passkeys > 0 {
		out = append(out, event.FactorPasskey)
	}
	if f.TOTP {
		out = append(out, event.FactorTOTP)
	}
	if f.EmailOTP {
		out = append(out, event.FactorEmailOTP)
	}
	return out
}

// Strongest returns the strength of the strongest factor.
func (f Factors) Strongest() string {
	switch {
	case f.Passkeys > 0:
		return session.StrengthPhishingResistant
	case f.TOTP || f.EmailOTP:
		return session.StrengthMFA
	case f.Password:
		return session.StrengthPassword
	}
	return session.StrengthNone
}

// StrongestFactor returns the name of the factor to ask for when the
// strongest one is wanted: passkey, else totp, else email_otp.
func (f Factors) StrongestFactor() string {
	switch {
	case f.Passkeys > 0:
		return event.FactorPasskey
	case f.TOTP:
		return event.FactorTOTP
	case f.EmailOTP:
		return event.FactorEmailOTP
	}
	return event.FactorPassword
}

// Factors returns the account's factors.
func (s *Service) Factors(ctx context.Context, account string) (Factors, error) {
	var f Factors
	var pw, totp string
	var email, failed, locked int64
	err := s.cfg.DB.QueryRowContext(ctx, `SELECT password_hash, totp_secret, email_otp, failed, locked_us FROM identities WHERE account = $1`, account).
		Scan(&pw, &totp, &email, &failed, &locked)
	if errors.Is(err, sql.ErrNoRows) {
		return f, reason.E(reason.UnknownAccount, "account", account)
	}
	if err != nil {
		return f, err
	}
	f.Password, f.TOTP, f.EmailOTP, f.Failed = pw != "", totp != "", email != 0, int(failed)
	if locked != 0 {
		f.Locked = store.FromMicros(locked)
	}
	err = s.cfg.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM passkeys WHERE account = $1`, account).Scan(&f.Passkeys)
	return f, err
}

// CheckPassword verifies account's password from client c. It refuses
// at once (without hashing) when the client is throttled or password
// sign-in is locked; otherwise it hashes in the pool and, on a wrong
// password, counts the failure atomically and locks at the threshold.
// Unknown accounts cost the same hash and get the same answer.
func (s *Service) CheckPassword(ctx context.Context, account, password string, c session.Client) error {
	perIP := Limit{Free: s.cfg.PerIP, Window: s.cfg.Window, Fixed: true}
	perNet := Limit{Free: s.cfg.PerNetwork, Window: s.cfg.Window, Fixed: true}
	// Checked before hashing, counted only for a wrong password (or an
	// unknown account), so that sign-ins that succeed cost no write; a
	// burst is still bounded by the pool and the account's exact lock.
	limits := []keyLimit{{"password:ip:" + c.IP, perIP}, {"password:net:" + c.Network, perNet}}
	for _, k := range limits {
		if err := s.thr.Check(ctx, k.key, k.l); err != nil {
			if !errors.Is(err, ErrThrottled) {
				return err
			}
			s.history(ctx, account, event.FactorPassword, nil, false, "throttled", c, "")
			return errThrottle
		}
	}
	failed := func() {
		for _, k := range limits {
			s.thr.Take(ctx, k.key, k.l)
		}
	}
	var hash string
	var locked int64
	err := s.cfg.DB.QueryRowContext(ctx, `SELECT password_hash, locked_us FROM identities WHERE account = $1`, account).Scan(&hash, &locked)
	known := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if known && locked != 0 {
		s.history(ctx, account, event.FactorPassword, nil, false, "locked", c, "")
		return errLocked
	}
	if !known || hash == "" {
		hash = s.dummy
	}
	if len(password) > 4*MaxPasswordLen {
		password = password[:4*MaxPasswordLen]
	}
	var ok bool
	var verr error
	if err := s.pool.Do(ctx, account, func() { ok, verr = Verify(hash, password) }); err != nil {
		if errors.Is(err, ErrBusy) {
			return errBusy
		}
		return err
	}
	if verr != nil {
		return verr
	}
	if !known {
		failed()
		s.history(ctx, "", event.FactorPassword, nil, false, "unknown_account", c, "")
		return errWrong
	}
	if ok {
		// A correct password resets the count, unless a lock landed meanwhile.
		res, err := s.cfg.DB.ExecContext(ctx, `UPDATE identities SET failed = 0 WHERE account = $1 AND locked_us = 0`, account)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errLocked
		}
		return nil
	}
	failed()
	return s.fail(ctx, account, c)
}

// fail counts a wrong password: one conditional UPDATE, so under any
// concurrency exactly LockThreshold failures are counted and the one that
// reaches the threshold sets the lock.
func (s *Service) fail(ctx context.Context, account string, c session.Client) error {
	now := s.cfg.Now()
	var failed int64
	var locked int64
	err := s.cfg.DB.QueryRowContext(ctx, `UPDATE identities SET failed = failed + 1,
		locked_us = CASE WHEN failed + 1 >= $1 THEN $2 ELSE locked_us END
		WHERE account = $3 AND locked_us = 0 RETURNING failed, locked_us`, int64(s.cfg.LockThreshold), store.Micros(now), account).Scan(&failed, &locked)
	if errors.Is(err, sql.ErrNoRows) {
		s.history(ctx, account, event.FactorPassword, nil, false, "locked", c, "")
		return errLocked
	}
	if err != nil {
		return err
	}
	a, aerr := s.LookupAccount(ctx, nil, account)
	if locked != 0 {
		s.history(ctx, account, event.FactorPassword, nil, false, "wrong_password_locked", c, "")
		if aerr == nil {
			s.notify(ctx, nil, a, notify.KindLocked, c, map[string]string{"Count": fmt.Sprint(failed)})
		}
		return errLockedNow
	}
	s.history(ctx, account, event.FactorPassword, nil, false, "wrong_password", c, "")
	// Tell the customer at the second failure in a row and at each one after
	// that, so a slow guessing attack is seen before the lock.
	if failed >= 2 && aerr == nil {
		s.notify(ctx, nil, a, notify.KindSignInFailed, c, map[string]string{"Count": fmt.Sprint(failed), "Left": fmt.Sprint(int64(s.cfg.LockThreshold) - failed)})
	}
	return errWrong
}

// Unlock clears the password lock and failure count of account after the
// caller re-verified the customer with factor.
func (s *Service) Unlock(ctx context.Context, account, factor string, c session.Client) error {
	now := s.cfg.Now()
	return s.cfg.DB.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE identities SET failed = 0, locked_us = 0 WHERE account = $1`, account); err != nil {
			return err
		}
		a, err := s.LookupAccount(ctx, tx, account)
		if err != nil {
			return err
		}
		return s.cfg.Outbox.Enqueue(ctx, tx, s.message(a, notify.KindUnlocked, c, now, map[string]string{"Factor": factor}), now)
	})
}

// Notify queues a message of kind to account's registered email through
// ex (a transaction, or nil for its own).
func (s *Service) Notify(ctx context.Context, ex notify.Execer, account string, kind notify.Kind, c session.Client, data map[string]string) error {
	a, err := s.LookupAccount(ctx, nil, account)
	if err != nil {
		return err
	}
	return s.notify(ctx, ex, a, kind, c, data)
}

func (s *Service) notify(ctx context.Context, ex notify.Execer, a *Account, kind notify.Kind, c session.Client, data map[string]string) error {
	if ex == nil {
		ex = s.cfg.DB
	}
	now := s.cfg.Now()
	err := s.cfg.Outbox.Enqueue(ctx, ex, s.message(a, kind, c, now, data), now)
	if err != nil {
		s.logger.ErrorContext(ctx, "could not queue notification", "account", a.ID, "kind", kind, "err", err)
	}
	return err
}

// Message builds a notification to a with the device and place of c.
func (s *Service) Message(a *Account, kind notify.Kind, c session.Client, now time.Time, data map[string]string) notify.Message {
	return s.message(a, kind, c, now, data)
}

// SetGuard replaces the guard asked about every login.
func (s *Service) SetGuard(g guard.Guard) { s.cfg.Guard = g }

// Salutation is how every message addresses the customer: by account
// number, never by the display name, which whoever opened the account
// typed (an attacker signing up with a victim's address would otherwise
// put their own text into a Kabuto email).
func Salutation(account, locale string) string {
	if locale == "en" {
		return "customer " + account
	}
	return account
}

// message builds a notification to a with the device and place of c.
func (s *Service) message(a *Account, kind notify.Kind, c session.Client, now time.Time, data map[string]string) notify.Message {
	d := map[string]string{"Name": Salutation(a.ID, a.Locale), "Time": now.In(clock.JST).Format("2006-01-02 15:04 MST"), "Device": DeviceText(c.UA, a.Locale), "Place": PlaceText(c, a.Locale)}
	for k, v := range data {
		d[k] = v
	}
	return notify.Message{Account: a.ID, To: a.Email, Locale: a.Locale, Kind: kind, Data: d}
}

// DeviceText summarises a user agent for a person: "Chrome on Windows".
func DeviceText(ua, locale string) string {
	browser, os := "", ""
	l := strings.ToLower(ua)
	switch {
	case strings.Contains(l, "edg/"):
		browser = "Edge"
	case strings.Contains(l, "headlesschrome"):
		browser = "Headless Chrome"
	case strings.Contains(l, "chrome/") || strings.Contains(l, "chromium"):
		browser = "Chrome"
	case strings.Contains(l, "firefox/"):
		browser = "Firefox"
	case strings.Contains(l, "safari/"):
		browser = "Safari"
	case strings.Contains(l, "curl"):
		browser = "curl"
	}
	switch {
	case strings.Contains(l, "iphone") || strings.Contains(l, "ipad"):
		os = "iOS"
	case strings.Contains(l, "android"):
		os = "Android"
	case strings.Contains(l, "windows"):
		os = "Windows"
	case strings.Contains(l, "mac os"):
		os = "macOS"
	case strings.Contains(l, "linux"):
		os = "Linux"
	}
	unknown := map[bool]string{true: "不明なブラウザ", false: "an unknown browser"}[locale != "en"]
	switch {
	case browser == "" && os == "":
		return unknown
	case os == "":
		return browser
	case browser == "":
		return os
	}
	if locale == "en" {
		return browser + " on " + os
	}
	return os + " の " + browser
}

var countries = map[string][2]string{"JP": {"日本", "Japan"}, "US": {"米国", "the United States"}, "SG": {"シンガポール", "Singapore"},
	"FR": {"フランス", "France"}, "HK": {"香港", "Hong Kong"}, "CN": {"中国", "China"}}

// PlaceText says where a client is, as far as its network tells:
// country, network operator number and address.
func PlaceText(c session.Client, locale string) string {
	en := locale == "en"
	country := c.Country
	if n, ok := countries[c.Country]; ok {
		country = n[map[bool]int{true: 1, false: 0}[en]]
	}
	if country == "" {
		country = map[bool]string{true: "unknown country", false: "国不明"}[en]
	}
	if c.ASN != 0 {
		return fmt.Sprintf("%s (AS%d, %s)", country, c.ASN, c.IP)
	}
	return fmt.Sprintf("%s (%s)", country, c.IP)
}

// Login decides and records a login: the spec's login record goes to
// the guard (and the event stream when configured), and the attempt to
// the sign-in history. It returns the guard's decision.
func (s *Service) Login(ctx context.Context, account, sessionID, method string, factors []string, ok bool, c session.Client) (event.Decision, error) {
	r := &event.Record{ID: newID("E"), Type: event.TypeLogin, Time: s.cfg.Now(), Account: account, Session: sessionID,
		IP: c.IP, ASN: c.ASN, Country: c.Country, Device: c.Device, UA: c.UA, Channel: event.ChannelWeb,
		Method: method, Factors: factors, OK: ok}
	d, err := s.cfg.Guard.Decide(ctx, r)
	if s.cfg.LoginRecords {
		if _, e := s.cfg.DB.ExecContext(ctx, `INSERT INTO events (id, time_us, type, account, body) VALUES ($1, $2, $3, $4, $5)`,
			r.ID, store.Micros(r.Time), string(r.Type), r.Account, string(r.AppendJSON(nil))); e != nil {
			s.logger.ErrorContext(ctx, "could not store login record", "err", e)
		}
	}
	return d, err
}

// history stores one sign-in attempt.
func (s *Service) history(ctx context.Context, account, method string, factors []string, ok bool, outcome string, c session.Client, sessionID string) {
	_, err := s.cfg.DB.ExecContext(ctx, `INSERT INTO login_history (id, account, time_us, method, factors, ok, outcome, ip, asn, country, ua, device, session)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		newID("H"), account, store.Micros(s.cfg.Now()), method, strings.Join(factors, ","), store.Int(ok), outcome, c.IP, c.ASN, c.Country, c.UA, c.Device, sessionID)
	if err != nil {
		s.logger.ErrorContext(ctx, "could not store sign-in history", "err", err)
	}
}

// Record stores a sign-in attempt in the history (for outcomes decided
// outside this package, such as a successful second factor).
func (s *Service) Record(ctx context.Context, account, method string, factors []string, ok bool, outcome string, c session.Client, sessionID string) {
	s.history(ctx, account, method, factors, ok, outcome, c, sessionID)
}

// Attempt is one line of the sign-in history.
type Attempt struct {
	Time    time.Time
	Method  string
	Factors string
	OK      bool
	Outcome string
	Client  session.Client
	Session string
}

// History returns the account's latest sign-in attempts, newest first.
func (s *Service) History(ctx context.Context, account string, limit int) ([]Attempt, error) {
	rows, err := s.cfg.DB.QueryContext(ctx, `SELECT time_us, method, factors, ok, outcome, ip, asn, country, ua, device, session
		FROM login_history WHERE account = $1 ORDER BY time_us DESC, id LIMIT $2`, account, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var us, ok int64
		if err := rows.Scan(&us, &a.Method, &a.Factors, &ok, &a.Outcome, &a.Client.IP, &a.Client.ASN, &a.Client.Country, &a.Client.UA, &a.Client.Device, &a.Session); err != nil {
			return nil, err
		}
		a.Time, a.OK = store.FromMicros(us), ok != 0
		out = append(out, a)
	}
	return out, rows.Err()
}

// LoginChallenge says whether a sign-in that proved strength meets the
// guard's challenge for factor on an account with factors f. It returns
// "" when it does, or the sign-in history outcome of the refusal:
// "guard_wants_passkey" (a passkey holder signed in without it, or no
// second factor was proved) or "guard_wants_mfa". A customer without a
// passkey is in interim mode: the code this sign-in proved is the
// strongest factor they have, and it meets a phishing_resistant challenge
// until passkeys are mandatory; what the guard then asks of each action
// still applies.
func LoginChallenge(factor, strength string, f Factors) string {
	if factor == event.FactorPhishingResistant && strength != session.StrengthPhishingResistant &&
		(f.Passkeys > 0 || session.Rank(strength) < session.Rank(session.StrengthMFA)) {
		return "guard_wants_passkey"
	}
	if factor == event.FactorMFA && session.Rank(strength) < session.Rank(session.StrengthMFA) {
		return "guard_wants_mfa"
	}
	return ""
}

// Proved returns the strength of the strongest of factors (at least
// password: a session exists only after some proof).
func Proved(factors []string) string {
	strength := session.StrengthPassword
	for _, f := range factors {
		if s := Strength(f); session.Rank(s) > session.Rank(strength) {
			strength = s
		}
	}
	return strength
}
