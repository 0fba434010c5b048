package maildomain_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/maildomain"
	"github.com/kabuto-sec/kabuto/internal/maildomain/dnstest"
)

// Keys are made once per test binary: RSA generation is slow.
var (
	edKey   = mustEd()
	rsa2048 = mustRSA(2048)
	rsa1024 = mustRSA(1024)
)

func mustEd() string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(pub)
}

func mustRSA(bits int) string {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// goodZone is a sending domain that publishes everything right.
func goodZone(d string) map[string][]string {
	return map[string][]string{
		"_dmarc." + d:             {"v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s; rua=mailto:dmarc@" + d + "; ruf=mailto:forensic@" + d},
		d:                         {"v=spf1 ip4:192.0.2.0/24 include:_spf.mailer.test -all", "google-site-verification=abc"},
		"ed1._domainkey." + d:     {"v=DKIM1; k=ed25519; p=" + edKey},
		"rsa1._domainkey." + d:    {"v=DKIM1; k=rsa; p=" + rsa2048},
		"default._bimi." + d:      {"v=BIMI1; l=https://" + d + "/bimi/logo.svg; a=https://" + d + "/bimi/vmc.pem"},
		"_mta-sts." + d:           {"v=STSv1; id=20260101T000000"},
		"_smtp._tls." + d:         {"v=TLSRPTv1; rua=mailto:tls@" + d},
		"www." + d:                {"unrelated"},
		"_dmarc.sub." + d:         {},
		"selector._bimi.sub." + d: {},
	}
}

// parkedZone is a look-alike that sends no mail, published right.
func parkedZone(d string) map[string][]string {
	return map[string][]string{
		d:             {"v=spf1 -all"},
		"_dmarc." + d: {"v=DMARC1; p=reject"},
	}
}

type misconfig struct {
	name    string
	sending bool
	change  map[string][]string // relative to the domain: "" is the apex, "_dmarc" …; nil removes
	broken  string              // relative name answering SERVFAIL
	check   string
	level   maildomain.Level
	found   string // in the finding's Found
	fix     string // in the finding's Fix
}

func TestCheckDomain(t *testing.T) {
	zones := map[string][]string{
		"_spf.mailer.test": {"v=spf1 ip4:198.51.100.0/24 -all"},
		// A chain of includes that costs 12 look-ups.
		"l1.chain.test": {"v=spf1 include:l2.chain.test include:l3.chain.test include:l4.chain.test -all"},
		"l2.chain.test": {"v=spf1 a mx include:l5.chain.test -all"},
		"l3.chain.test": {"v=spf1 a mx -all"},
		"l4.chain.test": {"v=spf1 a mx -all"},
		"l5.chain.test": {"v=spf1 a -all"},
		"loop.test":     {"v=spf1 include:loop.test -all"},
	}
	for k, v := range goodZone("kabuto-sec.test") {
		zones[k] = v
	}
	for k, v := range parkedZone("kabuto-sec-login.test") {
		zones[k] = v
	}
	cases := []misconfig{
		{"dmarc missing", true, map[string][]string{"_dmarc": nil}, "", "dmarc", "fail", "no DMARC record", `_dmarc.D. TXT "v=DMARC1; p=reject; sp=reject`},
		{"dmarc p=none", true, map[string][]string{"_dmarc": {"v=DMARC1; p=none; sp=reject; adkim=s; aspf=s; rua=mailto:dmarc@D"}}, "", "dmarc", "fail", "p=none", "p=reject; sp=reject; adkim=s; aspf=s; rua=mailto:dmarc@D"},
		{"dmarc p=quarantine", true, map[string][]string{"_dmarc": {"v=DMARC1; p=quarantine; adkim=s; aspf=s; rua=mailto:dmarc@D"}}, "", "dmarc", "fail", "p=quarantine", "p=reject"},
		{"dmarc sp=none", true, map[string][]string{"_dmarc": {"v=DMARC1; p=reject; sp=none; adkim=s; aspf=s; rua=mailto:dmarc@D"}}, "", "dmarc", "fail", "sp=none", "sp=reject"},
		{"dmarc pct=20", true, map[string][]string{"_dmarc": {"v=DMARC1; p=reject; pct=20; adkim=s; aspf=s; rua=mailto:dmarc@D"}}, "", "dmarc", "fail", "pct=20", "p=reject; sp=reject"},
		{"dmarc two records", true, map[string][]string{"_dmarc": {"v=DMARC1; p=reject", "v=DMARC1; p=none"}}, "", "dmarc", "fail", "2 DMARC records", "p=reject"},
		{"dmarc bad policy word", true, map[string][]string{"_dmarc": {"v=DMARC1; p=rejct; rua=mailto:dmarc@D"}}, "", "dmarc", "fail", "invalid", "p=reject"},
		{"dmarc version not first", true, map[string][]string{"_dmarc": {"p=reject; v=DMARC1"}}, "", "dmarc", "fail", "no DMARC record", "p=reject"},
		{"dmarc no p", true, map[string][]string{"_dmarc": {"v=DMARC1; rua=mailto:dmarc@D"}}, "", "dmarc", "fail", "no p= tag", "p=reject"},
		{"dmarc rua not mailto", true, map[string][]string{"_dmarc": {"v=DMARC1; p=reject; rua=dmarc@D"}}, "", "dmarc", "fail", "not a mailto:", "rua=mailto:"},
		{"dmarc relaxed alignment", true, map[string][]string{"_dmarc": {"v=DMARC1; p=reject; rua=mailto:dmarc@D"}}, "", "dmarc", "warn", "relaxed alignment", "adkim=s; aspf=s"},
		{"dmarc no reports", true, map[string][]string{"_dmarc": {"v=DMARC1; p=reject; adkim=s; aspf=s"}}, "", "dmarc", "warn", "no rua=", "rua=mailto:dmarc-reports@D"},
		{"dmarc reports to an unauthorised domain", true, map[string][]string{"_dmarc": {"v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:agg@reports.test"}}, "", "dmarc", "warn", "has not agreed", `D._report._dmarc.reports.test. TXT "v=DMARC1"`},
		{"dmarc lookup fails", true, nil, "_dmarc", "dmarc", "fail", "DNS query failed", "name servers"},
		{"spf missing", true, map[string][]string{"": {"google-site-verification=abc"}}, "", "spf", "fail", "no SPF record", `D. TXT "v=spf1 include:`},
		{"spf ~all", true, map[string][]string{"": {"v=spf1 ip4:192.0.2.0/24 ~all"}}, "", "spf", "fail", "~all", `D. TXT "v=spf1 ip4:192.0.2.0/24 -all"`},
		{"spf +all", true, map[string][]string{"": {"v=spf1 ip4:192.0.2.0/24 +all"}}, "", "spf", "fail", "+all", `"v=spf1 ip4:192.0.2.0/24 -all"`},
		{"spf ?all", true, map[string][]string{"": {"v=spf1 mx ?all"}}, "", "spf", "fail", "?all", `"v=spf1 mx -all"`},
		{"spf without all", true, map[string][]string{"": {"v=spf1 ip4:192.0.2.0/24"}}, "", "spf", "fail", `no "all"`, `"v=spf1 ip4:192.0.2.0/24 -all"`},
		{"spf too many look-ups", true, map[string][]string{"": {"v=spf1 include:l1.chain.test include:_spf.mailer.test a -all"}}, "", "spf", "fail", "14 DNS look-ups", "ip4:<your servers>"},
		{"spf bad address", true, map[string][]string{"": {"v=spf1 ip4:300.1.2.3 -all"}}, "", "spf", "fail", "not an ip4 address", `"v=spf1 include:`},
		{"spf unknown mechanism", true, map[string][]string{"": {"v=spf1 inclde:_spf.mailer.test -all"}}, "", "spf", "fail", "unknown mechanism", "-all"},
		{"spf two records", true, map[string][]string{"": {"v=spf1 mx -all", "v=spf1 ip4:192.0.2.1 -all"}}, "", "spf", "fail", "2 SPF records", "one record"},
		{"spf include without record", true, map[string][]string{"": {"v=spf1 include:nothing.test -all"}}, "", "spf", "fail", "include:nothing.test has 0 SPF records", "removed or corrected"},
		{"spf include loops", true, map[string][]string{"": {"v=spf1 include:loop.test -all"}}, "", "spf", "fail", "loops back", "-all"},
		{"spf ptr", true, map[string][]string{"": {"v=spf1 ptr -all"}}, "", "spf", "warn", "ptr mechanism", "ip4:/ip6:"},
		{"dkim selector missing", true, map[string][]string{"rsa1._domainkey": nil}, "", "dkim", "fail", "no key at rsa1._domainkey.D", "k=rsa; p=<base64 of a 2048-bit"},
		{"dkim rsa 1024", true, map[string][]string{"rsa1._domainkey": {"v=DKIM1; k=rsa; p=" + rsa1024}}, "", "dkim", "fail", "RSA key of 1024 bits", "2048-bit"},
		{"dkim key revoked", true, map[string][]string{"ed1._domainkey": {"v=DKIM1; k=ed25519; p="}}, "", "dkim", "fail", "revoked", "k=ed25519"},
		{"dkim key not base64", true, map[string][]string{"ed1._domainkey": {"v=DKIM1; k=ed25519; p=!!notbase64"}}, "", "dkim", "fail", "not base64", "k=ed25519"},
		{"dkim ed25519 key of wrong size", true, map[string][]string{"ed1._domainkey": {"v=DKIM1; k=ed25519; p=" + rsa2048}}, "", "dkim", "fail", "Ed25519 key is 32 bytes", "k=ed25519"},
		{"dkim unknown key type", true, map[string][]string{"ed1._domainkey": {"v=DKIM1; k=dsa; p=" + edKey}}, "", "dkim", "fail", `k="dsa"`, "k=ed25519"},
		{"dkim testing mode", true, map[string][]string{"ed1._domainkey": {"v=DKIM1; k=ed25519; t=y; p=" + edKey}}, "", "dkim", "warn", "t=y", "without t=y"},
		{"bimi missing", true, map[string][]string{"default._bimi": nil}, "", "bimi", "warn", "no BIMI record", `default._bimi.D. TXT "v=BIMI1; l=https://D/bimi/logo.svg; a=https://D/bimi/vmc.pem"`},
		{"bimi logo over http", true, map[string][]string{"default._bimi": {"v=BIMI1; l=http://D/logo.svg; a=https://D/vmc.pem"}}, "", "bimi", "warn", "is not https", "l=https://"},
		{"bimi logo not svg", true, map[string][]string{"default._bimi": {"v=BIMI1; l=https://D/logo.png; a=https://D/vmc.pem"}}, "", "bimi", "warn", "does not name a .svg", "logo.svg"},
		{"bimi without mark certificate", true, map[string][]string{"default._bimi": {"v=BIMI1; l=https://D/logo.svg"}}, "", "bimi", "warn", "no a=", "a=https://D/bimi/vmc.pem"},
		{"mta-sts missing", true, map[string][]string{"_mta-sts": nil}, "", "mta-sts", "warn", "0 MTA-STS records", "v=STSv1; id="},
		{"mta-sts bad id", true, map[string][]string{"_mta-sts": {"v=STSv1; id=2026-01-01"}}, "", "mta-sts", "warn", "id=", "mta-sts.txt"},
		{"tls-rpt missing", true, map[string][]string{"_smtp._tls": nil}, "", "tls-rpt", "warn", "0 TLS-RPT records", "v=TLSRPTv1; rua=mailto:tls-reports@D"},
		{"tls-rpt without rua", true, map[string][]string{"_smtp._tls": {"v=TLSRPTv1"}}, "", "tls-rpt", "warn", "no rua=", "rua=mailto:"},
		{"look-alike without spf", false, map[string][]string{"": nil}, "", "spf", "fail", "no SPF record on a domain that sends no mail", `D. TXT "v=spf1 -all"`},
		{"look-alike with a sending spf", false, map[string][]string{"": {"v=spf1 include:_spf.mailer.test -all"}}, "", "spf", "fail", "on a domain that sends no mail", `D. TXT "v=spf1 -all"`},
		{"look-alike with ~all", false, map[string][]string{"": {"v=spf1 ~all"}}, "", "spf", "fail", "v=spf1 ~all", `"v=spf1 -all"`},
		{"look-alike without dmarc", false, map[string][]string{"_dmarc": nil}, "", "dmarc", "fail", "no DMARC record", "p=reject"},
		{"look-alike with p=none", false, map[string][]string{"_dmarc": {"v=DMARC1; p=none"}}, "", "dmarc", "fail", "p=none", "p=reject"},
	}
	srv := dnstest.Start(t, zones)
	for i, c := range cases {
		d := fmt.Sprintf("case%d-kabuto-sec.test", i)
		if !c.sending {
			d = fmt.Sprintf("case%d-kabuto-sec-login.test", i)
		}
		base := goodZone(d)
		if !c.sending {
			base = parkedZone(d)
		}
		for rel, recs := range c.change {
			name := d
			if rel != "" {
				name = rel + "." + d
			}
			if recs == nil {
				delete(base, name)
				continue
			}
			for j := range recs {
				recs[j] = strings.ReplaceAll(recs[j], "@D", "@"+d)
				recs[j] = strings.ReplaceAll(recs[j], "//D/", "//"+d+"/")
			}
			base[name] = recs
		}
		for name, recs := range base {
			srv.Set(name, recs...)
		}
		if c.broken != "" {
			srv.Break(c.broken + "." + d)
		}
		t.Run(c.name, func(t *testing.T) {
			ck := &maildomain.Checker{Resolver: maildomain.DNS{Server: srv.Addr}, Selectors: []string{"ed1", "rsa1"}}
			r := ck.Check(context.Background(), d, c.sending)
			var bad []maildomain.Finding
			for _, f := range r.Findings {
				if f.Level != maildomain.LevelOK {
					bad = append(bad, f)
				}
			}
			if len(bad) != 1 {
				t.Fatalf("want one finding, got %d: %+v", len(bad), bad)
			}
			f := bad[0]
			wantFix := strings.ReplaceAll(c.fix, "D.", d+".")
			wantFix = strings.ReplaceAll(wantFix, "@D", "@"+d)
			wantFix = strings.ReplaceAll(wantFix, "//D/", "//"+d+"/")
			wantFound := strings.ReplaceAll(c.found, ".D", "."+d)
			if f.Check != c.check || f.Level != c.level || !strings.Contains(f.Found, wantFound) {
				t.Errorf("got %s/%s %q, want %s/%s containing %q", f.Check, f.Level, f.Found, c.check, c.level, wantFound)
			}
			if f.Why == "" || !strings.Contains(f.Fix, wantFix) {
				t.Errorf("why %q, fix %q: want a reason and a fix containing %q", f.Why, f.Fix, wantFix)
			}
			if r.Failed() != (c.level == maildomain.LevelFail) {
				t.Errorf("Failed() = %v with a %s finding", r.Failed(), c.level)
			}
		})
	}
	if n := 0; true {
		for _, c := range cases {
			if c.level == maildomain.LevelFail {
				n++
			}
		}
		if n < 20 {
			t.Errorf("only %d failing misconfigurations tested", n)
		}
	}

	// Subdomains without a record of their own take the organisational
	// domain's sp (RFC 7489 section 6.6.3).
	for k, v := range goodZone("notice.kabuto-sec.test") {
		if !strings.HasPrefix(k, "_dmarc.") {
			srv.Set(k, v...)
		}
	}
	for k, v := range goodZone("notice.weak-sp.test") {
		if !strings.HasPrefix(k, "_dmarc.") {
			srv.Set(k, v...)
		}
	}
	srv.Set("_dmarc.weak-sp.test", "v=DMARC1; p=reject; sp=none; adkim=s; aspf=s; rua=mailto:d@weak-sp.test")
	t.Run("subdomain under sp=none", func(t *testing.T) {
		ck := &maildomain.Checker{Resolver: maildomain.DNS{Server: srv.Addr}, Selectors: []string{"ed1", "rsa1"}}
		r := ck.Check(context.Background(), "notice.weak-sp.test", true)
		if !r.Failed() || r.DMARCPolicy != "none" || r.Findings[0].Level != maildomain.LevelFail || !strings.Contains(r.Findings[0].Found, "_dmarc.weak-sp.test gives subdomains none") ||
			!strings.Contains(r.Findings[0].Fix, `_dmarc.notice.weak-sp.test. TXT "v=DMARC1; p=reject`) {
			t.Fatalf("%+v", r)
		}
	})

	clean := []struct {
		domain  string
		sending bool
	}{{"kabuto-sec.test", true}, {"kabuto-sec-login.test", false}, {"notice.kabuto-sec.test", true}}
	for _, c := range clean {
		t.Run("clean "+c.domain, func(t *testing.T) {
			ck := &maildomain.Checker{Resolver: maildomain.DNS{Server: srv.Addr}, Selectors: []string{"ed1", "rsa1"}}
			r := ck.Check(context.Background(), c.domain, c.sending)
			if r.Failed() || r.DMARCPolicy != "reject" {
				t.Fatalf("a correct domain failed: %+v", r)
			}
			want := 2
			if c.sending {
				want = 7 // dmarc, spf, two dkim keys, bimi, mta-sts, tls-rpt
			}
			if len(r.Findings) != want {
				t.Fatalf("%d findings, want %d: %+v", len(r.Findings), want, r.Findings)
			}
			for _, f := range r.Findings {
				if f.Level != maildomain.LevelOK || f.Fix != "" {
					t.Errorf("a correct domain reported %+v", f)
				}
			}
		})
	}
}

// TestLongKeyOverTCP: two RSA 4096 key records do not fit a 1232-byte
// UDP answer; the resolver retries over TCP and reads them whole.
func TestLongKeyOverTCP(t *testing.T) {
	big := mustRSA(4096)
	recs := []string{"v=DKIM1; k=rsa; p=" + big, "v=DKIM1; k=rsa; t=y; p=" + big}
	srv := dnstest.Start(t, map[string][]string{"k._domainkey.big.test": recs})
	txt, err := maildomain.DNS{Server: srv.Addr}.TXT(context.Background(), "k._domainkey.big.test")
	if err != nil || len(txt) != 2 || txt[0] != recs[0] {
		t.Fatalf("%d records, %v", len(txt), err)
	}
	k, err := maildomain.ParseDKIMKey(txt[0])
	if err != nil || k.Bits != 4096 {
		t.Fatalf("%+v %v", k, err)
	}
}
