package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/maildomain/dnstest"
)

func TestCheckDomainCommand(t *testing.T) {
	srv := dnstest.Start(t, map[string][]string{
		"good.test":               {"v=spf1 ip4:192.0.2.0/24 -all"},
		"_dmarc.good.test":        {"v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:d@good.test"},
		"ed._domainkey.good.test": {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="},
		"default._bimi.good.test": {"v=BIMI1; l=https://good.test/l.svg; a=https://good.test/v.pem"},
		"_mta-sts.good.test":      {"v=STSv1; id=1"},
		"_smtp._tls.good.test":    {"v=TLSRPTv1; rua=mailto:t@good.test"},
		"weak.test":               {"v=spf1 ip4:192.0.2.0/24 ~all"},
		"_dmarc.weak.test":        {"v=DMARC1; p=none"},
		"good-login.test":         {"v=spf1 -all"},
		"_dmarc.good-login.test":  {"v=DMARC1; p=reject"},
	})
	run := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), append([]string{"check-domain", "--resolver", srv.Addr}, args...), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := run("good.test", "--dkim-selector", "ed", "--no-mail", "good-login.test"); code != 0 || !strings.Contains(out, "required points hold") {
		t.Fatalf("a correct domain: exit %d\n%s", code, out)
	}
	code, out := run("good.test", "weak.test", "--dkim-selector", "ed")
	if code != 1 {
		t.Fatalf("p=none: exit %d\n%s", code, out)
	}
	for _, want := range []string{"weak.test (sends mail): REQUIRED POINTS FAIL", "FAIL   dmarc", "p=none", `fix: _dmarc.weak.test. TXT "v=DMARC1; p=reject`, `fix: weak.test. TXT "v=spf1 ip4:192.0.2.0/24 -all"`, "required points fail for weak.test"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out = run("--json", "weak.test")
	var js struct {
		Failed  bool
		Reports []struct {
			Domain   string
			Findings []struct{ Check, Level, Fix string }
		}
	}
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &js); err != nil || code != 1 || !js.Failed || len(js.Reports) != 1 || js.Reports[0].Findings[0].Fix == "" {
		t.Fatalf("json: exit %d, %v, %+v\n%s", code, err, js, out)
	}
	if code, _ := run(); code != 2 {
		t.Fatalf("no domain: exit %d", code)
	}
}

// TestDKIMFlags: serve's email sender takes its keys from a file or from
// KABUTO_DKIM_*_KEY_FILE, and refuses to send unsigned mail.
func TestDKIMFlags(t *testing.T) {
	dir := t.TempDir()
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p8, _ := x509.MarshalPKCS8PrivateKey(ed)
	edFile := filepath.Join(dir, "ed.pem")
	os.WriteFile(edFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o600)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaFile := filepath.Join(dir, "rsa.pem")
	os.WriteFile(rsaFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rk)}), 0o600)

	parse := func(args ...string) mailOptions {
		t.Helper()
		var o mailOptions
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		mailFlags(fs, &o)
		if err := parse(fs, &Env{Stdout: io.Discard, Stderr: io.Discard}, args, ""); err != nil {
			t.Fatal(err)
		}
		return o
	}
	if _, err := parse().smtp("mx.test:25", "notice@kabuto.test"); err == nil {
		t.Fatal("an SMTP sender without a DKIM key")
	}
	t.Setenv("KABUTO_DKIM_RSA_KEY_FILE", rsaFile)
	s, err := parse("--dkim-ed25519-key", edFile, "--dkim-ed25519-selector", "ed1").smtp("mx.test:25", "兜証券 <notice@kabuto.test>")
	if err != nil || len(s.Keys) != 2 || s.Keys[0].Selector != "ed1" || s.Keys[1].Selector != "kabuto-rsa" {
		t.Fatalf("%+v %v", s.Keys, err)
	}
	if _, err := parse("--dkim-ed25519-key", filepath.Join(dir, "missing.pem")).smtp("mx.test:25", "notice@kabuto.test"); err == nil {
		t.Fatal("a missing key file accepted")
	}
	m := parse("--mail-domains", "kabuto.test", "--mail-no-mail-domains", "kabuto-login.test,kabuto-sec.test", "--dkim-ed25519-key", edFile).monitor(nil, nil)
	if m == nil || len(m.Sending) != 1 || len(m.NoMail) != 2 || len(m.Checker.Selectors) != 2 { // the RSA key still comes from the environment
		t.Fatalf("%+v", m)
	}
}
