package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/cluster"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/kafkacluster"
	"github.com/kabuto-sec/kabuto/internal/server"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// clusterOptions are the flags of kabuto serve that make it a cluster node.
type clusterOptions struct {
	url, node, name string
	partitions      int
}

// clusterFlags registers the cluster's flags on fs.
func clusterFlags(fs *flag.FlagSet, o *clusterOptions) {
	fs.StringVar(&o.url, "cluster", "", "run as one node of a cluster on this backbone: a NATS JetStream server (nats://HOST:4222) or Kafka brokers (kafka://HOST:9092[,HOST:9092…]); every node shares the --db postgres://… database")
	fs.StringVar(&o.node, "node", "", "this node's name in the cluster, unique (default: the host name and the --addr port)")
	fs.StringVar(&o.name, "cluster-name", "kabuto", "the cluster's name: it prefixes its streams, buckets and subjects on the NATS server, or its topics and group on Kafka")
	fs.IntVar(&o.partitions, "partitions", 16, "guard and watchtower partitions of the cluster (the same on every node)")
}

// clusterNode is a running cluster node, on NATS JetStream
// (cluster.Node) or Kafka (kafkacluster.Node), as kabuto serve sees it.
type clusterNode interface {
	Leave(ctx context.Context) error
	Handler(next http.Handler, authorized func(*http.Request) bool) http.Handler
}

// joinCluster makes a running app one node of the cluster: records go to
// the streams (or topics), each is decided by its account's owner, halts
// and freezes reach every node. The --cluster URL's scheme picks the
// backbone: nats:// or kafka://. The node runs until ctx ends; Leave hands
// its partitions over.
func joinCluster(ctx context.Context, a *app, o clusterOptions, addr string, log *slog.Logger) (clusterNode, error) {
	if a.db.Dialect != store.Postgres {
		return nil, usageError{errors.New("--cluster needs --db postgres://…: every node shares the database")}
	}
	name := o.node
	if name == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(addr)
		name = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
				return r
			}
			return '-'
		}, host+"-"+port)
		if len(name) > 32 {
			name = name[len(name)-32:]
		}
	}
	if kafkacluster.IsURL(o.url) {
		brokers, err := kafkacluster.ParseURL(o.url)
		if err != nil {
			return nil, usageError{fmt.Errorf("--cluster: %w", err)}
		}
		ref, err := referenceRecords(ctx, a.db)
		if err != nil {
			return nil, err
		}
		node, err := kafkacluster.New(ctx, kafkacluster.Config{Brokers: brokers, Node: name, Cluster: o.name, Partitions: o.partitions,
			Pipeline: a.pipe, OnAlert: a.pipe.OnAlert, Reference: ref, Log: log})
		if err != nil {
			return nil, fmt.Errorf("--cluster %s: %w", o.url, err)
		}
		if err := node.Start(ctx); err != nil {
			node.Kill()
			return nil, fmt.Errorf("--cluster %s: %w", o.url, err)
		}
		log.Info("cluster node started", "node", name, "kafka", strings.Join(brokers, ","), "cluster", o.name, "partitions", o.partitions)
		return node, nil
	}
	if scheme, _, ok := strings.Cut(strings.ToLower(o.url), "://"); ok && scheme != "nats" && scheme != "tls" && scheme != "ws" && scheme != "wss" {
		return nil, usageError{fmt.Errorf("--cluster %q: want nats://HOST:4222 (NATS JetStream) or kafka://HOST:9092[,HOST:9092…] (Kafka)", o.url)}
	}
	nc, err := nats.Connect(o.url, nats.Name("kabuto "+name), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("--cluster %s: %w", o.url, err)
	}
	ref, err := referenceRecords(ctx, a.db)
	if err != nil {
		nc.Close()
		return nil, err
	}
	node, err := cluster.New(ctx, cluster.Config{NATS: nc, Node: name, Cluster: o.name, Partitions: o.partitions,
		Pipeline: a.pipe, OnAlert: a.pipe.OnAlert, Reference: ref, Log: log})
	if err != nil {
		nc.Close()
		return nil, err
	}
	if err := node.Start(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	log.Info("cluster node started", "node", name, "nats", o.url, "cluster", o.name, "partitions", o.partitions)
	return node, nil
}

// referenceRecords returns the instrument records of the database, in
// the order pipeline.Reference gives them to a node's own guard: every
// watchtower partition of the node learns them too.
func referenceRecords(ctx context.Context, db *store.DB) ([]*event.Record, error) {
	rows, err := db.QueryContext(ctx, `SELECT body FROM events WHERE type = 'instrument' ORDER BY time_us, id`)
	if err != nil {
		return nil, fmt.Errorf("instruments for the cluster's watchtower: %w", err)
	}
	defer rows.Close()
	var out []*event.Record
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, err
		}
		r, err := event.Decode([]byte(body))
		if err != nil {
			return nil, fmt.Errorf("stored instrument record: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// metricsKey lets through a request with an API key of the metrics or
// admin scope.
func metricsKey(srv *server.Server) func(*http.Request) bool {
	return func(r *http.Request) bool {
		secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			return false
		}
		k, err := srv.CheckKey(r, strings.TrimSpace(secret))
		return err == nil && (k.Has(server.ScopeMetrics) || k.Has(apikey.ScopeAdmin))
	}
}
