package risk

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// hash64 is a fixed-seed 64-bit string hash: the same string gives the same
// value in every process, so profile state (and the bloom filter of traded
// issues) behaves identically on every replay. It reads eight bytes at a
// time and finishes with a multiply-xorshift avalanche.
func hash64(s string) uint64 {
	const (
		k0 = 0x9e3779b97f4a7c15
		k1 = 0xc2b2ae3d27d4eb4f
		k2 = 0x165667b19e3779f9
	)
	h := uint64(len(s))*k0 ^ k2
	for len(s) >= 8 {
		v := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = bits.RotateLeft64(h^(v*k1), 31) * k0
		s = s[8:]
	}
	var tail uint64
	for i := len(s) - 1; i >= 0; i-- {
		tail = tail<<8 | uint64(s[i])
	}
	h = bits.RotateLeft64(h^(tail*k1), 29) * k2
	return mix64(h)
}

// mix64 is a 64-bit finaliser: every input bit affects every output bit.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 29
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 32
	return h
}

// nonZero maps the (astronomically unlikely) hash 0 to 1, so 0 can mean an
// empty slot in the fixed arrays of the profile.
func nonZero(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// netKey returns a hash of the network ip belongs to (/24 for IPv4, /48 for
// IPv6), the parsed address, and whether ip parsed.
func netKey(ip string) (uint64, netip.Addr, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return 0, netip.Addr{}, false
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return nonZero(mix64(uint64(binary.BigEndian.Uint32(b[:])&0xffffff00) | 4<<56)), a, true
	}
	b := a.As16()
	return nonZero(mix64(binary.BigEndian.Uint64(b[:8])&0xffffffffffff0000 ^ 6)), a, true
}

// country2 packs an ISO 3166-1 alpha-2 code into 16 bits (0 for none).
func country2(c string) uint16 {
	if len(c) != 2 {
		return 0
	}
	return uint16(c[0])<<8 | uint16(c[1])
}
