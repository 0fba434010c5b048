package kafkacluster

import (
	"encoding/json"
	"net/http"
	"time"
)

// Partition is what a node knows of one guard partition it owns.
type Partition struct {
	Partition      int     `json:"partition"`
	RebuildSeconds float64 `json:"rebuild_seconds"` // the last rebuild on this node
	Replayed       uint64  `json:"replayed"`        // records read by this node's rebuilds, in all
	Served         uint64  `json:"served"`          // forwarded requests answered
}

// Partitions returns the guard partitions this node owns.
func (n *Node) Partitions() []Partition {
	var out []Partition
	for _, g := range n.guards {
		if g.ready.Load() {
			out = append(out, Partition{Partition: int(g.id), RebuildSeconds: time.Duration(g.rebuild.Load()).Seconds(),
				Replayed: g.replayed.Load(), Served: g.served.Load()})
		}
	}
	return out
}

// Handler wraps a node's HTTP handler: /readyz answers 503 until the node
// holds its partitions' state, and, for a caller that authorized lets
// through, GET /api/v1/cluster tells the node's view of the cluster.
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
		case "/api/v1/cluster":
			w.Header().Set("Content-Type", "application/json")
			if authorized == nil || !authorized(r) {
				w.WriteHeader(http.StatusUnauthorized)
				json.NewEncoder(w).Encode(map[string]string{"error": "unauthenticated", "message": "send an API key with the metrics or admin scope as Authorization: Bearer kb_…"})
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"node": n.cfg.Node, "cluster": n.cfg.Cluster, "backbone": "kafka", "ready": n.Ready(),
				"partitions": n.cfg.Partitions, "owned": n.Partitions(), "watchtower_ready": n.watchReady.Load(),
				"routed": map[string]uint64{"local": n.local.Load(), "forwarded": n.fwd.Load()}})
			return
		}
		next.ServeHTTP(w, r)
	})
}
