package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

func TestListsPersistAndApply(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2025, 4, 8, 9, 0, 0, 0, jst)
		eng := risk.NewEngine(nil)
		ls := NewLists(db, eng)
		login := &event.Record{ID: "l1", Type: event.TypeLogin, Time: now, Account: "A1", Session: "s1", IP: "198.51.100.9", ASN: 16509,
			Country: "US", Device: "d", UA: "x", Channel: "web", Method: "password", Factors: []string{"password", "email_otp"}, OK: true}
		if d := eng.Decide(login).Decision; d.Action == event.Deny {
			t.Fatalf("denied before the list: %+v", d)
		}
		added, err := ls.Add(ctx, "block", "ip", "198.51.100.0/24", "phishing kit relay", "analyst:yamada", now)
		if err != nil || !added {
			t.Fatalf("add: %v %v", added, err)
		}
		if again, _ := ls.Add(ctx, "block", "ip", "198.51.100.0/24", "", "analyst:yamada", now); again {
			t.Error("the same entry added twice")
		}
		login.ID = "l2"
		if d := eng.Decide(login).Decision; d.Action != event.Deny {
			t.Errorf("blocked network not denied: %+v", d)
		}
		for _, bad := range [][3]string{{"Block!", "ip", "1.2.3.4"}, {"block", "ip", "not-an-ip"}, {"block", "colour", "red"}, {"block", "asn", "-5"}} {
			if _, err := ls.Add(ctx, bad[0], bad[1], bad[2], "", "t", now); reason.As(err) == nil || reason.As(err).Status != 400 {
				t.Errorf("Add(%v) = %v, want a 400", bad, err)
			}
		}
		// A fresh engine (a restart) gets the stored lists back.
		eng2 := risk.NewEngine(nil)
		if n, err := NewLists(db, eng2).Load(ctx); err != nil || n != 1 {
			t.Fatalf("load: %d %v", n, err)
		}
		login.ID = "l3"
		if d := eng2.Decide(login).Decision; d.Action != event.Deny {
			t.Errorf("after restart: %+v", d)
		}
		if removed, err := ls.Remove(ctx, "block", "ip", "198.51.100.0/24", "analyst:yamada", now); err != nil || !removed {
			t.Fatalf("remove: %v %v", removed, err)
		}
		es, _ := ls.Entries(ctx, "")
		if len(es) != 0 {
			t.Errorf("entries after remove: %v", es)
		}
		trail, _ := audit.New(db).List(ctx, "", 10)
		if len(trail) != 2 || trail[0].Action != "list_remove" || trail[1].Action != "list_add" {
			t.Errorf("audit: %+v", trail)
		}
	})
}
