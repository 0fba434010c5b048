package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// Origins of the simulated front door: the brokerage's real sign-in page,
// and the phishing kit's look-alike that relays to it.
const (
	RPID           = "kabuto.example"
	RealOrigin     = "https://kabuto.example"
	PhishingRPID   = "kabuto-secure-login.example.net"
	PhishingOrigin = "https://kabuto-secure-login.example.net"
)

// FrontDoor verifies what a person presents at sign-in and at step-up.
// The simulator asks it, never a flag, whether a passkey assertion or a
// one-time code passes, so that a relayed code passes and an assertion made
// on a phishing origin fails exactly as it would at the real front door.
// It is an interface so that the identity package's service can replace
// the built-in implementation.
type FrontDoor interface {
	// PasskeyAssertion runs a WebAuthn assertion ceremony for account: the
	// customer's authenticator signs the challenge in a browser showing
	// origin (with the RP ID that origin may claim), and the relying party
	// verifies it. It reports whether the assertion verified.
	PasskeyAssertion(account, origin, rpID string) (bool, error)
	// Code returns the one-time code the customer's authenticator (app,
	// SMS or mail) shows at t.
	Code(account string, t time.Time) string
	// VerifyCode reports whether code is valid for account at t, whoever
	// typed it.
	VerifyCode(account, code string, t time.Time) bool
}

// webauthnDoor is the built-in FrontDoor: WebAuthn assertions with real
// P-256 keys verified by github.com/go-webauthn/webauthn against the
// relying party's origin, and RFC 6238 codes from per-account secrets.
type webauthnDoor struct {
	wa   *webauthn.WebAuthn
	seed uint64

	mu   sync.Mutex
	keys map[string]*passkey
}

type passkey struct {
	priv  *ecdsa.PrivateKey
	cred  webauthn.Credential
	count uint32
}

// waUser is a customer as the WebAuthn library sees it.
type waUser struct {
	id    string
	creds []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                         { return []byte(u.id) }
func (u *waUser) WebAuthnName() string                       { return u.id }
func (u *waUser) WebAuthnDisplayName() string                { return u.id }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// NewFrontDoor returns the built-in front door for the relying party
// RPID at RealOrigin.
func NewFrontDoor(seed uint64) (FrontDoor, error) {
	wa, err := webauthn.New(&webauthn.Config{RPID: RPID, RPDisplayName: "Kabuto Securities (simulated)", RPOrigins: []string{RealOrigin}})
	if err != nil {
		return nil, err
	}
	return &webauthnDoor{wa: wa, seed: seed, keys: map[string]*passkey{}}, nil
}

// key returns the account's passkey, made (registered) on first use.
func (d *webauthnDoor) key(account string) (*passkey, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if k := d.keys[account]; k != nil {
		return k, nil
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pub, err := priv.PublicKey.ECDH()
	if err != nil {
		return nil, err
	}
	raw := pub.Bytes() // 0x04 || X || Y
	cose := webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         int64(webauthncose.P256), XCoord: raw[1:33], YCoord: raw[33:65],
	}
	pk, err := webauthncbor.Marshal(cose)
	if err != nil {
		return nil, err
	}
	id := sha256.Sum256([]byte("cred|" + account))
	k := &passkey{priv: priv, cred: webauthn.Credential{ID: id[:16], PublicKey: pk, AttestationType: "none"}}
	d.keys[account] = k
	return k, nil
}

// PasskeyAssertion implements FrontDoor.
func (d *webauthnDoor) PasskeyAssertion(account, origin, rpID string) (bool, error) {
	k, err := d.key(account)
	if err != nil {
		return false, err
	}
	user := &waUser{id: account, creds: []webauthn.Credential{k.cred}}
	opts, session, err := d.wa.BeginLogin(user)
	if err != nil {
		return false, err
	}
	// The browser: client data names the origin it really shows.
	cd, _ := json.Marshal(map[string]any{"type": "webauthn.get", "challenge": opts.Response.Challenge.String(), "origin": origin, "crossOrigin": false})
	// The authenticator: RP ID hash, flags UP|UV, signature counter.
	d.mu.Lock()
	k.count++
	count := k.count
	d.mu.Unlock()
	rp := sha256.Sum256([]byte(rpID))
	ad := make([]byte, 37)
	copy(ad, rp[:])
	ad[32] = 0x05
	binary.BigEndian.PutUint32(ad[33:], count)
	cdh := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte(nil), ad...), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		return false, err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	body, _ := json.Marshal(map[string]any{
		"id": b64(k.cred.ID), "rawId": b64(k.cred.ID), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64(cd), "authenticatorData": b64(ad), "signature": b64(sig), "userHandle": b64([]byte(account))},
	})
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return false, fmt.Errorf("passkey assertion: %w", err)
	}
	if _, err := d.wa.ValidateLogin(user, *session, parsed); err != nil {
		return false, nil // origin, RP ID or signature check failed
	}
	return true, nil
}

var otpOpts = totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// secret is the account's code secret (base32), derived from the seed.
func (d *webauthnDoor) secret(account string) string {
	h := sha256.Sum256(fmt.Appendf(nil, "otp|%d|%s", d.seed, account))
	return base32NoPad(h[:20])
}

// Code implements FrontDoor.
func (d *webauthnDoor) Code(account string, t time.Time) string {
	c, err := totp.GenerateCodeCustom(d.secret(account), t, otpOpts)
	if err != nil {
		return ""
	}
	return c
}

// VerifyCode implements FrontDoor.
func (d *webauthnDoor) VerifyCode(account, code string, t time.Time) bool {
	ok, err := totp.ValidateCustom(code, d.secret(account), t, otpOpts)
	return err == nil && ok
}

func base32NoPad(b []byte) string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	var out []byte
	var buf uint64
	bits := 0
	for _, c := range b {
		buf = buf<<8 | uint64(c)
		bits += 8
		for bits >= 5 {
			out = append(out, alpha[(buf>>(bits-5))&31])
			bits -= 5
		}
	}
	if bits > 0 {
		out = append(out, alpha[(buf<<(5-bits))&31])
	}
	return string(out)
}
