// Package dnstest runs a real DNS server on 127.0.0.1 for tests: it
// answers TXT queries from a table of records (over UDP and TCP), NXDOMAIN
// for names it does not hold, and SERVFAIL for names marked broken.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is a running test DNS server.
type Server struct {
	// Addr is the host:port the server listens on (UDP and TCP).
	Addr string

	mu     sync.Mutex
	txt    map[string][]string
	broken map[string]bool
}

// Start starts a server answering from txt (name → TXT record texts),
// stopped at the end of the test.
func Start(t testing.TB, txt map[string][]string) *Server {
	t.Helper()
	s := &Server{txt: map[string][]string{}, broken: map[string]bool{}}
	for name, recs := range txt {
		s.Set(name, recs...)
	}
	pc, ln, err := listenBoth()
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = pc.LocalAddr().String()
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: ln, Handler: s}
	started := make(chan struct{}, 2)
	udp.NotifyStartedFunc = func() { started <- struct{}{} }
	tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	<-started
	<-started
	t.Cleanup(func() {
		udp.Shutdown()
		tcp.Shutdown()
	})
	return s
}

// listenBoth listens on one port for UDP and TCP. The kernel picks a free
// UDP port, which another process may hold for TCP: a busy TCP port is
// tried again on a new UDP port, up to 20 times.
func listenBoth() (net.PacketConn, net.Listener, error) {
	var last error
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		last = err
	}
	return nil, nil, last
}

// Set replaces the TXT records of name.
func (s *Server) Set(name string, recs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txt[dns.CanonicalName(name)] = recs
}

// Break makes queries for name answer SERVFAIL.
func (s *Server) Break(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broken[dns.CanonicalName(name)] = true
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	if len(q.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		w.WriteMsg(m)
		return
	}
	name := dns.CanonicalName(q.Question[0].Name)
	s.mu.Lock()
	recs, ok := s.txt[name]
	broken := s.broken[name]
	s.mu.Unlock()
	switch {
	case broken:
		m.Rcode = dns.RcodeServerFailure
	case !ok:
		m.Rcode = dns.RcodeNameError
	case q.Question[0].Qtype == dns.TypeTXT:
		for _, r := range recs {
			m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: split(r)})
		}
	}
	// Answers over UDP are cut at 1232 bytes, as the DNS flag day of 2020
	// set, so large records exercise the client's retry over TCP.
	size := 512
	if o := q.IsEdns0(); o != nil {
		size = min(int(o.UDPSize()), 1232)
		m.SetEdns0(uint16(size), false)
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// split cuts a record's text into the 255-byte strings a TXT record holds.
func split(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	out = append(out, s)
	if len(out) > 1 {
		return out
	}
	return []string{strings.Clone(s)}
}
