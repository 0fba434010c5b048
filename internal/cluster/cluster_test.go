package cluster_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kabuto-sec/kabuto/internal/cluster"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// EnvNATS names the environment variable holding the URL of a NATS server
// with JetStream for tests; unset, each test runs one in-process.
const EnvNATS = "KABUTO_TEST_NATS"

// natsURL returns the URL of a NATS server with JetStream: the one named
// by KABUTO_TEST_NATS, or one started in this process for the test.
func natsURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvNATS); u != "" {
		return u
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("in-process NATS server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s.ClientURL()
}

func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("NATS at %s (%s): %v", url, EnvNATS, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// memSink keeps decisions and alerts in memory.
type memSink struct {
	mu        sync.Mutex
	decisions map[string]int
	alerts    []event.Alert
}

func newMemSink() *memSink { return &memSink{decisions: map[string]int{}} }

func (s *memSink) Decision(_ context.Context, r *event.Record, _ *risk.Result) error {
	s.mu.Lock()
	s.decisions[r.ID]++
	s.mu.Unlock()
	return nil
}

func (s *memSink) Alert(_ context.Context, a *event.Alert) error {
	s.mu.Lock()
	s.alerts = append(s.alerts, *a)
	s.mu.Unlock()
	return nil
}

// testNode is one node of a test cluster, with its own NATS connection,
// engine, watchtower configuration and sink.
type testNode struct {
	name string
	node *cluster.Node
	pipe *pipeline.Pipeline
	sink *memSink
	nc   *nats.Conn
	dead bool
}

type testCluster struct {
	t     testing.TB
	name  string
	url   string
	cfg   surveil.Config
	ttl   time.Duration // leases' time to live (default 1 s)
	snap  time.Duration // the nodes' SnapshotEvery (default: the Config's)
	nodes []*testNode
}

func newTestCluster(t testing.TB, cfg surveil.Config) *testCluster {
	var b [4]byte
	rand.Read(b[:])
	c := &testCluster{t: t, name: "t" + hex.EncodeToString(b[:]), url: natsURL(t), cfg: cfg}
	nc := connect(t, c.url)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := cluster.Delete(ctx, nc, c.name); err != nil {
			t.Errorf("cleaning up the cluster: %v", err)
		}
	})
	return c
}

// add starts a node.
func (c *testCluster) add(name string) *testNode {
	t := c.t
	t.Helper()
	sink := newMemSink()
	pipe := pipeline.NewPipeline(risk.NewEngine(risk.BuiltinPolicy()), surveil.New(c.cfg), sink)
	n := &testNode{name: name, pipe: pipe, sink: sink, nc: connect(t, c.url)}
	ctx := context.Background()
	ttl := c.ttl
	if ttl == 0 {
		ttl = time.Second
	}
	node, err := cluster.New(ctx, cluster.Config{NATS: n.nc, Node: name, Cluster: c.name, Partitions: 8, LeaseTTL: ttl, Pipeline: pipe, SnapshotEvery: c.snap})
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	n.node = node
	t.Cleanup(func() {
		if !n.dead {
			n.node.Kill()
		}
	})
	c.nodes = append(c.nodes, n)
	return n
}

// settle waits until every live node is ready and every partition has
// one owner among them.
func (c *testCluster) settle(within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := true
		for _, n := range c.nodes {
			if !n.dead && !n.node.Ready() {
				ok = false
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			for _, n := range c.nodes {
				c.t.Logf("%s ready=%v owners=%v", n.name, n.node.Ready(), n.node.Owners())
			}
			c.t.Fatalf("cluster not ready within %v", within)
		}
		<-tick.C
	}
}

// streamDecisions reads the records stream: how many decisions it holds
// per record id, and which node made each.
func streamDecisions(t testing.TB, nc *nats.Conn, cluster string) (count map[string]int, by map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, "KABUTO_"+cluster+"_RECORDS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"kabuto." + cluster + ".rec.>"}})
	if err != nil {
		t.Fatal(err)
	}
	count, by = map[string]int{}, map[string]string{}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumPending == 0 {
		return
	}
	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if h := m.Headers().Get("Kabuto-Decision"); h != "" {
			var d event.Decision
			if err := json.Unmarshal([]byte(h), &d); err != nil {
				t.Fatal(err)
			}
			count[d.Event]++
			by[d.Event] = d.Node
		}
		meta, _ := m.Metadata()
		if meta.NumPending == 0 {
			return
		}
	}
}

func login(id, account string, at time.Time) *event.Record {
	return &event.Record{ID: id, Type: event.TypeLogin, Time: at, Account: account, Session: "s-" + account,
		IP: "203.0.113.7", Device: "d-" + account, UA: "test", Channel: "web", Method: "passkey", Factors: []string{"passkey"}, OK: true}
}

// TestClusterDecidesOnceOnAnyNode: three nodes split the accounts; a
// record sent to any node is decided by its account's owner, the answer
// names that node, and a retry of the same id on another node gets the
// same decision without a second one in the stream.
func TestClusterDecidesOnceOnAnyNode(t *testing.T) {
	c := newTestCluster(t, surveil.DefaultConfig())
	for _, name := range []string{"a", "b", "c"} {
		c.add(name)
	}
	c.settle(20 * time.Second)
	ctx := context.Background()
	at := time.Date(2025, 4, 15, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))
	deciders := map[string]int{}
	for i := range 60 {
		r := login(fmt.Sprintf("L%03d", i), fmt.Sprintf("C%04d", i), at.Add(time.Duration(i)*time.Second))
		first := c.nodes[i%3]
		d, err := first.node.Decide(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if d.Node == "" || d.Event != r.ID {
			t.Fatalf("decision %+v: want the record's id and the deciding node", d)
		}
		deciders[d.Node]++
		again, err := c.nodes[(i+1)%3].node.Decide(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if again.Node != d.Node || again.Action != d.Action || again.Score != d.Score {
			t.Fatalf("retry of %s on another node: %+v, first %+v", r.ID, again, d)
		}
	}
	if len(deciders) != 3 {
		t.Errorf("decided by %v: want all three nodes to own some accounts", deciders)
	}
	count, _ := streamDecisions(t, c.nodes[0].nc, c.name)
	if len(count) != 60 {
		t.Errorf("stream holds decisions on %d records, want 60", len(count))
	}
	for id, k := range count {
		if k != 1 {
			t.Errorf("%s decided %d times in the stream", id, k)
		}
	}
}

// TestClusterReadyzAndHandover: a node answers /readyz 503 while another
// node's leases (one that died) still hold its partitions, and 200 once
// they expired and it rebuilt them; a node that leaves gracefully hands
// its partitions over at once, well before its leases would expire.
func TestClusterReadyzAndHandover(t *testing.T) {
	c := newTestCluster(t, surveil.DefaultConfig())
	c.ttl = 3 * time.Second
	ctx := context.Background()
	// A node that died holding every partition.
	ghost := c.add("ghost")
	c.settle(20 * time.Second)
	ghost.node.Kill()
	ghost.dead = true
	c.nodes = nil

	a := c.add("a")
	h := a.node.Handler(http.NotFoundHandler(), nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while a dead node's leases hold the partitions: %d, want 503", rec.Code)
	}
	c.settle(20 * time.Second)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusNotFound { // passed on to the server's own /readyz
		t.Fatalf("/readyz once the partitions are rebuilt: %d, want it passed on", rec.Code)
	}
	for _, o := range a.node.Owners() {
		if o.Node != "a" {
			t.Fatalf("owners %v after the dead node's leases expired", a.node.Owners())
		}
	}

	// A graceful leave: b joins, takes its share, then leaves; a holds
	// every partition again well before b's leases (3 s) would expire.
	b := c.add("b")
	c.settle(20 * time.Second)
	if d, err := a.node.Decide(ctx, login("x1", "acct-on-b", time.Now())); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("x1 decided by %s", d.Node)
	}
	shared := 0
	for _, o := range a.node.Owners() {
		if o.Node == "b" {
			shared++
		}
	}
	if shared == 0 {
		t.Fatalf("b took no partition: %v", a.node.Owners())
	}
	start := time.Now()
	if err := b.node.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	b.dead = true
	c.settle(20 * time.Second)
	waitFor(t, 10*time.Second, "a owning every partition", func() bool {
		owners := a.node.Owners()
		for _, o := range owners {
			if o.Node != "a" {
				return false
			}
		}
		return len(owners) == 16
	})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("handover took %v: want it well within the lease's time to live (3 s)", took)
	} else {
		t.Logf("handed over in %v", took.Round(time.Millisecond))
	}
}
