package population

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/netinfo"
)

func TestGenerate(t *testing.T) {
	u := market.Universe(1, 100)
	now := time.Date(2025, 4, 1, 9, 0, 0, 0, time.UTC)
	a := Generate(7, 2000, u, Enrolment202504, now)
	b := Generate(7, 2000, u, Enrolment202504, now)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("not deterministic")
	}
	nets := netinfo.Builtin()
	passkeys, nisa := 0, 0
	homes := map[string]bool{}
	habits := map[Habit]int{}
	for _, c := range a {
		habits[c.Habit]++
		if homes[c.HomeIP] {
			t.Fatalf("%s shares home address %s", c.ID, c.HomeIP)
		}
		homes[c.HomeIP] = true
		info, ok := nets.Lookup(c.HomeIP)
		if !ok || info.Country != "JP" || info.ASN != c.HomeASN {
			t.Fatalf("%s home %s: %+v", c.ID, c.HomeIP, info)
		}
		for _, f := range c.Factors {
			if f == "passkey" {
				passkeys++
			}
		}
		for _, h := range c.Holdings {
			if h.Kind == "nisa" {
				nisa++
				break
			}
		}
	}
	if passkeys < 20 || passkeys > 120 {
		t.Errorf("%d of 2000 with passkeys under the 2025-04 mix", passkeys)
	}
	if nisa < 1000 {
		t.Errorf("only %d NISA holders", nisa)
	}
	if habits[DayTrader] < 60 || habits[Traveller] < 80 {
		t.Errorf("habits %v", habits)
	}
}

// TestNamesInTheCustomersScript holds that a Japanese-speaking customer's
// name is in kanji or kana and an English speaker's in romaji.
func TestNamesInTheCustomersScript(t *testing.T) {
	ins := market.Universe(1, 40)
	for _, c := range Generate(1, 500, ins, Enrolment202504, time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)) {
		latin := strings.Trim(c.Name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz ") == ""
		if (c.Locale == "en") != latin {
			t.Fatalf("%s (%s) is named %q", c.ID, c.Locale, c.Name)
		}
	}
}
