package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
	"github.com/kabuto-sec/kabuto/internal/surveil"
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
			if _, err := ls.Add(ctx, bad[0], bad[1], bad[2], "", "t", now); reason.As(err) == nil || reason.As(err).HTTPStatus() != 400 {
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

// TestWarm checks that a restarted engine, warmed from the stored records
// and decisions, knows a customer's device as the first engine did.
func TestWarm(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := NewLog(db, nil)
		eng := risk.NewEngine(nil)
		p := NewPipeline(eng, surveil.New(surveil.DefaultConfig()), l)
		t0 := time.Date(2025, 4, 1, 9, 0, 0, 0, jst)
		snap := &event.Record{ID: "a", Type: event.TypeAccount, Time: t0, Account: "A1", Opened: "2019-04-01", CashJPY: 100000, Factors: []string{"password", "email_otp"}, BankHash: "b"}
		if _, err := db.ExecContext(ctx, `INSERT INTO events (id, time_us, type, account, body) VALUES ('a', $1, 'account', 'A1', $2)`, store.Micros(t0), string(snap.AppendJSON(nil))); err != nil {
			t.Fatal(err)
		}
		p.Observe(ctx, snap)
		login := func(id string, at time.Time) *event.Record {
			return &event.Record{ID: id, Type: event.TypeLogin, Time: at, Account: "A1", Session: id, IP: "192.0.2.70", ASN: 2516, Country: "JP",
				Device: "laptop", UA: "Mozilla/5.0", Channel: "web", Method: "password", Factors: []string{"password", "email_otp"}, OK: true}
		}
		for i := range 5 {
			if _, err := p.Decide(ctx, login(fmt.Sprint("l", i), t0.Add(time.Duration(i)*24*time.Hour))); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		later := login("l9", t0.Add(10*24*time.Hour))
		res := eng.Decide(later)
		before, known := res.Decision, res.Features["account.known_device"]
		cold := risk.NewEngine(nil)
		if c := cold.Decide(later); c.Features["account.known_device"] == known {
			t.Fatalf("a cold engine knows the device as a warm one does (%v); the test shows nothing", known)
		}
		warm := risk.NewEngine(nil)
		n, err := Warm(ctx, db, warm, t0.Add(-time.Hour))
		if err != nil || n != 6 {
			t.Fatalf("warm: %d %v", n, err)
		}
		if w := warm.Decide(later); !slices.Equal(w.Decision.Reasons, before.Reasons) || w.Decision.Action != before.Action || w.Features["account.known_device"] != known {
			d := w.Decision
			t.Errorf("warmed engine decides %s %v (known device %v), the original %s %v", d.Action, d.Reasons, w.Features["account.known_device"], before.Action, before.Reasons)
		}
	})
}

func TestAppendFeaturesMatchesJSON(t *testing.T) {
	m := map[string]any{"b": true, "i": int64(-42), "f": 0.1, "g": 1e-9, "h": 3e21, "s": "a\"<b>\n日本", "n": 7, "z": 12.5, "zero": 0.0, "neg": -1.5e-7}
	want, _ := json.Marshal(m)
	if got := AppendFeatures(nil, m); string(got) != string(want) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// The engine's own keys, all of them and a few, take the path that
	// needs no sorting; with a key it does not know, the sorting one.
	all := map[string]any{surveilHeldProceeds: int64(5)}
	for i, v := range risk.Variables() {
		all[v.Name] = []any{true, int64(i), float64(i) / 3, "s" + v.Name}[i%4]
	}
	few := map[string]any{}
	for k, v := range all {
		if len(few) < 7 {
			few[k] = v
		}
	}
	mixed := maps.Clone(few)
	mixed["zz.not_a_variable"] = 1.5
	for _, m := range []map[string]any{all, few, mixed, {}, nil} {
		want, _ := json.Marshal(m)
		if got := AppendFeatures(nil, m); string(got) != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}
