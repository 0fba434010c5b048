package netinfo

import (
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	tb := Builtin()
	tests := []struct {
		ip      string
		asn     int64
		country string
		ok      bool
	}{
		{"127.0.0.1", 0, "JP", true}, {"192.0.2.70", 2516, "JP", true}, {"198.51.100.3", 16509, "US", true},
		{"203.0.113.200", 2527, "JP", true}, {"203.0.113.5", 45102, "HK", true}, {"::1", 0, "JP", true},
		{"2001:db8:8000::5", 2516, "JP", true},
		{"100.64.0.1", 4713, "JP", true}, {"100.95.255.254", 2516, "JP", true}, {"100.127.1.1", 9605, "JP", true}, {"100.128.0.1", 0, "", false}, {"8.8.8.8", 0, "", false}, {"not-an-ip", 0, "", false},
	}
	for _, tt := range tests {
		got, ok := tb.Lookup(tt.ip)
		if ok != tt.ok || got.ASN != tt.asn || got.Country != tt.country {
			t.Errorf("Lookup(%s) = %+v %v", tt.ip, got, ok)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]string{
		"1.2.3.0/24,5":         "line 1: want 3 fields",
		"# c\n1.2.3/24,5,JP":   "line 2: field cidr",
		"1.2.3.0/24,x,JP":      "line 1: field asn",
		"1.2.3.0/24,5,Japan":   "line 1: field country",
		"1.2.3.0/24,-1,JP":     "line 1: field asn",
		"1.2.3.0/24,5,JP\n,,,": "line 2: want 3 fields",
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want %q", in, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(builtin)
	f.Add("1.2.3.0/24,5,JP\n::/0,1,")
	f.Fuzz(func(t *testing.T, s string) {
		tb, err := Parse(strings.NewReader(s))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "line ") && !strings.Contains(err.Error(), "token too long") {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		tb.Lookup("1.2.3.4")
		tb.Lookup("::1")
	})
}
