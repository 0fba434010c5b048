package pipeline

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// featureMaps are feature maps of every shape: all the engine's keys, a
// few, one it does not know (the object path), none, nil.
func featureMaps() map[string]map[string]any {
	all := map[string]any{surveilHeldProceeds: int64(5)}
	for i, v := range risk.Variables() {
		all[v.Name] = []any{true, int64(-i), float64(i) / 3, "s\"<" + v.Name + ">日本", 1e-9, 3e21}[i%6]
	}
	few := map[string]any{}
	for _, k := range slices.Sorted(maps.Keys(all))[:7] {
		few[k] = all[k]
	}
	mixed := maps.Clone(few)
	mixed["zz.not_a_variable"] = 1.5
	return map[string]map[string]any{"all": all, "few": few, "unknown_key": mixed, "empty": {}, "nil": nil}
}

// TestFeatureValuesRoundTrip checks that values stored without their keys
// come back, with the keys of their set, as exactly the object
// AppendFeatures gives.
func TestFeatureValuesRoundTrip(t *testing.T) {
	for name, m := range featureMaps() {
		t.Run(name, func(t *testing.T) {
			want := string(AppendFeatures(nil, m))
			vals, set := appendFeatureValues(nil, m)
			if set == nil {
				if name != "unknown_key" && name != "nil" {
					t.Fatalf("no feature set for the engine's own keys")
				}
				if string(vals) != want {
					t.Fatalf("object path: got %s, want %s", vals, want)
				}
				return
			}
			got, err := featuresObject(set.keys, string(vals))
			if err != nil || got != want {
				t.Fatalf("got  %s (%v)\nwant %s", got, err, want)
			}
			if _, again := appendFeatureValues(nil, m); again != set {
				t.Error("the same keys gave another set")
			}
		})
	}
	if _, err := featuresObject([]string{"a"}, `[1,2]`); err == nil {
		t.Error("two values for one key were put together")
	}
}

func TestAppendHitsMatchesJSON(t *testing.T) {
	for _, hits := range [][]risk.Hit{nil, {}, {{ID: "r1", Reason: "new_device", Weight: 20}, {ID: "x\"<", Reason: "日本", Action: "deny"}, {ID: "z", Reason: "z", Weight: -3}}} {
		want, _ := json.Marshal(hits)
		if got := appendHits(nil, hits); string(got) != string(want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}

// TestLogStoresFeatureSets checks, on both databases, that every shape of
// features reads back as it was decided, by the log that wrote it and
// after a restart: through the writer and through the direct write of
// money movement, from a row of before feature sets (the object, set 0),
// and when another set already holds a set's id in the database (the row
// then keeps the object).
func TestLogStoresFeatureSets(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l := NewLog(db, nil)
		at := time.Date(2025, 4, 8, 9, 0, 0, 0, jst)
		// A clash: the set of the "few" keys finds its id taken.
		_, fewSet := appendFeatureValues(nil, featureMaps()["few"])
		if _, err := db.ExecContext(ctx, `INSERT INTO feature_sets (id, keys) VALUES ($1, '["another"]')`, fewSet.id); err != nil {
			t.Fatal(err)
		}
		// A row of before: the object, set 0.
		if _, err := db.ExecContext(ctx, `INSERT INTO decisions (event, time_us, account, type, action, factor, score, reasons, policy, rules, features, shadow, record)
			VALUES ('old', $1, 'A1', 'order', 'allow', '', 0, '', 'p', 'null', '{"a.b":1}', '', '{}')`, store.Micros(at)); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"old": `{"a.b":1}`}
		for name, m := range featureMaps() {
			for _, typ := range []event.Type{event.TypeOrder, event.TypeWithdrawal} {
				r := &event.Record{ID: name + "-" + string(typ), Type: typ, Time: at, Account: "A1"}
				res := &risk.Result{Decision: event.Decision{Event: r.ID, Time: at, Account: "A1", Action: event.Allow, Policy: "p"}, Features: m}
				if err := l.Decision(ctx, r, res); err != nil {
					t.Fatal(err)
				}
				want[r.ID] = string(AppendFeatures(nil, m))
			}
		}
		if err := l.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		// Read back by this log, and by a new one (a restart: the keys
		// come from the database, with at most one connection free).
		for name, reader := range map[string]*Log{"same": l, "restarted": NewLog(db, nil)} {
			ds, err := reader.Decisions(ctx, "A1", "", 100)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(ds) != len(want) {
				t.Fatalf("%s: %d decisions read back, want %d", name, len(ds), len(want))
			}
			for _, d := range ds {
				if got := string(d.Features); got != want[d.Event] {
					t.Errorf("%s: %s: features %s, want %s", name, d.Event, got, want[d.Event])
				}
			}
		}
		// Many readers at once after a restart: none holds a connection
		// while it asks for another.
		fresh := NewLog(db, nil)
		qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		errs := make(chan error, 16)
		for range 16 {
			go func() {
				_, err := fresh.Decisions(qctx, "A1", "", 100)
				errs <- err
			}()
		}
		for range 16 {
			if err := <-errs; err != nil {
				t.Fatalf("concurrent readers: %v", err)
			}
		}
		var sets int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM feature_sets`).Scan(&sets); err != nil || sets != 3 {
			t.Errorf("%d feature sets stored (%v), want 3: all, empty, and the clash's", sets, err)
		}
		var objects int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM decisions WHERE feature_set = 0`).Scan(&objects); err != nil {
			t.Fatal(err)
		}
		// old; unknown_key and nil (×2 types); few (×2, the clash).
		if objects != 7 {
			t.Errorf("%d rows keep the object, want 7", objects)
		}
	})
}
