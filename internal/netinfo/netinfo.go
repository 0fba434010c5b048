// Package netinfo maps a client IP address to its autonomous system number
// and country, the network facts the guard reasons about. A brokerage loads
// its own IP-to-ASN and GeoIP export as CSV (cidr,asn,country); the built-in
// table covers loopback, private and documentation ranges so the demo and
// the tests have realistic, stable answers without any download.
package netinfo

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Info is what is known of an address.
type Info struct {
	ASN     int64
	Country string
}

type entry struct {
	p    netip.Prefix
	info Info
}

// Table answers lookups by longest prefix match.
type Table struct {
	byBits [129][]entry // sorted by address, per prefix length
	bits   []int        // prefix lengths present, longest first
}

//go:embed builtin.csv
var builtin string

// Builtin returns the built-in table.
func Builtin() *Table {
	t, err := Parse(strings.NewReader(builtin))
	if err != nil {
		panic("netinfo: built-in table: " + err.Error())
	}
	return t
}

// Parse reads a CSV table: one "cidr,asn,country" per line, blank lines
// and lines starting with # ignored. Errors name the line and the field.
func Parse(r io.Reader) (*Table, error) {
	t := &Table{}
	s := bufio.NewScanner(r)
	n := 0
	for s.Scan() {
		n++
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want 3 fields (cidr,asn,country), got %d", n, len(f))
		}
		p, err := netip.ParsePrefix(strings.TrimSpace(f[0]))
		if err != nil {
			return nil, fmt.Errorf("line %d: field cidr: %q is not a CIDR prefix", n, f[0])
		}
		asn, err := strconv.ParseInt(strings.TrimSpace(f[1]), 10, 64)
		if err != nil || asn < 0 || asn > 1<<32-1 {
			return nil, fmt.Errorf("line %d: field asn: %q is not an AS number", n, f[1])
		}
		cc := strings.ToUpper(strings.TrimSpace(f[2]))
		if cc != "" && (len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z') {
			return nil, fmt.Errorf("line %d: field country: %q is not an ISO 3166 alpha-2 code", n, f[2])
		}
		p = p.Masked()
		if p.Addr().Is4() {
			// store IPv4 as IPv4-mapped IPv6 so one table serves both
			p = netip.PrefixFrom(netip.AddrFrom16(p.Addr().As16()), p.Bits()+96)
		}
		t.byBits[p.Bits()] = append(t.byBits[p.Bits()], entry{p, Info{asn, cc}})
	}
	if err := s.Err(); err != nil {
		return nil, err
	}
	for b := 128; b >= 0; b-- {
		if es := t.byBits[b]; len(es) > 0 {
			sort.Slice(es, func(i, j int) bool { return es[i].p.Addr().Less(es[j].p.Addr()) })
			t.bits = append(t.bits, b)
		}
	}
	return t, nil
}

// Lookup returns what the table knows of ip, and false when nothing.
func (t *Table) Lookup(ip string) (Info, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return Info{}, false
	}
	a = netip.AddrFrom16(a.As16())
	for _, b := range t.bits {
		p, _ := a.Prefix(b)
		es := t.byBits[b]
		i := sort.Search(len(es), func(i int) bool { return !es[i].p.Addr().Less(p.Addr()) })
		if i < len(es) && es[i].p == p {
			return es[i].info, true
		}
	}
	return Info{}, false
}
