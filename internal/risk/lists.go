package risk

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kabuto-sec/kabuto/internal/netinfo"
)

// ListKind is the kind of value a list entry holds.
type ListKind string

// List entry kinds.
const (
	ListIP         ListKind = "ip"         // an IP address or a CIDR prefix
	ListASN        ListKind = "asn"        // an autonomous system number
	ListDevice     ListKind = "device"     // a device identifier, as in a record's device field
	ListInstrument ListKind = "instrument" // an instrument symbol
)

// Names of the lists the engine reads. Other names may be used freely; the
// engine ignores them.
const (
	ListBlock       = "block"       // blocked_ip, blocked_asn, blocked_device; instrument.blocked
	ListAllow       = "allow"       // net.allowed_ip, net.allowed_asn, device.allowed, instrument.allowed
	ListWatch       = "watch"       // net.watched_*, device.watched, instrument.watched (watched_instrument)
	ListHosting     = "hosting"     // ASNs of hosting and cloud providers (net.hosting)
	ListResidential = "residential" // ASNs of Japanese residential and mobile carriers (net.residential)
)

// ListEntry is one entry of a named list.
type ListEntry struct {
	Kind  ListKind `json:"kind"`
	Value string   `json:"value"`
}

// Lists holds the engine's run-time editable lists. Reads never block:
// every edit publishes a new immutable snapshot. Lists is safe for
// concurrent use.
type Lists struct {
	mu   sync.Mutex // serialises edits
	snap atomic.Pointer[listSnap]
}

type listSnap struct {
	byName                              map[string]*list
	block, allow, watch, hosting, resid *list
}

type list struct {
	ips      map[netip.Addr]struct{}
	prefixes []netip.Prefix
	asns     map[int64]struct{}
	devices  map[string]struct{}
	instr    map[string]struct{}
}

// NewLists returns lists with "hosting" and "residential" preloaded from
// netinfo.HostingASNs and netinfo.CarrierASNs, and empty "block", "allow"
// and "watch".
func NewLists() *Lists {
	l := &Lists{}
	s := &listSnap{byName: map[string]*list{}}
	for _, n := range []string{ListBlock, ListAllow, ListWatch} {
		s.byName[n] = &list{}
	}
	h, r := &list{asns: map[int64]struct{}{}}, &list{asns: map[int64]struct{}{}}
	for _, a := range netinfo.HostingASNs {
		h.asns[a] = struct{}{}
	}
	for _, a := range netinfo.CarrierASNs {
		r.asns[a] = struct{}{}
	}
	s.byName[ListHosting], s.byName[ListResidential] = h, r
	l.publish(s)
	return l
}

func (l *Lists) publish(s *listSnap) {
	s.block, s.allow, s.watch = s.byName[ListBlock], s.byName[ListAllow], s.byName[ListWatch]
	s.hosting, s.resid = s.byName[ListHosting], s.byName[ListResidential]
	l.snap.Store(s)
}

func (l *Lists) load() *listSnap { return l.snap.Load() }

func (x *list) clone() *list {
	if x == nil {
		return &list{}
	}
	return &list{ips: maps.Clone(x.ips), prefixes: slices.Clone(x.prefixes), asns: maps.Clone(x.asns),
		devices: maps.Clone(x.devices), instr: maps.Clone(x.instr)}
}

// normalize parses value for kind and returns its canonical spelling.
func normalize(kind ListKind, value string) (string, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return "", fmt.Errorf("empty %s entry", kind)
	}
	switch kind {
	case ListIP:
		if strings.Contains(value, "/") {
			p, err := netip.ParsePrefix(value)
			if err != nil {
				return "", fmt.Errorf("bad CIDR prefix %q", value)
			}
			return p.Masked().String(), nil
		}
		a, err := netip.ParseAddr(value)
		if err != nil {
			return "", fmt.Errorf("bad IP address %q", value)
		}
		return a.Unmap().String(), nil
	case ListASN:
		n, err := strconv.ParseInt(strings.TrimPrefix(strings.ToUpper(value), "AS"), 10, 64)
		if err != nil || n < 0 || n > 1<<32-1 {
			return "", fmt.Errorf("bad ASN %q", value)
		}
		return strconv.FormatInt(n, 10), nil
	case ListDevice, ListInstrument:
		return value, nil
	}
	return "", fmt.Errorf("unknown list kind %q (want ip, asn, device or instrument)", kind)
}

// edit applies one change to a copy of list name and publishes it.
func (l *Lists) edit(name string, kind ListKind, value string, add bool) (bool, error) {
	if name == "" {
		return false, fmt.Errorf("empty list name")
	}
	v, err := normalize(kind, value)
	if err != nil {
		return false, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.load()
	x := old.byName[name].clone()
	changed := false
	switch kind {
	case ListIP:
		if strings.Contains(v, "/") {
			p := netip.MustParsePrefix(v)
			i := slices.Index(x.prefixes, p)
			switch {
			case add && i < 0:
				x.prefixes = append(x.prefixes, p)
				changed = true
			case !add && i >= 0:
				x.prefixes = slices.Delete(x.prefixes, i, i+1)
				changed = true
			}
		} else {
			changed = setEdit(&x.ips, netip.MustParseAddr(v), add)
		}
	case ListASN:
		n, _ := strconv.ParseInt(v, 10, 64)
		changed = setEdit(&x.asns, n, add)
	case ListDevice:
		changed = setEdit(&x.devices, v, add)
	case ListInstrument:
		changed = setEdit(&x.instr, v, add)
	}
	if changed {
		s := &listSnap{byName: maps.Clone(old.byName)}
		s.byName[name] = x
		l.publish(s)
	}
	return changed, nil
}

func setEdit[K comparable](m *map[K]struct{}, k K, add bool) bool {
	_, had := (*m)[k]
	if add {
		if *m == nil {
			*m = map[K]struct{}{}
		}
		(*m)[k] = struct{}{}
		return !had
	}
	delete(*m, k)
	return had
}

// Add adds value (of kind) to the named list, creating the list if needed.
// It reports whether the list changed.
func (l *Lists) Add(name string, kind ListKind, value string) (bool, error) {
	return l.edit(name, kind, value, true)
}

// Remove removes value (of kind) from the named list and reports whether it was there.
func (l *Lists) Remove(name string, kind ListKind, value string) (bool, error) {
	return l.edit(name, kind, value, false)
}

// Contains reports whether the named list matches value: for ListIP, an
// address matches its own entry or any prefix that contains it.
func (l *Lists) Contains(name string, kind ListKind, value string) bool {
	x := l.load().byName[name]
	switch kind {
	case ListIP:
		a, err := netip.ParseAddr(strings.TrimSpace(value))
		return err == nil && x.hasIP(a.Unmap())
	case ListASN:
		n, err := strconv.ParseInt(strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(value)), "AS"), 10, 64)
		return err == nil && x.hasASN(n)
	case ListDevice:
		return x.hasDevice(value)
	case ListInstrument:
		return x.hasInstrument(value)
	}
	return false
}

// Names returns the names of all lists, sorted.
func (l *Lists) Names() []string {
	return slices.Sorted(maps.Keys(l.load().byName))
}

// Entries returns the entries of the named list, sorted by kind and value.
func (l *Lists) Entries(name string) []ListEntry {
	x := l.load().byName[name]
	if x == nil {
		return nil
	}
	var out []ListEntry
	for a := range x.ips {
		out = append(out, ListEntry{ListIP, a.String()})
	}
	for _, p := range x.prefixes {
		out = append(out, ListEntry{ListIP, p.String()})
	}
	for n := range x.asns {
		out = append(out, ListEntry{ListASN, strconv.FormatInt(n, 10)})
	}
	for d := range x.devices {
		out = append(out, ListEntry{ListDevice, d})
	}
	for s := range x.instr {
		out = append(out, ListEntry{ListInstrument, s})
	}
	slices.SortFunc(out, func(a, b ListEntry) int {
		if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	return out
}

func (x *list) hasIP(a netip.Addr) bool {
	if x == nil || !a.IsValid() {
		return false
	}
	if _, ok := x.ips[a]; ok {
		return true
	}
	for _, p := range x.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (x *list) hasASN(n int64) bool {
	if x == nil || n == 0 {
		return false
	}
	_, ok := x.asns[n]
	return ok
}

func (x *list) hasDevice(d string) bool {
	if x == nil || d == "" {
		return false
	}
	_, ok := x.devices[d]
	return ok
}

func (x *list) hasInstrument(s string) bool {
	if x == nil || s == "" {
		return false
	}
	_, ok := x.instr[s]
	return ok
}
