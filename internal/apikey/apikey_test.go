package apikey

import (
	"context"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

func TestCreateCheckRevoke(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := New(db)
		now := time.Unix(1700000000, 0)
		secret, k, err := s.Create(ctx, "core", []string{ScopeBroker, ScopeEvents}, now)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Check(ctx, secret)
		if err != nil || got.ID != k.ID || !got.Has(ScopeEvents) || got.Has(ScopeAdmin) {
			t.Fatalf("check: %+v %v", got, err)
		}
		for _, bad := range []string{"", "kb_x", secret + "x", "Bearer " + secret} {
			if _, err := s.Check(ctx, bad); err != ErrInvalid {
				t.Errorf("Check(%q) = %v", bad, err)
			}
		}
		if err := s.Revoke(ctx, k.ID, now); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Check(ctx, secret); err != ErrInvalid {
			t.Errorf("revoked key accepted: %v", err)
		}
	})
}

// TestList lists keys with when each was last used and revoked, so an
// operator has the ids --revoke takes; an unknown id is an error, not a
// silent success.
func TestList(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := New(db)
		now := time.Unix(1700000000, 0)
		used, ku, err := s.Create(ctx, "core", []string{ScopeBroker}, now)
		if err != nil {
			t.Fatal(err)
		}
		_, kr, err := s.Create(ctx, "old", []string{ScopeEvents, ScopeAdmin}, now.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Check(ctx, used); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, kr.ID, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, "key_nope", now); err != ErrUnknown {
			t.Errorf("Revoke(unknown) = %v, want ErrUnknown", err)
		}
		keys, err := s.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 || keys[0].ID != ku.ID || keys[1].ID != kr.ID {
			t.Fatalf("List = %+v", keys)
		}
		if keys[0].LastUsed.IsZero() || !keys[0].Revoked.IsZero() || keys[0].Name != "core" || len(keys[0].Scopes) != 1 {
			t.Errorf("used key: %+v", keys[0])
		}
		if !keys[1].LastUsed.IsZero() || !keys[1].Revoked.Equal(now.Add(time.Minute)) || len(keys[1].Scopes) != 2 {
			t.Errorf("revoked key: %+v", keys[1])
		}
	})
}

// TestRevokeNamed revokes every live key of a name, and only those: a
// disabled analyst's keys stop working at once, a colleague's do not.
func TestRevokeNamed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := New(db)
		now := time.Unix(1700000000, 0)
		var gone []string
		for range 2 {
			secret, _, err := s.Create(ctx, "analyst:sato", []string{ScopeAdmin}, now)
			if err != nil {
				t.Fatal(err)
			}
			gone = append(gone, secret)
		}
		kept, _, err := s.Create(ctx, "analyst:suzuki", []string{ScopeAdmin}, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range append(gone, kept) {
			if _, err := s.Check(ctx, secret); err != nil { // cached now
				t.Fatal(err)
			}
		}
		if n, err := s.RevokeNamed(ctx, "analyst:sato", now); n != 2 || err != nil {
			t.Fatalf("RevokeNamed = %d, %v; want 2", n, err)
		}
		for _, secret := range gone {
			if _, err := s.Check(ctx, secret); err != ErrInvalid {
				t.Errorf("a revoked key still works: %v", err)
			}
		}
		if _, err := s.Check(ctx, kept); err != nil {
			t.Errorf("another name's key revoked: %v", err)
		}
		if n, err := s.RevokeNamed(ctx, "analyst:sato", now); n != 0 || err != nil {
			t.Errorf("again: %d, %v; want 0", n, err)
		}
	})
}
