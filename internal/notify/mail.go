package notify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/kabuto-sec/kabuto/internal/clock"
)

// DKIMKey is one key notices are signed with.
type DKIMKey struct {
	Selector string
	Signer   crypto.Signer // an ed25519.PrivateKey or an *rsa.PrivateKey of ≥ 2048 bits
}

// ParseDKIMKey reads a PEM private key (PKCS #8, or PKCS #1 for RSA) for
// selector. The value may be the PEM text itself (as KABUTO_*_FILE gives
// it) or the name of a file holding it.
func ParseDKIMKey(selector, pemOrFile string) (DKIMKey, error) {
	text := []byte(pemOrFile)
	if !strings.Contains(pemOrFile, "-----BEGIN") {
		b, err := os.ReadFile(pemOrFile)
		if err != nil {
			return DKIMKey{}, fmt.Errorf("DKIM key: %w", err)
		}
		text = b
	}
	block, _ := pem.Decode(text)
	if block == nil {
		return DKIMKey{}, errors.New("DKIM key: no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return DKIMKey{}, fmt.Errorf("DKIM key: %w", err)
	}
	k := DKIMKey{Selector: selector}
	switch v := key.(type) {
	case ed25519.PrivateKey:
		k.Signer = v
	case *rsa.PrivateKey:
		k.Signer = v
	default:
		return DKIMKey{}, fmt.Errorf("DKIM key: %T is neither Ed25519 nor RSA", key)
	}
	return k, k.check()
}

func (k DKIMKey) check() error {
	if k.Selector == "" || strings.ContainsAny(k.Selector, " ;=\r\n") {
		return fmt.Errorf("DKIM selector %q is not a DNS label", k.Selector)
	}
	switch v := k.Signer.(type) {
	case ed25519.PrivateKey:
	case *rsa.PrivateKey:
		if v.N.BitLen() < 2048 {
			return fmt.Errorf("DKIM key of selector %s: RSA key of %d bits (at least 2048 needed)", k.Selector, v.N.BitLen())
		}
	default:
		return fmt.Errorf("DKIM key of selector %s: %T is neither Ed25519 nor RSA", k.Selector, k.Signer)
	}
	return nil
}

// PublicRecord returns the TXT record text that publishes k's public key.
func (k DKIMKey) PublicRecord() string {
	switch v := k.Signer.Public().(type) {
	case ed25519.PublicKey:
		return "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(v)
	case *rsa.PublicKey:
		der, _ := x509.MarshalPKIXPublicKey(v)
		return "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)
	}
	return ""
}

// SMTP sends email through an SMTP server: always over STARTTLS (a server
// that does not offer it, or one whose certificate does not verify, gets
// nothing), and every message DKIM-signed with each of Keys by the domain
// of From, so the signature aligns with the From address under DMARC.
type SMTP struct {
	Addr string    // host:port
	From string    // envelope and header sender, e.g. "兜証券 <notice@kabuto.example>"
	Auth smtp.Auth // nil: none
	// Keys sign every message (one signature per key: Ed25519 and RSA,
	// since not every receiver verifies Ed25519 yet).
	Keys []DKIMKey
	// TLS configures STARTTLS; nil verifies the server's certificate for
	// the host of Addr against the system's roots.
	TLS *tls.Config
	// Hello is the name given in EHLO ("localhost" if empty).
	Hello string
	Now   func() time.Time // nil: clock.Real
}

// Check reports whether s can send: a From address, at least one valid
// key. Call it at start so a bad setting stops the server instead of
// every message.
func (s SMTP) Check() error {
	if _, err := s.domain(); err != nil {
		return err
	}
	if len(s.Keys) == 0 {
		return errors.New("smtp: no DKIM key: every email must be DKIM-signed")
	}
	for _, k := range s.Keys {
		if err := k.check(); err != nil {
			return err
		}
	}
	return nil
}

// domain returns the domain of From, which is also the signing domain.
func (s SMTP) domain() (string, error) {
	a, err := mail.ParseAddress(s.From)
	if err != nil {
		return "", fmt.Errorf("smtp: From %q: %w", s.From, err)
	}
	_, d, ok := strings.Cut(a.Address, "@")
	if !ok || d == "" {
		return "", fmt.Errorf("smtp: From %q has no domain", s.From)
	}
	return strings.ToLower(d), nil
}

func (s SMTP) envelopeFrom() string {
	a, _ := mail.ParseAddress(s.From)
	return a.Address
}

// signedHeaders are the header fields every signature covers.
var signedHeaders = []string{"From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "X-Kabuto-Reference"}

// Compose returns d as a signed message: a plain-text UTF-8 body in
// base64 (so no relay re-encodes it and breaks the signatures), and one
// DKIM-Signature per key.
func (s SMTP) Compose(d Delivery) ([]byte, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	if strings.ContainsAny(d.Address, "\r\n") || strings.ContainsAny(s.From, "\r\n") {
		return nil, errors.New("smtp: address contains a line break")
	}
	if _, err := mail.ParseAddress(d.Address); err != nil {
		return nil, fmt.Errorf("smtp: To %q: %w", d.Address, err)
	}
	domain, _ := s.domain()
	now := clock.Real{}.Now()
	if s.Now != nil {
		now = s.Now()
	}
	from, _ := mail.ParseAddress(s.From)
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\n",
		from.String(), d.Address, mime.BEncoding.Encode("UTF-8", d.Subject), now.Format(time.RFC1123Z), d.ID, domain)
	if d.Ref != "" {
		fmt.Fprintf(&b, "X-Kabuto-Reference: %s\r\n", d.Ref)
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	body := base64.StdEncoding.EncodeToString([]byte(strings.ReplaceAll(d.Body, "\n", "\r\n") + "\r\n"))
	for len(body) > 76 {
		b.WriteString(body[:76] + "\r\n")
		body = body[76:]
	}
	b.WriteString(body + "\r\n")
	msg := b.Bytes()
	for _, k := range s.Keys {
		var out bytes.Buffer
		err := dkim.Sign(&out, bytes.NewReader(msg), &dkim.SignOptions{Domain: domain, Selector: k.Selector, Signer: k.Signer,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed, HeaderKeys: signedHeaders})
		if err != nil {
			return nil, fmt.Errorf("dkim: %w", err)
		}
		msg = out.Bytes()
	}
	return msg, nil
}

// Send signs d and delivers it over STARTTLS.
func (s SMTP) Send(ctx context.Context, d Delivery) error {
	msg, err := s.Compose(d)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	defer conn.Close()
	// A network deadline is on the wall clock, whatever s.Now says.
	deadline := clock.Real{}.Now().Add(time.Minute)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	defer c.Close()
	hello := s.Hello
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return errors.New("smtp: the server does not offer STARTTLS; refusing to send in clear text")
	}
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if s.TLS != nil {
		cfg = s.TLS.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = host
		}
	}
	if err := c.StartTLS(cfg); err != nil {
		return fmt.Errorf("smtp: STARTTLS: %w", err)
	}
	if s.Auth != nil {
		if err := c.Auth(s.Auth); err != nil {
			return fmt.Errorf("smtp: %w", err)
		}
	}
	if err := c.Mail(s.envelopeFrom()); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := c.Rcpt(d.Address); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	return c.Quit()
}
