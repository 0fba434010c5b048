package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/session"
	"github.com/kabuto-sec/kabuto/internal/store"
)

var errCode = reason.E("unauthenticated.code")

var totpOpts = totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// NewTOTP makes a TOTP secret for account and returns it with its
// otpauth:// URL (for the authenticator app's QR code; shown only on the
// enrolment page, never sent).
func (s *Service) NewTOTP(account string) (secret, url string, err error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: s.cfg.RPName, AccountName: account, Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", "", err
	}
	return k.Secret(), k.URL(), nil
}

// TOTPCode returns the current code of secret (for tests and the demo).
func (s *Service) TOTPCode(secret string) string { return s.TOTPCodeAt(secret, s.cfg.Now()) }

// checkTOTP reports the time step code matches for secret, or 0.
func (s *Service) checkTOTP(secret, code string) int64 {
	code = strings.TrimSpace(code)
	now := s.cfg.Now()
	for d := -1; d <= 1; d++ {
		t := now.Add(time.Duration(d) * 30 * time.Second)
		want, err := totp.GenerateCodeCustom(secret, t, totpOpts)
		if err == nil && hmac.Equal([]byte(want), []byte(code)) {
			return t.Unix() / 30
		}
	}
	return 0
}

// ConfirmTOTP stores secret as account's TOTP after the customer proved
// it with a code.
func (s *Service) ConfirmTOTP(ctx context.Context, account, secret, code string) error {
	step := s.checkTOTP(secret, code)
	if step == 0 {
		return errCode
	}
	_, err := s.cfg.DB.ExecContext(ctx, `UPDATE identities SET totp_secret = $1, totp_last_step = $2 WHERE account = $3`, secret, step, account)
	return err
}

// Try is who makes an attempt at a code: the session (or, before sign-in,
// the browser's device id) and the client. The code limits count each
// attempt per account, per session and per network.
type Try struct {
	Session string
	Client  session.Client
}

func (t Try) guessKeys(s *Service, account string) []keyLimit {
	l := s.cfg.Limits
	out := []keyLimit{{"guess:acct:" + account, l.GuessAccount}}
	if t.Session != "" {
		out = append(out, keyLimit{"guess:sess:" + t.Session, l.GuessSession})
	}
	if t.Client.Network != "" {
		out = append(out, keyLimit{"guess:net:" + t.Client.Network, l.GuessNetwork})
	}
	return out
}

// guessed runs check, an attempt at a code of account by t, under the
// guess limits. The account's count is taken before the check, exactly
// under any concurrency (a burst of guesses gets the free ones and no
// more); the session's and network's are checked before and counted
// only for a wrong code, so right codes cost no write there. A refused
// attempt is not checked at all; a right code forgets the account's and
// the session's count.
func (s *Service) guessed(ctx context.Context, account string, t Try, check func() error) error {
	keys := t.guessKeys(s, account)
	n, err := s.thr.take(ctx, keys[0].key, keys[0].l)
	if err != nil {
		return s.throttled(ctx, err)
	}
	counts := make([]int64, len(keys))
	for i, k := range keys[1:] {
		m, err := s.thr.check(ctx, k.key, k.l)
		if err != nil {
			return s.throttled(ctx, err)
		}
		counts[i+1] = m
	}
	if err := check(); err != nil {
		if reason.As(err) != nil {
			for _, k := range keys[1:] {
				if e := s.thr.Take(ctx, k.key, k.l); e != nil && !errors.Is(e, ErrThrottled) {
					return e
				}
			}
		}
		return err
	}
	if n >= 2 {
		s.thr.Reset(ctx, keys[0].key)
	}
	if len(keys) > 1 && t.Session != "" && counts[1] > 0 {
		s.thr.Reset(ctx, keys[1].key)
	}
	return nil
}

// VerifyTOTP checks a TOTP code of account. A code is accepted once: its
// time step must be later than the last accepted one (a conditional
// UPDATE), so a relayed or replayed code fails the second time. Attempts
// are limited per account (VerifyTOTPBy adds the session and network).
func (s *Service) VerifyTOTP(ctx context.Context, account, code string) error {
	return s.VerifyTOTPBy(ctx, account, code, Try{})
}

// VerifyTOTPBy is VerifyTOTP for an attempt by t.
func (s *Service) VerifyTOTPBy(ctx context.Context, account, code string, t Try) error {
	return s.guessed(ctx, account, t, func() error { return s.verifyTOTP(ctx, account, code) })
}

func (s *Service) verifyTOTP(ctx context.Context, account, code string) error {
	var secret string
	err := s.cfg.DB.QueryRowContext(ctx, `SELECT totp_secret FROM identities WHERE account = $1`, account).Scan(&secret)
	if err != nil || secret == "" {
		return errCode
	}
	step := s.checkTOTP(secret, code)
	if step == 0 {
		return errCode
	}
	res, err := s.cfg.DB.ExecContext(ctx, `UPDATE identities SET totp_last_step = $1 WHERE account = $2 AND totp_last_step < $1`, step, account)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errCode
	}
	return nil
}

func codeHash(id, code string) string {
	m := hmac.New(sha256.New, []byte(id))
	m.Write([]byte(strings.TrimSpace(code)))
	return hex.EncodeToString(m.Sum(nil))
}

// SendCode makes a six-digit code for account and purpose (which ties it
// to one sign-in or one action), stores only its hash, and queues it to
// the registered email address with the device and place that asked for
// it and what it is for, in purposeText. It returns the code's id. The
// codes sent are limited per account (SendCodeBy adds the session and
// network), so nobody can flood a mailbox.
func (s *Service) SendCode(ctx context.Context, account, purpose, purposeText string, c session.Client) (string, error) {
	return s.SendCodeBy(ctx, account, purpose, purposeText, Try{Client: c})
}

// SendCodeBy is SendCode asked for by t: the codes sent are limited per
// account, per t's session (or browser) and per network.
func (s *Service) SendCodeBy(ctx context.Context, account, purpose, purposeText string, t Try) (string, error) {
	c := t.Client
	a, err := s.LookupAccount(ctx, nil, account)
	if err != nil {
		return "", err
	}
	l := s.cfg.Limits
	keys := []keyLimit{{"send:acct:" + account, l.SendAccount}}
	if t.Session != "" {
		keys = append(keys, keyLimit{"send:sess:" + t.Session, l.SendSession})
	}
	if t.Client.Network != "" && t.Session != "" {
		keys = append(keys, keyLimit{"send:net:" + t.Client.Network, l.SendNetwork})
	}
	if err := s.take(ctx, keys...); err != nil {
		return "", err
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(1_000_000))
	code := fmt.Sprintf("%06d", n.Int64())
	id := newID("O")
	now := s.cfg.Now()
	err = s.cfg.DB.Tx(ctx, func(tx *sql.Tx) error {
		// A new code for the same purpose retires the old ones.
		if _, err := tx.ExecContext(ctx, `UPDATE otp_codes SET used_us = $1 WHERE account = $2 AND purpose = $3 AND used_us = 0`, store.Micros(now), account, purpose); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO otp_codes (id, account, purpose, code_hash, expires_us) VALUES ($1, $2, $3, $4, $5)`,
			id, account, purpose, codeHash(id, code), store.Micros(now.Add(s.cfg.CodeTTL))); err != nil {
			return err
		}
		return s.cfg.Outbox.Enqueue(ctx, tx, s.message(a, notify.KindCode, c, now, map[string]string{"Code": code, "Purpose": purposeText}), now)
	})
	return id, err
}

// VerifyCode checks the latest email code of account for purpose. Each
// code allows five tries, expires, and is accepted once; attempts are
// limited per account across codes (VerifyCodeBy adds the session and
// network).
func (s *Service) VerifyCode(ctx context.Context, account, purpose, code string) error {
	return s.VerifyCodeBy(ctx, account, purpose, code, Try{})
}

// VerifyCodeBy is VerifyCode for an attempt by t.
func (s *Service) VerifyCodeBy(ctx context.Context, account, purpose, code string, t Try) error {
	return s.guessed(ctx, account, t, func() error { return s.verifyCode(ctx, account, purpose, code) })
}

func (s *Service) verifyCode(ctx context.Context, account, purpose, code string) error {
	now := store.Micros(s.cfg.Now())
	var id, hash string
	err := s.cfg.DB.QueryRowContext(ctx, `UPDATE otp_codes SET attempts = attempts + 1
		WHERE id = (SELECT id FROM otp_codes WHERE account = $1 AND purpose = $2 AND used_us = 0 ORDER BY expires_us DESC LIMIT 1)
		AND used_us = 0 AND attempts < 5 AND expires_us > $3 RETURNING id, code_hash`, account, purpose, now).Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return errCode
	}
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(codeHash(id, code)), []byte(hash)) {
		return errCode
	}
	res, err := s.cfg.DB.ExecContext(ctx, `UPDATE otp_codes SET used_us = $1 WHERE id = $2 AND used_us = 0`, now, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errCode
	}
	return nil
}

// TOTPCodeAt returns the code of secret at t, as an authenticator app
// shows it then (for tests and the simulator's customers).
func (s *Service) TOTPCodeAt(secret string, t time.Time) string {
	c, _ := totp.GenerateCodeCustom(secret, t, totpOpts)
	return c
}
