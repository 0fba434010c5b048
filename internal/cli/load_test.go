//go:build unix

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// envLoadChild holds the arguments of `kabuto loadtest` (JSON) when the
// test binary runs as BenchmarkEventsAPI's load generator.
const envLoadChild = "KABUTO_TEST_LOADTEST_CHILD"

// TestLoadgenChild is the load generator of BenchmarkEventsAPI: the
// benchmark runs the test binary again with only this test and
// KABUTO_TEST_LOADTEST_CHILD set, so that the generator is a process of
// its own, as a load generator on the same machine would be. It runs
// `kabuto loadtest` with the arguments given and exits with its code.
func TestLoadgenChild(t *testing.T) {
	v := os.Getenv(envLoadChild)
	if v == "" {
		t.Skip("the load generator of BenchmarkEventsAPI; runs only as its child process")
	}
	var args []string
	if err := json.Unmarshal([]byte(v), &args); err != nil {
		t.Fatal(err)
	}
	os.Exit(Run(context.Background(), append([]string{"loadtest"}, args...), os.Stdout, os.Stderr))
}

// processCPU returns the CPU time (user and system) this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEventsAPI drives POST /api/v1/events of a real server (the
// app of `kabuto serve` with its middleware, on SQLite, the embedded
// default, and on PostgreSQL when KABUTO_TEST_POSTGRES names one: its
// server then shares the machine's cores too, and its CPU time is not in
// server-cpu) over loopback from
// a load generator in a separate process, `kabuto loadtest` run from the
// test binary, so that the two share the machine's cores but not a Go
// runtime. Each sub-benchmark measures b.N decisions (requests, for the
// baseline) and reports the generator's figures: decisions per second
// over the measured part, and the p50, p99 and p99.9 request latency; and
// the server's: bytes allocated per decision, collections per second, CPU
// time per decision of the server and of the generator, and
// how long the decisions still queued at the end took to write.
//
// Closed loop (as fast as answered: the latency includes the queue of a
// saturated server): the baseline, GET /healthz from 8 connections, first
// in the same run; then single records from 8 connections, batches of 10
// from 4, of 20 from 2, of 50 from 8. Open loop (offered on a fixed
// schedule, latency from when each request was due), an order gateway's
// shape: its baseline, GET /healthz at 1,000 requests/s from 4
// connections; then batches of 20 from 4 connections at 10,000 and at
// 20,000 decisions/s (1,000 requests/s).
func BenchmarkEventsAPI(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchEventsAPI(b, storetest.SQLite(b)) })
	b.Run("postgres", func(b *testing.B) { benchEventsAPI(b, storetest.Postgres(b)) })
}

// benchEventsAPI is BenchmarkEventsAPI on db.
func benchEventsAPI(b *testing.B, db *store.DB) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, secret, a := startEventsServer(b, ctx, db, 50, slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})))
	dir := b.TempDir()

	load := func(b *testing.B, batch, clients int, rate float64, extra ...string) {
		n := max(1, (b.N+batch-1)/batch)
		args := []string{"--target", base, "--api-key", secret, "--batch", fmt.Sprint(batch), "--clients", fmt.Sprint(clients),
			"--requests", fmt.Sprint(n), "--warmup", "0", "--rate", fmt.Sprint(rate), "--json"}
		args = append(args, extra...)
		js, _ := json.Marshal(args)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLoadgenChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envLoadChild+"="+string(js))
		out, err := os.Create(filepath.Join(dir, "out.json"))
		if err != nil {
			b.Fatal(err)
		}
		defer out.Close()
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = out, &stderr
		// Start from an idle server: what the last run left queued is
		// written first.
		if err := a.dlog.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		cpu0 := processCPU()
		b.ResetTimer()
		err = cmd.Run()
		b.StopTimer()
		serverCPU := processCPU() - cpu0
		runtime.ReadMemStats(&m1)
		// Decisions still queued when the last answer came are written
		// now: how long that takes says whether the run outpaced the
		// decision log.
		drain := time.Now()
		if err := a.dlog.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(time.Since(drain).Milliseconds()), "backlog-ms")
		if err != nil {
			b.Fatalf("load generator: %v: %s", err, stderr.String())
		}
		var res loadResult
		body, _ := os.ReadFile(out.Name())
		if err := json.Unmarshal(body, &res); err != nil {
			b.Fatalf("load generator's output %q: %v", body, err)
		}
		b.ReportMetric(res.PerSecond, "decisions/s")
		if res.Healthz {
			b.ReportMetric(res.PerSecond, "requests/s")
		}
		b.ReportMetric(float64(res.P50us), "p50-µs")
		b.ReportMetric(float64(res.P99us), "p99-µs")
		b.ReportMetric(float64(res.P999us), "p99.9-µs")
		if rate > 0 {
			b.ReportMetric(float64(res.Late), "late-requests")
		}
		// The server's side (this process; the generator is another):
		// bytes allocated per decision and garbage collections per second.
		if res.Decisions > 0 {
			b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/float64(res.Decisions), "server-B/decision")
			b.ReportMetric(float64(m1.NumGC-m0.NumGC)/b.Elapsed().Seconds(), "server-GC/s")
			// CPU time (user and system) per decision of each process:
			// where the machine's two cores went.
			b.ReportMetric(float64(serverCPU.Microseconds())/float64(res.Decisions), "server-cpu-µs/decision")
			if ps := cmd.ProcessState; ps != nil {
				b.ReportMetric(float64((ps.UserTime()+ps.SystemTime()).Microseconds())/float64(res.Decisions), "generator-cpu-µs/decision")
			}
		}
	}
	// Closed loop: as fast as answered.
	b.Run("baseline_healthz", func(b *testing.B) { load(b, 1, 8, 0, "--healthz") })
	b.Run("single", func(b *testing.B) { load(b, 1, 8, 0) })
	b.Run("batch10_4clients", func(b *testing.B) { load(b, 10, 4, 0) })
	b.Run("batch20_2clients", func(b *testing.B) { load(b, 20, 2, 0) })
	b.Run("batch50_8clients", func(b *testing.B) { load(b, 50, 8, 0) })
	// Open loop: an order gateway's pool of 4 connections, batches of 20
	// offered at a fixed rate; the baseline is /healthz at the same
	// request rate.
	b.Run("baseline_healthz_1000rps", func(b *testing.B) { load(b, 1, 4, 1000, "--healthz") })
	b.Run("batch20_4clients_10k", func(b *testing.B) { load(b, 20, 4, 10000) })
	b.Run("batch20_4clients_20k", func(b *testing.B) { load(b, 20, 4, 20000) })
}
