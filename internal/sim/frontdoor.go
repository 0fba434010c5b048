package sim

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/identity"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/population"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/session"
	"github.com/kabuto-sec/kabuto/internal/softkey"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Origins of the simulated front door: the brokerage's real sign-in page,
// and the phishing kit's look-alike that relays to it.
const (
	RPID           = "kabuto.example"
	RealOrigin     = "https://kabuto.example"
	PhishingOrigin = "https://kabuto-secure-login.example.net"
)

// simArgon are the password hashing parameters of the simulated front
// door: argon2id at a small cost, because thousands of sign-ins are
// checked per simulated day and the work factor is not what is scored.
var simArgon = identity.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32}

// frontDoor is Kabuto's own front door, internal/identity, on the run's
// database and clock, with the customers' side of it: the password each
// knows, the passkey on their phone (internal/softkey, registered through
// the service's own registration ceremony), the secret in their
// authenticator app, and their mailbox, where the service's one-time
// codes arrive through the notification outbox. Every sign-in, lockout,
// throttle, one-time code and step-up ceremony of the simulated day is
// the service's; the simulator only decides who types what where.
type frontDoor struct {
	svc  *identity.Service
	db   *store.DB
	seed uint64
	keys map[string]*softkey.Key // passkeys by account
	totp map[string]string       // authenticator app secrets by account
}

func newFrontDoor(db *store.DB, now func() time.Time, seed uint64, log *slog.Logger) (*frontDoor, error) {
	svc, err := identity.New(identity.Config{DB: db, Outbox: &notify.Outbox{}, Now: now, Log: log,
		RPID: RPID, RPName: "Kabuto Securities (simulated)", Origins: []string{RealOrigin}, Argon: simArgon})
	if err != nil {
		return nil, err
	}
	return &frontDoor{svc: svc, db: db, seed: seed, keys: map[string]*softkey.Key{}, totp: map[string]string{}}, nil
}

// password is the customer's password, which the leaked dump and the
// infostealer logs hold too.
func (d *frontDoor) password(account string) string {
	h := sha256.Sum256(fmt.Appendf(nil, "password|%d|%s", d.seed, account))
	return "pw-" + hex.EncodeToString(h[:12])
}

// enrol gives the acting customers their identities as they stood before
// the day: a password, a passkey for those who have one, an authenticator
// app for TOTP users. SMS and email users get their codes from the
// service's out-of-band code (which Kabuto sends by email; the simulated
// customer reads it wherever it arrives).
func (d *frontDoor) enrol(ctx context.Context, people []*population.Customer, factors func(*population.Customer) []string) error {
	for i := 0; i < len(people); i += 500 {
		chunk := people[i:min(i+500, len(people))]
		err := d.db.Tx(ctx, func(tx *sql.Tx) error {
			for _, c := range chunk {
				if err := d.svc.Enrol(ctx, tx, c.ID, "", identity.Hash(d.password(c.ID), simArgon)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("enrolling customers: %w", err)
		}
	}
	home := session.Client{IP: "192.0.2.1", Network: "192.0.2.0/24", Country: "JP", UA: "enrolment"}
	for _, c := range people {
		for _, f := range factors(c) {
			switch f {
			case event.FactorPasskey:
				if err := d.register(ctx, c.ID, "S-enrol-"+c.ID, home); err != nil {
					return err
				}
			case event.FactorTOTP:
				secret, _, err := d.svc.NewTOTP(c.ID)
				if err != nil {
					return err
				}
				// The app was set up a while ago: the code it showed then.
				if err := d.svc.ConfirmTOTP(ctx, c.ID, secret, d.appCode(secret, -30*time.Second)); err != nil {
					return fmt.Errorf("enrolling %s's authenticator app: %w", c.ID, err)
				}
				d.totp[c.ID] = secret
			}
		}
	}
	return nil
}

// register runs the passkey registration ceremony for account in session
// sid from the customer's own device at the real origin.
func (d *frontDoor) register(ctx context.Context, account, sid string, c session.Client) error {
	id, opts, err := d.svc.BeginRegistration(ctx, account, sid)
	if err != nil {
		return err
	}
	k, body, err := softkey.Create(opts.Response, RealOrigin)
	if err != nil {
		return err
	}
	if err := d.svc.FinishRegistration(ctx, account, sid, id, body, "phone", c); err != nil {
		return fmt.Errorf("registering %s's passkey: %w", account, err)
	}
	d.keys[account] = k
	return nil
}

func (d *frontDoor) hasPasskey(account string) bool { return d.keys[account] != nil }

func (d *frontDoor) appCode(secret string, skew time.Duration) string {
	return d.svc.TOTPCodeAt(secret, d.svc.Now().Add(skew))
}

// signInWithPasskey runs a discoverable passkey sign-in from a page at
// origin in the browser whose pre-session id is pre. On the phishing
// origin the kit relays the real challenge and the victim's key signs as
// if no browser check stopped it; the service's origin check refuses it.
// It reports whether the service signed the account in.
func (d *frontDoor) signInWithPasskey(ctx context.Context, account, pre, origin string) (bool, error) {
	k := d.keys[account]
	if k == nil {
		return false, nil
	}
	id, opts, err := d.svc.BeginSignIn(ctx, pre)
	if err != nil {
		return false, err
	}
	body, err := k.GetAs(opts.Response, origin)
	if err != nil {
		return false, err
	}
	got, err := d.svc.FinishSignIn(ctx, pre, id, body)
	if err := refused(err); err != nil {
		return false, err
	}
	return got == account, nil
}

// checkPassword is the first step of a password sign-in. It returns the
// refusal's reason code ("" when the password verified): unauthenticated
// for a wrong password, account_locked once the lockout holds,
// rate_limited when the client is throttled.
func (d *frontDoor) checkPassword(ctx context.Context, account, password string, c session.Client) (string, error) {
	err := d.svc.CheckPassword(ctx, account, password, c)
	if e := reason.As(err); e != nil {
		return e.Code, nil
	}
	return "", err
}

// sendCode asks the service for a sign-in code for account (the portal's
// purpose: this browser's sign-in), unless the customer has an
// authenticator app. It returns the second factor the sign-in uses.
func (d *frontDoor) sendCode(ctx context.Context, account, device string, c session.Client) (string, error) {
	if d.totp[account] != "" {
		return event.FactorTOTP, nil
	}
	_, err := d.svc.SendCode(ctx, account, "signin:"+device, "ログイン / sign-in", c)
	return event.FactorEmailOTP, err
}

// code is the code the customer sees now for the factor: the app's, or
// the latest code message in their mailbox (read, and so marked sent).
func (d *frontDoor) code(ctx context.Context, account, factor string) (string, error) {
	if factor == event.FactorTOTP {
		return d.appCode(d.totp[account], 0), nil
	}
	var id, body string
	err := d.db.QueryRowContext(ctx, `SELECT id, body FROM outbox WHERE account = $1 AND kind = $2 AND status = 'pending'
		ORDER BY created_us DESC, id DESC LIMIT 1`, account, string(notify.KindCode)).Scan(&id, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if _, err := d.db.ExecContext(ctx, `UPDATE outbox SET status = 'sent' WHERE id = $1`, id); err != nil {
		return "", err
	}
	m := codeLine.FindStringSubmatch(body)
	if m == nil {
		return "", fmt.Errorf("no code in the message to %s", account)
	}
	return m[1], nil
}

var codeLine = regexp.MustCompile(`(?m) (\d{6})$`)

// verifyCode checks a sign-in code typed (by whoever) for account.
func (d *frontDoor) verifyCode(ctx context.Context, account, device, factor, code string) (bool, error) {
	var err error
	if factor == event.FactorTOTP {
		err = d.svc.VerifyTOTP(ctx, account, code)
	} else {
		err = d.svc.VerifyCode(ctx, account, "signin:"+device, code)
	}
	if err := refused(err); err != nil {
		return false, err
	}
	return err == nil, nil
}

// unlock is the self-service unlock after a lockout: a code to the
// registered address, then the service clears the lock.
func (d *frontDoor) unlock(ctx context.Context, account, device string, c session.Client) (bool, error) {
	if _, err := d.svc.SendCode(ctx, account, "unlock:"+device, "ロックの解除 / unlocking your account", c); err != nil {
		return false, err
	}
	code, err := d.code(ctx, account, event.FactorEmailOTP)
	if err != nil {
		return false, err
	}
	if err := d.svc.VerifyCode(ctx, account, "unlock:"+device, code); err != nil {
		return false, refused(err)
	}
	return true, d.svc.Unlock(ctx, account, event.FactorEmailOTP, c)
}

// stepUp runs a step-up ceremony bound to binding in session sid. With a
// passkey the key signs at origin; without one, a code is sent (or the
// app shows one) and typed by type_, which returns the code it types
// ("" gives up). It returns the factor the service vouches for, or "".
func (d *frontDoor) stepUp(ctx context.Context, account, sid, binding string, passkey bool, origin string, c session.Client, type_ func(shown string) string) (string, error) {
	if passkey {
		k := d.keys[account]
		if k == nil {
			return "", nil
		}
		id, opts, err := d.svc.BeginStepUp(ctx, account, sid, binding, nil)
		if err != nil {
			return "", err
		}
		body, err := k.GetAs(opts.Response, origin)
		if err != nil {
			return "", err
		}
		if _, _, err := d.svc.FinishStepUp(ctx, account, sid, id, body); err != nil {
			return "", refused(err)
		}
		return event.FactorPhishingResistant, nil
	}
	method := event.FactorEmailOTP
	if d.totp[account] != "" {
		method = event.FactorTOTP
	}
	id, err := d.svc.BeginCodeStepUp(ctx, account, sid, binding, nil, method, "この操作の確認 / confirming this action", c)
	if err != nil {
		return "", err
	}
	shown, err := d.code(ctx, account, method)
	if err != nil {
		return "", err
	}
	typed := type_(shown)
	if typed == "" {
		return "", nil
	}
	if _, _, _, err := d.svc.FinishCodeStepUp(ctx, account, sid, id, typed); err != nil {
		return "", refused(err)
	}
	return event.FactorMFA, nil
}

// refused turns the service's refusals (a reason) into a plain "no" and
// keeps real failures as errors.
func refused(err error) error {
	if err == nil || reason.As(err) != nil {
		return nil
	}
	return err
}
