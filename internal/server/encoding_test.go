package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// TestEventsErrorsCountFromOne: a refused batch names its bad record
// counting from 1 in a JSON array as in JSON Lines, and every answer,
// error or success, is compact JSON.
func TestEventsErrorsCountFromOne(t *testing.T) {
	db := storetest.SQLite(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dlog := pipeline.NewLog(db, log)
	go dlog.Run(ctx)
	g := pipeline.NewPipeline(risk.NewEngine(risk.BuiltinPolicy()), surveil.New(surveil.DefaultConfig()), dlog)
	keys := apikey.New(db)
	secret, _, err := keys.Create(ctx, "core", []string{apikey.ScopeEvents}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{DB: db, Keys: keys, Log: log, Guard: g, Decisions: dlog}).Handler())
	defer srv.Close()
	good := `{"id":"w1","type":"withdrawal","time":"2026-04-01T10:00:00+09:00","account":"C1","session":"s1","amount_jpy":1000,"bank_hash":"b_1"}`
	bad := `{"id":"o1","type":"order","time":"2026-04-01T10:00:01+09:00","account":"C1","qty":"many"}`
	for _, tt := range []struct {
		name, ctype, body string
		status            int
		prefix            string
	}{
		{"array", "application/json", "[" + good + "," + bad + "]", 400, "record 2: field qty"},
		{"array first", "application/json", "[" + bad + "," + good + "]", 400, "record 1: field qty"},
		{"one record", "application/json", bad, 400, "record 1: field qty"},
		{"json lines", "application/x-ndjson", good + "\n" + bad + "\n", 400, "line 2: field qty"},
		{"success", "application/json", good, 200, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+"/api/v1/events", strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+secret)
			req.Header.Set("Content-Type", tt.ctype)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, b); err != nil || compact.String() != strings.TrimSpace(string(b)) {
				t.Errorf("answer is not compact JSON: %q", b)
			}
			var m struct{ Message string }
			json.Unmarshal(b, &m)
			if !strings.HasPrefix(m.Message, tt.prefix) {
				t.Errorf("message %q, want it to start %q", m.Message, tt.prefix)
			}
		})
	}
}
