//go:build unix

package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/cluster"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/loadgen"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/server"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// bareHandler is the least a JSON decision API does: it reads the batch,
// decodes each record's id and account, and answers an allow for each, as
// the decision API's JSON. It is the baseline of BenchmarkClusterEventsAPI.
func bareHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var recs []struct {
			ID      string     `json:"id"`
			Type    event.Type `json:"type"`
			Time    time.Time  `json:"time"`
			Account string     `json:"account"`
		}
		body, err := io.ReadAll(r.Body)
		if err == nil {
			err = json.Unmarshal(body, &recs)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		type decision struct {
			Event   string    `json:"event"`
			Time    time.Time `json:"time"`
			Account string    `json:"account"`
			Action  string    `json:"action"`
			Score   int       `json:"score"`
			Reasons []string  `json:"reasons"`
			Policy  string    `json:"policy"`
		}
		out := struct {
			Decisions []decision `json:"decisions"`
			Skipped   int        `json:"skipped_unknown_types"`
		}{}
		for _, rec := range recs {
			if !rec.Type.Action() {
				continue
			}
			out.Decisions = append(out.Decisions, decision{Event: rec.ID, Time: rec.Time, Account: rec.Account, Action: "allow", Reasons: []string{}, Policy: "bare"})
		}
		var buf bytes.Buffer
		json.NewEncoder(&buf).Encode(out)
		w.Header().Set("Content-Type", "application/json")
		w.Write(buf.Bytes())
	})
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkClusterEventsAPI offers the same open-loop load (internal/loadgen,
// batches of 5 from 8 connections, at 10,000 and 20,000 decisions/s) to
// three servers in turn: a bare JSON handler; the decision API of a single
// process (kabuto serve's server, engine and decision log on SQLite); and
// the same with the JetStream backbone, one node owning every partition
// (each decision stored in the stream before it is answered). It reports
// each run's p50 and p99, its p99 over the bare handler's p99 at the same
// rate (p99-x-bare), and the CPU time of this process per decision: the
// generator runs in this process too, so the bare run's figure is the
// generator's and HTTP's share, and the NATS server's CPU is counted only
// when it runs in-process (KABUTO_TEST_NATS unset).
func BenchmarkClusterEventsAPI(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	const secret = "kb_cluster_bench_0123456789abcdef0123"
	newServer := func(clustered bool) string {
		db := storetest.SQLite(b)
		if _, _, err := apikey.New(db).CreateWithSecret(ctx, "bench", secret, []string{apikey.ScopeEvents}, time.Now()); err != nil {
			b.Fatal(err)
		}
		dlog := pipeline.NewLog(db, log)
		go dlog.Run(ctx)
		pipe := pipeline.NewPipeline(risk.NewEngine(risk.BuiltinPolicy()), surveil.New(surveil.DefaultConfig()), dlog)
		pipe.Explain = true
		srv := server.New(server.Config{DB: db, Keys: apikey.New(db), Guard: pipe, Decisions: dlog, Log: log})
		var h http.Handler = srv.Handler()
		if clustered {
			c := newTestCluster(b, surveil.DefaultConfig())
			node, err := cluster.New(ctx, cluster.Config{NATS: connect(b, c.url), Node: "solo", Cluster: c.name, Pipeline: pipe, Log: log})
			if err != nil {
				b.Fatal(err)
			}
			if err := node.Start(ctx); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(node.Kill)
			waitFor(b, 20*time.Second, "the node ready", node.Ready)
			h = node.Handler(h, nil)
		}
		hs := httptest.NewServer(h)
		b.Cleanup(hs.Close)
		return hs.URL
	}
	targets := []struct{ name, url string }{
		{"bare", httptest.NewServer(bareHandler()).URL},
		{"single", newServer(false)},
		{"jetstream", newServer(true)},
	}
	bareP99 := map[float64]time.Duration{}
	for _, rate := range []float64{10000, 20000} {
		for _, tg := range targets {
			b.Run(tg.name+"_"+strconv.Itoa(int(rate)), func(b *testing.B) {
				cpu0 := processCPU()
				b.ResetTimer()
				res, err := loadgen.Run(ctx, loadgen.Config{Target: tg.url, Key: secret, Batch: 5, Clients: 8,
					Requests: max(100, b.N/5), Warmup: 500 * time.Millisecond, Rate: rate})
				b.StopTimer()
				cpu := processCPU() - cpu0
				if err != nil {
					b.Fatal(err)
				}
				if tg.name == "bare" {
					bareP99[rate] = res.P99
				} else if p := bareP99[rate]; p > 0 {
					b.ReportMetric(float64(res.P99)/float64(p), "p99-x-bare")
				}
				b.ReportMetric(res.PerSecond(), "decisions/s")
				b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
				b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
				b.ReportMetric(float64(res.Late), "late-requests")
				if res.Decisions > 0 {
					b.ReportMetric(float64(cpu.Microseconds())/float64(res.Decisions), "cpu-µs/decision")
				}
			})
		}
	}
}
