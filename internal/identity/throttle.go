package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/session"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Limit is one rate limit with exponential back-off, in the manner of
// NIST SP 800-63B-4 §3.2.2: Free attempts go through at once; the one that
// uses up the free attempts makes the next wait Backoff, and each attempt
// after that doubles the wait, up to MaxBackoff. A quiet Window after the
// last attempt and its wait forgets the count. A negative Free means no
// limit.
//
// A Fixed limit is a plain rate instead, for keys many people may share (a
// network, a client address behind a carrier's NAT): Free attempts per
// Window from the window's first attempt, then none until it ends, and a
// busy key is never held past its window.
type Limit struct {
	Free       int
	Window     time.Duration
	Backoff    time.Duration
	MaxBackoff time.Duration
	Fixed      bool
}

// wait returns the wait after the n-th attempt.
func (l Limit) wait(n int64) time.Duration {
	if l.Fixed {
		if n >= int64(l.Free) {
			return l.Window
		}
		return 0
	}
	if n < int64(l.Free) {
		return 0
	}
	d := l.Backoff
	for i := int64(l.Free); i < n && d < l.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, l.MaxBackoff)
}

// Throttle counts attempts per key (an account, a session, a network, a
// client, an email address, a ceremony) in the database, so that every
// process serving the same database shares the limits, on SQLite and
// PostgreSQL alike. Each update is a conditional UPDATE on the row's
// previous state, retried when another process moved it first, so the
// counts are exact under any concurrency.
type Throttle struct {
	db    *store.DB
	now   func() time.Time
	takes atomic.Int64
}

// NewThrottle returns a Throttle keeping its state in db, on the clock now.
func NewThrottle(db *store.DB, now func() time.Time) *Throttle {
	return &Throttle{db: db, now: now}
}

// ErrThrottled is wrapped by the errors of Take for a key that must wait.
var ErrThrottled = errors.New("identity: throttled")

// Throttled is a refusal by a Throttle: the key and how long it must wait.
type Throttled struct {
	Key  string
	Wait time.Duration
}

func (e *Throttled) Error() string {
	return fmt.Sprintf("identity: %s throttled for %s", e.Key, e.Wait.Round(time.Second))
}

// Unwrap makes errors.Is(err, ErrThrottled) hold.
func (e *Throttled) Unwrap() error { return ErrThrottled }

// Take counts one attempt for key under l. It returns nil when the
// attempt may go ahead, or a *Throttled (not counting the attempt, so a
// flood cannot lengthen the wait beyond the back-off) when key must wait.
func (t *Throttle) Take(ctx context.Context, key string, l Limit) error {
	_, err := t.take(ctx, key, l)
	return err
}

// take is Take, also returning the count after the attempt.
func (t *Throttle) take(ctx context.Context, key string, l Limit) (int64, error) {
	if l.Free < 0 {
		return 0, nil
	}
	if t.takes.Add(1)%2048 == 0 {
		t.sweep(ctx, l)
	}
	now := store.Micros(t.now())
	for range 64 {
		var n, last, until int64
		err := t.db.QueryRowContext(ctx, `SELECT n, last_us, until_us FROM throttles WHERE key = $1`, key).Scan(&n, &last, &until)
		if errors.Is(err, sql.ErrNoRows) {
			res, err := t.db.ExecContext(ctx, `INSERT INTO throttles (key, n, last_us, until_us) VALUES ($1, 1, $2, $3) ON CONFLICT (key) DO NOTHING`,
				key, now, now+l.wait(1).Microseconds())
			if err != nil {
				return 0, err
			}
			if k, _ := res.RowsAffected(); k == 1 {
				return 1, nil
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		if now < until {
			return n, &Throttled{Key: key, Wait: time.Duration(until-now) * time.Microsecond}
		}
		next, stamp, nextUntil := n+1, now, now+l.wait(n+1).Microseconds()
		switch {
		case l.Fixed && now-last >= l.Window.Microseconds():
			next, nextUntil = 1, now+l.wait(1).Microseconds() // a new window
		case l.Fixed:
			stamp, nextUntil = last, 0 // last_us keeps the window's start
			if next >= int64(l.Free) {
				nextUntil = last + l.Window.Microseconds()
			}
		case now-max(last, until) >= l.Window.Microseconds():
			next, nextUntil = 1, now+l.wait(1).Microseconds() // quiet for a window since the last attempt and wait
		}
		res, err := t.db.ExecContext(ctx, `UPDATE throttles SET n = $1, last_us = $2, until_us = $3 WHERE key = $4 AND n = $5 AND last_us = $6 AND until_us = $7`,
			next, stamp, nextUntil, key, n, last, until)
		if err != nil {
			return 0, err
		}
		if k, _ := res.RowsAffected(); k == 1 {
			return next, nil
		}
	}
	return 0, &Throttled{Key: key, Wait: time.Second}
}

// Check reports, without counting an attempt, whether key must wait.
func (t *Throttle) Check(ctx context.Context, key string, l Limit) error {
	_, err := t.check(ctx, key, l)
	return err
}

// check is Check, also returning the count so far.
func (t *Throttle) check(ctx context.Context, key string, l Limit) (int64, error) {
	if l.Free < 0 {
		return 0, nil
	}
	now := store.Micros(t.now())
	var n, until int64
	err := t.db.QueryRowContext(ctx, `SELECT n, until_us FROM throttles WHERE key = $1`, key).Scan(&n, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if now < until {
		return n, &Throttled{Key: key, Wait: time.Duration(until-now) * time.Microsecond}
	}
	return n, nil
}

// Reset forgets key's attempts (after a success).
func (t *Throttle) Reset(ctx context.Context, key string) error {
	_, err := t.db.ExecContext(ctx, `DELETE FROM throttles WHERE key = $1`, key)
	return err
}

// sweep deletes rows quiet for longer than a day and any pending wait.
func (t *Throttle) sweep(ctx context.Context, l Limit) {
	cut := store.Micros(t.now().Add(-max(24*time.Hour, l.Window, l.MaxBackoff)))
	t.db.ExecContext(ctx, `DELETE FROM throttles WHERE last_us < $1 AND until_us < $1`, cut)
}

// The limits of the front door. Keys are "<what>:<scope>:<value>", so
// one account's limit for one endpoint never touches another endpoint:
// an attacker who exhausts the limits of anonymous endpoints for an
// account blocks those endpoints only, never passkey sign-in.
var (
	// Guessing codes (TOTP and emailed codes, in step-ups, second factors
	// and the unlock page), counted on every check: per account,
	// session (or browser), network and client address.
	limitGuessAccount = Limit{Free: 10, Window: 24 * time.Hour, Backoff: 30 * time.Second, MaxBackoff: time.Hour}
	limitGuessSession = Limit{Free: 5, Window: time.Hour, Backoff: time.Minute, MaxBackoff: time.Hour}
	limitGuessNetwork = Limit{Free: 200, Window: 15 * time.Minute, Fixed: true}
	// Emailed codes sent: per account, session (or browser) and network.
	limitSendAccount = Limit{Free: 5, Window: time.Hour, Backoff: time.Minute, MaxBackoff: 6 * time.Hour}
	limitSendSession = Limit{Free: 5, Window: time.Hour, Backoff: time.Minute, MaxBackoff: 6 * time.Hour}
	limitSendNetwork = Limit{Free: 200, Window: 15 * time.Minute, Fixed: true}
	// Anonymous endpoints that change state or send mail (self-lock,
	// unlock, sign-up): per client address, network and target.
	limitAnonClient  = Limit{Free: 10, Window: time.Hour, Fixed: true}
	limitAnonNetwork = Limit{Free: 100, Window: time.Hour, Fixed: true}
	limitAnonTarget  = Limit{Free: 3, Window: 24 * time.Hour, Backoff: 10 * time.Minute, MaxBackoff: 24 * time.Hour}
)

// Limits are the limits a Service enforces; the zero value of a field
// means its default (see DefaultLimits), and Free: -1 turns one off.
type Limits struct {
	GuessAccount, GuessSession, GuessNetwork Limit
	SendAccount, SendSession, SendNetwork    Limit
	AnonClient, AnonNetwork, AnonTarget      Limit
}

// DefaultLimits returns the front door's default limits.
func DefaultLimits() Limits {
	return Limits{limitGuessAccount, limitGuessSession, limitGuessNetwork,
		limitSendAccount, limitSendSession, limitSendNetwork,
		limitAnonClient, limitAnonNetwork, limitAnonTarget}
}

func (l *Limits) fill() {
	d := DefaultLimits()
	for _, p := range []struct{ dst, def *Limit }{
		{&l.GuessAccount, &d.GuessAccount}, {&l.GuessSession, &d.GuessSession}, {&l.GuessNetwork, &d.GuessNetwork},
		{&l.SendAccount, &d.SendAccount}, {&l.SendSession, &d.SendSession}, {&l.SendNetwork, &d.SendNetwork},
		{&l.AnonClient, &d.AnonClient}, {&l.AnonNetwork, &d.AnonNetwork}, {&l.AnonTarget, &d.AnonTarget},
	} {
		if *p.dst == (Limit{}) {
			*p.dst = *p.def
		}
	}
}

// errTooMany is the answer to an attempt a limit refused.
var errTooMany = reason.E(reason.RateLimited)

// throttled maps a Throttle's refusal to errTooMany.
func (s *Service) throttled(ctx context.Context, err error) error {
	if errors.Is(err, ErrThrottled) {
		s.logger.InfoContext(ctx, "throttled", "err", err)
		return errTooMany
	}
	return err
}

// take counts one attempt under each (key, limit) pair in order and stops
// at the first refusal, answering errTooMany.
func (s *Service) take(ctx context.Context, pairs ...keyLimit) error {
	for _, p := range pairs {
		if p.key == "" {
			continue
		}
		if err := s.thr.Take(ctx, p.key, p.l); err != nil {
			if errors.Is(err, ErrThrottled) {
				s.logger.InfoContext(ctx, "throttled", "key", p.key, "err", err)
				return errTooMany
			}
			return err
		}
	}
	return nil
}

type keyLimit struct {
	key string
	l   Limit
}

// Anonymous counts one attempt at an anonymous endpoint (what: "selflock",
// "unlock", "signup") by client c against target (an account number or
// an address; "" for none). It returns a RateLimited refusal when the
// client's address, its network or the target has used up its limit.
// The refusal is the same whether or not the target exists.
func (s *Service) Anonymous(ctx context.Context, what, target string, c session.Client) error {
	pairs := []keyLimit{{what + ":ip:" + c.IP, s.cfg.Limits.AnonClient}, {what + ":net:" + c.Network, s.cfg.Limits.AnonNetwork}}
	if target != "" {
		pairs = append(pairs, keyLimit{what + ":target:" + target, s.cfg.Limits.AnonTarget})
	}
	return s.take(ctx, pairs...)
}
