package maildomain

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Tag is one "name=value" pair of a DNS tag list (DMARC, DKIM, BIMI,
// MTA-STS, TLS-RPT records).
type Tag struct{ Name, Value string }

// maxRecord bounds the text a parser accepts: DNS TXT data of one name
// never comes near it, so anything longer is refused rather than parsed.
const maxRecord = 16 << 10

// ParseTags parses a tag list as RFC 6376 section 3.2 defines it: tags
// separated by ";", each "name=value", names of letters, digits and "_"
// starting with a letter, whitespace around names and values ignored, no
// tag twice. A trailing ";" is allowed.
func ParseTags(s string) ([]Tag, error) {
	if len(s) > maxRecord {
		return nil, errors.New("record too long")
	}
	var tags []Tag
	seen := map[string]bool{}
	parts := strings.Split(s, ";")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			if i == len(parts)-1 {
				continue
			}
			return nil, fmt.Errorf("empty tag at position %d", i+1)
		}
		name, value, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("tag %q has no \"=\"", clip(p))
		}
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !tagName(name) {
			return nil, fmt.Errorf("bad tag name %q", clip(name))
		}
		lname := strings.ToLower(name)
		if seen[lname] {
			return nil, fmt.Errorf("tag %q appears twice", clip(name))
		}
		seen[lname] = true
		tags = append(tags, Tag{Name: lname, Value: value})
	}
	if len(tags) == 0 {
		return nil, errors.New("empty record")
	}
	return tags, nil
}

func tagName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '_'):
		default:
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func tagMap(tags []Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[t.Name] = t.Value
	}
	return m
}

// versioned parses s as a tag list whose first tag must be v=version.
func versioned(s, version string) (map[string]string, error) {
	tags, err := ParseTags(s)
	if err != nil {
		return nil, err
	}
	if tags[0].Name != "v" || tags[0].Value != version {
		return nil, fmt.Errorf("the record must start with v=%s", version)
	}
	return tagMap(tags), nil
}

// DMARC is a parsed DMARC record (RFC 7489).
type DMARC struct {
	Policy    string // p: none, quarantine or reject
	SubPolicy string // sp; "" when absent (subdomains take p)
	Percent   int    // pct, 100 when absent
	ADKIM     string // "r" or "s"
	ASPF      string // "r" or "s"
	RUA, RUF  []string
}

// ParseDMARC parses the text of a _dmarc TXT record.
func ParseDMARC(s string) (DMARC, error) {
	m, err := versioned(s, "DMARC1")
	if err != nil {
		return DMARC{}, err
	}
	d := DMARC{Percent: 100, ADKIM: "r", ASPF: "r"}
	policy := func(tag string) (string, error) {
		v := strings.ToLower(m[tag])
		switch v {
		case "none", "quarantine", "reject":
			return v, nil
		}
		return "", fmt.Errorf("%s=%q: want none, quarantine or reject", tag, clip(m[tag]))
	}
	if _, ok := m["p"]; !ok {
		return DMARC{}, errors.New("no p= tag (the policy)")
	}
	if d.Policy, err = policy("p"); err != nil {
		return DMARC{}, err
	}
	if _, ok := m["sp"]; ok {
		if d.SubPolicy, err = policy("sp"); err != nil {
			return DMARC{}, err
		}
	}
	if v, ok := m["pct"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 100 {
			return DMARC{}, fmt.Errorf("pct=%q: want a whole number from 0 to 100", clip(v))
		}
		d.Percent = n
	}
	for _, a := range []struct {
		tag string
		to  *string
	}{{"adkim", &d.ADKIM}, {"aspf", &d.ASPF}} {
		if v, ok := m[a.tag]; ok {
			v = strings.ToLower(v)
			if v != "r" && v != "s" {
				return DMARC{}, fmt.Errorf("%s=%q: want r or s", a.tag, clip(v))
			}
			*a.to = v
		}
	}
	for _, u := range []struct {
		tag string
		to  *[]string
	}{{"rua", &d.RUA}, {"ruf", &d.RUF}} {
		v, ok := m[u.tag]
		if !ok {
			continue
		}
		for _, one := range strings.Split(v, ",") {
			addr, err := reportAddress(strings.TrimSpace(one))
			if err != nil {
				return DMARC{}, fmt.Errorf("%s: %w", u.tag, err)
			}
			*u.to = append(*u.to, addr)
		}
	}
	return d, nil
}

// reportAddress checks one DMARC or TLS-RPT reporting URI and returns the
// address without the "mailto:" and any "!size" suffix.
func reportAddress(u string) (string, error) {
	if len(u) < 7 || !strings.EqualFold(u[:7], "mailto:") {
		return "", fmt.Errorf("%q is not a mailto: address", clip(u))
	}
	addr := u[7:]
	if i := strings.LastIndexByte(addr, '!'); i >= 0 {
		addr = addr[:i]
	}
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" || !hostname(domain) {
		return "", fmt.Errorf("%q is not an email address", clip(addr))
	}
	return strings.ToLower(local) + "@" + strings.ToLower(domain), nil
}

// hostname reports whether s is a syntactically valid DNS name with at
// least two labels.
func hostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if len(s) == 0 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// SPF term qualifiers.
const (
	QualPass     = '+'
	QualFail     = '-'
	QualSoftFail = '~'
	QualNeutral  = '?'
)

// SPFTerm is one mechanism or modifier of an SPF record.
type SPFTerm struct {
	Qualifier byte   // for mechanisms: + - ~ ?
	Name      string // mechanism (all, include, a, mx, ptr, ip4, ip6, exists) or modifier name
	Value     string // domain-spec, address or modifier value; "" when absent
	Modifier  bool
}

// SPF is a parsed SPF record (RFC 7208).
type SPF struct {
	Terms []SPFTerm
}

// All returns the qualifier of the record's "all" mechanism, or 0 when it
// has none.
func (s SPF) All() byte {
	for _, t := range s.Terms {
		if !t.Modifier && t.Name == "all" {
			return t.Qualifier
		}
	}
	return 0
}

// Redirect returns the redirect= modifier's domain, or "".
func (s SPF) Redirect() string {
	for _, t := range s.Terms {
		if t.Modifier && t.Name == "redirect" {
			return t.Value
		}
	}
	return ""
}

// Null reports whether the record is exactly the "sends no mail" record
// "v=spf1 -all".
func (s SPF) Null() bool {
	return len(s.Terms) == 1 && s.Terms[0].Name == "all" && s.Terms[0].Qualifier == QualFail
}

// lookups are the terms that cost a DNS look-up (RFC 7208 section 4.6.4).
var lookups = map[string]bool{"include": true, "a": true, "mx": true, "ptr": true, "exists": true, "redirect": true}

// IsSPF reports whether TXT text is an SPF record ("v=spf1" alone or
// followed by a space).
func IsSPF(s string) bool {
	return strings.EqualFold(s, "v=spf1") || len(s) > 6 && strings.EqualFold(s[:7], "v=spf1 ")
}

// ParseSPF parses the text of an SPF TXT record.
func ParseSPF(s string) (SPF, error) {
	if len(s) > maxRecord {
		return SPF{}, errors.New("record too long")
	}
	if !IsSPF(s) {
		return SPF{}, errors.New("the record must start with v=spf1")
	}
	var out SPF
	seenMod := map[string]bool{}
	for _, f := range strings.Fields(s[6:]) {
		t, err := spfTerm(f)
		if err != nil {
			return SPF{}, err
		}
		if t.Modifier {
			if (t.Name == "redirect" || t.Name == "exp") && seenMod[t.Name] {
				return SPF{}, fmt.Errorf("%s= appears twice", t.Name)
			}
			seenMod[t.Name] = true
		}
		out.Terms = append(out.Terms, t)
	}
	return out, nil
}

func spfTerm(f string) (SPFTerm, error) {
	if name, value, ok := strings.Cut(f, "="); ok && !strings.ContainsAny(name, ":/") {
		if !tagName(strings.ReplaceAll(strings.ReplaceAll(name, "-", "_"), ".", "_")) {
			return SPFTerm{}, fmt.Errorf("bad modifier %q", clip(f))
		}
		name = strings.ToLower(name)
		if (name == "redirect" || name == "exp") && !domainSpec(value) {
			return SPFTerm{}, fmt.Errorf("%s=%q: not a domain", name, clip(value))
		}
		return SPFTerm{Name: name, Value: value, Modifier: true}, nil
	}
	t := SPFTerm{Qualifier: QualPass}
	switch f[0] {
	case QualPass, QualFail, QualSoftFail, QualNeutral:
		t.Qualifier, f = f[0], f[1:]
	}
	name, arg, hasArg := f, "", false
	if i := strings.IndexAny(f, ":/"); i >= 0 {
		name, arg, hasArg = f[:i], f[i:], true
	}
	t.Name = strings.ToLower(name)
	switch t.Name {
	case "all":
		if hasArg {
			return SPFTerm{}, fmt.Errorf("%q: all takes no argument", clip(f))
		}
	case "include", "exists":
		if !strings.HasPrefix(arg, ":") || !domainSpec(arg[1:]) {
			return SPFTerm{}, fmt.Errorf("%q: %s needs a domain", clip(f), t.Name)
		}
		t.Value = arg[1:]
	case "a", "mx":
		dom, cidr, _ := strings.Cut(arg, "/")
		if strings.HasPrefix(dom, ":") {
			if !domainSpec(dom[1:]) {
				return SPFTerm{}, fmt.Errorf("%q: bad domain", clip(f))
			}
		} else if dom != "" {
			return SPFTerm{}, fmt.Errorf("%q: bad argument", clip(f))
		}
		if strings.Contains(arg, "/") && !dualCIDR(cidr) {
			return SPFTerm{}, fmt.Errorf("%q: bad prefix length", clip(f))
		}
		t.Value = strings.TrimPrefix(arg, ":")
	case "ptr":
		if hasArg && (!strings.HasPrefix(arg, ":") || !domainSpec(arg[1:])) {
			return SPFTerm{}, fmt.Errorf("%q: bad domain", clip(f))
		}
		t.Value = strings.TrimPrefix(arg, ":")
	case "ip4", "ip6":
		if !strings.HasPrefix(arg, ":") {
			return SPFTerm{}, fmt.Errorf("%q: %s needs an address", clip(f), t.Name)
		}
		addr, bits, hasBits := strings.Cut(arg[1:], "/")
		ip := net.ParseIP(addr)
		v4 := ip != nil && ip.To4() != nil && !strings.Contains(addr, ":")
		if ip == nil || (t.Name == "ip4") != v4 {
			return SPFTerm{}, fmt.Errorf("%q: not an %s address", clip(f), t.Name)
		}
		if hasBits {
			max := 32
			if t.Name == "ip6" {
				max = 128
			}
			if n, err := strconv.Atoi(bits); err != nil || n < 0 || n > max || bits != strconv.Itoa(n) {
				return SPFTerm{}, fmt.Errorf("%q: bad prefix length", clip(f))
			}
		}
		t.Value = arg[1:]
	default:
		return SPFTerm{}, fmt.Errorf("unknown mechanism %q", clip(f))
	}
	return t, nil
}

// dualCIDR checks "n" or "n//m" or "/m" after the first "/" of an a or mx
// mechanism.
func dualCIDR(s string) bool {
	v4, v6, dual := strings.Cut(s, "//")
	if strings.HasPrefix(s, "/") {
		v4, v6, dual = "", s[1:], true
	}
	ok := func(x string, max int) bool {
		n, err := strconv.Atoi(x)
		return err == nil && n >= 0 && n <= max && x == strconv.Itoa(n)
	}
	if v4 != "" && !ok(v4, 32) {
		return false
	}
	if dual && !ok(v6, 128) {
		return false
	}
	return v4 != "" || dual
}

// domainSpec accepts a host name or one with SPF macros (%{…}).
func domainSpec(s string) bool {
	if strings.Contains(s, "%") {
		return len(s) <= 253 && !strings.ContainsAny(s, " \t")
	}
	return hostname(s)
}

// DKIMKey is a parsed DKIM public key record (RFC 6376 section 3.6.1).
type DKIMKey struct {
	KeyType string // "rsa" or "ed25519"
	Bits    int    // RSA modulus size; 256 for Ed25519
	Revoked bool   // p= is empty
	Testing bool   // t=y
}

// ParseDKIMKey parses the text of a selector's _domainkey TXT record and
// the key in it.
func ParseDKIMKey(s string) (DKIMKey, error) {
	tags, err := ParseTags(s)
	if err != nil {
		return DKIMKey{}, err
	}
	m := tagMap(tags)
	if v, ok := m["v"]; ok && (tags[0].Name != "v" || v != "DKIM1") {
		return DKIMKey{}, errors.New("v= must be first and DKIM1")
	}
	k := DKIMKey{KeyType: strings.ToLower(m["k"])}
	if k.KeyType == "" {
		k.KeyType = "rsa"
	}
	for _, f := range strings.Split(m["t"], ":") {
		if strings.TrimSpace(f) == "y" {
			k.Testing = true
		}
	}
	p, ok := m["p"]
	if !ok {
		return DKIMKey{}, errors.New("no p= tag (the public key)")
	}
	p = strings.Join(strings.Fields(p), "")
	if p == "" {
		k.Revoked = true
		return k, nil
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return DKIMKey{}, errors.New("p= is not base64")
	}
	switch k.KeyType {
	case "rsa":
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			if rk, err2 := x509.ParsePKCS1PublicKey(der); err2 == nil {
				pub = rk
			} else {
				return DKIMKey{}, errors.New("p= is not an RSA public key")
			}
		}
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return DKIMKey{}, errors.New("k=rsa but p= holds another kind of key")
		}
		k.Bits = rk.N.BitLen()
	case "ed25519":
		if len(der) != ed25519.PublicKeySize {
			return DKIMKey{}, fmt.Errorf("an Ed25519 key is %d bytes, p= holds %d", ed25519.PublicKeySize, len(der))
		}
		k.Bits = 256
	default:
		return DKIMKey{}, fmt.Errorf("k=%q: want rsa or ed25519", clip(k.KeyType))
	}
	return k, nil
}

// BIMI is a parsed BIMI assertion record.
type BIMI struct {
	Logo      string // l: the SVG's https URL ("" declines to publish)
	Authority string // a: the mark certificate's (VMC/CMC) https URL
}

// ParseBIMI parses the text of a default._bimi TXT record.
func ParseBIMI(s string) (BIMI, error) {
	m, err := versioned(s, "BIMI1")
	if err != nil {
		return BIMI{}, err
	}
	var b BIMI
	if v := m["l"]; v != "" {
		if err := httpsURL(v, ".svg"); err != nil {
			return BIMI{}, fmt.Errorf("l=: %w", err)
		}
		b.Logo = v
	}
	if v := m["a"]; v != "" && v != "self" {
		if err := httpsURL(v, ".pem"); err != nil {
			return BIMI{}, fmt.Errorf("a=: %w", err)
		}
		b.Authority = v
	}
	return b, nil
}

func httpsURL(v, ext string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL", clip(v))
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%q is not https", clip(v))
	}
	if !strings.HasSuffix(strings.ToLower(u.Path), ext) {
		return fmt.Errorf("%q does not name a %s file", clip(v), ext)
	}
	return nil
}

// ParseMTASTS parses the text of an _mta-sts TXT record and returns its id.
func ParseMTASTS(s string) (string, error) {
	m, err := versioned(s, "STSv1")
	if err != nil {
		return "", err
	}
	id := m["id"]
	if id == "" || len(id) > 32 {
		return "", errors.New("id= must hold 1 to 32 letters or digits")
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return "", errors.New("id= must hold 1 to 32 letters or digits")
		}
	}
	return id, nil
}

// ParseTLSRPT parses the text of an _smtp._tls TXT record and returns its
// reporting addresses (mailto: addresses, or https: endpoints as given).
func ParseTLSRPT(s string) ([]string, error) {
	m, err := versioned(s, "TLSRPTv1")
	if err != nil {
		return nil, err
	}
	v, ok := m["rua"]
	if !ok || strings.TrimSpace(v) == "" {
		return nil, errors.New("no rua= (where reports go)")
	}
	var out []string
	for _, one := range strings.Split(v, ",") {
		one = strings.TrimSpace(one)
		if strings.HasPrefix(strings.ToLower(one), "https:") {
			if u, err := url.Parse(one); err != nil || u.Host == "" {
				return nil, fmt.Errorf("rua: %q is not a URL", clip(one))
			}
			out = append(out, one)
			continue
		}
		addr, err := reportAddress(one)
		if err != nil {
			return nil, fmt.Errorf("rua: %w", err)
		}
		out = append(out, addr)
	}
	return out, nil
}

// MTASTSPolicy is a parsed MTA-STS policy file (RFC 8461 section 3.2).
type MTASTSPolicy struct {
	Mode   string // enforce, testing or none
	MX     []string
	MaxAge int // seconds
}

// ParseMTASTSPolicy parses the text of a .well-known/mta-sts.txt file.
func ParseMTASTSPolicy(s string) (MTASTSPolicy, error) {
	if len(s) > 64<<10 {
		return MTASTSPolicy{}, errors.New("policy too long")
	}
	var p MTASTSPolicy
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return MTASTSPolicy{}, fmt.Errorf("line %q is not \"key: value\"", clip(line))
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k != "mx" && seen[k] {
			return MTASTSPolicy{}, fmt.Errorf("%s appears twice", clip(k))
		}
		seen[k] = true
		switch k {
		case "version":
			if v != "STSv1" {
				return MTASTSPolicy{}, fmt.Errorf("version %q: want STSv1", clip(v))
			}
		case "mode":
			if v != "enforce" && v != "testing" && v != "none" {
				return MTASTSPolicy{}, fmt.Errorf("mode %q: want enforce, testing or none", clip(v))
			}
			p.Mode = v
		case "mx":
			if !hostname(strings.TrimPrefix(v, "*.")) {
				return MTASTSPolicy{}, fmt.Errorf("mx %q is not a host name", clip(v))
			}
			p.MX = append(p.MX, v)
		case "max_age":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 31557600 || v != strconv.Itoa(n) {
				return MTASTSPolicy{}, fmt.Errorf("max_age %q: want 0 to 31557600 seconds", clip(v))
			}
			p.MaxAge = n
		}
	}
	switch {
	case !seen["version"]:
		return MTASTSPolicy{}, errors.New("no version")
	case p.Mode == "":
		return MTASTSPolicy{}, errors.New("no mode")
	case !seen["max_age"]:
		return MTASTSPolicy{}, errors.New("no max_age")
	case p.Mode != "none" && len(p.MX) == 0:
		return MTASTSPolicy{}, errors.New("no mx")
	}
	return p, nil
}
