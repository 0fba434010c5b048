package softkey

import (
	"errors"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

type user struct {
	creds []webauthn.Credential
}

func (u *user) WebAuthnID() []byte                         { return []byte("handle-0001") }
func (u *user) WebAuthnName() string                       { return "C0000001" }
func (u *user) WebAuthnDisplayName() string                { return "Tanaka" }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// TestAgainstRelyingParty runs the key through go-webauthn as the relying
// party: registration verifies, an assertion on the real origin verifies,
// and one made on a look-alike origin fails the origin check, or never
// leaves a faithful browser.
func TestAgainstRelyingParty(t *testing.T) {
	const rpID, origin = "kabuto.example", "https://kabuto.example"
	rp, err := webauthn.New(&webauthn.Config{RPID: rpID, RPDisplayName: "Kabuto", RPOrigins: []string{origin}})
	if err != nil {
		t.Fatal(err)
	}
	u := &user{}
	opts, sd, err := rp.BeginRegistration(u, webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
		ResidentKey: protocol.ResidentKeyRequirementRequired, UserVerification: protocol.VerificationRequired}))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Create(opts.Response, "https://kabuto-login.example.net"); !errors.Is(err, ErrNoCredential) {
		t.Fatalf("a look-alike site registered a passkey for the real RP: %v", err)
	}
	k, body, err := Create(opts.Response, origin)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := rp.CreateCredential(u, *sd, parsed)
	if err != nil {
		t.Fatalf("registration refused: %v", err)
	}
	if !cred.Flags.UserVerified || string(k.UserHandle) != "handle-0001" {
		t.Fatalf("flags %+v, handle %q", cred.Flags, k.UserHandle)
	}
	u.creds = []webauthn.Credential{*cred}

	for _, tc := range []struct {
		name    string
		origin  string
		anyRP   bool // GetAs: the client lets the page use the key anyway
		wantErr error
		pass    bool
	}{
		{"real origin", origin, false, nil, true},
		{"look-alike, faithful browser", "https://kabuto-login.example.net", false, ErrNoCredential, false},
		{"look-alike, key used anyway", "https://kabuto-login.example.net", true, nil, false},
		{"http downgrade", "http://kabuto.example", true, nil, false},
		{"real origin again", origin, false, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts, sd, err := rp.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationRequired))
			if err != nil {
				t.Fatal(err)
			}
			get := k.Get
			if tc.anyRP {
				get = k.GetAs
			}
			body, err := get(opts.Response, tc.origin)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("get: %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
			if err != nil {
				t.Fatal(err)
			}
			_, err = rp.ValidateLogin(u, *sd, parsed)
			if (err == nil) != tc.pass {
				t.Fatalf("validate: %v, want pass=%v", err, tc.pass)
			}
		})
	}
}
