package notify

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/maildomain"
	"github.com/kabuto-sec/kabuto/internal/maildomain/dnstest"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// smtpServer is a real SMTP server for tests: EHLO, STARTTLS with a
// self-signed certificate (when offered), MAIL, RCPT, DATA, QUIT. It keeps
// every message it receives.
type smtpServer struct {
	addr     string
	roots    *x509.CertPool
	offerTLS bool

	mu       sync.Mutex
	messages [][]byte
	clear    int // messages received without TLS
}

func startSMTP(t *testing.T, offerTLS bool) *smtpServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mx.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	s := &smtpServer{roots: x509.NewCertPool(), offerTLS: offerTLS}
	s.roots.AddCert(cert)
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	s.addr = ln.Addr().String()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c, cfg)
		}
	}()
	return s
}

func (s *smtpServer) serve(c net.Conn, cfg *tls.Config) {
	defer func() { c.Close() }()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	tp := textproto.NewConn(c)
	tp.PrintfLine("220 mx.test ESMTP")
	secure := false
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "EHLO", "HELO":
			if s.offerTLS && !secure {
				tp.PrintfLine("250-mx.test\r\n250-8BITMIME\r\n250 STARTTLS")
			} else {
				tp.PrintfLine("250-mx.test\r\n250 8BITMIME")
			}
		case "STARTTLS":
			if !s.offerTLS || secure {
				tp.PrintfLine("502 no")
				continue
			}
			tp.PrintfLine("220 go ahead")
			tc := tls.Server(c, cfg)
			if err := tc.Handshake(); err != nil {
				return
			}
			c, tp, secure = tc, textproto.NewConn(tc), true
		case "MAIL", "RCPT":
			tp.PrintfLine("250 ok")
		case "DATA":
			tp.PrintfLine("354 go on")
			b, err := io.ReadAll(tp.DotReader())
			if err != nil {
				return
			}
			s.mu.Lock()
			s.messages = append(s.messages, bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))) // the DotReader gives bare \n
			if !secure {
				s.clear++
			}
			s.mu.Unlock()
			tp.PrintfLine("250 queued")
		case "QUIT":
			tp.PrintfLine("221 bye")
			return
		default:
			tp.PrintfLine("500 what")
		}
	}
}

func (s *smtpServer) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.messages...)
}

var (
	testEd  = mustEd()
	testRSA = mustRSA(2048)
)

func mustEd() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func mustRSA(bits int) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return k
}

// signingSetup is the firm's DNS (the two public keys) and a sender.
func signingSetup(t *testing.T, smtpSrv *smtpServer) (SMTP, func(string) ([]string, error)) {
	keys := []DKIMKey{{Selector: "ed2026", Signer: testEd}, {Selector: "rsa2026", Signer: testRSA}}
	dns := dnstest.Start(t, map[string][]string{
		"ed2026._domainkey.kabuto.test":  {keys[0].PublicRecord()},
		"rsa2026._domainkey.kabuto.test": {keys[1].PublicRecord()},
	})
	s := SMTP{Addr: smtpSrv.addr, From: "兜証券 <notice@kabuto.test>", Keys: keys, TLS: &tls.Config{RootCAs: smtpSrv.roots}}
	return s, maildomain.LookupTXT(context.Background(), maildomain.DNS{Server: dns.Addr})
}

func verify(t *testing.T, msg []byte, lookup func(string) ([]string, error)) []*dkim.Verification {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(msg), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// TestNoticesSignedOverSTARTTLS: every template in both languages goes
// through the outbox and the worker to a real SMTP server over STARTTLS;
// each captured message carries an Ed25519 and an RSA signature by the
// From address's domain that verify against the keys in DNS, and neither
// verifies once one byte of the body changes.
func TestNoticesSignedOverSTARTTLS(t *testing.T) {
	srv := startSMTP(t, true)
	sender, lookup := signingSetup(t, srv)
	db := storetest.SQLite(t)
	ctx := context.Background()
	now := time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST)
	n := 0
	for _, loc := range []string{"ja", "en"} {
		for _, k := range Kinds {
			m := Message{Account: "C1", To: "yui@example.jp", Locale: loc, Kind: k, Data: map[string]string{"Name": "佐藤 結衣", "Amount": "¥100,000", "Code": "123456"}}
			if err := (&Outbox{}).Enqueue(ctx, db, m, now); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	w := &Worker{DB: db, Senders: map[string]Sender{ChannelEmail: sender}, Now: func() time.Time { return now }}
	if sent, err := w.RunOnce(ctx); err != nil || sent != n {
		t.Fatalf("sent %d of %d: %v", sent, n, err)
	}
	msgs := srv.received()
	if len(msgs) != n || srv.clear != 0 {
		t.Fatalf("%d messages received, %d in clear text", len(msgs), srv.clear)
	}
	for i, msg := range msgs {
		vs := verify(t, msg, lookup)
		if len(vs) != 2 {
			t.Fatalf("message %d: %d signatures", i, len(vs))
		}
		parsed, err := mail.ReadMessage(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		from, _ := mail.ParseAddress(parsed.Header.Get("From"))
		for _, v := range vs {
			if v.Err != nil {
				t.Fatalf("message %d: %v", i, v.Err)
			}
			if !strings.HasSuffix(from.Address, "@"+v.Domain) {
				t.Fatalf("signed by %s, From %s: not aligned", v.Domain, from.Address)
			}
		}
		// The reference in the header is the one stored and the one in the body.
		ref := parsed.Header.Get("X-Kabuto-Reference")
		body, _ := io.ReadAll(base64.NewDecoder(base64.StdEncoding, parsed.Body))
		if _, err := LookupRef(ctx, db, ref); err != nil || !strings.Contains(string(body), ref) {
			t.Fatalf("reference %q: %v", ref, err)
		}
		// One changed byte in the body: no signature verifies.
		tampered := bytes.Clone(msg)
		at := bytes.Index(tampered, []byte("\r\n\r\n")) + 10
		if at < 10 {
			t.Fatal("no body")
		}
		if tampered[at] == 'A' {
			tampered[at] = 'B'
		} else {
			tampered[at] = 'A'
		}
		for _, v := range verify(t, tampered, lookup) {
			if v.Err == nil {
				t.Fatalf("message %d verifies after a changed body byte", i)
			}
		}
	}
}

// TestSMTPRefusesDowngrade: a network attacker who strips STARTTLS from
// the server's answer, or answers with a certificate of its own, gets no
// message.
func TestSMTPRefusesDowngrade(t *testing.T) {
	plain := startSMTP(t, false)
	s, _ := signingSetup(t, plain)
	d := Delivery{ID: "N1", Address: "yui@example.jp", Subject: "s", Body: "b", Ref: NewRef()}
	if err := s.Send(context.Background(), d); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("sent without STARTTLS: %v", err)
	}
	forged := startSMTP(t, true)
	s.Addr, s.TLS = forged.addr, nil // the system's roots do not know the test certificate
	if err := s.Send(context.Background(), d); err == nil {
		t.Fatal("sent to a server whose certificate does not verify")
	}
	if len(plain.received())+len(forged.received()) != 0 {
		t.Fatal("a message reached the attacker's server")
	}
}

func TestSMTPCheck(t *testing.T) {
	weak := mustRSA(1024)
	cases := []struct {
		name string
		s    SMTP
		ok   bool
	}{
		{"ed25519 and rsa", SMTP{From: "notice@kabuto.test", Keys: []DKIMKey{{"a", testEd}, {"b", testRSA}}}, true},
		{"no key", SMTP{From: "notice@kabuto.test"}, false},
		{"rsa 1024", SMTP{From: "notice@kabuto.test", Keys: []DKIMKey{{"a", weak}}}, false},
		{"no domain in From", SMTP{From: "notice", Keys: []DKIMKey{{"a", testEd}}}, false},
		{"bad selector", SMTP{From: "notice@kabuto.test", Keys: []DKIMKey{{"a;b", testEd}}}, false},
	}
	for _, c := range cases {
		if err := c.s.Check(); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestParseDKIMKeyFile(t *testing.T) {
	dir := t.TempDir()
	p8, _ := x509.MarshalPKCS8PrivateKey(testEd)
	edPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}))
	rsaPEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testRSA)}))
	file := filepath.Join(dir, "rsa.pem")
	if err := os.WriteFile(file, []byte(rsaPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := ParseDKIMKey("ed", edPEM); err != nil || !strings.Contains(k.PublicRecord(), "k=ed25519") {
		t.Fatalf("PEM text: %v", err)
	}
	if k, err := ParseDKIMKey("rsa", file); err != nil || !strings.Contains(k.PublicRecord(), "k=rsa") {
		t.Fatalf("file: %v", err)
	}
	weak := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(mustRSA(1024))})
	for _, bad := range []string{string(weak), filepath.Join(dir, "missing.pem"), "-----BEGIN nothing"} {
		if _, err := ParseDKIMKey("x", bad); err == nil {
			t.Errorf("%.30q accepted", bad)
		}
	}
}

// TestEveryChannelCarriesARef: email, SMS and webhook rows of one message
// each carry a reference code of their own, in the text the customer
// reads, which the public look-up knows however it is typed.
func TestEveryChannelCarriesARef(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST)
		o := &Outbox{Webhook: true, SMS: true}
		if err := o.Enqueue(ctx, db, Message{Account: "C1", To: "a@example.jp", Phone: "090-1111-2222", Kind: KindBank, Locale: "en"}, now); err != nil {
			t.Fatal(err)
		}
		list, err := AccountMessages(ctx, db, "C1", 10)
		if err != nil || len(list) != 3 {
			t.Fatalf("%d messages, %v", len(list), err)
		}
		seen := map[string]bool{}
		for _, l := range list {
			if NormalizeRef(l.Ref) != l.Ref || seen[l.Ref] {
				t.Fatalf("ref %q", l.Ref)
			}
			seen[l.Ref] = true
			var body string
			db.QueryRowContext(ctx, `SELECT body FROM outbox WHERE ref = $1`, l.Ref).Scan(&body)
			if !strings.Contains(body, l.Ref) || !strings.Contains(body, "Did we send this?") {
				t.Fatalf("%s body %q lacks its reference and how to check it", l.Channel, body)
			}
			typed := strings.ToLower(strings.ReplaceAll(l.Ref, "-", " "))
			info, err := LookupRef(ctx, db, typed)
			if err != nil || info.Kind != KindBank || info.Channel != l.Channel {
				t.Fatalf("%q: %+v %v", typed, info, err)
			}
		}
		for _, bad := range []string{"", "AAAAA-AAAAA", "ACDEF-GHJK", "ACDEF-GHJKM' OR 1=1 --", strings.Repeat("A", 100)} {
			if _, err := LookupRef(ctx, db, bad); !errors.Is(err, ErrUnknownRef) {
				t.Fatalf("%q: %v", bad, err)
			}
		}
	})
}

func TestNormalizeRef(t *testing.T) {
	for in, want := range map[string]string{
		"acdef-ghjkm":  "ACDEF-GHJKM",
		"ACDEF GHJKM":  "ACDEF-GHJKM",
		"ＡＣＤＥＦーＧＨＪＫＭ":  "ACDEF-GHJKM",
		"ACDEFGHJKM":   "ACDEF-GHJKM",
		"ACDEF-GHJK0":  "", // 0 is not in the alphabet
		"ACDEF-GHJKMN": "",
		"ACDE":         "",
	} {
		if got := NormalizeRef(in); got != want {
			t.Errorf("NormalizeRef(%q) = %q, want %q", in, got, want)
		}
	}
	seen := map[string]bool{}
	for i := 0; i < 10000; i++ {
		r := NewRef()
		if NormalizeRef(r) != r || seen[r] {
			t.Fatalf("NewRef gave %q", r)
		}
		seen[r] = true
	}
}

func FuzzNormalizeRef(f *testing.F) {
	f.Add("acdef-ghjkm")
	f.Add("ＡＣＤＥＦーＧＨＪＫＭ")
	f.Fuzz(func(t *testing.T, s string) {
		r := NormalizeRef(s)
		if r == "" {
			return
		}
		if len(r) != RefLen+1 || NormalizeRef(r) != r {
			t.Fatalf("NormalizeRef(%q) = %q", s, r)
		}
	})
}
