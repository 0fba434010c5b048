package market

import (
	"strings"
	"testing"
)

func TestNameIn(t *testing.T) {
	for _, tc := range []struct {
		in       Instrument
		lang, is string
	}{
		{Instrument{Symbol: "7203", Name: "Toyota Motor"}, "ja", "トヨタ自動車"},
		{Instrument{Symbol: "7203", Name: "Toyota Motor"}, "en", "Toyota Motor"},
		{Instrument{Symbol: "1234", Name: "Hoshino Kogyo (sim)"}, "ja", "星野工業（模擬）"},
		{Instrument{Symbol: "1234", Name: "Minamizaki Holdings (sim)"}, "ja", "南崎ホールディングス（模擬）"},
		{Instrument{Symbol: "1234", Name: "Hoshino Kogyo (sim)"}, "en", "Hoshino Kogyo (sim)"},
		{Instrument{Symbol: "1234", Name: "Unknown Kogyo (sim)"}, "ja", "Unknown Kogyo (sim)"},
		{Instrument{Symbol: "1234", Name: "Brokerage's own name"}, "ja", "Brokerage's own name"},
	} {
		if got := tc.in.NameIn(tc.lang); got != tc.is {
			t.Errorf("%q in %s: %q, want %q", tc.in.Name, tc.lang, got, tc.is)
		}
	}
}

// TestEveryUniverseNameInJapanese holds that every issue of the reference
// universe has a Japanese name: no romaji on a Japanese page.
func TestEveryUniverseNameInJapanese(t *testing.T) {
	for _, in := range Universe(1, 400) {
		ja := in.NameIn("ja")
		if ja == in.Name || strings.ContainsAny(ja, "abcdefghijklmnopqrstuvwxyz") {
			t.Errorf("%s %q has no Japanese name (got %q)", in.Symbol, in.Name, ja)
		}
	}
}
