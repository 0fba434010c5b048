package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/market"
	"github.com/kabuto-sec/kabuto/internal/server"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// TestLoadtestCommand runs `kabuto loadtest` against a real server for a
// fixed number of requests and checks what it reports against what the
// server stored; then the baseline mode, and the errors a person meets:
// a wrong key, a server that is not there, a bad flag.
func TestLoadtestCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, secret, a := startEventsServer(t, ctx, storetest.SQLite(t), 10, slog.New(slog.NewTextHandler(io.Discard, nil)))
	run := func(args ...string) (int, string, string) {
		var out, errs strings.Builder
		code := Run(ctx, append([]string{"loadtest"}, args...), &out, &errs)
		return code, out.String(), errs.String()
	}

	code, out, errs := run("--target", base, "--api-key", secret, "--batch", "5", "--clients", "2", "--requests", "7", "--warmup", "0", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var res loadResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var acted int64
	for _, n := range res.Actions {
		acted += n
	}
	if res.Requests != 7 || res.Decisions != 35 || acted != 35 || res.P50us <= 0 || res.P99us < res.P50us || res.PerSecond <= 0 {
		t.Fatalf("result: %+v", res)
	}
	if err := a.dlog.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var stored int
	if err := a.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM decisions WHERE event LIKE $1`, res.RunID+"-%").Scan(&stored); err != nil || stored != 35 {
		t.Fatalf("the server stored %d decisions of the run, want 35 (%v)", stored, err)
	}

	// The baseline, and the report a person reads.
	code, out, errs = run("--target", base, "--healthz", "--clients", "3", "--requests", "30", "--warmup", "0")
	if code != 0 || !strings.Contains(out, "GET "+base+"/healthz from 3 connections") || !strings.Contains(out, "30 in") || !strings.Contains(out, "p99") {
		t.Fatalf("healthz: exit %d: %s %s", code, out, errs)
	}

	// A wrong key is named as such, before anything is measured.
	code, _, errs = run("--target", base, "--api-key", "kb_not_a_real_key_000", "--requests", "5")
	if code != 1 || !strings.Contains(errs, "refused the API key (401 unauthenticated") {
		t.Fatalf("wrong key: exit %d: %s", code, errs)
	}
	// A key without the events scope too.
	broker, _, err := a.keys.Create(ctx, "broker only", []string{apikey.ScopeBroker}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs = run("--target", base, "--api-key", broker, "--requests", "5")
	if code != 1 || !strings.Contains(errs, "refused the API key (403 forbidden") {
		t.Fatalf("key without the events scope: exit %d: %s", code, errs)
	}
	// No server there.
	code, _, errs = run("--target", "http://"+freeAddr(t), "--api-key", secret, "--requests", "5")
	if code != 1 || !strings.Contains(errs, "cannot reach") {
		t.Fatalf("no server: exit %d: %s", code, errs)
	}
	// Mistakes on the command line (exit 2).
	for _, args := range [][]string{
		{"--target", base, "--requests", "5"},
		{"--target", base, "--api-key", secret, "--batch", "0"},
		{"--target", base, "--api-key", secret, "--clients", "0"},
		{"--target", "localhost:8080", "--api-key", secret},
		{"--target", base, "--api-key", secret, "--rate", "-1"},
		{"--target", base, "--api-key", secret, "--duration", "0s"},
	} {
		if code, _, errs := run(args...); code != 2 || errs == "" {
			t.Errorf("%v: exit %d: %s", args, code, errs)
		}
	}
}

// startEventsServer serves a real app (smallCaps thin issues, market
// always open) on loopback until ctx ends, and returns its address and a
// key with the events scope, and the app, on db.
func startEventsServer(tb testing.TB, ctx context.Context, db *store.DB, smallCaps int, log *slog.Logger) (base, secret string, a *app) {
	tb.Helper()
	var err error
	a, err = newApp(ctx, db, log, appOptions{hours: market.Hours{Always: true}, seed: 1, smallCaps: smallCaps})
	if err != nil {
		tb.Fatal(err)
	}
	secret, _, err = a.keys.Create(ctx, "load", []string{apikey.ScopeEvents}, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go server.Serve(ctx, ln, a.server.Handler(), log)
	return "http://" + ln.Addr().String(), secret, a
}
