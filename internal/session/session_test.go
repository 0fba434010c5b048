package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

func TestJump(t *testing.T) {
	home := Client{IP: "192.0.2.10", Network: NetworkOf("192.0.2.10"), ASN: 4713, Country: "JP", UA: "Chrome/140"}
	for _, tc := range []struct {
		name string
		c    Client
		want string
	}{
		{"same", home, ""},
		{"same network, new address", Client{IP: "192.0.2.11", Network: NetworkOf("192.0.2.11"), ASN: 4713, Country: "JP", UA: "Chrome/140"}, ""},
		{"infostealer", Client{IP: "198.51.100.7", Network: NetworkOf("198.51.100.7"), ASN: 16509, Country: "US", UA: "Chrome/120"}, "network,asn,country,user_agent"},
		{"new browser", Client{IP: "192.0.2.10", Network: home.Network, ASN: 4713, Country: "JP", UA: "Firefox/130"}, "user_agent"},
	} {
		if got := Jump(home, tc.c); got != tc.want {
			t.Errorf("%s: Jump = %q, want %q", tc.name, got, tc.want)
		}
	}
	if NetworkOf("2001:db8:1:2::5") != "2001:db8:1::/48" {
		t.Errorf("NetworkOf(v6) = %s", NetworkOf("2001:db8:1:2::5"))
	}
}

func TestLifecycle(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST)
		st := New(Config{DB: db, Now: func() time.Time { return now }})
		c := Client{IP: "192.0.2.10", Network: "192.0.2.0/24", ASN: 4713, Country: "JP", UA: "Chrome/140", Device: "d1"}
		s, err := st.Create(ctx, "", "C1", StrengthPhishingResistant, []string{"passkey"}, c)
		if err != nil {
			t.Fatal(err)
		}
		old := s.Token
		if err := st.Prove(ctx, s, "passkey", StrengthPhishingResistant, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Lookup(ctx, old, c); !errors.Is(err, ErrNone) {
			t.Fatal("the token from before the step-up still works")
		}
		now = now.Add(29 * time.Minute)
		got, err := st.Lookup(ctx, s.Token, Client{IP: "198.51.100.7", Network: "198.51.100.0/24", ASN: 16509, Country: "US", UA: "x", Device: "d1"})
		if err != nil || got.Jump == "" {
			t.Fatalf("lookup from elsewhere: %+v, %v", got, err)
		}
		now = now.Add(31 * time.Minute)
		if _, err := st.Lookup(ctx, s.Token, c); !errors.Is(err, ErrExpired) {
			t.Fatalf("after 31 idle minutes: %v, want ErrExpired", err)
		}
		s2, _ := st.Create(ctx, "", "C1", StrengthMFA, nil, c)
		for range 25 {
			now = now.Add(29 * time.Minute)
			if _, err := st.Lookup(ctx, s2.Token, c); err != nil {
				if now.Sub(s2.Created) <= 12*time.Hour || !errors.Is(err, ErrExpired) {
					t.Fatalf("at %v: %v", now.Sub(s2.Created), err)
				}
				return
			}
		}
		t.Fatal("session outlived the absolute timeout")
	})
}
