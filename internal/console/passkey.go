package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/kabuto-sec/kabuto/internal/analyst"
	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Analysts sign in to the console with passkeys. `kabuto analyst --create`
// prints a one-time enrolment code (IssueEnrolment); the analyst opens
// /console/enrol, enters it and registers a passkey, which signs them in.
// Later sign-ins are discoverable passkey sign-ins from the sign-in page.

// EnrolmentTTL is how long an enrolment code stays valid.
const EnrolmentTTL = 72 * time.Hour

// ceremonyTTL is how long a passkey ceremony may take.
const ceremonyTTL = 5 * time.Minute

var b64 = base64.RawURLEncoding

// normCode returns an enrolment code as typed, upper-cased and without
// spaces or dashes.
func normCode(s string) string {
	s = strings.ToUpper(s)
	s = strings.NewReplacer("-", "", " ", "", "\t", "").Replace(s)
	return s
}

func codeHash(code string) string {
	h := sha256.Sum256([]byte("kabuto-analyst-enrolment:" + normCode(code)))
	return hex.EncodeToString(h[:])
}

// IssueEnrolment makes a one-time enrolment code for the active analyst
// name, valid for EnrolmentTTL, and audits it with by (who issued it). The
// code is stored only as its hash.
func IssueEnrolment(ctx context.Context, db *store.DB, name, by string, now time.Time) (string, error) {
	var raw [10]byte
	rand.Read(raw[:])
	c := base32.StdEncoding.EncodeToString(raw[:]) // 16 characters
	code := c[0:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:16]
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := analyst.Active(ctx, tx, name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO analyst_enrolments (code_hash, analyst, created_us, expires_us) VALUES ($1, $2, $3, $4)`,
			codeHash(code), name, store.Micros(now), store.Micros(now.Add(EnrolmentTTL))); err != nil {
			return err
		}
		return audit.AppendTx(ctx, tx, audit.Entry{Time: now, Actor: by, Action: "analyst_enrolment_issued", Subject: "analyst:" + name})
	})
	return code, err
}

// person is an analyst as the WebAuthn library sees them.
type person struct {
	handle []byte
	name   string
	creds  []webauthn.Credential
}

func (p *person) WebAuthnID() []byte                         { return p.handle }
func (p *person) WebAuthnName() string                       { return p.name }
func (p *person) WebAuthnDisplayName() string                { return p.name }
func (p *person) WebAuthnCredentials() []webauthn.Credential { return p.creds }

// loadPerson reads the analyst's passkeys; by is "analyst" or
// "user_handle". An analyst without passkeys gets a fresh handle.
func (c *Console) loadPerson(ctx context.Context, by, v string) (*person, error) {
	rows, err := c.cfg.DB.QueryContext(ctx, `SELECT analyst, user_handle, id, public_key, aaguid, sign_count, backup_eligible, backup_state FROM analyst_passkeys WHERE `+by+` = $1 ORDER BY created_us`, v)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	p := &person{}
	if by == "analyst" {
		p.name = v
	}
	for rows.Next() {
		var handle, id, pk, aaguid string
		var count, be, bs int64
		if err := rows.Scan(&p.name, &handle, &id, &pk, &aaguid, &count, &be, &bs); err != nil {
			return nil, err
		}
		p.handle, _ = hex.DecodeString(handle)
		cr := webauthn.Credential{}
		cr.ID, _ = b64.DecodeString(id)
		cr.PublicKey, _ = b64.DecodeString(pk)
		cr.Authenticator.AAGUID, _ = hex.DecodeString(aaguid)
		cr.Authenticator.SignCount = uint32(count)
		cr.Flags = webauthn.CredentialFlags{UserPresent: true, UserVerified: true, BackupEligible: be != 0, BackupState: bs != 0}
		p.creds = append(p.creds, cr)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if p.handle == nil {
		p.handle = make([]byte, 32)
		rand.Read(p.handle)
	}
	return p, nil
}

// relyingParty returns the WebAuthn relying party: the portal's (Config.Passkeys).
func (c *Console) relyingParty() (*webauthn.WebAuthn, error) {
	if c.cfg.Passkeys == nil || c.cfg.DB == nil {
		return nil, reason.E("unavailable.passkeys")
	}
	rpID, origins := c.cfg.Passkeys()
	return webauthn.New(&webauthn.Config{RPID: rpID, RPDisplayName: "Kabuto back office", RPOrigins: origins})
}

// ceremony is a passkey ceremony between its start and its end.
type ceremony struct {
	kind    string // "enrol" or "signin"
	sd      webauthn.SessionData
	analyst string
	code    string // the enrolment code's hash
	handle  []byte
	expires time.Time
}

func (c *Console) saveCeremony(cer *ceremony) string {
	id := randHex(16)
	now := c.cfg.Now()
	cer.expires = now.Add(ceremonyTTL)
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.ceremonies {
		if now.After(v.expires) {
			delete(c.ceremonies, k)
		}
	}
	if len(c.ceremonies) >= maxCeremonies {
		return ""
	}
	c.ceremonies[id] = cer
	return id
}

// maxCeremonies bounds the passkey ceremonies kept at once: starting one
// needs no sign-in, so a flood must not grow memory without end.
const maxCeremonies = 10000

var errBusy = reason.E("busy")

// takeCeremony consumes ceremony id of kind; a ceremony is used once.
func (c *Console) takeCeremony(id, kind string) *ceremony {
	c.mu.Lock()
	defer c.mu.Unlock()
	cer := c.ceremonies[id]
	delete(c.ceremonies, id)
	if cer == nil || cer.kind != kind || c.cfg.Now().After(cer.expires) {
		return nil
	}
	return cer
}

// jsonAnswer writes v as JSON with status.
func jsonAnswer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func jsonError(w http.ResponseWriter, status int, code, msg string) {
	jsonAnswer(w, status, map[string]string{"error": code, "message": msg})
}

// ceremonyRequest is what the console's script posts.
type ceremonyRequest struct {
	Code       string          `json:"code"`
	Next       string          `json:"next"`
	Ceremony   string          `json:"ceremony"`
	Credential json.RawMessage `json:"credential"`
}

const maxCeremonyBody = 64 << 10

func readCeremony(r *http.Request) (*ceremonyRequest, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCeremonyBody+1))
	if err != nil || len(body) > maxCeremonyBody {
		return nil, reason.E("bad_request.ceremony_size")
	}
	var req ceremonyRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, reason.E("bad_request.json_object")
	}
	return &req, nil
}

var errSignIn = "The passkey did not sign you in. · パスキーでサインインできませんでした。"

// ceremonyGate checks origin and throttle for a ceremony endpoint; false
// when it already answered.
func (c *Console) ceremonyGate(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !sameOrigin(r) {
		jsonError(w, http.StatusForbidden, reason.Forbidden, errCrossOrigin.Error())
		return "", false
	}
	client := clientOf(r)
	wait, err := c.throttled(r.Context(), client)
	if err != nil {
		c.cfg.Log.Error("console sign-in throttle", "err", err)
		jsonError(w, http.StatusInternalServerError, "internal", "try again later · しばらくしてからお試しください")
		return "", false
	}
	if wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		jsonError(w, http.StatusTooManyRequests, "too_many_attempts", "Too many failed sign-ins from here; wait and try again. · 失敗が続いたため、しばらくしてからお試しください。")
		return "", false
	}
	return client, true
}

func (c *Console) refuse(w http.ResponseWriter, r *http.Request, client string, status int, code, msg string) {
	if err := c.failed(r.Context(), client); err != nil {
		c.cfg.Log.Error("console sign-in throttle", "err", err)
	}
	jsonError(w, status, code, msg)
}

// enrolPage shows the enrolment form.
func (c *Console) enrolPage(w http.ResponseWriter, r *http.Request) error {
	c.render(w, http.StatusOK, "enrol.html", nil)
	return nil
}

// enrolBegin checks an enrolment code and starts registering a passkey.
func (c *Console) enrolBegin(w http.ResponseWriter, r *http.Request) error {
	client, ok := c.ceremonyGate(w, r)
	if !ok {
		return nil
	}
	req, err := readCeremony(r)
	if err != nil {
		return err
	}
	wa, err := c.relyingParty()
	if err != nil {
		return err
	}
	ctx := r.Context()
	h := codeHash(req.Code)
	var name string
	err = c.cfg.DB.QueryRowContext(ctx, `SELECT analyst FROM analyst_enrolments WHERE code_hash = $1 AND used_us = 0 AND expires_us > $2`, h, store.Micros(c.cfg.Now())).Scan(&name)
	if err == nil {
		_, err = analyst.Active(ctx, c.cfg.DB, name)
	}
	if err != nil {
		if reason.As(err) == nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		c.refuse(w, r, client, http.StatusUnauthorized, "bad_enrolment_code", "That enrolment code is not valid (wrong, used or expired). Ask an admin for a new one. · 登録コードが無効です（誤り・使用済み・期限切れ）。管理者に新しいコードを依頼してください。")
		return nil
	}
	p, err := c.loadPerson(ctx, "analyst", name)
	if err != nil {
		return err
	}
	var exclude []protocol.CredentialDescriptor
	for _, cr := range p.creds {
		exclude = append(exclude, cr.Descriptor())
	}
	opts, sd, err := wa.BeginRegistration(p,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationRequired}),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return err
	}
	id := c.saveCeremony(&ceremony{kind: "enrol", sd: *sd, analyst: name, code: h, handle: p.handle})
	if id == "" {
		return errBusy
	}
	jsonAnswer(w, http.StatusOK, map[string]any{"ceremony": id, "analyst": name, "publicKey": opts.Response})
	return nil
}

// enrolFinish stores the analyst's passkey, uses up the code and signs
// the analyst in.
func (c *Console) enrolFinish(w http.ResponseWriter, r *http.Request) error {
	client, ok := c.ceremonyGate(w, r)
	if !ok {
		return nil
	}
	req, err := readCeremony(r)
	if err != nil {
		return err
	}
	wa, err := c.relyingParty()
	if err != nil {
		return err
	}
	cer := c.takeCeremony(req.Ceremony, "enrol")
	if cer == nil {
		c.refuse(w, r, client, http.StatusBadRequest, "ceremony_expired", "The enrolment took too long or was already used; start again. · 時間切れです。最初からやり直してください。")
		return nil
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(req.Credential)
	if err != nil {
		c.refuse(w, r, client, http.StatusBadRequest, "bad_passkey", "The passkey could not be registered. · パスキーを登録できませんでした。")
		return nil
	}
	ctx := r.Context()
	p, err := c.loadPerson(ctx, "analyst", cer.analyst)
	if err != nil {
		return err
	}
	p.handle = cer.handle
	cred, err := wa.CreateCredential(p, cer.sd, parsed)
	if err != nil || !cred.Flags.UserVerified {
		c.cfg.Log.InfoContext(ctx, "analyst passkey registration refused", "analyst", cer.analyst, "err", err)
		c.refuse(w, r, client, http.StatusBadRequest, "bad_passkey", "The passkey could not be registered. · パスキーを登録できませんでした。")
		return nil
	}
	now := c.cfg.Now()
	var a *analyst.Analyst
	err = c.cfg.DB.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE analyst_enrolments SET used_us = $1 WHERE code_hash = $2 AND analyst = $3 AND used_us = 0 AND expires_us > $1`,
			store.Micros(now), cer.code, cer.analyst)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return reason.E("bad_enrolment_code")
		}
		if a, err = analyst.Active(ctx, tx, cer.analyst); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO analyst_passkeys (id, analyst, user_handle, public_key, aaguid, sign_count, backup_eligible, backup_state, created_us, last_used_us)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`, b64.EncodeToString(cred.ID), cer.analyst, hex.EncodeToString(cer.handle), b64.EncodeToString(cred.PublicKey),
			hex.EncodeToString(cred.Authenticator.AAGUID), int64(cred.Authenticator.SignCount), store.Int(cred.Flags.BackupEligible), store.Int(cred.Flags.BackupState), store.Micros(now)); err != nil {
			return err
		}
		return audit.AppendTx(ctx, tx, audit.Entry{Time: now, Actor: a.Actor(), Action: "analyst_passkey_enrolled", Subject: a.Actor(), Detail: map[string]any{"ip": client}})
	})
	if e := reason.As(err); e != nil {
		c.refuse(w, r, client, e.HTTPStatus(), e.Code, e.Text("en"))
		return nil
	}
	if err != nil {
		return err
	}
	c.startSession(w, r, a, "passkey_enrolment", client)
	jsonAnswer(w, http.StatusOK, map[string]string{"redirect": "/console", "message": "Passkey registered; you are signed in. · パスキーを登録し、サインインしました。"})
	return nil
}

// signinBegin starts a discoverable passkey sign-in.
func (c *Console) signinBegin(w http.ResponseWriter, r *http.Request) error {
	if _, ok := c.ceremonyGate(w, r); !ok {
		return nil
	}
	wa, err := c.relyingParty()
	if err != nil {
		return err
	}
	opts, sd, err := wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return err
	}
	id := c.saveCeremony(&ceremony{kind: "signin", sd: *sd})
	if id == "" {
		return errBusy
	}
	jsonAnswer(w, http.StatusOK, map[string]any{"ceremony": id, "publicKey": opts.Response})
	return nil
}

// signinFinish verifies the assertion and signs the analyst in.
func (c *Console) signinFinish(w http.ResponseWriter, r *http.Request) error {
	client, ok := c.ceremonyGate(w, r)
	if !ok {
		return nil
	}
	req, err := readCeremony(r)
	if err != nil {
		return err
	}
	wa, err := c.relyingParty()
	if err != nil {
		return err
	}
	cer := c.takeCeremony(req.Ceremony, "signin")
	if cer == nil {
		c.refuse(w, r, client, http.StatusBadRequest, "ceremony_expired", "The sign-in took too long; try again. · 時間切れです。もう一度お試しください。")
		return nil
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(req.Credential)
	if err != nil {
		c.refuse(w, r, client, http.StatusUnauthorized, "bad_passkey", errSignIn)
		return nil
	}
	ctx := r.Context()
	var found *person
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		p, err := c.loadPerson(ctx, "user_handle", hex.EncodeToString(userHandle))
		if err != nil {
			return nil, err
		}
		if len(p.creds) == 0 {
			return nil, errors.New("no analyst with this passkey")
		}
		found = p
		return p, nil
	}
	_, cred, err := wa.ValidatePasskeyLogin(handler, cer.sd, parsed)
	if err != nil || found == nil || cred.Authenticator.CloneWarning {
		c.cfg.Log.InfoContext(ctx, "analyst passkey sign-in refused", "err", err)
		c.refuse(w, r, client, http.StatusUnauthorized, "bad_passkey", errSignIn)
		return nil
	}
	a, err := analyst.Active(ctx, c.cfg.DB, found.name)
	if err != nil {
		c.refuse(w, r, client, http.StatusForbidden, analyst.ReasonUnknownAnalyst, "This analyst account is disabled. · このアナリストアカウントは無効です。")
		return nil
	}
	// The conditional update on the old count refuses a replayed or cloned
	// assertion racing this one.
	var old int64
	for _, cr := range found.creds {
		if string(cr.ID) == string(cred.ID) {
			old = int64(cr.Authenticator.SignCount)
		}
	}
	res, err := c.cfg.DB.ExecContext(ctx, `UPDATE analyst_passkeys SET sign_count = $1, last_used_us = $2 WHERE id = $3 AND sign_count = $4`,
		int64(cred.Authenticator.SignCount), store.Micros(c.cfg.Now()), b64.EncodeToString(cred.ID), old)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		c.refuse(w, r, client, http.StatusUnauthorized, "bad_passkey", errSignIn)
		return nil
	}
	c.startSession(w, r, a, "passkey", client)
	jsonAnswer(w, http.StatusOK, map[string]string{"redirect": safeNext(req.Next)})
	return nil
}

// startSession signs analyst a in and audits it by name.
func (c *Console) startSession(w http.ResponseWriter, r *http.Request, a *analyst.Analyst, method, client string) {
	id := randHex(32)
	now := c.cfg.Now()
	c.mu.Lock()
	c.sessions[id] = &analystSession{name: a.Name, person: a.Name, role: a.Role, csrf: randHex(16), created: now, seen: now}
	c.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookie, Value: id, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	c.audit(r.Context(), a.Actor(), "console_login", a.Actor(), map[string]any{"ip": client, "method": method, "role": a.Role})
}
