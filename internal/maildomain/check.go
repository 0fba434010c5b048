// Package maildomain checks what a brokerage's mail domains publish in DNS
// so that mail in its name can be trusted and mail forged in its name is
// refused: DMARC with the policy reject (required by the JSDA guideline),
// SPF within ten look-ups ending in -all, DKIM keys of sufficient strength,
// BIMI, MTA-STS and TLS-RPT, and, for look-alike domains the firm holds but
// sends no mail from, the null SPF record and p=reject.
//
// Every finding says what was found, why it matters and the record that
// fixes it. Parsers of record text accept anything and never panic (fuzz
// targets in records_test.go).
package maildomain

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/kabuto-sec/kabuto/internal/clock"
)

// Level grades a finding.
type Level string

// Levels of finding: LevelFail is a required point that fails (the check
// exits 1), LevelWarn a recommended point that is missing or weak.
const (
	LevelOK   Level = "ok"
	LevelWarn Level = "warn"
	LevelFail Level = "fail"
)

// Checks by name.
const (
	CheckDMARC  = "dmarc"
	CheckSPF    = "spf"
	CheckDKIM   = "dkim"
	CheckBIMI   = "bimi"
	CheckMTASTS = "mta-sts"
	CheckTLSRPT = "tls-rpt"
)

// Finding is one result of a check.
type Finding struct {
	Check string `json:"check"`
	Level Level  `json:"level"`
	// Found says what is published (or that nothing is).
	Found string `json:"found"`
	// Why says why it matters; empty when the point holds.
	Why string `json:"why,omitempty"`
	// Fix is the DNS record (zone-file form) that fixes it; empty when the
	// point holds.
	Fix string `json:"fix,omitempty"`
}

// Report is the result of checking one domain.
type Report struct {
	Domain  string    `json:"domain"`
	Sending bool      `json:"sending"` // false: a look-alike that sends no mail
	Checked time.Time `json:"checked"`
	// DMARCPolicy is the published p= ("" when there is no valid record).
	DMARCPolicy string    `json:"dmarc_policy"`
	Findings    []Finding `json:"findings"`
}

// Failed reports whether a required point fails.
func (r Report) Failed() bool {
	for _, f := range r.Findings {
		if f.Level == LevelFail {
			return true
		}
	}
	return false
}

// Checker checks domains.
type Checker struct {
	Resolver Resolver
	// Selectors are the DKIM selectors to check on sending domains.
	Selectors []string
	Now       func() time.Time // nil: clock.Real
	// HTTP, when set, fetches each sending domain's MTA-STS policy
	// (https://mta-sts.DOMAIN/.well-known/mta-sts.txt) with it.
	HTTP *http.Client
}

// fetchPolicy reads and parses an MTA-STS policy: HTTPS with a verified
// certificate (the client's), no redirects (RFC 8461 section 3.3), 200,
// text/plain, at most 64 KiB.
func (c *Checker) fetchPolicy(ctx context.Context, url string) (MTASTSPolicy, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return MTASTSPolicy{}, err
	}
	client := *c.HTTP
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		return MTASTSPolicy{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return MTASTSPolicy{}, fmt.Errorf("HTTP status %d", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return MTASTSPolicy{}, fmt.Errorf("content type %q, want text/plain", ct)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10+1))
	if err != nil {
		return MTASTSPolicy{}, err
	}
	return ParseMTASTSPolicy(string(b))
}

// Check checks domain. sending is false for a domain that must send no
// mail at all (a look-alike the firm registered).
func (c *Checker) Check(ctx context.Context, domain string, sending bool) Report {
	now := clock.Real{}.Now
	if c.Now != nil {
		now = c.Now
	}
	domain = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
	r := &Report{Domain: domain, Sending: sending, Checked: now()}
	if !hostname(domain) {
		r.add(CheckDMARC, LevelFail, fmt.Sprintf("%q is not a domain name", clip(domain)), "nothing can be checked", "")
		return *r
	}
	c.dmarc(ctx, r)
	c.spf(ctx, r)
	if !sending {
		return *r
	}
	c.dkim(ctx, r)
	c.bimi(ctx, r)
	c.mtaSTS(ctx, r)
	c.tlsRPT(ctx, r)
	return *r
}

func (r *Report) add(check string, l Level, found, why, fix string) {
	r.Findings = append(r.Findings, Finding{Check: check, Level: l, Found: found, Why: why, Fix: fix})
}

// lookup returns the records of name that pass is; a failed query becomes
// a finding and ok false.
func (c *Checker) lookup(ctx context.Context, r *Report, check, name string, is func(string) bool) ([]string, bool) {
	txt, err := c.Resolver.TXT(ctx, name)
	if err != nil {
		r.add(check, LevelFail, "the DNS query failed: "+err.Error(), "receivers that cannot read the record treat the domain as unprotected", "check the domain's name servers answer for "+name)
		return nil, false
	}
	var out []string
	for _, t := range txt {
		if is(t) {
			out = append(out, t)
		}
	}
	return out, true
}

func prefix(p string) func(string) bool {
	return func(s string) bool { return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) }
}

func quoted(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

const whyDMARC = "without p=reject, receivers deliver mail that forges the firm's From address; the JSDA guideline requires DMARC with p=reject"

func (c *Checker) dmarc(ctx context.Context, r *Report) {
	name := "_dmarc." + r.Domain
	rua := "mailto:dmarc-reports@" + r.Domain
	fix := func(d DMARC) string {
		rec := "v=DMARC1; p=reject; sp=reject; adkim=s; aspf=s"
		if len(d.RUA) > 0 {
			rua = "mailto:" + strings.Join(d.RUA, ",mailto:")
		}
		rec += "; rua=" + rua
		if len(d.RUF) > 0 {
			rec += "; ruf=mailto:" + strings.Join(d.RUF, ",mailto:")
		}
		return name + ". TXT " + quoted(rec)
	}
	recs, ok := c.lookup(ctx, r, CheckDMARC, name, prefix("v=DMARC1"))
	if !ok {
		return
	}
	if len(recs) == 0 {
		if org, err := publicsuffix.EffectiveTLDPlusOne(r.Domain); err == nil && org != r.Domain {
			// RFC 7489 section 6.6.3: without a record of its own, a
			// subdomain takes its organisational domain's sp (or p).
			orgName := "_dmarc." + org
			orgRecs, ok := c.lookup(ctx, r, CheckDMARC, orgName, prefix("v=DMARC1"))
			if !ok {
				return
			}
			if len(orgRecs) == 1 {
				if d, err := ParseDMARC(orgRecs[0]); err == nil {
					policy := d.Policy
					if d.SubPolicy != "" {
						policy = d.SubPolicy
					}
					r.DMARCPolicy = policy
					switch {
					case policy != "reject":
						r.add(CheckDMARC, LevelFail, "no record at "+name+"; "+orgName+" gives subdomains "+policy, whyDMARC, fix(DMARC{}))
					case d.Percent < 100:
						r.add(CheckDMARC, LevelFail, fmt.Sprintf("no record at %s; %s has pct=%d", name, orgName, d.Percent), fmt.Sprintf("the policy applies to only %d%% of forged mail; the rest is delivered", d.Percent), fix(DMARC{}))
					default:
						r.add(CheckDMARC, LevelOK, "no record at "+name+"; "+orgName+" gives subdomains reject", "", "")
					}
					return
				}
			}
		}
	}
	switch len(recs) {
	case 0:
		r.add(CheckDMARC, LevelFail, "no DMARC record at "+name, whyDMARC, fix(DMARC{}))
		return
	case 1:
	default:
		r.add(CheckDMARC, LevelFail, fmt.Sprintf("%d DMARC records at %s", len(recs), name), "with more than one record receivers apply no DMARC policy at all", fix(DMARC{}))
		return
	}
	d, err := ParseDMARC(recs[0])
	if err != nil {
		r.add(CheckDMARC, LevelFail, "the DMARC record is invalid: "+err.Error(), "receivers ignore an invalid record: the domain is unprotected", fix(DMARC{}))
		return
	}
	r.DMARCPolicy = d.Policy
	bad := false
	if d.Policy != "reject" {
		r.add(CheckDMARC, LevelFail, "p="+d.Policy, whyDMARC, fix(d))
		bad = true
	}
	if d.SubPolicy != "" && d.SubPolicy != "reject" {
		r.add(CheckDMARC, LevelFail, "sp="+d.SubPolicy, "forged mail from any subdomain (e.g. support."+r.Domain+") is delivered", fix(d))
		bad = true
	}
	if d.Percent < 100 {
		r.add(CheckDMARC, LevelFail, fmt.Sprintf("pct=%d", d.Percent), fmt.Sprintf("the policy applies to only %d%% of forged mail; the rest is delivered", d.Percent), fix(d))
		bad = true
	}
	if !r.Sending {
		if !bad {
			r.add(CheckDMARC, LevelOK, "p=reject", "", "")
		}
		return
	}
	if d.ADKIM != "s" || d.ASPF != "s" {
		r.add(CheckDMARC, LevelWarn, "relaxed alignment (adkim="+d.ADKIM+", aspf="+d.ASPF+")", "any subdomain's signature or envelope counts for the firm's From address; the firm's notices are signed by the domain itself, so strict alignment costs nothing", fix(d))
		bad = true
	}
	if len(d.RUA) == 0 {
		r.add(CheckDMARC, LevelWarn, "no rua= reporting address", "without aggregate reports nobody sees forged mail or a sender that fails DMARC before customers do", fix(d))
		bad = true
	}
	for _, addr := range append(append([]string{}, d.RUA...), d.RUF...) {
		_, host, _ := strings.Cut(addr, "@")
		if host == r.Domain || strings.HasSuffix(host, "."+r.Domain) || strings.HasSuffix(r.Domain, "."+host) {
			continue
		}
		auth := r.Domain + "._report._dmarc." + host
		recs, ok := c.lookup(ctx, r, CheckDMARC, auth, prefix("v=DMARC1"))
		if ok && len(recs) == 0 {
			r.add(CheckDMARC, LevelWarn, "reports go to "+addr+", which has not agreed to take them", "receivers send no reports to another domain unless it publishes "+auth, auth+". TXT "+quoted("v=DMARC1"))
			bad = true
		}
	}
	if !bad {
		r.add(CheckDMARC, LevelOK, recs[0], "", "")
	}
}

func (c *Checker) spf(ctx context.Context, r *Report) {
	name := r.Domain
	recs, ok := c.lookup(ctx, r, CheckSPF, name, IsSPF)
	if !ok {
		return
	}
	if !r.Sending {
		fix := name + ". TXT " + quoted("v=spf1 -all")
		why := "a domain that sends no mail must say so, or forged mail from it passes receivers' checks"
		switch {
		case len(recs) == 0:
			r.add(CheckSPF, LevelFail, "no SPF record on a domain that sends no mail", why, fix)
		case len(recs) > 1:
			r.add(CheckSPF, LevelFail, fmt.Sprintf("%d SPF records", len(recs)), "with more than one record SPF fails with an error and checks nothing", fix)
		default:
			if s, err := ParseSPF(recs[0]); err != nil || !s.Null() {
				r.add(CheckSPF, LevelFail, recs[0]+" on a domain that sends no mail", why+": only the null record \"v=spf1 -all\" authorises no one", fix)
			} else {
				r.add(CheckSPF, LevelOK, recs[0], "", "")
			}
		}
		return
	}
	generic := name + ". TXT " + quoted("v=spf1 include:<your mail provider's SPF domain> -all")
	switch len(recs) {
	case 0:
		r.add(CheckSPF, LevelFail, "no SPF record", "receivers cannot tell the firm's mail servers from a forger's", generic)
		return
	case 1:
	default:
		r.add(CheckSPF, LevelFail, fmt.Sprintf("%d SPF records", len(recs)), "with more than one record SPF fails with an error (permerror) and checks nothing", "publish one record that lists every sender, e.g. "+generic)
		return
	}
	s, err := ParseSPF(recs[0])
	if err != nil {
		r.add(CheckSPF, LevelFail, "the SPF record is invalid: "+err.Error(), "an invalid record is a permanent error: receivers check nothing", generic)
		return
	}
	// The record as it should be: the same senders, ending in -all.
	var keep []string
	for _, t := range s.Terms {
		if !t.Modifier && t.Name == "all" || t.Modifier && t.Name == "redirect" {
			continue
		}
		keep = append(keep, termText(t))
	}
	fixed := name + ". TXT " + quoted(strings.Join(append(append([]string{"v=spf1"}, keep...), "-all"), " "))
	bad := false
	if s.Redirect() == "" {
		switch q := s.All(); q {
		case QualFail:
		case 0:
			r.add(CheckSPF, LevelFail, "no \"all\" at the end", "without -all mail from any server is left to the receiver's judgement", fixed)
			bad = true
		default:
			r.add(CheckSPF, LevelFail, string(q)+"all", "only -all tells receivers that mail from other servers is forged", fixed)
			bad = true
		}
	}
	n, problems := c.spfLookups(ctx, r.Domain, s, 0, map[string]bool{r.Domain: true})
	for _, p := range problems {
		r.add(CheckSPF, LevelFail, p, "a broken include is a permanent error: receivers check nothing", fixed+" (with the broken include removed or corrected)")
		bad = true
	}
	if n > 10 {
		r.add(CheckSPF, LevelFail, fmt.Sprintf("%d DNS look-ups (the limit is 10)", n), "past ten look-ups SPF fails with an error (permerror) and the firm's own mail fails too", name+". TXT "+quoted("v=spf1 ip4:<your servers> ip6:<your servers> include:<one provider> -all")+" (replace nested includes with the addresses they resolve to)")
		bad = true
	}
	for _, t := range s.Terms {
		if !t.Modifier && t.Name == "ptr" {
			r.add(CheckSPF, LevelWarn, "the ptr mechanism", "ptr is deprecated (RFC 7208) and many receivers ignore it", fixed+" (with ptr replaced by ip4:/ip6: ranges)")
			bad = true
		}
	}
	if !bad {
		r.add(CheckSPF, LevelOK, fmt.Sprintf("%s (%d look-ups)", recs[0], n), "", "")
	}
}

func termText(t SPFTerm) string {
	if t.Modifier {
		return t.Name + "=" + t.Value
	}
	q := ""
	if t.Qualifier != QualPass {
		q = string(t.Qualifier)
	}
	switch {
	case t.Value == "":
		return q + t.Name
	case (t.Name == "a" || t.Name == "mx") && strings.HasPrefix(t.Value, "/"):
		return q + t.Name + t.Value // a prefix length without a domain
	}
	return q + t.Name + ":" + t.Value
}

// spfLookups counts the DNS look-ups evaluating s costs, following include
// and redirect, and reports includes that lead nowhere.
func (c *Checker) spfLookups(ctx context.Context, domain string, s SPF, depth int, seen map[string]bool) (int, []string) {
	n := 0
	var problems []string
	for _, t := range s.Terms {
		if !lookups[t.Name] || t.Modifier != (t.Name == "redirect") {
			continue
		}
		n++
		if t.Name != "include" && t.Name != "redirect" || strings.Contains(t.Value, "%") {
			continue
		}
		target := strings.ToLower(strings.TrimSuffix(t.Value, "."))
		if seen[target] || depth >= 10 {
			problems = append(problems, fmt.Sprintf("%s:%s loops back", t.Name, t.Value))
			continue
		}
		txt, err := c.Resolver.TXT(ctx, target)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s:%s could not be looked up: %v", t.Name, t.Value, err))
			continue
		}
		var found []string
		for _, x := range txt {
			if IsSPF(x) {
				found = append(found, x)
			}
		}
		if len(found) != 1 {
			problems = append(problems, fmt.Sprintf("%s:%s has %d SPF records (one is needed)", t.Name, t.Value, len(found)))
			continue
		}
		sub, err := ParseSPF(found[0])
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s:%s has an invalid record: %v", t.Name, t.Value, err))
			continue
		}
		seen[target] = true
		m, p := c.spfLookups(ctx, target, sub, depth+1, seen)
		delete(seen, target)
		n += m
		problems = append(problems, p...)
	}
	return n, problems
}

func (c *Checker) dkim(ctx context.Context, r *Report) {
	if len(c.Selectors) == 0 {
		r.add(CheckDKIM, LevelWarn, "no selector given, so no key was checked", "a missing or weak key makes every notice fail DKIM, and with p=reject be refused", "run again with --dkim-selector for each selector the firm signs with")
		return
	}
	for _, sel := range c.Selectors {
		name := sel + "._domainkey." + r.Domain
		fixEd := name + ". TXT " + quoted("v=DKIM1; k=ed25519; p=<base64 of the 32-byte Ed25519 public key>")
		fixRSA := name + ". TXT " + quoted("v=DKIM1; k=rsa; p=<base64 of a 2048-bit or larger RSA public key>")
		fix := fixRSA + " or " + fixEd
		recs, ok := c.lookup(ctx, r, CheckDKIM, name, func(s string) bool { return strings.Contains(s, "p=") || prefix("v=DKIM1")(s) })
		if !ok {
			continue
		}
		if len(recs) == 0 {
			r.add(CheckDKIM, LevelFail, "no key at "+name, "mail signed with this selector fails DKIM and, under p=reject, is refused", fix)
			continue
		}
		if len(recs) > 1 {
			r.add(CheckDKIM, LevelFail, fmt.Sprintf("%d key records at %s", len(recs), name), "receivers may pick either key, so signatures fail at random", fix)
			continue
		}
		k, err := ParseDKIMKey(recs[0])
		switch {
		case err != nil:
			r.add(CheckDKIM, LevelFail, name+": "+err.Error(), "receivers cannot use the key: every signature with this selector fails", fix)
		case k.Revoked:
			r.add(CheckDKIM, LevelFail, name+": the key is revoked (empty p=)", "every signature with this selector fails; publish the current key or stop signing with this selector", fix)
		case k.KeyType == "rsa" && k.Bits < 2048:
			r.add(CheckDKIM, LevelFail, fmt.Sprintf("%s: RSA key of %d bits", name, k.Bits), "RSA keys under 2048 bits can be factored or are refused by receivers; a forger with the key signs as the firm", fixRSA)
		case k.Testing:
			r.add(CheckDKIM, LevelWarn, name+": t=y (testing)", "receivers may treat signatures in testing mode as unsigned", strings.Replace(fixRSA, "k=rsa", "k="+k.KeyType, 1)+" (without t=y)")
		default:
			r.add(CheckDKIM, LevelOK, fmt.Sprintf("%s: %s key of %d bits", name, k.KeyType, k.Bits), "", "")
		}
	}
}

func (c *Checker) bimi(ctx context.Context, r *Report) {
	name := "default._bimi." + r.Domain
	fix := name + ". TXT " + quoted("v=BIMI1; l=https://"+r.Domain+"/bimi/logo.svg; a=https://"+r.Domain+"/bimi/vmc.pem")
	recs, ok := c.lookup(ctx, r, CheckBIMI, name, prefix("v=BIMI1"))
	if !ok {
		return
	}
	switch {
	case len(recs) == 0:
		r.add(CheckBIMI, LevelWarn, "no BIMI record", "the JSDA guideline recommends BIMI: mail clients show the firm's mark next to genuine mail only", fix)
		return
	case len(recs) > 1:
		r.add(CheckBIMI, LevelWarn, fmt.Sprintf("%d BIMI records", len(recs)), "with more than one record no mark is shown", fix)
		return
	}
	b, err := ParseBIMI(recs[0])
	switch {
	case err != nil:
		r.add(CheckBIMI, LevelWarn, "the BIMI record is invalid: "+err.Error(), "mail clients show no mark; the logo must be an SVG served over https and the certificate a PEM over https", fix)
	case b.Logo == "":
		r.add(CheckBIMI, LevelWarn, "l= is empty (no logo published)", "mail clients show no mark next to the firm's mail", fix)
	case b.Authority == "":
		r.add(CheckBIMI, LevelWarn, "no a= (mark certificate) location", "large mailbox providers show the mark only with a verified mark certificate (VMC or CMC)", fix)
	default:
		r.add(CheckBIMI, LevelOK, recs[0], "", "")
	}
}

func (c *Checker) mtaSTS(ctx context.Context, r *Report) {
	name := "_mta-sts." + r.Domain
	fix := name + ". TXT " + quoted("v=STSv1; id=<a new id, e.g. 20260101T000000>") + " and the policy at https://mta-sts." + r.Domain + "/.well-known/mta-sts.txt"
	recs, ok := c.lookup(ctx, r, CheckMTASTS, name, prefix("v=STSv1"))
	if !ok {
		return
	}
	if len(recs) != 1 {
		r.add(CheckMTASTS, LevelWarn, fmt.Sprintf("%d MTA-STS records", len(recs)), "without MTA-STS, mail to the firm (customers' replies, reports) can be read or diverted by a network attacker who strips STARTTLS", fix)
		return
	}
	if _, err := ParseMTASTS(recs[0]); err != nil {
		r.add(CheckMTASTS, LevelWarn, "the MTA-STS record is invalid: "+err.Error(), "senders ignore an invalid record and fall back to unauthenticated TLS", fix)
		return
	}
	if c.HTTP == nil {
		r.add(CheckMTASTS, LevelOK, recs[0]+" (policy not fetched)", "", "")
		return
	}
	url := "https://mta-sts." + r.Domain + "/.well-known/mta-sts.txt"
	policyFix := url + " serving \"version: STSv1\\nmode: enforce\\nmx: <each MX host>\\nmax_age: 604800\""
	p, err := c.fetchPolicy(ctx, url)
	switch {
	case err != nil:
		r.add(CheckMTASTS, LevelWarn, "the policy at "+url+" could not be read: "+err.Error(), "senders apply no MTA-STS without a policy they can fetch over verified HTTPS", policyFix)
	case p.Mode != "enforce":
		r.add(CheckMTASTS, LevelWarn, "policy mode "+p.Mode, "only mode enforce makes senders refuse a server without valid TLS; testing and none only report", policyFix)
	default:
		r.add(CheckMTASTS, LevelOK, fmt.Sprintf("%s; policy enforce, %d mx, max_age %d", recs[0], len(p.MX), p.MaxAge), "", "")
	}
}

func (c *Checker) tlsRPT(ctx context.Context, r *Report) {
	name := "_smtp._tls." + r.Domain
	fix := name + ". TXT " + quoted("v=TLSRPTv1; rua=mailto:tls-reports@"+r.Domain)
	recs, ok := c.lookup(ctx, r, CheckTLSRPT, name, prefix("v=TLSRPTv1"))
	if !ok {
		return
	}
	if len(recs) != 1 {
		r.add(CheckTLSRPT, LevelWarn, fmt.Sprintf("%d TLS-RPT records", len(recs)), "without TLS reports nobody learns that mail to the firm is failing TLS or being downgraded", fix)
		return
	}
	if _, err := ParseTLSRPT(recs[0]); err != nil {
		r.add(CheckTLSRPT, LevelWarn, "the TLS-RPT record is invalid: "+err.Error(), "senders send no reports to an invalid record", fix)
		return
	}
	r.add(CheckTLSRPT, LevelOK, recs[0], "", "")
}
