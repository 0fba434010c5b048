package netinfo

import (
	"slices"
	"testing"
)

// TestBuiltinASNLists keeps the two built-in network lists sane: no
// duplicates, no network on both, and the entries the guard and the
// watchtower once disagreed on settled.
func TestBuiltinASNLists(t *testing.T) {
	seen := map[int64]string{}
	for name, l := range map[string][]int64{"hosting": HostingASNs, "carrier": CarrierASNs} {
		for _, a := range l {
			if a <= 0 {
				t.Errorf("%s list holds AS%d", name, a)
			}
			if prev, ok := seen[a]; ok {
				t.Errorf("AS%d is on the %s list and on the %s list", a, name, prev)
			}
			seen[a] = name
		}
	}
	for _, tt := range []struct {
		asn     int64
		list    []int64
		name    string
		present bool
	}{
		{36352, HostingASNs, "hosting", true},  // ColoCrossing: was only the guard's
		{13335, HostingASNs, "hosting", true},  // Cloudflare WARP: was only the watchtower's
		{9370, HostingASNs, "hosting", true},   // Sakura Internet: was only the watchtower's
		{16509, HostingASNs, "hosting", true},  // Amazon: on both
		{4788, CarrierASNs, "carrier", false},  // TM Net, Malaysia: not a Japanese carrier
		{138384, CarrierASNs, "carrier", true}, // Rakuten Mobile: was only the watchtower's
		{2516, CarrierASNs, "carrier", true},   // KDDI: on both
		{2516, HostingASNs, "hosting", false},  // a carrier is not hosting
		{16509, CarrierASNs, "carrier", false}, // nor hosting a carrier
	} {
		if got := slices.Contains(tt.list, tt.asn); got != tt.present {
			t.Errorf("AS%d on the %s list = %v, want %v", tt.asn, tt.name, got, tt.present)
		}
	}
}
