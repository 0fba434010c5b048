package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/cases"
	"github.com/kabuto-sec/kabuto/internal/cluster"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/server"
	"github.com/kabuto-sec/kabuto/internal/sim"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// countingSink counts the decisions every node's sink is given, by record
// id, before passing them to the node's decision log.
type countingSink struct {
	inner pipeline.Sink
	mu    *sync.Mutex
	n     map[string]int
}

func (s countingSink) Decision(ctx context.Context, r *event.Record, res *risk.Result) error {
	s.mu.Lock()
	s.n[r.ID]++
	s.mu.Unlock()
	return s.inner.Decision(ctx, r, res)
}

func (s countingSink) Alert(ctx context.Context, a *event.Alert) error { return s.inner.Alert(ctx, a) }

// guardOf is the back office's view of a node's guard.
type guardOf struct{ p *pipeline.Pipeline }

func (g guardOf) SetHalt(symbol string, halted bool)    { g.p.SetHalt(symbol, halted) }
func (g guardOf) SetFrozen(account string, frozen bool) { g.p.SetFrozen(account, frozen) }

// httpNode is a whole node: engine, decision log and back office on the
// shared PostgreSQL database, its own NATS connection and HTTP server.
type httpNode struct {
	name string
	node *cluster.Node
	pipe *pipeline.Pipeline
	http *httptest.Server
	dead bool
}

// campaignStream is the 2025 campaign as the simulator plays it (all
// defences on), in the spec's format, with its ground truth.
func campaignStream(t *testing.T) (recs [][]byte, labels []map[string]any) {
	t.Helper()
	var ev, lb bytes.Buffer
	_, err := sim.Run(context.Background(), sim.Config{Seed: 1, Customers: 1500, Only: []string{"all_on"}, Events: &ev, Labels: &lb,
		TempDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&ev)
	sc.Buffer(nil, event.MaxLine)
	for sc.Scan() {
		recs = append(recs, bytes.Clone(sc.Bytes()))
	}
	for l := range bytes.SplitSeq(bytes.TrimSpace(lb.Bytes()), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatal(err)
		}
		labels = append(labels, m)
	}
	return recs, labels
}

// surveilConfig makes the watchtower act on every alert it raises, so that
// the campaign's alerts halt instruments and freeze accounts and a lost
// halt or freeze shows.
func surveilConfig() surveil.Config {
	cfg := surveil.DefaultConfig()
	cfg.HaltScore, cfg.FreezeScore = 1, 1
	return cfg
}

// singleProcess replays recs through one pipeline, as `kabuto serve` alone
// decides them: the decisions and the alerts.
func singleProcess(t *testing.T, recs [][]byte) (map[string]event.Decision, []event.Alert) {
	t.Helper()
	sink := newMemSink()
	p := pipeline.NewPipeline(risk.NewEngine(risk.BuiltinPolicy()), surveil.New(surveilConfig()), sink)
	ds := map[string]event.Decision{}
	ctx := context.Background()
	for _, b := range recs {
		r, err := event.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if r.Type.Action() {
			d, err := p.Decide(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			ds[r.ID] = d
		} else if err := p.Observe(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	return ds, sink.alerts
}

// TestClusterCampaignFailover drives the 2025 campaign through three
// nodes over POST /api/v1/events, batches spread over the nodes, and kills
// one node (no graceful leave) when the campaign's first wave starts. It
// shows: every customer action decided exactly once (in the stream and in
// the nodes' decision logs), including a batch a client retried on another
// node after the kill; the decisions those of a single process on the same
// stream but for the failed-over accounts' state; and every halt and
// freeze the single process made present in the cluster's bucket, in the
// back office's database and in every surviving node's guard.
func TestClusterCampaignFailover(t *testing.T) {
	db := storetest.Postgres(t) // skips, saying why, without KABUTO_TEST_POSTGRES
	recs, labels := campaignStream(t)
	want, wantAlerts := singleProcess(t, recs)
	c := newTestCluster(t, surveilConfig())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	secret, _, err := apikey.New(db).Create(ctx, "cluster test", []string{apikey.ScopeEvents}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The brokerage's instruments, which the back office halts.
	for _, b := range recs {
		r, _ := event.Decode(b)
		if r.Type != event.TypeInstrument {
			continue
		}
		_, err := db.ExecContext(ctx, `INSERT INTO instruments (symbol, name, market, currency, lot, adv_shares, prev_close) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (symbol) DO NOTHING`,
			r.Symbol, r.Name, r.Market, r.Currency, max(r.Lot, 1), r.ADVShares, r.Price)
		if err != nil {
			t.Fatal(err)
		}
	}
	var countMu sync.Mutex
	counts := map[string]int{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var nodes []*httpNode
	var offices []*cases.Service
	for _, name := range []string{"a", "b", "c"} {
		dlog := pipeline.NewLog(db, log)
		go dlog.Run(ctx)
		pipe := pipeline.NewPipeline(risk.NewEngine(risk.BuiltinPolicy()), surveil.New(surveilConfig()), countingSink{dlog, &countMu, counts})
		off := cases.New(cases.Config{DB: db, Guard: guardOf{pipe}, Log: log})
		offices = append(offices, off)
		node, err := cluster.New(ctx, cluster.Config{NATS: connect(t, c.url), Node: name, Cluster: c.name, Partitions: 8, LeaseTTL: time.Second,
			Pipeline: pipe, Log: log, OnAlert: func(ctx context.Context, a event.Alert) {
				if err := off.FromAlert(ctx, a); err != nil {
					t.Errorf("back office on %s: %v", name, err)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if err := node.Start(ctx); err != nil {
			t.Fatal(err)
		}
		srv := server.New(server.Config{DB: db, Keys: apikey.New(db), Guard: pipe, Decisions: dlog, Log: log})
		hs := httptest.NewServer(node.Handler(srv.Handler(), nil))
		n := &httpNode{name: name, node: node, pipe: pipe, http: hs}
		t.Cleanup(func() {
			if !n.dead {
				hs.Close()
				node.Kill()
			}
		})
		nodes = append(nodes, n)
	}
	waitFor(t, 30*time.Second, "every node ready", func() bool {
		for _, n := range nodes {
			if !n.node.Ready() {
				return false
			}
		}
		return true
	})

	// The moment to kill: the first attacker's order.
	var killAt, frozenByHand string
	for _, l := range labels {
		if l["truth"] == "attack" && l["type"] == "order" {
			killAt, frozenByHand = l["event"].(string), l["account"].(string)
			break
		}
	}
	post := func(n *httpNode, batch [][]byte) ([]event.Decision, error) {
		body := append([]byte("["), bytes.Join(batch, []byte(","))...)
		body = append(body, ']')
		req, _ := http.NewRequest("POST", n.http.URL+"/api/v1/events", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out struct {
			Decisions []event.Decision `json:"decisions"`
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("%s: %d %s", n.name, resp.StatusCode, b)
		}
		return out.Decisions, json.Unmarshal(b, &out)
	}
	got := map[string]event.Decision{}
	var killed *httpNode
	var retried []string
	const batchSize = 50
	turn := 0
	for i := 0; i < len(recs); i += batchSize {
		batch := recs[i:min(i+batchSize, len(recs))]
		var ids []string
		for _, b := range batch {
			var env struct{ ID string }
			json.Unmarshal(b, &env)
			ids = append(ids, env.ID)
		}
		if killed == nil && slices.Contains(ids, killAt) {
			// The batch of the first hijacked order goes to b, which
			// answers and dies; the client, not sure it was taken,
			// sends it again to a.
			killed = nodes[1]
			ds, err := post(killed, batch)
			if err != nil {
				t.Fatal(err)
			}
			// An analyst froze the first attacked account on b just
			// before b died.
			if _, err := offices[1].Freeze(ctx, "analyst", frozenByHand, "reported by the customer", cases.Link{Kind: "customer_report", Ref: "cluster-test", Account: frozenByHand, Title: "customer report", Actor: "analyst"}); err != nil {
				t.Fatal(err)
			}
			killed.dead = true
			killed.node.Kill()
			killed.http.Close()
			again, err := post(nodes[0], batch)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) != len(again) {
				t.Fatalf("retry on another node: %d decisions, first %d", len(again), len(ds))
			}
			for k := range ds {
				if ds[k].Event != again[k].Event || ds[k].Action != again[k].Action || ds[k].Node != again[k].Node {
					t.Errorf("retry on another node: %+v, first %+v", again[k], ds[k])
				}
				retried = append(retried, ds[k].Event)
				got[ds[k].Event] = ds[k]
			}
			continue
		}
		for {
			n := nodes[turn%len(nodes)]
			turn++
			if n.dead {
				continue
			}
			ds, err := post(n, batch)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds {
				got[d.Event] = d
			}
			break
		}
	}
	if killed == nil {
		t.Fatal("the campaign's first attack order was not found")
	}

	// Every customer action decided exactly once.
	count, by := streamDecisions(t, connect(t, c.url), c.name)
	actions, differ := 0, 0
	for id, d := range want {
		actions++
		if count[id] != 1 {
			t.Errorf("%s: %d decisions in the stream, want 1", id, count[id])
		}
		if got[id].Event != id {
			t.Errorf("%s: no decision answered", id)
			continue
		}
		if got[id].Action != d.Action {
			differ++
		}
	}
	countMu.Lock()
	for id, k := range counts {
		if k != 1 {
			t.Errorf("%s: decided %d times by the nodes", id, k)
		}
	}
	countMu.Unlock()
	deciders := map[string]int{}
	for _, who := range by {
		deciders[who]++
	}
	t.Logf("%d records, %d actions decided by %v; %d retried on another node; %d actions decided otherwise than by a single process",
		len(recs), actions, deciders, len(retried), differ)
	if len(count) != actions {
		t.Errorf("stream holds decisions on %d records, want %d", len(count), actions)
	}
	if deciders["b"] == 0 || deciders["a"] == 0 || deciders["c"] == 0 {
		t.Errorf("decided by %v: want every node to have decided before the kill", deciders)
	}
	if float64(differ) > 0.01*float64(actions) {
		t.Errorf("%d of %d decisions differ from a single process on the same stream (want ≤ 1%%)", differ, actions)
	}

	// Every halt and freeze of the single process is in the cluster.
	wantHalts, wantFrozen := map[string]bool{}, map[string]bool{}
	for _, a := range wantAlerts {
		switch a.Action {
		case event.AlertHaltBuys:
			wantHalts[a.Symbol] = true
		case event.AlertFreezeAccounts:
			for _, acct := range a.Accounts {
				wantFrozen[acct] = true
			}
		}
	}
	if len(wantHalts) == 0 {
		t.Fatalf("the single process halted nothing: the test needs halts")
	}
	wantFrozen[frozenByHand] = true
	live := []*httpNode{nodes[0], nodes[2]}
	waitFor(t, 60*time.Second, "the halts and freezes in the cluster", func() bool {
		halted, _ := live[0].node.Halted(ctx)
		frozen, _ := live[0].node.Frozen(ctx)
		return containsAll(halted, wantHalts) && containsAll(frozen, wantFrozen)
	})
	dbHalts, err := offices[0].Halts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for sym := range wantHalts {
		if _, ok := dbHalts[sym]; !ok {
			t.Errorf("halt of %s not in the back office's database", sym)
		}
	}
	for acct := range wantFrozen {
		if f, err := offices[0].Frozen(ctx, acct); err != nil || f == nil {
			t.Errorf("freeze of %s not in the back office's database (%v)", acct, err)
		}
	}
	at := time.Date(2025, 4, 16, 10, 0, 0, 0, time.FixedZone("JST", 9*3600))
	waitFor(t, 30*time.Second, "every surviving node's guard refusing the halted and frozen", func() bool {
		for _, n := range live {
			for sym := range wantHalts {
				r := &event.Record{ID: "probe-" + sym, Type: event.TypeOrder, Time: at, Account: "probe", Session: "s", IP: "203.0.113.9", Device: "d", Channel: "web",
					OrderID: "o", Symbol: sym, Side: "buy", Qty: 100, PriceType: "market", AccountKind: "cash", ValueJPY: 10000}
				if !slices.Contains(n.pipe.Risk.Decide(r).Decision.Reasons, "instrument_halted") {
					return false
				}
			}
			for acct := range wantFrozen {
				if !slices.Contains(n.pipe.Risk.Decide(login("probe-"+acct, acct, at)).Decision.Reasons, cases.ReasonAccountFrozen) {
					return false
				}
			}
		}
		return true
	})
	t.Logf("halted %d instruments and froze %d accounts, as the single process did", len(wantHalts), len(wantFrozen))
}

func containsAll(have []string, want map[string]bool) bool {
	for w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// waitFor waits until cond holds, polling, and fails the test after within.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		<-tick.C
	}
}
