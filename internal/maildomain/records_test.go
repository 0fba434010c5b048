package maildomain

import (
	"strings"
	"testing"
)

func TestParseSPF(t *testing.T) {
	cases := []struct {
		in      string
		ok      bool
		all     byte
		null    bool
		lookups int
	}{
		{"v=spf1 -all", true, QualFail, true, 0},
		{"v=spf1", true, 0, false, 0},
		{"V=SPF1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx/24 a:mail.example.jp/24//64 ~all", true, QualSoftFail, false, 3},
		{"v=spf1 include:_spf.example.jp exists:%{i}._spf.example.jp redirect=_spf.example.jp", true, 0, false, 3},
		{"v=spf1 ip4:192.0.2.0/33 -all", false, 0, false, 0},
		{"v=spf1 ip6:192.0.2.1 -all", false, 0, false, 0},
		{"v=spf1 include -all", false, 0, false, 0},
		{"v=spf1 all:x", false, 0, false, 0},
		{"v=spf1 redirect=a.example.jp redirect=b.example.jp", false, 0, false, 0},
		{"v=spf10 -all", false, 0, false, 0},
		{"spf1 -all", false, 0, false, 0},
	}
	for _, c := range cases {
		s, err := ParseSPF(c.in)
		if (err == nil) != c.ok {
			t.Errorf("%q: err %v", c.in, err)
			continue
		}
		if err != nil {
			continue
		}
		n := 0
		for _, term := range s.Terms {
			if lookups[term.Name] {
				n++
			}
		}
		if s.All() != c.all || s.Null() != c.null || n != c.lookups {
			t.Errorf("%q: all %q null %v lookups %d", c.in, s.All(), s.Null(), n)
		}
	}
}

func TestParseDMARC(t *testing.T) {
	d, err := ParseDMARC("v=DMARC1;p=Reject; sp=quarantine; pct=50; adkim=s; rua=mailto:a@example.jp!10m, mailto:b@reports.example.jp; ruf=mailto:f@example.jp;")
	if err != nil || d.Policy != "reject" || d.SubPolicy != "quarantine" || d.Percent != 50 || d.ADKIM != "s" || d.ASPF != "r" || len(d.RUA) != 2 || d.RUA[0] != "a@example.jp" || len(d.RUF) != 1 {
		t.Fatalf("%+v %v", d, err)
	}
	for _, bad := range []string{"", "v=DMARC1", "v=DMARC1; p=reject; p=none", "v=DMARC1; p=reject; pct=101", "v=DMARC1; p=reject; adkim=x",
		"v=DMARC1; p=reject; rua=https://x.example.jp", "v=DMARC1; p=reject; rua=mailto:nobody", "v=DMARC1;; p=reject", "v=DMARC1; =x; p=reject", "p=reject"} {
		if _, err := ParseDMARC(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseSmallRecords(t *testing.T) {
	if b, err := ParseBIMI("v=BIMI1; l=https://example.jp/logo.svg; a=https://example.jp/vmc.pem"); err != nil || b.Logo == "" || b.Authority == "" {
		t.Errorf("%+v %v", b, err)
	}
	if b, err := ParseBIMI("v=BIMI1; l=; a=;"); err != nil || b.Logo != "" {
		t.Errorf("declination: %+v %v", b, err)
	}
	if _, err := ParseBIMI("v=BIMI1; l=https://example.jp/logo.svg; a=http://example.jp/vmc.pem"); err == nil {
		t.Error("an http certificate location accepted")
	}
	if id, err := ParseMTASTS("v=STSv1; id=20260101T000000;"); err != nil || id != "20260101T000000" {
		t.Errorf("%q %v", id, err)
	}
	if _, err := ParseMTASTS("v=STSv1; id=" + strings.Repeat("a", 33)); err == nil {
		t.Error("a 33-character id accepted")
	}
	if r, err := ParseTLSRPT("v=TLSRPTv1; rua=mailto:tls@example.jp,https://reports.example.jp/tls"); err != nil || len(r) != 2 {
		t.Errorf("%v %v", r, err)
	}
	if _, err := ParseTLSRPT("v=TLSRPTv1; rua=tls@example.jp"); err == nil {
		t.Error("a bare address accepted")
	}
}

// The parsers read text any DNS server may return: they never panic, and
// what they accept holds together.

func FuzzParseTags(f *testing.F) {
	f.Add("v=DKIM1; k=ed25519; p=abc")
	f.Add("a=;b= ; ;")
	f.Fuzz(func(t *testing.T, s string) {
		tags, err := ParseTags(s)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, tg := range tags {
			if !tagName(tg.Name) || seen[tg.Name] || strings.Contains(tg.Value, ";") {
				t.Fatalf("%q gave %+v", s, tags)
			}
			seen[tg.Name] = true
		}
	})
}

func FuzzParseDMARC(f *testing.F) {
	f.Add("v=DMARC1; p=reject; sp=reject; pct=100; adkim=s; aspf=s; rua=mailto:a@example.jp!10m")
	f.Add("v=DMARC1; p=none; rua=mailto:a@b")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDMARC(s)
		if err != nil {
			return
		}
		if d.Policy != "none" && d.Policy != "quarantine" && d.Policy != "reject" || d.Percent < 0 || d.Percent > 100 {
			t.Fatalf("%q gave %+v", s, d)
		}
		for _, a := range append(d.RUA, d.RUF...) {
			if !strings.Contains(a, "@") {
				t.Fatalf("%q gave report address %q", s, a)
			}
		}
	})
}

func FuzzParseSPF(f *testing.F) {
	f.Add("v=spf1 ip4:192.0.2.0/24 include:_spf.example.jp a:x.example.jp/24//64 mx ptr exists:%{i}.example.jp redirect=example.jp exp=x.example.jp -all")
	f.Add("v=spf1 -all")
	f.Fuzz(func(t *testing.T, s string) {
		spf, err := ParseSPF(s)
		if err != nil {
			return
		}
		for _, term := range spf.Terms {
			if !term.Modifier && !strings.ContainsRune("+-~?", rune(term.Qualifier)) {
				t.Fatalf("%q gave qualifier %q", s, term.Qualifier)
			}
			if !term.Modifier && (term.Name == "include" || term.Name == "exists") && term.Value == "" {
				t.Fatalf("%q gave %s without a domain", s, term.Name)
			}
		}
		// The record rebuilt from its terms parses to the same terms.
		parts := []string{"v=spf1"}
		for _, term := range spf.Terms {
			parts = append(parts, termText(term))
		}
		again, err := ParseSPF(strings.Join(parts, " "))
		if err != nil || len(again.Terms) != len(spf.Terms) {
			t.Fatalf("%q rebuilt as %q: %v", s, strings.Join(parts, " "), err)
		}
	})
}

func FuzzParseDKIMKey(f *testing.F) {
	f.Add("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	f.Add("v=DKIM1; p=")
	f.Add("k=rsa; t=y:s; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAL")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseDKIMKey(s)
		if err != nil {
			return
		}
		if !k.Revoked && (k.KeyType == "ed25519") != (k.Bits == 256) {
			t.Fatalf("%q gave %+v", s, k)
		}
	})
}

func FuzzParseBIMI(f *testing.F) {
	f.Add("v=BIMI1; l=https://example.jp/logo.svg; a=https://example.jp/vmc.pem")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBIMI(s)
		if err != nil {
			return
		}
		if b.Logo != "" && !strings.HasPrefix(b.Logo, "https:") || b.Authority != "" && !strings.HasPrefix(b.Authority, "https:") {
			t.Fatalf("%q gave %+v", s, b)
		}
	})
}

func FuzzParseMTASTSAndTLSRPT(f *testing.F) {
	f.Add("v=STSv1; id=20260101")
	f.Add("v=TLSRPTv1; rua=mailto:tls@example.jp,https://r.example.jp/x")
	f.Fuzz(func(t *testing.T, s string) {
		if id, err := ParseMTASTS(s); err == nil && (id == "" || len(id) > 32) {
			t.Fatalf("%q gave id %q", s, id)
		}
		if r, err := ParseTLSRPT(s); err == nil && len(r) == 0 {
			t.Fatalf("%q gave no addresses", s)
		}
	})
}

func FuzzParseMTASTSPolicy(f *testing.F) {
	f.Add("version: STSv1\r\nmode: enforce\r\nmx: mx1.example.jp\r\nmx: *.mx.example.jp\r\nmax_age: 604800\r\n")
	f.Add("version: STSv1\nmode: none\nmax_age: 0")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseMTASTSPolicy(s)
		if err != nil {
			return
		}
		if p.Mode != "enforce" && p.Mode != "testing" && p.Mode != "none" || p.MaxAge < 0 || p.Mode != "none" && len(p.MX) == 0 {
			t.Fatalf("%q gave %+v", s, p)
		}
	})
}
