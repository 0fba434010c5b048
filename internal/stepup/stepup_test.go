package stepup

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// TestChallengeSpentOnce: a challenge is spent once, by its own caller for
// its own account and session, before its deadline; anything else spends
// it too and opens nothing. Sixteen spenders racing on separate
// connections: exactly one wins.
func TestChallengeSpentOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC)
		s := New(db, func() time.Time { return now })
		f := For{Principal: "apikey:k1", Account: "C1", Session: "s1", Binding: "b1"}
		c, err := s.Issue(ctx, f, "phishing_resistant")
		if err != nil {
			t.Fatal(err)
		}
		if !Valid(c.Value) || !c.Expires.Equal(now.Add(TTL)) {
			t.Fatalf("challenge %+v", c)
		}
		if b, err := s.Spend(ctx, c.Value, f); err != nil || b != "b1" {
			t.Fatalf("first spend: %q %v", b, err)
		}
		if _, err := s.Spend(ctx, c.Value, f); !errors.Is(err, ErrInvalid) {
			t.Fatalf("second spend: %v", err)
		}
		for name, other := range map[string]For{
			"another key":     {Principal: "apikey:k2", Account: "C1", Session: "s1"},
			"another account": {Principal: "apikey:k1", Account: "C2", Session: "s1"},
			"another session": {Principal: "apikey:k1", Account: "C1", Session: "s2"},
		} {
			c, _ := s.Issue(ctx, f, "mfa")
			if _, err := s.Spend(ctx, c.Value, other); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: %v", name, err)
			}
			if _, err := s.Spend(ctx, c.Value, f); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: the challenge was not spent by the wrong caller: %v", name, err)
			}
		}
		c, _ = s.Issue(ctx, f, "mfa")
		now = now.Add(TTL)
		if _, err := s.Spend(ctx, c.Value, f); !errors.Is(err, ErrInvalid) {
			t.Errorf("expired challenge: %v", err)
		}
		for _, v := range []string{"", "suc_", "suc_short", c.Value + "x", "phishing_resistant"} {
			if _, err := s.Spend(ctx, v, f); !errors.Is(err, ErrInvalid) {
				t.Errorf("%q: %v", v, err)
			}
		}
		c, _ = s.Issue(ctx, f, "mfa")
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.Spend(ctx, c.Value, f); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, ErrInvalid) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d spenders won", wins.Load())
		}
		// Old rows are dropped an hour after their deadline.
		now = now.Add(2 * time.Hour)
		if _, err := s.Issue(ctx, f, "mfa"); err != nil {
			t.Fatal(err)
		}
		var n int
		db.QueryRowContext(ctx, `SELECT COUNT(*) FROM step_up_challenges`).Scan(&n)
		if n != 1 {
			t.Errorf("%d challenges kept", n)
		}
	})
}

// FuzzValid: Valid never panics and accepts only the prefix and 32 bytes
// of base64url.
func FuzzValid(f *testing.F) {
	for _, s := range []string{"", Prefix, Prefix + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "phishing_resistant:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Valid(s) && len(s) != len(Prefix)+43 {
			t.Fatalf("%q accepted", s)
		}
	})
}
