package identity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// TestThrottleBackoff: free attempts, then waits that double up to the
// cap, forgotten after a quiet window; refused attempts do not count; the
// state is in the database, so a second Throttle (another process) sees
// it. On SQLite and PostgreSQL.
func TestThrottleBackoff(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := clock.NewFake(time.Unix(1_700_000_000, 0))
		a, b := NewThrottle(db, c.Now), NewThrottle(db, c.Now)
		l := Limit{Free: 3, Window: time.Hour, Backoff: time.Minute, MaxBackoff: 8 * time.Minute}
		for i := range 3 {
			if err := a.Take(ctx, "k", l); err != nil {
				t.Fatalf("free attempt %d: %v", i+1, err)
			}
		}
		var th *Throttled
		if err := b.Take(ctx, "k", l); !errors.As(err, &th) || th.Wait != time.Minute {
			t.Fatalf("fourth attempt at once (other process): %v, want a wait of 1m", err)
		}
		if err := a.Take(ctx, "other", l); err != nil {
			t.Fatalf("another key: %v", err)
		}
		// Waits double: 1, 2, 4, 8, 8 minutes.
		for _, want := range []time.Duration{2, 4, 8, 8} {
			c.Advance(th.Wait)
			if err := b.Take(ctx, "k", l); err != nil {
				t.Fatalf("attempt after the wait: %v", err)
			}
			for range 10 { // refused attempts do not lengthen the wait
				if err := a.Take(ctx, "k", l); !errors.As(err, &th) {
					t.Fatalf("attempt during the wait: %v", err)
				}
			}
			if th.Wait != want*time.Minute {
				t.Fatalf("wait %v, want %v", th.Wait, want*time.Minute)
			}
		}
		if err := a.Check(ctx, "k", l); !errors.Is(err, ErrThrottled) {
			t.Fatalf("Check during a wait: %v", err)
		}
		c.Advance(time.Hour) // not yet a quiet hour after the last wait
		if err := a.Take(ctx, "k", l); err != nil {
			t.Fatalf("after the wait: %v", err)
		}
		if err := a.Take(ctx, "k", l); !errors.As(err, &th) || th.Wait != 8*time.Minute {
			t.Fatalf("the count was forgotten before a quiet window: %v", err)
		}
		c.Advance(8*time.Minute + time.Hour)
		for i := range 3 {
			if err := a.Take(ctx, "k", l); err != nil {
				t.Fatalf("after a quiet window, attempt %d: %v", i+1, err)
			}
		}
		if err := a.Reset(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if err := a.Take(ctx, "k", l); err != nil {
			t.Fatalf("after Reset: %v", err)
		}
		if err := a.Take(ctx, "k", Limit{Free: -1}); err != nil {
			t.Fatalf("no limit: %v", err)
		}
	})
}

// TestThrottleExactUnderConcurrency: 200 concurrent attempts at a limit of
// 10 free ones from four Throttles (four processes) let exactly 10 through.
func TestThrottleExactUnderConcurrency(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := clock.NewFake(time.Unix(1_700_000_000, 0))
		var ths [4]*Throttle
		for i := range ths {
			ths[i] = NewThrottle(db, c.Now)
		}
		l := Limit{Free: 10, Window: time.Hour, Backoff: time.Hour, MaxBackoff: time.Hour}
		var ok, other atomic.Int64
		var wg sync.WaitGroup
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch err := ths[i%4].Take(ctx, "flood", l); {
				case err == nil:
					ok.Add(1)
				case !errors.Is(err, ErrThrottled):
					other.Add(1)
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if ok.Load() != 10 {
			t.Fatalf("%d attempts went through, want exactly 10", ok.Load())
		}
	})
}

// TestCodeLimitsAcrossProcesses: two services on one database (two
// processes) share the code limits: wrong codes for one account through
// either count once, a step-up ceremony is consumed after its third
// wrong code whichever process checks it, and then even the right code
// is refused. On SQLite and PostgreSQL.
func TestCodeLimitsAcrossProcesses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := clock.NewFake(time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST))
		s1, s2 := newService(t, db, c, nil), newService(t, db, c, nil)
		addAccount(t, s1, db, "C0000001", "right-password-9")
		secret, _, _ := s1.NewTOTP("C0000001")
		if err := s1.ConfirmTOTP(ctx, "C0000001", secret, s1.TOTPCodeAt(secret, c.Now().Add(-30*time.Second))); err != nil {
			t.Fatal(err)
		}
		try := Try{Session: "S1", Client: home}
		id, err := s1.BeginCodeStepUp(ctx, "C0000001", "S1", "binding", nil, "totp", "", home)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range []*Service{s1, s2, s1} {
			if _, _, _, err := s.FinishCodeStepUpBy(ctx, "C0000001", id, "000000", try); err == nil {
				t.Fatalf("wrong code %d accepted", i+1)
			}
		}
		if _, _, _, err := s2.FinishCodeStepUpBy(ctx, "C0000001", id, s2.TOTPCode(secret), try); err == nil {
			t.Fatal("the right code opened a ceremony that took three wrong ones")
		}
		// Two more wrong codes in new ceremonies use up the session's five
		// free tries; the sixth attempt waits, right code or not.
		for i := range 2 {
			id, _ := s2.BeginCodeStepUp(ctx, "C0000001", "S1", "binding", nil, "totp", "", home)
			if _, _, _, err := s1.FinishCodeStepUpBy(ctx, "C0000001", id, "000000", try); err == nil || err == errTooMany {
				t.Fatalf("wrong code %d in a new ceremony: %v", i+4, err)
			}
		}
		id, _ = s1.BeginCodeStepUp(ctx, "C0000001", "S1", "binding", nil, "totp", "", home)
		if _, _, _, err := s2.FinishCodeStepUpBy(ctx, "C0000001", id, s2.TOTPCode(secret), try); err != errTooMany {
			t.Fatalf("the right code during the session's back-off: %v, want too many attempts", err)
		}
		c.Advance(time.Minute)
		if _, _, _, err := s2.FinishCodeStepUpBy(ctx, "C0000001", id, s2.TOTPCode(secret), try); err != nil {
			t.Fatalf("the right code after the back-off: %v", err)
		}
		if _, _, _, err := s1.FinishCodeStepUpBy(ctx, "C0000001", id, s1.TOTPCode(secret), try); err == nil {
			t.Fatal("a ceremony approved twice")
		}
	})
}

// TestThrottleFixed: a fixed limit lets Free attempts through per window
// from its first attempt, and a key busy all the time (a carrier's
// network) is never held past the end of its window.
func TestThrottleFixed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		c := clock.NewFake(time.Unix(1_700_000_000, 0))
		th := NewThrottle(db, c.Now)
		l := Limit{Free: 3, Window: time.Minute, Fixed: true}
		for w := range 5 {
			ok := 0
			for range 12 {
				if th.Take(ctx, "net", l) == nil {
					ok++
				}
				c.Advance(5 * time.Second)
			}
			if ok != 3 {
				t.Fatalf("window %d: %d attempts through, want 3", w, ok)
			}
		}
	})
}

// TestPasswordThrottle: wrong passwords from one address are limited
// before any hashing; right ones cost the limit nothing.
func TestPasswordThrottle(t *testing.T) {
	db := storetest.SQLite(t)
	c := clock.NewFake(time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST))
	s := newService(t, db, c, func(cfg *Config) { cfg.PerIP, cfg.LockThreshold = 3, 100 })
	addAccount(t, s, db, "C0000001", "right-password-9")
	ctx := context.Background()
	for range 10 {
		if err := s.CheckPassword(ctx, "C0000001", "right-password-9", home); err != nil {
			t.Fatalf("right password: %v", err)
		}
	}
	for i := range 3 {
		if err := s.CheckPassword(ctx, "C0000001", fmt.Sprint("guess-", i), home); err != errWrong {
			t.Fatalf("wrong password %d: %v", i+1, err)
		}
	}
	if err := s.CheckPassword(ctx, "C0000001", "right-password-9", home); err != errThrottle {
		t.Fatalf("after three wrong passwords from one address: %v, want throttled", err)
	}
	c.Advance(5 * time.Minute)
	if err := s.CheckPassword(ctx, "C0000001", "right-password-9", home); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}
