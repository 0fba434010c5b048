package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// failingSink is the decision log that stops taking decisions after the
// first few, as a full disk or a lost database would.
type failingSink struct {
	*pipeline.Log
	left atomic.Int32
}

func (s *failingSink) Decision(ctx context.Context, r *event.Record, res *risk.Result) error {
	if s.left.Add(-1) < 0 {
		return errors.New("decision log: disk full")
	}
	return s.Log.Decision(ctx, r, res)
}

// TestEventsBatchGuardFailsPartWay: the guard fails on the third record of
// a batch of five. The answer says, record by record, which were decided
// (stored, final: do not send them again) and which were not (nothing of
// them is stored: send them again). (Before: a bare 503 saying the third
// had no decision; the first two were decided and logged, and nothing
// said so, so an integrator resending the batch had them decided twice.)
func TestEventsBatchGuardFailsPartWay(t *testing.T) {
	db := storetest.SQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dlog := pipeline.NewLog(db, log)
	go dlog.Run(ctx)
	sink := &failingSink{Log: dlog}
	sink.left.Store(2)
	g := pipeline.NewPipeline(risk.NewEngine(risk.BuiltinPolicy()), surveil.New(surveil.DefaultConfig()), sink)
	keys := apikey.New(db)
	secret, _, err := keys.Create(ctx, "core", []string{apikey.ScopeEvents}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{DB: db, Keys: keys, Log: log, Guard: g, Decisions: dlog}).Handler())
	defer srv.Close()
	post := func(body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	var recs []string
	for i, id := range []string{"w1", "w2", "w3", "w4", "w5"} {
		recs = append(recs, `{"id":"`+id+`","type":"withdrawal","time":"2026-04-01T10:0`+string(rune('0'+i))+`:00+09:00","account":"C1","session":"s1","ip":"192.0.2.1","amount_jpy":1000,"bank_hash":"b_1"}`)
	}
	code, m := post("[" + strings.Join(recs, ",") + "]")
	if code != http.StatusServiceUnavailable || m["error"] != "guard_unavailable" {
		t.Fatalf("batch with a failing guard: %d %v", code, m)
	}
	decided, _ := m["decisions"].([]any)
	unprocessed, _ := m["unprocessed"].([]any)
	var got []string
	for _, d := range decided {
		got = append(got, d.(map[string]any)["event"].(string))
	}
	var left []string
	for _, u := range unprocessed {
		left = append(left, u.(map[string]any)["event"].(string))
	}
	if strings.Join(got, ",") != "w1,w2" || strings.Join(left, ",") != "w3,w4,w5" {
		t.Fatalf("decided %v, unprocessed %v; want w1,w2 and w3,w4,w5 (%v)", got, left, m)
	}
	if err := dlog.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]int{"w1": 1, "w2": 1, "w3": 0, "w4": 0, "w5": 0} {
		ds, err := dlog.Decisions(ctx, "", id, 10)
		if err != nil || len(ds) != want {
			t.Errorf("%s: %d stored decisions, want %d (%v)", id, len(ds), want, err)
		}
	}
}
