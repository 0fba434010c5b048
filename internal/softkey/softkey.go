// Package softkey is a software WebAuthn authenticator with the browser
// in front of it: it answers a relying party's registration and assertion
// options with the exact bytes a platform authenticator and a browser
// would send (client data, authenticator data, a "none" attestation
// object, ES256 signatures over a real P-256 key), so that a relying
// party's own verification, origin and RP ID checks included, runs
// unchanged. The simulator's customers and the identity tests hold their
// passkeys here.
//
// The browser is modelled as a faithful one by default: it refuses to
// use a credential of one RP ID on a page whose origin does not belong to
// it. Key.GetAs models the worst case a phishing kit could hope for (a
// client that lets the page claim any RP ID), so that the relying party's
// own origin check is what stands between the kit and the account.
package softkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// Authenticator data flags (WebAuthn §6.1).
const (
	flagUP = 0x01 // user present
	flagUV = 0x04 // user verified
	flagAT = 0x40 // attested credential data included
)

// ErrNoCredential is returned when the browser would find no credential
// for the page: the options' RP ID does not belong to the page's origin.
var ErrNoCredential = errors.New("softkey: no passkey for this site")

var b64 = base64.RawURLEncoding

// Key is one discoverable passkey: a P-256 key pair scoped to an RP ID
// and a user handle, with its signature counter.
type Key struct {
	ID         []byte
	RPID       string
	UserHandle []byte

	priv  *ecdsa.PrivateKey
	mu    sync.Mutex
	count uint32
}

// Create answers registration options as a browser at origin with a
// platform authenticator would: it makes a new key for the options' RP
// and user and returns it with the JSON body of the
// PublicKeyCredential (attestation "none", user present and verified).
func Create(opts protocol.PublicKeyCredentialCreationOptions, origin string) (*Key, []byte, error) {
	rpID := opts.RelyingParty.ID
	if rpID == "" {
		rpID = host(origin)
	}
	if !belongs(origin, rpID) {
		return nil, nil, ErrNoCredential
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	handle, err := userID(opts.User.ID)
	if err != nil {
		return nil, nil, err
	}
	k := &Key{ID: make([]byte, 16), RPID: rpID, UserHandle: handle, priv: priv}
	if _, err := rand.Read(k.ID); err != nil {
		return nil, nil, err
	}
	pub, err := priv.PublicKey.ECDH()
	if err != nil {
		return nil, nil, err
	}
	raw := pub.Bytes() // 0x04 || X || Y
	cose, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
		PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
		Curve:         int64(webauthncose.P256), XCoord: raw[1:33], YCoord: raw[33:65],
	})
	if err != nil {
		return nil, nil, err
	}
	rp := sha256.Sum256([]byte(rpID))
	ad := append(rp[:], flagUP|flagUV|flagAT, 0, 0, 0, 0) // counter 0
	ad = append(ad, make([]byte, 16)...)                  // AAGUID: none
	ad = binary.BigEndian.AppendUint16(ad, uint16(len(k.ID)))
	ad = append(ad, k.ID...)
	ad = append(ad, cose...)
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": ad})
	if err != nil {
		return nil, nil, err
	}
	cd, err := clientData("webauthn.create", opts.Challenge, origin)
	if err != nil {
		return nil, nil, err
	}
	body, err := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.ID), "rawId": b64.EncodeToString(k.ID), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(cd), "attestationObject": b64.EncodeToString(att), "transports": []string{"internal", "hybrid"},
		},
		"clientExtensionResults": map[string]any{},
	})
	return k, body, err
}

// Get answers assertion options as a faithful browser showing origin:
// it refuses (ErrNoCredential) when the options' RP ID is not the key's
// or does not belong to origin, and otherwise signs.
func (k *Key) Get(opts protocol.PublicKeyCredentialRequestOptions, origin string) ([]byte, error) {
	rpID := opts.RelyingPartyID
	if rpID == "" {
		rpID = host(origin)
	}
	if rpID != k.RPID || !belongs(origin, rpID) {
		return nil, ErrNoCredential
	}
	return k.sign(opts.Challenge, origin)
}

// GetAs signs an assertion for the key's own RP ID whatever page origin
// shows: the client data names origin truthfully, as every client does,
// but no browser check stops the key from being used there.
func (k *Key) GetAs(opts protocol.PublicKeyCredentialRequestOptions, origin string) ([]byte, error) {
	return k.sign(opts.Challenge, origin)
}

func (k *Key) sign(challenge protocol.URLEncodedBase64, origin string) ([]byte, error) {
	k.mu.Lock()
	k.count++
	count := k.count
	k.mu.Unlock()
	rp := sha256.Sum256([]byte(k.RPID))
	ad := append(rp[:], flagUP|flagUV)
	ad = binary.BigEndian.AppendUint32(ad, count)
	cd, err := clientData("webauthn.get", challenge, origin)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte(nil), ad...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.priv, digest[:])
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.ID), "rawId": b64.EncodeToString(k.ID), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(ad),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(k.UserHandle),
		},
		"clientExtensionResults": map[string]any{},
	})
}

// userID is the user handle of registration options, in whichever of
// the library's encodings it comes.
func userID(id any) ([]byte, error) {
	switch v := id.(type) {
	case protocol.URLEncodedBase64:
		return append([]byte(nil), v...), nil
	case []byte:
		return append([]byte(nil), v...), nil
	case string:
		return []byte(v), nil
	}
	return nil, fmt.Errorf("softkey: user id of type %T", id)
}

// clientData is the browser's CollectedClientData.
func clientData(typ string, challenge protocol.URLEncodedBase64, origin string) ([]byte, error) {
	if len(challenge) == 0 {
		return nil, fmt.Errorf("softkey: options without a challenge")
	}
	return json.Marshal(map[string]any{"type": typ, "challenge": b64.EncodeToString(challenge), "origin": origin, "crossOrigin": false})
}

func host(origin string) string {
	u, err := url.Parse(origin)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// belongs reports whether rpID is origin's host or a parent domain of it,
// as a browser requires before it lets a page use the RP ID.
func belongs(origin, rpID string) bool {
	h := host(origin)
	return rpID != "" && (h == rpID || strings.HasSuffix(h, "."+rpID))
}
