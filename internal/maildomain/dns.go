package maildomain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Resolver answers TXT queries.
type Resolver interface {
	// TXT returns the TXT records of name, one string per record (the
	// record's strings joined). A name without records (NXDOMAIN or no
	// TXT data) gives none and no error; a failed query gives an error.
	TXT(ctx context.Context, name string) ([]string, error)
}

// DNS is a Resolver that asks one DNS server.
type DNS struct {
	// Server is host:port; "" means the first nameserver of
	// /etc/resolv.conf.
	Server  string
	Timeout time.Duration // per query; 0 means 5 s
}

// TXT queries the server for name's TXT records, over UDP with EDNS0 and
// again over TCP when the answer was truncated.
func (d DNS) TXT(ctx context.Context, name string) ([]string, error) {
	server := d.Server
	if server == "" {
		conf, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(conf.Servers) == 0 {
			return nil, errors.New("no DNS server: give --resolver host:port")
		}
		server = net.JoinHostPort(conf.Servers[0], conf.Port)
	}
	timeout := d.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	q.SetEdns0(4096, false)
	c := &dns.Client{Timeout: timeout, UDPSize: 4096}
	r, _, err := c.ExchangeContext(ctx, q, server)
	if err == nil && r.Truncated {
		c.Net = "tcp"
		r, _, err = c.ExchangeContext(ctx, q, server)
	}
	if err != nil {
		return nil, fmt.Errorf("TXT %s: %w", name, err)
	}
	switch r.Rcode {
	case dns.RcodeSuccess, dns.RcodeNameError:
	default:
		return nil, fmt.Errorf("TXT %s: server answered %s", name, dns.RcodeToString[r.Rcode])
	}
	var out []string
	for _, rr := range r.Answer {
		if t, ok := rr.(*dns.TXT); ok && strings.EqualFold(t.Hdr.Name, dns.Fqdn(name)) {
			out = append(out, strings.Join(t.Txt, ""))
		}
	}
	return out, nil
}

// LookupTXT adapts r to the look-up function DKIM verifiers take.
func LookupTXT(ctx context.Context, r Resolver) func(string) ([]string, error) {
	return func(name string) ([]string, error) { return r.TXT(ctx, name) }
}
