package maildomain_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/maildomain"
	"github.com/kabuto-sec/kabuto/internal/maildomain/dnstest"
)

// TestMTASTSPolicyFetch: with an HTTP client the checker reads each
// domain's policy over verified HTTPS and warns on anything but a valid
// policy in mode enforce.
func TestMTASTSPolicyFetch(t *testing.T) {
	policies := map[string]struct {
		status int
		ctype  string
		body   string
	}{
		"enforce.test":  {200, "text/plain", "version: STSv1\r\nmode: enforce\r\nmx: mx1.enforce.test\r\nmx: *.mx.enforce.test\r\nmax_age: 604800\r\n"},
		"testing.test":  {200, "text/plain", "version: STSv1\nmode: testing\nmx: mx1.testing.test\nmax_age: 86400\n"},
		"missing.test":  {404, "text/plain", "not found"},
		"html.test":     {200, "text/html", "<html>"},
		"nomx.test":     {200, "text/plain", "version: STSv1\nmode: enforce\nmax_age: 86400\n"},
		"redirect.test": {302, "text/plain", ""},
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mta-sts"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	zones := map[string][]string{}
	for d := range policies {
		tmpl.DNSNames = append(tmpl.DNSNames, "mta-sts."+d)
		zones["_mta-sts."+d] = []string{"v=STSv1; id=1"}
	}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := policies[strings.TrimPrefix(r.Host, "mta-sts.")]
		if r.URL.Path != "/.well-known/mta-sts.txt" || p.status == 0 {
			http.NotFound(w, r)
			return
		}
		if p.status == 302 {
			http.Redirect(w, r, "https://mta-sts.enforce.test/.well-known/mta-sts.txt", http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", p.ctype)
		w.WriteHeader(p.status)
		w.Write([]byte(p.body))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	// Every host name reaches the test server; the certificate is checked
	// for the name asked.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
		}}}
	dns := dnstest.Start(t, zones)
	ck := &maildomain.Checker{Resolver: maildomain.DNS{Server: dns.Addr}, HTTP: client}
	want := map[string]string{"enforce.test": "", "testing.test": "policy mode testing", "missing.test": "HTTP status 404",
		"html.test": "content type", "nomx.test": "no mx", "redirect.test": "HTTP status 302"}
	for d, found := range want {
		var f *maildomain.Finding
		r := ck.Check(context.Background(), d, true)
		for i := range r.Findings {
			if r.Findings[i].Check == maildomain.CheckMTASTS {
				f = &r.Findings[i]
			}
		}
		if f == nil {
			t.Fatalf("%s: no MTA-STS finding", d)
		}
		if found == "" {
			if f.Level != maildomain.LevelOK || !strings.Contains(f.Found, "policy enforce, 2 mx") {
				t.Errorf("%s: %+v", d, f)
			}
			continue
		}
		if f.Level != maildomain.LevelWarn || !strings.Contains(f.Found, found) || !strings.Contains(f.Fix, "mode: enforce") {
			t.Errorf("%s: %+v, want a warning with %q", d, f, found)
		}
	}
	// A certificate for another name is refused.
	zones2 := map[string][]string{"_mta-sts.other.test": {"v=STSv1; id=1"}}
	dns2 := dnstest.Start(t, zones2)
	ck2 := &maildomain.Checker{Resolver: maildomain.DNS{Server: dns2.Addr}, HTTP: client}
	for _, f := range ck2.Check(context.Background(), "other.test", true).Findings {
		if f.Check == maildomain.CheckMTASTS && (f.Level != maildomain.LevelWarn || !strings.Contains(f.Found, "certificate")) {
			t.Errorf("a certificate for another name: %+v", f)
		}
	}
}
