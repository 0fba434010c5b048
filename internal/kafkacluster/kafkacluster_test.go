package kafkacluster_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/kafkacluster"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// kafka starts an in-process Kafka (kfake) for the test and returns its
// bootstrap addresses.
func kafka(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// memSink keeps decisions and alerts in memory.
type memSink struct {
	mu        sync.Mutex
	decisions map[string]int
	alerts    []event.Alert
}

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

type testNode struct {
	name string
	node *kafkacluster.Node
	pipe *pipeline.Pipeline
	sink *memSink
	dead bool
}

const parts = 8

// newNode makes a node of cluster "t" on brokers; gate, when set, holds
// its rebuilt partitions back until closed. It is not started.
func newNode(t testing.TB, brokers []string, name string, gate chan struct{}) *testNode {
	return newNodeSession(t, brokers, name, gate, time.Second)
}

func newNodeSession(t testing.TB, brokers []string, name string, gate chan struct{}, session time.Duration) *testNode {
	t.Helper()
	sink := &memSink{decisions: map[string]int{}}
	pipe := pipeline.NewPipeline(risk.NewEngine(risk.BuiltinPolicy()), surveil.New(surveil.DefaultConfig()), sink)
	node, err := kafkacluster.New(context.Background(), kafkacluster.Config{Brokers: brokers, Node: name, Cluster: "t",
		Partitions: parts, SessionTimeout: session, Pipeline: pipe})
	if err != nil {
		t.Fatal(err)
	}
	if gate != nil {
		kafkacluster.SetRebuildGate(node, gate)
	}
	n := &testNode{name: name, node: node, pipe: pipe, sink: sink}
	t.Cleanup(func() {
		if !n.dead {
			n.node.Kill()
		}
	})
	return n
}

func start(t testing.TB, n *testNode) {
	t.Helper()
	if err := n.node.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, within)
		}
		<-tick.C
	}
}

var at = time.Date(2025, 4, 15, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))

func login(id, account string, when time.Time) *event.Record {
	return &event.Record{ID: id, Type: event.TypeLogin, Time: when, Account: account, Session: "s-" + account,
		IP: "203.0.113.7", Device: "d-" + account, UA: "test", Channel: "web", Method: "passkey", Factors: []string{"passkey"}, OK: true}
}

func buy(id, account, symbol string, when time.Time) *event.Record {
	return &event.Record{ID: id, Type: event.TypeOrder, Time: when, Account: account, Session: "s-" + account, IP: "203.0.113.7",
		Device: "d-" + account, UA: "test", Channel: "web", OrderID: id, Symbol: symbol, Side: "buy", Qty: 100,
		PriceType: "market", AccountKind: "cash", ValueJPY: 10000}
}

func sameDecision(a, b event.Decision) bool {
	return a.Event == b.Event && a.Node == b.Node && a.Action == b.Action && a.Score == b.Score && slices.Equal(a.Reasons, b.Reasons)
}

// TestKafkaClusterDecidesOnceAndFailsOver: three nodes on one in-process
// Kafka. A node is not ready until the partitions the group gave it are
// rebuilt; every record is decided once, by its account's owner, whichever
// node it is sent to, and a retry on another node gets the same decision;
// a freeze and a halt set on one node reach every node; one node is killed
// while records stream in, the survivors take its partitions (rebuilding
// them from the records topic) and go on, no record is lost or decided
// twice, and the freeze and halt still hold on them.
func TestKafkaClusterDecidesOnceAndFailsOver(t *testing.T) {
	brokers := kafka(t)
	ctx := context.Background()
	a, b := newNode(t, brokers, "a", nil), newNode(t, brokers, "b", nil)
	if a.node.Ready() {
		t.Fatal("a node is ready before it started")
	}
	start(t, a)
	start(t, b)
	waitFor(t, 20*time.Second, "a and b ready", func() bool { return a.node.Ready() && b.node.Ready() })

	// c joins; its rebuilt partitions are held back: not ready meanwhile.
	gate := make(chan struct{})
	c := newNode(t, brokers, "c", gate)
	start(t, c)
	waitFor(t, 20*time.Second, "partitions given to c", func() bool { return kafkacluster.Assigned(c.node) })
	if c.node.Ready() {
		t.Fatal("c is ready before it rebuilt the partitions given to it")
	}
	rec := httptest.NewRecorder()
	c.node.Handler(http.NotFoundHandler(), nil).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz on c while rebuilding: %d, want 503", rec.Code)
	}
	close(gate)
	nodes := []*testNode{a, b, c}
	waitFor(t, 20*time.Second, "every node ready and every partition owned", func() bool {
		return a.node.Ready() && b.node.Ready() && c.node.Ready() && len(a.node.Owned())+len(b.node.Owned())+len(c.node.Owned()) == parts
	})
	for _, n := range nodes {
		if len(n.node.Owned()) == 0 {
			t.Errorf("%s owns no partition", n.name)
		}
	}
	t.Logf("settled: a owns %v, b %v, c %v", a.node.Owned(), b.node.Owned(), c.node.Owned())

	// Phase 1: any node answers; a retry on another node gets the same.
	decisions := map[string]event.Decision{}
	deciders := map[string]int{}
	for i := range 60 {
		r := login(fmt.Sprintf("L%03d", i), fmt.Sprintf("C%04d", i%40), at.Add(time.Duration(i)*time.Second))
		d, err := nodes[i%3].node.Decide(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if d.Node == "" || d.Event != r.ID {
			t.Fatalf("decision %+v: want the record's id and the deciding node", d)
		}
		deciders[d.Node]++
		again, err := nodes[(i+1)%3].node.Decide(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if !sameDecision(again, d) {
			t.Fatalf("retry of %s on another node: %+v, first %+v", r.ID, again, d)
		}
		decisions[r.ID] = d
	}
	if len(deciders) != 3 {
		t.Errorf("decided by %v: want all three nodes to decide some", deciders)
	}
	batch := []*event.Record{login("B1", "C0001", at.Add(time.Hour)), login("B2", "C0002", at.Add(time.Hour)), login("B3", "C0003", at.Add(time.Hour))}
	ds, err := b.node.DecideBatch(ctx, batch)
	if err != nil || len(ds) != 3 {
		t.Fatalf("DecideBatch: %d decisions, %v", len(ds), err)
	}
	for i, d := range ds {
		if d.Event != batch[i].ID || d.Node == "" {
			t.Fatalf("DecideBatch decision %d: %+v", i, d)
		}
		decisions[d.Event] = d
	}

	// A freeze and a halt set on a reach every node's engine.
	a.pipe.SetFrozen("frozen-1", true)
	a.pipe.SetHalt("7203", true)
	refused := func(n *testNode) bool {
		return slices.Contains(n.pipe.Risk.Decide(login("probe", "frozen-1", at)).Decision.Reasons, "account_frozen") &&
			slices.Contains(n.pipe.Risk.Decide(buy("probe", "probe-acct", "7203", at)).Decision.Reasons, "instrument_halted")
	}
	waitFor(t, 10*time.Second, "the freeze and halt on every node", func() bool { return refused(a) && refused(b) && refused(c) })

	// Phase 2: three clients stream records, one per node; c is killed
	// half way, and its client goes on with a (as a client retries).
	const total = 240
	var sent atomic.Int64
	var mu sync.Mutex
	errs := []error{}
	var wg sync.WaitGroup
	for k, n := range nodes {
		wg.Go(func() {
			for i := k; i < total; i += 3 {
				r := login(fmt.Sprintf("M%03d", i), fmt.Sprintf("C%04d", i%50), at.Add(2*time.Hour+time.Duration(i)*time.Second))
				target := n
				var d event.Decision
				var err error
				for range 2 {
					d, err = target.node.Decide(ctx, r)
					if err == nil {
						break
					}
					target = a // the client's retry on another node
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", r.ID, err))
				} else {
					decisions[r.ID] = d
				}
				mu.Unlock()
				sent.Add(1)
			}
		})
	}
	waitFor(t, 30*time.Second, "half the records decided", func() bool { return sent.Load() >= total/2 })
	c.node.Kill()
	c.dead = true
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d records got no decision: %v", len(errs), errs[0])
	}
	waitFor(t, 20*time.Second, "the survivors owning every partition", func() bool {
		return a.node.Ready() && b.node.Ready() && len(a.node.Owned())+len(b.node.Owned()) == parts
	})
	// One more on every account after the failover: each survivor
	// answers for every partition.
	for i := range 50 {
		r := login(fmt.Sprintf("P%03d", i), fmt.Sprintf("C%04d", i), at.Add(3*time.Hour))
		d, err := nodes[i%2].node.Decide(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if d.Node == "c" {
			t.Fatalf("%s decided by the dead node", r.ID)
		}
		decisions[r.ID] = d
	}
	if !refused(a) || !refused(b) {
		t.Error("the freeze or halt set before the kill does not hold on a survivor")
	}
	d, err := b.node.Decide(ctx, login("F1", "frozen-1", at.Add(3*time.Hour)))
	if err != nil || !slices.Contains(d.Reasons, "account_frozen") {
		t.Errorf("a login of the frozen account after the failover: %+v, %v", d, err)
	}
	if err == nil {
		decisions[d.Event] = d
	}

	// The records topic holds each decision once, as answered.
	actx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	count, by, err := kafkacluster.Decisions(actx, brokers, "t")
	if err != nil {
		t.Fatal(err)
	}
	if len(count) != len(decisions) {
		t.Errorf("the topic holds decisions on %d records, the clients got %d", len(count), len(decisions))
	}
	for id, d := range decisions {
		if count[id] != 1 {
			t.Errorf("%s decided %d times in the topic", id, count[id])
		} else if by[id] != d.Node {
			t.Errorf("%s: the topic says %s decided, the answer says %s", id, by[id], d.Node)
		}
	}
	t.Logf("%d records decided once each; phase 1 by %v; after the kill a owns %v, b owns %v", len(decisions), deciders, a.node.Owned(), b.node.Owned())
}

// settle starts nodes and waits until each is ready and every partition
// has an owner among them.
func settle(t *testing.T, nodes ...*testNode) {
	t.Helper()
	waitFor(t, 20*time.Second, "every node ready and every partition owned", func() bool {
		owned := 0
		for _, n := range nodes {
			if !n.node.Ready() {
				return false
			}
			owned += len(n.node.Owned())
		}
		return owned == parts
	})
}

func owner(nodes []*testNode, p int) *testNode {
	for _, n := range nodes {
		if slices.Contains(n.node.Owned(), p) {
			return n
		}
	}
	return nil
}

// TestKafkaClusterWatchtowerAlertsOnce: every node's watchtower reads the
// whole records topic and raises the same alert, but only the owner of
// the alert's partition carries it out; when that node dies, the node
// that takes the partition over finds the alert in the alerts topic and
// does not carry it out again.
func TestKafkaClusterWatchtowerAlertsOnce(t *testing.T) {
	brokers := kafka(t)
	ctx := context.Background()
	nodes := []*testNode{newNode(t, brokers, "a", nil), newNode(t, brokers, "b", nil), newNode(t, brokers, "c", nil)}
	for _, n := range nodes {
		start(t, n)
	}
	settle(t, nodes...)
	// Accounts acting from one address with no device: the watchtower
	// recognises a gateway (client_context_missing, an alert of no
	// instrument and no account: partition 0's).
	const sent = 6
	for i := range sent {
		r := login(fmt.Sprintf("G%d", i), fmt.Sprintf("GW%d", i), at.Add(time.Duration(i)*time.Second))
		r.Device, r.IP = "", "198.51.100.77"
		if _, err := nodes[i%3].node.Decide(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "every watchtower reading every record", func() bool {
		for _, n := range nodes {
			if kafkacluster.Watched(n.node) < sent {
				return false
			}
		}
		return true
	})
	gateway := func(ns []*testNode) (k int, by []string) {
		for _, n := range ns {
			n.sink.mu.Lock()
			for _, a := range n.sink.alerts {
				if a.Kind == surveil.KindClientContext {
					k++
					by = append(by, n.name)
				}
			}
			n.sink.mu.Unlock()
		}
		return k, by
	}
	first := owner(nodes, 0)
	if k, by := gateway(nodes); k != 1 || by[0] != first.name {
		t.Fatalf("gateway alert carried out %d times, by %v: want once, by %s (partition 0's owner)", k, by, first.name)
	}
	first.node.Kill()
	first.dead = true
	var live []*testNode
	for _, n := range nodes {
		if n != first {
			live = append(live, n)
		}
	}
	settle(t, live...)
	waitFor(t, 10*time.Second, "the handover's held alerts handled", func() bool {
		return kafkacluster.Held(owner(live, 0).node) == 0
	})
	if k, by := gateway(nodes); k != 1 {
		t.Fatalf("after the failover the gateway alert was carried out %d times (by %v): want once", k, by)
	}
}

// TestKafkaClusterLeaveHandsOver: a node that leaves gracefully hands its
// partitions over at once (its session, 60 s, never times out here), and
// the node that takes them answers a retry of a record the leaver decided
// with the leaver's decision.
func TestKafkaClusterLeaveHandsOver(t *testing.T) {
	brokers := kafka(t)
	ctx := context.Background()
	a := newNodeSession(t, brokers, "a", nil, time.Minute)
	b := newNodeSession(t, brokers, "b", nil, time.Minute)
	start(t, a)
	start(t, b)
	settle(t, a, b)
	byB := map[string]event.Decision{}
	for i := range 30 {
		r := login(fmt.Sprintf("H%02d", i), fmt.Sprintf("HA%02d", i), at.Add(time.Duration(i)*time.Second))
		d, err := b.node.Decide(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if d.Node == "b" {
			byB[r.ID] = d
		}
	}
	if len(byB) == 0 {
		t.Fatal("b decided nothing")
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.node.Leave(lctx); err != nil {
		t.Fatal(err)
	}
	b.dead = true
	waitFor(t, 15*time.Second, "a owning every partition after b left", func() bool { return a.node.Ready() && len(a.node.Owned()) == parts })
	for id, d := range byB {
		i := 0
		fmt.Sscanf(id, "H%d", &i)
		r := login(id, fmt.Sprintf("HA%02d", i), at.Add(time.Duration(i)*time.Second))
		again, err := a.node.Decide(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if !sameDecision(again, d) {
			t.Fatalf("retry of %s after b left: %+v, b decided %+v", id, again, d)
		}
	}
	count, _, err := kafkacluster.Decisions(lctx, brokers, "t")
	if err != nil {
		t.Fatal(err)
	}
	for id, k := range count {
		if k != 1 {
			t.Errorf("%s decided %d times in the topic", id, k)
		}
	}
}
