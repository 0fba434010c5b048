package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/risk"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// snapshotDay is a day of sign-ins and orders of accounts in a few
// listed issues, with the issues' reference records first.
func snapshotDay(accounts int) (refs, recs []*event.Record, accts []string) {
	at := time.Date(2025, 4, 14, 9, 0, 0, 0, time.FixedZone("JST", 9*3600))
	syms := []string{"7203", "6758", "9984", "8306", "4502"}
	for i, s := range syms {
		refs = append(refs, &event.Record{ID: "ref-" + s, Type: event.TypeInstrument, Time: at, Symbol: s, Name: s, Market: "TSE_PRIME", Currency: "JPY",
			Lot: 100, Price: float64(1000 + 500*i), PriceJPY: float64(1000 + 500*i), ADVShares: 2_000_000})
	}
	for i := range accounts {
		a := fmt.Sprintf("S%05d", i)
		accts = append(accts, a)
		t := at.Add(time.Duration(i) * time.Second)
		recs = append(recs, login("l1-"+a, a, t))
		for k := range 3 {
			side := event.SideBuy
			if k == 2 {
				side = event.SideSell
			}
			recs = append(recs, &event.Record{ID: fmt.Sprintf("o%d-%s", k, a), Type: event.TypeOrder, Time: t.Add(time.Duration(k+1) * time.Minute), Account: a,
				Session: "s-" + a, IP: "203.0.113.7", Device: "d-" + a, UA: "test", Channel: "web", OrderID: fmt.Sprintf("o%d-%s", k, a),
				Symbol: syms[(i+k)%len(syms)], Side: side, Qty: 100, PriceType: "market", AccountKind: "cash", ValueJPY: int64(100_000 * (k + 1))})
		}
		// a second sign-in later in the day, from another network
		l := login("l2-"+a, a, t.Add(3*time.Hour))
		l.IP = "198.51.100.9"
		recs = append(recs, l)
	}
	return refs, recs, accts
}

// probes decides, on a node's engine, a sell of each account's first
// issue and returns each decision with every feature the engine computed
// from the account's profile: two engines with the same profiles answer
// alike.
func probes(n *testNode, accts []string) map[string]string {
	out := map[string]string{}
	at := time.Date(2025, 4, 14, 15, 0, 0, 0, time.FixedZone("JST", 9*3600))
	for _, a := range accts {
		r := &event.Record{ID: "probe-" + a, Type: event.TypeOrder, Time: at, Account: a, Session: "s-" + a, IP: "203.0.113.7", Device: "d-" + a, UA: "test",
			Channel: "web", OrderID: "probe-" + a, Symbol: "7203", Side: event.SideSell, Qty: 100, PriceType: "market", AccountKind: "cash", ValueJPY: 250_000}
		var res risk.Result
		n.pipe.Risk.DecideInto(r, &res, true)
		out[a] = fmt.Sprint(res.Decision.Action, res.Decision.Reasons, res.Features)
	}
	return out
}

// ownsAll waits until n holds and has rebuilt every partition.
func ownsAll(t *testing.T, c *testCluster, n *testNode) {
	t.Helper()
	waitFor(t, 60*time.Second, n.name+" owning every partition", func() bool {
		rs := n.node.Rebuilds()
		return n.node.Ready() && len(rs) == 16
	})
}

// TestClusterSnapshotRebuild: node a decides half a day, saves its guard
// partitions' snapshots, decides the rest and dies. Node b, which loads
// the snapshots and replays only the stream after them, and node c, which
// saves and loads none and replays the whole stream, end with the same
// profile of every account as a had (a probe order of each account gets
// the same decision and the same features on all three); b read fewer
// records;
// and a retry on b of a record decided before the snapshot gets its
// decision without a second one in the stream.
func TestClusterSnapshotRebuild(t *testing.T) {
	c := newTestCluster(t, surveil.DefaultConfig())
	c.snap = time.Hour      // saved here by hand
	c.ttl = 3 * time.Second // a lease lost to a busy machine is taken back from the node's own state, not a snapshot
	ctx := context.Background()
	a := c.add("a")
	c.settle(30 * time.Second)
	refs, recs, accts := snapshotDay(300)
	for _, r := range refs {
		if err := a.node.Observe(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	half := len(recs) / 2
	decided := map[string]event.Decision{}
	for i, r := range recs {
		if i == half {
			k, err := a.node.SaveSnapshots(ctx)
			if err != nil || k != 8 {
				t.Fatalf("saved %d snapshots (%v), want 8", k, err)
			}
		}
		d, err := a.node.Decide(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		decided[r.ID] = d
	}
	want := probes(a, accts)
	a.dead = true
	a.node.Kill()

	check := func(n *testNode, fromSnapshot bool) (secs float64, records uint64) {
		t.Helper()
		ownsAll(t, c, n)
		got := probes(n, accts)
		differ := 0
		for _, acct := range accts {
			if got[acct] != want[acct] {
				if differ == 0 {
					t.Logf("%s: %s decided %s, the node that decided the day %s", n.name, acct, got[acct], want[acct])
				}
				differ++
			}
		}
		if differ > 0 {
			t.Errorf("%s: %d of %d accounts' profiles differ from those of the node that decided the day", n.name, differ, len(accts))
		}
		for _, r := range n.node.Rebuilds() {
			if r.Kind != "guard" {
				continue
			}
			if r.FromSnapshot != fromSnapshot {
				t.Errorf("%s: guard partition %d rebuilt from a snapshot: %v, want %v", n.name, r.Partition, r.FromSnapshot, fromSnapshot)
			}
			secs += r.Seconds
			records += r.Records
		}
		return secs, records
	}
	b := c.add("b")
	snapSecs, snapRecs := check(b, true)
	// A retry of a record decided before the snapshot: its decision,
	// not a second one.
	r := recs[1]
	d, err := b.node.Decide(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if d.Node != "a" || d.Action != decided[r.ID].Action {
		t.Errorf("retry after the failover: %+v, first %+v", d, decided[r.ID])
	}

	c.snap = -1
	cn := c.add("c")
	b.dead = true
	b.node.Kill()
	fullSecs, fullRecs := check(cn, false)
	count, _ := streamDecisions(t, connect(t, c.url), c.name)
	for id, k := range count {
		if k != 1 {
			t.Errorf("%s: %d decisions in the stream", id, k)
		}
	}
	if len(count) != len(recs) {
		t.Errorf("%d decisions in the stream, want %d", len(count), len(recs))
	}
	t.Logf("rebuild of the 8 guard partitions: from the snapshots %.3f s reading %d records; from the whole stream %.3f s reading %d records",
		snapSecs, snapRecs, fullSecs, fullRecs)
	if snapRecs >= fullRecs || fullRecs != uint64(len(recs)) {
		t.Errorf("records read: %d after the snapshots, %d from the whole stream of %d", snapRecs, fullRecs, len(recs))
	}
}
