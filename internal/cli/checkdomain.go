package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kabuto-sec/kabuto/internal/config"
	"github.com/kabuto-sec/kabuto/internal/maildomain"
	"github.com/kabuto-sec/kabuto/internal/notify"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// listFlag is a flag that may be given more than once, each value also a
// comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

const checkDomainSummary = `Check the mail domains' DNS: DMARC (p=reject, sp, pct, alignment, reports),
SPF (syntax, at most 10 look-ups, -all), DKIM keys (RSA >= 2048 bits or Ed25519),
BIMI, MTA-STS and TLS-RPT; for --no-mail domains (look-alikes that send no
mail) the null SPF record and p=reject. Each finding says why it matters and
the record that fixes it. Exit status 1 when a required point fails.

Usage: kabuto check-domain DOMAIN... [--resolver HOST:PORT] [--dkim-selector S...] [--no-mail DOMAIN...] [--fetch-mta-sts] [--json]`

func runCheckDomain(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("check-domain", flag.ContinueOnError)
	resolver := fs.String("resolver", "", "DNS server to ask, host:port (default: the first nameserver of /etc/resolv.conf)")
	var selectors, noMail listFlag
	fs.Var(&selectors, "dkim-selector", "DKIM selector whose key to check (repeat or comma-separate)")
	fs.Var(&noMail, "no-mail", "a domain that sends no mail, e.g. a look-alike the firm registered (repeat or comma-separate)")
	asJSON := fs.Bool("json", false, "print the reports as JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "timeout of each DNS query (and of the MTA-STS policy fetch)")
	fetch := fs.Bool("fetch-mta-sts", false, "also fetch each sending domain's MTA-STS policy over HTTPS and check its mode")
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stdout, "%s\n\nFlags (each also KABUTO_<NAME>, or KABUTO_<NAME>_FILE):\n", checkDomainSummary)
		fs.SetOutput(env.Stdout)
		fs.PrintDefaults()
		fs.SetOutput(env.Stderr)
	}
	// Domains and flags may come in any order.
	var domains []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err}
		}
		if fs.NArg() == 0 {
			break
		}
		domains = append(domains, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err := config.Apply(fs); err != nil {
		return usageError{err}
	}
	if len(domains) == 0 && len(noMail) == 0 {
		return usageError{errors.New("name at least one domain")}
	}
	c := &maildomain.Checker{Resolver: maildomain.DNS{Server: *resolver, Timeout: *timeout}, Selectors: selectors}
	if *fetch {
		c.HTTP = &http.Client{Timeout: *timeout}
	}
	reports := CheckDomains(ctx, c, domains, noMail)
	var failed []string
	for _, r := range reports {
		if r.Failed() {
			failed = append(failed, r.Domain)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"reports": reports, "failed": len(failed) > 0}); err != nil {
			return err
		}
	} else {
		printReports(env.Stdout, reports)
	}
	if len(failed) > 0 {
		return fmt.Errorf("required points fail for %s", strings.Join(failed, ", "))
	}
	return nil
}

// CheckDomains checks the sending domains and the domains that send no
// mail, in that order.
func CheckDomains(ctx context.Context, c *maildomain.Checker, sending, noMail []string) []maildomain.Report {
	var out []maildomain.Report
	for _, d := range sending {
		out = append(out, c.Check(ctx, d, true))
	}
	for _, d := range noMail {
		out = append(out, c.Check(ctx, d, false))
	}
	return out
}

func printReports(w io.Writer, reports []maildomain.Report) {
	for i, r := range reports {
		if i > 0 {
			fmt.Fprintln(w)
		}
		kind := "sends mail"
		if !r.Sending {
			kind = "sends no mail"
		}
		verdict := "required points hold"
		if r.Failed() {
			verdict = "REQUIRED POINTS FAIL"
		}
		fmt.Fprintf(w, "%s (%s): %s\n", r.Domain, kind, verdict)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  LEVEL\tCHECK\tFINDING")
		for _, f := range r.Findings {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", strings.ToUpper(string(f.Level)), f.Check, f.Found)
			if f.Why != "" {
				fmt.Fprintf(tw, "  \t\twhy: %s\n", f.Why)
			}
			if f.Fix != "" {
				fmt.Fprintf(tw, "  \t\tfix: %s\n", f.Fix)
			}
		}
		tw.Flush()
	}
}

// mailOptions are serve's settings of the firm's mail: the DKIM keys every
// email is signed with, and the domains whose posture the console shows.
type mailOptions struct {
	edKey, edSelector, rsaKey, rsaSelector string
	domains, noMail                        listFlag
	resolver                               string
	every                                  time.Duration
}

// mailFlags registers the mail flags on fs.
func mailFlags(fs *flag.FlagSet, o *mailOptions) {
	fs.StringVar(&o.edKey, "dkim-ed25519-key", "", "Ed25519 DKIM private key (PKCS #8 PEM) signing every email: a file name, or the PEM itself via KABUTO_DKIM_ED25519_KEY_FILE")
	fs.StringVar(&o.edSelector, "dkim-ed25519-selector", "kabuto-ed", "DKIM selector of the Ed25519 key (its public key at SELECTOR._domainkey.<From's domain>)")
	fs.StringVar(&o.rsaKey, "dkim-rsa-key", "", "RSA (>= 2048 bits) DKIM private key (PKCS #8 or #1 PEM) signing every email: a file name, or the PEM itself via KABUTO_DKIM_RSA_KEY_FILE")
	fs.StringVar(&o.rsaSelector, "dkim-rsa-selector", "kabuto-rsa", "DKIM selector of the RSA key")
	fs.Var(&o.domains, "mail-domains", "the firm's sending domains, checked like check-domain for the console's mail posture (comma-separated)")
	fs.Var(&o.noMail, "mail-no-mail-domains", "look-alike domains the firm holds that send no mail, checked for the console (comma-separated)")
	fs.StringVar(&o.resolver, "mail-resolver", "", "DNS server for the mail posture checks, host:port (default: /etc/resolv.conf)")
	fs.DurationVar(&o.every, "mail-check-every", 6*time.Hour, "how often the mail posture is checked")
}

// keys reads the DKIM keys given.
func (o mailOptions) keys() ([]notify.DKIMKey, error) {
	var keys []notify.DKIMKey
	for _, k := range []struct{ flag, key, selector string }{{"--dkim-ed25519-key", o.edKey, o.edSelector}, {"--dkim-rsa-key", o.rsaKey, o.rsaSelector}} {
		if k.key == "" {
			continue
		}
		dk, err := notify.ParseDKIMKey(k.selector, k.key)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s: %w", k.flag, err)}
		}
		keys = append(keys, dk)
	}
	return keys, nil
}

// smtp returns the email sender: every message DKIM-signed with the keys
// given, by the domain of from, over STARTTLS.
func (o mailOptions) smtp(addr, from string) (notify.SMTP, error) {
	keys, err := o.keys()
	if err != nil {
		return notify.SMTP{}, err
	}
	s := notify.SMTP{Addr: addr, From: from, Keys: keys}
	if err := s.Check(); err != nil {
		return notify.SMTP{}, usageError{fmt.Errorf("--smtp-addr: %w (give --dkim-ed25519-key and --dkim-rsa-key)", err)}
	}
	return s, nil
}

// monitor returns the checker of the configured domains, or nil when
// none are configured.
func (o mailOptions) monitor(db *store.DB, log *slog.Logger) *maildomain.Monitor {
	if len(o.domains) == 0 && len(o.noMail) == 0 {
		return nil
	}
	var selectors []string
	if o.edKey != "" {
		selectors = append(selectors, o.edSelector)
	}
	if o.rsaKey != "" {
		selectors = append(selectors, o.rsaSelector)
	}
	return &maildomain.Monitor{DB: db, Sending: o.domains, NoMail: o.noMail, Every: o.every, Log: log,
		Checker: &maildomain.Checker{Resolver: maildomain.DNS{Server: o.resolver}, Selectors: selectors, HTTP: &http.Client{Timeout: 10 * time.Second}}}
}
