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
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
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

// natsServerCPU returns the CPU time used so far by the local nats-server
// process, read from /proc (false when there is none or /proc is not
// there). A shared server also serves other clients: its figure is an
// upper bound of what the benchmark made it spend.
func natsServerCPU() (time.Duration, bool) {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + d.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(comm)) != "nats-server" {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			return 0, false
		}
		// Fields after the command's closing parenthesis: utime and stime
		// are the 12th and 13th of them, in clock ticks (100 a second).
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 13 {
			return 0, false
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		return time.Duration(ut+st) * 10 * time.Millisecond, true
	}
	return 0, false
}

// envBenchChild holds the load generator's configuration (JSON) when the
// test binary runs as BenchmarkClusterEventsAPI's load generator.
const envBenchChild = "KABUTO_TEST_CLUSTER_BENCH_CHILD"

// TestBenchLoadChild is the load generator of BenchmarkClusterEventsAPI:
// the benchmark runs the test binary again with only this test and
// KABUTO_TEST_CLUSTER_BENCH_CHILD set, so that the generator is a process
// of its own (its CPU time and its garbage collections are not the
// server's). It writes loadgen's Result as JSON to standard output.
func TestBenchLoadChild(t *testing.T) {
	v := os.Getenv(envBenchChild)
	if v == "" {
		t.Skip("the load generator of BenchmarkClusterEventsAPI; runs only as its child process")
	}
	var c childLoad
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		t.Fatal(err)
	}
	res, err := loadgen.Run(context.Background(), loadgen.Config{Target: c.Target, Key: c.Key, Batch: c.Batch, Clients: c.Clients,
		Requests: c.Requests, Warmup: c.Warmup, Rate: c.Rate})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		t.Fatal(err)
	}
	os.Exit(0)
}

// childLoad is the load TestBenchLoadChild sends.
type childLoad struct {
	Target, Key              string
	Batch, Clients, Requests int
	Warmup                   time.Duration
	Rate                     float64
}

// counted counts the requests h answers.
func counted(h http.Handler, n *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	})
}

// BenchmarkClusterEventsAPI offers the same open-loop load (internal/loadgen,
// batches of 5 from 8 connections, at 10,000 and 20,000 decisions/s) to
// three servers in turn: a bare JSON handler; the decision API of a single
// process (kabuto serve's server, engine and decision log on SQLite); and
// the same with the JetStream backbone, one node owning every partition
// (each decision stored in the stream before it is answered). The load
// generator runs in a process of its own (the test binary again, as
// TestBenchLoadChild), so that the figures separate the server's CPU from
// the generator's. Each run reports its p50 and p99, its p99 over the bare
// handler's p99 at the same rate (p99-x-bare), and per decision served
// (warm-up included): this process's CPU time (the server, with the
// decision log's writes of the run, which are flushed before the figure
// is read), the generator's, and the local nats-server's when one runs
// (a shared one's figure includes its other clients). With
// KABUTO_TEST_NATS unset, the NATS server runs in this process and its
// CPU counts as the server's. -benchtime Nx offers N decisions a run.
func BenchmarkClusterEventsAPI(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	const secret = "kb_cluster_bench_0123456789abcdef0123"
	type target struct {
		name, url string
		served    atomic.Int64
		dlog      *pipeline.Log
	}
	newServer := func(t *target, clustered bool) {
		db := storetest.SQLite(b)
		if _, _, err := apikey.New(db).CreateWithSecret(ctx, "bench", secret, []string{apikey.ScopeEvents}, time.Now()); err != nil {
			b.Fatal(err)
		}
		dlog := pipeline.NewLog(db, log)
		go dlog.Run(ctx)
		t.dlog = dlog
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
		hs := httptest.NewServer(counted(h, &t.served))
		b.Cleanup(hs.Close)
		t.url = hs.URL
	}
	bare := &target{name: "bare"}
	hs := httptest.NewServer(counted(bareHandler(), &bare.served))
	b.Cleanup(hs.Close)
	bare.url = hs.URL
	single, js := &target{name: "single"}, &target{name: "jetstream"}
	newServer(single, false)
	newServer(js, true)
	targets := []*target{bare, single, js}
	bareP99 := map[float64]time.Duration{}
	for _, rate := range []float64{10000, 20000} {
		for _, tg := range targets {
			b.Run(tg.name+"_"+strconv.Itoa(int(rate)), func(b *testing.B) {
				const batch = 5
				js, _ := json.Marshal(childLoad{Target: tg.url, Key: secret, Batch: batch, Clients: 8,
					Requests: max(100, b.N/batch), Warmup: 500 * time.Millisecond, Rate: rate})
				cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBenchLoadChild$", "-test.count=1")
				cmd.Env = append(os.Environ(), envBenchChild+"="+string(js))
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				if tg.dlog != nil { // from an idle server: the last run's queue written first
					if err := tg.dlog.Flush(ctx); err != nil {
						b.Fatal(err)
					}
				}
				served0 := tg.served.Load()
				cpu0 := processCPU()
				nats0, natsOK := natsServerCPU()
				b.ResetTimer()
				err := cmd.Run()
				b.StopTimer()
				if err == nil && tg.dlog != nil {
					err = tg.dlog.Flush(ctx)
				}
				cpu := processCPU() - cpu0
				nats1, _ := natsServerCPU()
				if err != nil {
					b.Fatalf("load generator: %v: %s", err, stderr.String())
				}
				var res loadgen.Result
				if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()[bytes.LastIndexByte(bytes.TrimSpace(stdout.Bytes()), '\n')+1:]), &res); err != nil {
					b.Fatalf("load generator's output %q: %v", stdout.String(), err)
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
				// Every request but the first (the instruments) holds
				// batch customer actions.
				if decisions := float64(tg.served.Load()-served0-1) * batch; decisions > 0 {
					b.ReportMetric(float64(cpu.Microseconds())/decisions, "cpu-µs/decision")
					gen := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
					b.ReportMetric(float64(gen.Microseconds())/decisions, "generator-cpu-µs/decision")
					if natsOK && tg.name == "jetstream" {
						b.ReportMetric(float64((nats1-nats0).Microseconds())/decisions, "nats-cpu-µs/decision")
					}
				}
			})
		}
	}
}
