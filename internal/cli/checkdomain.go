package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kabuto-sec/kabuto/internal/config"
	"github.com/kabuto-sec/kabuto/internal/maildomain"
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

Usage: kabuto check-domain DOMAIN... [--resolver HOST:PORT] [--dkim-selector S...] [--no-mail DOMAIN...] [--json]`

func runCheckDomain(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("check-domain", flag.ContinueOnError)
	resolver := fs.String("resolver", "", "DNS server to ask, host:port (default: the first nameserver of /etc/resolv.conf)")
	var selectors, noMail listFlag
	fs.Var(&selectors, "dkim-selector", "DKIM selector whose key to check (repeat or comma-separate)")
	fs.Var(&noMail, "no-mail", "a domain that sends no mail, e.g. a look-alike the firm registered (repeat or comma-separate)")
	asJSON := fs.Bool("json", false, "print the reports as JSON")
	timeout := fs.Duration("timeout", 5*time.Second, "timeout of each DNS query")
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
	reports := CheckDomains(ctx, maildomain.DNS{Server: *resolver, Timeout: *timeout}, domains, noMail, selectors)
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
func CheckDomains(ctx context.Context, r maildomain.Resolver, sending, noMail, selectors []string) []maildomain.Report {
	c := &maildomain.Checker{Resolver: r, Selectors: selectors}
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
