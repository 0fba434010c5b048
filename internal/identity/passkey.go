package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/session"
	"github.com/kabuto-sec/kabuto/internal/store"
)

var (
	errPasskey   = reason.E("unauthenticated.passkey")
	errCeremony  = reason.E("unauthenticated.ceremony")
	b64          = base64.RawURLEncoding
	maxCredBytes = 64 << 10
)

// waUser is an account as the WebAuthn library sees it.
type waUser struct {
	handle  []byte
	account string
	name    string
	creds   []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                         { return u.handle }
func (u *waUser) WebAuthnName() string                       { return u.account }
func (u *waUser) WebAuthnDisplayName() string                { return u.name }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func (s *Service) loadUser(ctx context.Context, where string, arg any) (*waUser, error) {
	var handle string
	u := &waUser{}
	err := s.cfg.DB.QueryRowContext(ctx, `SELECT i.account, i.user_handle, a.name FROM identities i JOIN accounts a ON a.id = i.account WHERE `+where, arg).
		Scan(&u.account, &handle, &u.name)
	if err != nil {
		return nil, err
	}
	if u.handle, err = hex.DecodeString(handle); err != nil {
		return nil, err
	}
	rows, err := s.cfg.DB.QueryContext(ctx, `SELECT id, public_key, attestation, aaguid, transports, sign_count, user_verified, backup_eligible, backup_state, clone_warning
		FROM passkeys WHERE account = $1 ORDER BY created_us`, u.account)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, pk, att, aaguid, tr string
		var count, uv, be, bs, cw int64
		if err := rows.Scan(&id, &pk, &att, &aaguid, &tr, &count, &uv, &be, &bs, &cw); err != nil {
			return nil, err
		}
		c := webauthn.Credential{AttestationType: att}
		c.ID, _ = b64.DecodeString(id)
		c.PublicKey, _ = b64.DecodeString(pk)
		c.Authenticator.AAGUID, _ = hex.DecodeString(aaguid)
		c.Authenticator.SignCount = uint32(count)
		c.Authenticator.CloneWarning = cw != 0
		c.Flags = webauthn.CredentialFlags{UserPresent: true, UserVerified: uv != 0, BackupEligible: be != 0, BackupState: bs != 0}
		for _, t := range strings.Split(tr, ",") {
			if t != "" {
				c.Transport = append(c.Transport, protocol.AuthenticatorTransport(t))
			}
		}
		u.creds = append(u.creds, c)
	}
	return u, rows.Err()
}

// ceremony is what is kept server-side between a ceremony's start and end.
type ceremony struct {
	Session webauthn.SessionData `json:"sd"`
	Nonce   string               `json:"nonce,omitempty"`
	Action  json.RawMessage      `json:"action,omitempty"`
	Method  string               `json:"method,omitempty"`
	Factor  string               `json:"factor,omitempty"`
}

func (s *Service) saveCeremony(ctx context.Context, kind, account, sessionID, binding string, c *ceremony) (string, error) {
	id := newID("K")
	data, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	_, err = s.cfg.DB.ExecContext(ctx, `INSERT INTO ceremonies (id, kind, account, session, binding, data, expires_us) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id, kind, account, sessionID, binding, string(data), store.Micros(s.cfg.Now().Add(s.cfg.CeremonyTTL)))
	return id, err
}

// takeCeremony consumes ceremony id of kind begun by sessionID: one
// conditional UPDATE, so it succeeds once. peek leaves it unconsumed.
func (s *Service) takeCeremony(ctx context.Context, id, kind, sessionID string, peek bool) (account, binding string, c *ceremony, err error) {
	if len(id) > 64 {
		return "", "", nil, errCeremony
	}
	now := store.Micros(s.cfg.Now())
	var data string
	if peek {
		err = s.cfg.DB.QueryRowContext(ctx, `SELECT account, binding, data FROM ceremonies WHERE id = $1 AND kind = $2 AND session = $3 AND used_us = 0 AND expires_us > $4`,
			id, kind, sessionID, now).Scan(&account, &binding, &data)
	} else {
		err = s.cfg.DB.QueryRowContext(ctx, `UPDATE ceremonies SET used_us = $1 WHERE id = $2 AND kind = $3 AND session = $4 AND used_us = 0 AND expires_us > $1
			RETURNING account, binding, data`, now, id, kind, sessionID).Scan(&account, &binding, &data)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil, errCeremony
	}
	if err != nil {
		return "", "", nil, err
	}
	c = &ceremony{}
	if err := json.Unmarshal([]byte(data), c); err != nil {
		return "", "", nil, err
	}
	return account, binding, c, nil
}

func (s *Service) waConfig() (*webauthn.WebAuthn, error) {
	wa, err := s.webauthn()
	if err != nil {
		return nil, err
	}
	return wa, nil
}

// BeginRegistration starts enrolling a passkey for account in session
// sessionID: a discoverable credential with user verification required.
func (s *Service) BeginRegistration(ctx context.Context, account, sessionID string) (string, *protocol.CredentialCreation, error) {
	wa, err := s.waConfig()
	if err != nil {
		return "", nil, err
	}
	u, err := s.loadUser(ctx, "i.account = $1", account)
	if err != nil {
		return "", nil, err
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range u.creds {
		exclude = append(exclude, c.Descriptor())
	}
	opts, sd, err := wa.BeginRegistration(u,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationRequired}),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return "", nil, err
	}
	id, err := s.saveCeremony(ctx, "register", account, sessionID, "", &ceremony{Session: *sd})
	return id, opts, err
}

// FinishRegistration verifies the browser's answer to ceremony id and
// stores the passkey, notifying the customer in the same transaction.
func (s *Service) FinishRegistration(ctx context.Context, account, sessionID, id string, body []byte, name string, c session.Client) error {
	wa, err := s.waConfig()
	if err != nil {
		return err
	}
	acct, _, cer, err := s.takeCeremony(ctx, id, "register", sessionID, false)
	if err != nil {
		return err
	}
	if acct != account || len(body) > maxCredBytes {
		return errCeremony
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return errPasskey
	}
	u, err := s.loadUser(ctx, "i.account = $1", account)
	if err != nil {
		return err
	}
	cred, err := wa.CreateCredential(u, cer.Session, parsed)
	if err != nil {
		s.logger.InfoContext(ctx, "passkey registration refused", "account", account, "err", err)
		return errPasskey
	}
	if !cred.Flags.UserVerified {
		return errPasskey
	}
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 60 {
		name = DeviceText(c.UA, "en")
	}
	var tr []string
	for _, t := range cred.Transport {
		tr = append(tr, string(t))
	}
	now := s.cfg.Now()
	return s.cfg.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO passkeys (id, account, name, public_key, attestation, aaguid, transports, sign_count, user_verified, backup_eligible, backup_state, created_us, last_used_us)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)`,
			b64.EncodeToString(cred.ID), account, name, b64.EncodeToString(cred.PublicKey), cred.AttestationType, hex.EncodeToString(cred.Authenticator.AAGUID),
			strings.Join(tr, ","), int64(cred.Authenticator.SignCount), store.Int(cred.Flags.UserVerified), store.Int(cred.Flags.BackupEligible), store.Int(cred.Flags.BackupState), store.Micros(now))
		if err != nil {
			return err
		}
		a, err := s.LookupAccount(ctx, tx, account)
		if err != nil {
			return err
		}
		return s.cfg.Outbox.Enqueue(ctx, tx, s.message(a, notify.KindFactorAdded, c, now, map[string]string{"Factor": factorName(event.FactorPasskey, a.Locale) + " (" + name + ")"}), now)
	})
}

func factorName(f, locale string) string {
	ja := map[string]string{event.FactorPasskey: "パスキー", event.FactorTOTP: "認証アプリ", event.FactorEmailOTP: "メールの確認コード", event.FactorPassword: "パスワード"}
	en := map[string]string{event.FactorPasskey: "passkey", event.FactorTOTP: "authenticator app", event.FactorEmailOTP: "email code", event.FactorPassword: "password"}
	if locale == "en" {
		return en[f]
	}
	return ja[f]
}

// FactorName names a factor for a person in locale.
func FactorName(f, locale string) string { return factorName(f, locale) }

// BeginSignIn starts a discoverable passkey sign-in; the page may run it
// with conditional mediation (autofill) or from a button.
func (s *Service) BeginSignIn(ctx context.Context, pre string) (string, *protocol.CredentialAssertion, error) {
	wa, err := s.waConfig()
	if err != nil {
		return "", nil, err
	}
	opts, sd, err := wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return "", nil, err
	}
	id, err := s.saveCeremony(ctx, "signin", "", pre, "", &ceremony{Session: *sd})
	return id, opts, err
}

// FinishSignIn verifies a discoverable passkey assertion for ceremony id
// (begun by the browser whose pre-session id is pre) and returns the
// account it proves.
func (s *Service) FinishSignIn(ctx context.Context, pre, id string, body []byte) (string, error) {
	wa, err := s.waConfig()
	if err != nil {
		return "", err
	}
	_, _, cer, err := s.takeCeremony(ctx, id, "signin", pre, false)
	if err != nil {
		return "", err
	}
	if len(body) > maxCredBytes {
		return "", errPasskey
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return "", errPasskey
	}
	var found *waUser
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		u, err := s.loadUser(ctx, "i.user_handle = $1", hex.EncodeToString(userHandle))
		if err != nil {
			return nil, err
		}
		found = u
		return u, nil
	}
	_, cred, err := wa.ValidatePasskeyLogin(handler, cer.Session, parsed)
	if err != nil || found == nil {
		s.logger.InfoContext(ctx, "passkey sign-in refused", "err", err)
		return "", errPasskey
	}
	if err := s.usePasskey(ctx, found, cred); err != nil {
		return "", err
	}
	return found.account, nil
}

// usePasskey stores the new sign count and flags. It refuses a passkey
// whose counter did not advance (a cloned authenticator), and the
// conditional UPDATE on the old count refuses a second use of the same
// assertion racing this one.
func (s *Service) usePasskey(ctx context.Context, u *waUser, cred *webauthn.Credential) error {
	if cred.Authenticator.CloneWarning {
		s.cfg.DB.ExecContext(ctx, `UPDATE passkeys SET clone_warning = 1 WHERE id = $1`, b64.EncodeToString(cred.ID))
		s.logger.WarnContext(ctx, "passkey sign counter went backwards; refused", "account", u.account)
		return errPasskey
	}
	if !cred.Flags.UserVerified {
		return errPasskey
	}
	var old uint32
	for _, c := range u.creds {
		if bytes.Equal(c.ID, cred.ID) {
			old = c.Authenticator.SignCount
		}
	}
	res, err := s.cfg.DB.ExecContext(ctx, `UPDATE passkeys SET sign_count = $1, backup_state = $2, user_verified = $3, last_used_us = $4
		WHERE id = $5 AND account = $6 AND sign_count = $7`,
		int64(cred.Authenticator.SignCount), store.Int(cred.Flags.BackupState), store.Int(cred.Flags.UserVerified), store.Micros(s.cfg.Now()),
		b64.EncodeToString(cred.ID), u.account, int64(old))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errPasskey
	}
	return nil
}

// Challenge returns the step-up challenge for an action: SHA-256 over a
// label, the server's random nonce and the action's binding, so the
// signature the authenticator makes commits to exactly that action.
func Challenge(nonce []byte, binding string) []byte {
	h := sha256.New()
	h.Write([]byte("kabuto step-up v1\x00"))
	h.Write(nonce)
	h.Write([]byte{0})
	h.Write([]byte(binding))
	return h.Sum(nil)
}

// BeginStepUp starts a passkey step-up for one action of account in
// session sessionID. binding is the action's broker.Binding and action
// what the caller needs to carry out the action afterwards.
func (s *Service) BeginStepUp(ctx context.Context, account, sessionID, binding string, action any) (string, *protocol.CredentialAssertion, error) {
	wa, err := s.waConfig()
	if err != nil {
		return "", nil, err
	}
	u, err := s.loadUser(ctx, "i.account = $1", account)
	if err != nil {
		return "", nil, err
	}
	if len(u.creds) == 0 {
		return "", nil, reason.E("step_up_required.no_passkey")
	}
	nonce, err := protocol.CreateChallenge()
	if err != nil {
		return "", nil, err
	}
	opts, sd, err := wa.BeginLogin(u, webauthn.WithChallenge(Challenge(nonce, binding)), webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return "", nil, err
	}
	aj, err := json.Marshal(action)
	if err != nil {
		return "", nil, err
	}
	id, err := s.saveCeremony(ctx, "stepup", account, sessionID, binding, &ceremony{Session: *sd, Nonce: hex.EncodeToString(nonce), Action: aj, Factor: event.FactorPasskey})
	return id, opts, err
}

// FinishStepUp verifies the passkey assertion for step-up ceremony id,
// consuming it, and returns the binding it committed to and the action.
func (s *Service) FinishStepUp(ctx context.Context, account, sessionID, id string, body []byte) (string, json.RawMessage, error) {
	wa, err := s.waConfig()
	if err != nil {
		return "", nil, err
	}
	acct, binding, cer, err := s.takeCeremony(ctx, id, "stepup", sessionID, false)
	if err != nil {
		return "", nil, err
	}
	if acct != account || cer.Factor != event.FactorPasskey || len(body) > maxCredBytes {
		return "", nil, errCeremony
	}
	nonce, err := hex.DecodeString(cer.Nonce)
	if err != nil || cer.Session.Challenge != b64.EncodeToString(Challenge(nonce, binding)) {
		return "", nil, errCeremony
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return "", nil, errPasskey
	}
	u, err := s.loadUser(ctx, "i.account = $1", account)
	if err != nil {
		return "", nil, err
	}
	cred, err := wa.ValidateLogin(u, cer.Session, parsed)
	if err != nil {
		s.logger.InfoContext(ctx, "step-up passkey refused", "account", account, "err", err)
		return "", nil, errPasskey
	}
	if err := s.usePasskey(ctx, u, cred); err != nil {
		return "", nil, err
	}
	return binding, cer.Action, nil
}

// BeginCodeStepUp starts a step-up by one-time code (TOTP, or an email
// code sent now naming the action in purposeText) for a customer without
// a passkey. The ceremony's id is a fresh server nonce; the action stays
// server-side, so the code approves exactly that action, once. The email
// codes sent are limited per account, session and network.
func (s *Service) BeginCodeStepUp(ctx context.Context, account, sessionID, binding string, action any, method, purposeText string, c session.Client) (string, error) {
	aj, err := json.Marshal(action)
	if err != nil {
		return "", err
	}
	f, err := s.Factors(ctx, account)
	if err != nil {
		return "", err
	}
	if method == event.FactorTOTP && !f.TOTP || method != event.FactorTOTP && method != event.FactorEmailOTP {
		method = event.FactorEmailOTP
	}
	if method == event.FactorEmailOTP {
		// Refuse before making a ceremony when no code may be sent now.
		l := s.cfg.Limits
		for _, k := range []keyLimit{{"send:acct:" + account, l.SendAccount}, {"send:sess:" + sessionID, l.SendSession}, {"send:net:" + c.Network, l.SendNetwork}} {
			if err := s.thr.Check(ctx, k.key, k.l); errors.Is(err, ErrThrottled) {
				return "", errTooMany
			} else if err != nil {
				return "", err
			}
		}
	}
	id, err := s.saveCeremony(ctx, "stepup_code", account, sessionID, binding, &ceremony{Action: aj, Method: method, Factor: method})
	if err != nil {
		return "", err
	}
	if method == event.FactorEmailOTP {
		if _, err := s.SendCodeBy(ctx, account, "stepup:"+id, purposeText, Try{Session: sessionID, Client: c}); err != nil {
			return "", err
		}
	}
	return id, nil
}

// errTries answers the last wrong code a step-up ceremony takes.
var errTries = reason.E("unauthenticated.tries")

// FinishCodeStepUp checks the code for step-up ceremony id and consumes
// the ceremony, returning the binding, the action and the factor used.
func (s *Service) FinishCodeStepUp(ctx context.Context, account, sessionID, id, code string) (string, json.RawMessage, string, error) {
	return s.FinishCodeStepUpBy(ctx, account, id, code, Try{Session: sessionID})
}

// FinishCodeStepUpBy is FinishCodeStepUp for an attempt by t (whose
// Session must be the one that began the ceremony). Every code counts
// against the ceremony (consumed after CeremonyTries wrong ones), the
// session, the network and the account, with back-off (Limits).
func (s *Service) FinishCodeStepUpBy(ctx context.Context, account, id, code string, t Try) (string, json.RawMessage, string, error) {
	if len(id) > 64 {
		return "", nil, "", errCeremony
	}
	now := store.Micros(s.cfg.Now())
	var acct, binding, data string
	var tries int64
	err := s.cfg.DB.QueryRowContext(ctx, `UPDATE ceremonies SET attempts = attempts + 1
		WHERE id = $1 AND kind = 'stepup_code' AND session = $2 AND used_us = 0 AND expires_us > $3 AND attempts < $4
		RETURNING account, binding, data, attempts`, id, t.Session, now, int64(s.cfg.CeremonyTries)).Scan(&acct, &binding, &data, &tries)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, "", errCeremony
	}
	if err != nil {
		return "", nil, "", err
	}
	cer := &ceremony{}
	if err := json.Unmarshal([]byte(data), cer); err != nil {
		return "", nil, "", err
	}
	if acct != account {
		return "", nil, "", errCeremony
	}
	if cer.Method == event.FactorTOTP {
		err = s.VerifyTOTPBy(ctx, account, code, t)
	} else {
		err = s.VerifyCodeBy(ctx, account, "stepup:"+id, code, t)
	}
	if err != nil {
		if tries >= int64(s.cfg.CeremonyTries) {
			if _, e := s.cfg.DB.ExecContext(ctx, `UPDATE ceremonies SET used_us = $1 WHERE id = $2 AND used_us = 0`, now, id); e != nil {
				return "", nil, "", e
			}
			if err == errCode {
				err = errTries
			}
		}
		return "", nil, "", err
	}
	res, err := s.cfg.DB.ExecContext(ctx, `UPDATE ceremonies SET used_us = $1 WHERE id = $2 AND used_us = 0`, now, id)
	if err != nil {
		return "", nil, "", err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return "", nil, "", errCeremony
	}
	return binding, cer.Action, cer.Method, nil
}

// Passkey is a registered passkey as its owner sees it.
type Passkey struct {
	ID             string
	Name           string
	Created        time.Time
	LastUsed       time.Time
	SignCount      int64
	BackupEligible bool
	BackedUp       bool
}

// HasPasskey reports whether account has a passkey.
func (s *Service) HasPasskey(ctx context.Context, account string) (bool, error) {
	var n int64
	err := s.cfg.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM passkeys WHERE account = $1`, account).Scan(&n)
	return n > 0, err
}

// Passkeys lists account's passkeys.
func (s *Service) Passkeys(ctx context.Context, account string) ([]Passkey, error) {
	rows, err := s.cfg.DB.QueryContext(ctx, `SELECT id, name, created_us, last_used_us, sign_count, backup_eligible, backup_state FROM passkeys WHERE account = $1 ORDER BY created_us`, account)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Passkey
	for rows.Next() {
		var p Passkey
		var c, l, be, bs int64
		if err := rows.Scan(&p.ID, &p.Name, &c, &l, &p.SignCount, &be, &bs); err != nil {
			return nil, err
		}
		p.Created, p.LastUsed, p.BackupEligible, p.BackedUp = store.FromMicros(c), store.FromMicros(l), be != 0, bs != 0
		out = append(out, p)
	}
	return out, rows.Err()
}

// RemovePasskey removes one passkey of account and notifies the customer.
func (s *Service) RemovePasskey(ctx context.Context, account, id string, c session.Client) error {
	now := s.cfg.Now()
	return s.cfg.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM passkeys WHERE id = $1 AND account = $2`, id, account)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return reason.E("not_found.passkey")
		}
		a, err := s.LookupAccount(ctx, tx, account)
		if err != nil {
			return err
		}
		return s.cfg.Outbox.Enqueue(ctx, tx, s.message(a, notify.KindFactorRemove, c, now, map[string]string{"Factor": factorName(event.FactorPasskey, a.Locale)}), now)
	})
}
