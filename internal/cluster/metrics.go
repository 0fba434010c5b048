package cluster

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the node's figures per partition, for Prometheus.
type metrics struct {
	n                *Node
	local, forwarded atomic.Uint64
	catchUpLate      atomic.Uint64 // decisions made before the watchtower caught up
	reg              *prometheus.Registry

	owned, owner, lag, rebuild, served, ready, decided *prometheus.Desc
	fromSnap, replayed, snapSeq, snapBytes             *prometheus.Desc
	late                                               *prometheus.Desc
}

func newMetrics(n *Node) *metrics {
	m := &metrics{n: n, reg: prometheus.NewRegistry()}
	m.owned = prometheus.NewDesc("kabuto_cluster_partition_owned", "1 when this node owns and has rebuilt the partition.", []string{"kind", "partition"}, nil)
	m.owner = prometheus.NewDesc("kabuto_cluster_partition_owner", "1 for the node that holds the partition's lease, as the lease bucket says.", []string{"kind", "partition", "owner"}, nil)
	m.lag = prometheus.NewDesc("kabuto_cluster_partition_lag", "Records of the stream the partition's watchtower on this node has not read yet.", []string{"kind", "partition"}, nil)
	m.rebuild = prometheus.NewDesc("kabuto_cluster_partition_rebuild_seconds", "How long this node took to rebuild the partition the last time it took it.", []string{"kind", "partition"}, nil)
	m.served = prometheus.NewDesc("kabuto_cluster_partition_forwarded_total", "Requests of other nodes this node answered for the partition.", []string{"kind", "partition"}, nil)
	m.ready = prometheus.NewDesc("kabuto_cluster_ready", "1 when the node holds the state of every partition it should own.", nil, nil)
	m.decided = prometheus.NewDesc("kabuto_cluster_routed_total", "Records this node took, decided here (local) or by the owner (forwarded).", []string{"where"}, nil)
	m.fromSnap = prometheus.NewDesc("kabuto_cluster_partition_rebuild_from_snapshot", "1 when the last rebuild of the partition on this node started from a saved snapshot.", []string{"kind", "partition"}, nil)
	m.replayed = prometheus.NewDesc("kabuto_cluster_partition_rebuild_records", "Records of the stream this node's rebuilds of the partition read (after the snapshot, if any), in all.", []string{"kind", "partition"}, nil)
	m.snapSeq = prometheus.NewDesc("kabuto_cluster_partition_snapshot_seq", "The stream sequence the partition's last snapshot saved or loaded here covers.", []string{"kind", "partition"}, nil)
	m.snapBytes = prometheus.NewDesc("kabuto_cluster_partition_snapshot_bytes", "Size of the partition's last snapshot saved by this node.", []string{"kind", "partition"}, nil)
	m.late = prometheus.NewDesc("kabuto_cluster_decided_before_catch_up_total", "Decisions (or batches) this node made before its watchtower had read the stream up to them (or its halts and freezes were carried out), after waiting up to 2 s.", nil, nil)
	m.reg.MustRegister(m)
	return m
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.owned, m.owner, m.lag, m.rebuild, m.served, m.ready, m.decided, m.fromSnap, m.replayed, m.snapSeq, m.snapBytes, m.late} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	n := m.n
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	for _, g := range n.guards {
		p := strconv.Itoa(g.id)
		ch <- prometheus.MustNewConstMetric(m.owned, prometheus.GaugeValue, b(g.ready.Load()), "guard", p)
		ch <- prometheus.MustNewConstMetric(m.rebuild, prometheus.GaugeValue, time.Duration(g.rebuild.Load()).Seconds(), "guard", p)
		ch <- prometheus.MustNewConstMetric(m.served, prometheus.CounterValue, float64(g.served.Load()), "guard", p)
		g.mu.Lock()
		from, seq := g.fromSnap, g.snapSeq
		g.mu.Unlock()
		ch <- prometheus.MustNewConstMetric(m.fromSnap, prometheus.GaugeValue, b(from), "guard", p)
		ch <- prometheus.MustNewConstMetric(m.replayed, prometheus.GaugeValue, float64(g.replayed.Load()), "guard", p)
		ch <- prometheus.MustNewConstMetric(m.snapSeq, prometheus.GaugeValue, float64(seq), "guard", p)
		ch <- prometheus.MustNewConstMetric(m.snapBytes, prometheus.GaugeValue, float64(g.snapBytes.Load()), "guard", p)
	}
	for _, w := range n.watches {
		p := strconv.Itoa(w.id)
		ch <- prometheus.MustNewConstMetric(m.owned, prometheus.GaugeValue, b(w.ready.Load()), "watch", p)
		ch <- prometheus.MustNewConstMetric(m.rebuild, prometheus.GaugeValue, time.Duration(w.rebuild.Load()).Seconds(), "watch", p)
		lag := 0.0
		if w.held {
			lag = float64(n.view.lag.Load()) // the node's one watchtower reads for all
		}
		ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, lag, "watch", p)
	}
	for _, o := range n.Owners() {
		ch <- prometheus.MustNewConstMetric(m.owner, prometheus.GaugeValue, 1, o.Kind, strconv.Itoa(o.Partition), o.Node)
	}
	ch <- prometheus.MustNewConstMetric(m.ready, prometheus.GaugeValue, b(n.Ready()))
	ch <- prometheus.MustNewConstMetric(m.decided, prometheus.CounterValue, float64(m.local.Load()), "local")
	ch <- prometheus.MustNewConstMetric(m.decided, prometheus.CounterValue, float64(m.forwarded.Load()), "forwarded")
	ch <- prometheus.MustNewConstMetric(m.late, prometheus.CounterValue, float64(m.catchUpLate.Load()))
}

// Owner is who holds one partition's lease.
type Owner struct {
	Kind      string `json:"kind"` // guard or watch
	Partition int    `json:"partition"`
	Node      string `json:"node"`
}

// Owners returns the holder of every partition's lease, as this node last
// saw the lease bucket.
func (n *Node) Owners() []Owner {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []Owner
	for i := range n.cfg.Partitions {
		for _, k := range []struct{ kind, key string }{{"guard", "g." + strconv.Itoa(i)}, {"watch", "w." + strconv.Itoa(i)}} {
			if o, ok := n.owners[k.key]; ok {
				out = append(out, Owner{Kind: k.kind, Partition: i, Node: o})
			}
		}
	}
	return out
}

// Handler wraps a node's HTTP handler: /readyz answers 503 until the node
// holds its partitions' state, and, for a caller that authorized lets
// through, GET /api/v1/cluster tells the node's view of the cluster and
// GET /api/v1/cluster/metrics the per-partition metrics.
func (n *Node) Handler(next http.Handler, authorized func(*http.Request) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		switch r.URL.Path {
		case "/readyz":
			if !n.Ready() {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				json.NewEncoder(w).Encode(map[string]string{"error": "unavailable", "message": "this node does not hold its partitions' state yet", "node": n.cfg.Node})
				return
			}
		case "/api/v1/cluster", "/api/v1/cluster/metrics":
			if authorized == nil || !authorized(r) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				json.NewEncoder(w).Encode(map[string]string{"error": "unauthenticated", "message": "send an API key with the metrics or admin scope as Authorization: Bearer kb_…"})
				return
			}
			if r.URL.Path == "/api/v1/cluster/metrics" {
				promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"node": n.cfg.Node, "cluster": n.cfg.Cluster, "ready": n.Ready(),
				"members": n.liveMembers(), "partitions": n.cfg.Partitions, "owners": n.Owners()})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Rebuild is how a node last rebuilt one partition it owns.
type Rebuild struct {
	Kind         string  `json:"kind"` // guard or watch
	Partition    int     `json:"partition"`
	Seconds      float64 `json:"seconds"`
	FromSnapshot bool    `json:"from_snapshot"`
	Records      uint64  `json:"records"` // read from the stream by this node's rebuilds, in all (guard partitions)
}

// Rebuilds returns how this node last rebuilt each partition it holds
// the state of.
func (n *Node) Rebuilds() []Rebuild {
	var out []Rebuild
	for _, g := range n.guards {
		if !g.ready.Load() {
			continue
		}
		g.mu.Lock()
		from := g.fromSnap
		g.mu.Unlock()
		out = append(out, Rebuild{Kind: "guard", Partition: g.id, Seconds: time.Duration(g.rebuild.Load()).Seconds(), FromSnapshot: from, Records: g.replayed.Load()})
	}
	for _, w := range n.watches {
		if w.ready.Load() {
			out = append(out, Rebuild{Kind: "watch", Partition: w.id, Seconds: time.Duration(w.rebuild.Load()).Seconds()})
		}
	}
	return out
}
