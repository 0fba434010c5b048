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
