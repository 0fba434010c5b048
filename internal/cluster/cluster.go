// Package cluster runs Kabuto as one node of several on NATS JetStream, so
// that no single process stands in the order path.
//
// The stream is the backbone. Every decided customer action goes, with its
// decision, to one JetStream stream on the subject
// kabuto.<cluster>.rec.<account partition>.<instrument partition>; the
// reference records (instruments, bars) go to kabuto.<cluster>.rec.ref.<instrument
// partition> of the same stream (one wildcard filter reads an instrument
// partition, as servers before 2.10 need), alerts to a stream of their
// own. Halts, freezes and the watchtower's heat are in a replicated
// key-value bucket that every node
// watches and applies to its guard; the back office (internal/cases) stays
// their one owner and writes through to the bucket (pipeline.Pipeline's
// SetHalt and SetFrozen call Node.SetHalt and Node.SetFrozen).
//
// Ownership. Accounts are hashed into Partitions guard partitions and
// instruments into as many watchtower partitions. A lease in a key-value
// bucket with a time to live says which node owns each; the live nodes
// (another bucket, heartbeats with the same time to live) agree on who
// should own what by rendezvous hashing, so that when a node joins or leaves
// only its share moves. A new owner rebuilds a guard partition's state from
// what it held before plus the records since, or from the partition's
// latest saved snapshot plus the records after it (snapshot.go), or from
// the whole retained stream; then it answers for it. The owner of a
// watchtower partition carries out the alerts of its instruments, raised
// by the node's one watchtower, which reads the whole stream once (an
// account's sells in one instrument and buys in another are one
// pattern): each emission of an alert (a watchtower emits an alert again
// as it grows) once, marked done in the bucket when its halt and freezes
// are in the database. A node that leaves gracefully (Node.Leave)
// saves its snapshots and deletes its leases so that the others take over
// at once; one that dies loses them when they expire.
//
// A cluster decides as one process would. The node's watchtower (which
// learns the instruments first, Config.Reference) feeds the node's
// engine each record's heat, halts, freezes and bars in the stream's
// order. Before deciding, a node waits until its watchtower has read the
// stream up to its latest record and every halt or freeze raised so far
// is carried out (catchUp; Config.Loose skips the wait), and a reference
// record is stored before Observe returns: a decision sees everything
// stored before it was asked for, on whichever node it was. While the
// owner of a watchtower partition is dead and its lease not yet expired,
// the halts and freezes its alerts call for are in every node's guard at
// once (each node's watchtower raised them) but reach the database, and
// so a brokerage's own halt list, only when the new owner takes the
// partition; decisions meanwhile wait catchUpWait for them, then decide.
//
// Any node answers any request: Decide on a node that does not own the
// account's partition forwards the record to the owner by NATS request and
// reply, and the decision says which node decided (event.Decision.Node).
// Each record id is decided once: the owner keeps the ids of its partition
// (rebuilt from the stream) and answers a retry with the decision made, and
// the stream drops a second copy of a message id (Nats-Msg-Id).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
)

// Config configures a Node.
type Config struct {
	// NATS is the node's own connection to the NATS server (JetStream on).
	NATS *nats.Conn
	// Node names this node; unique in the cluster.
	Node string
	// Cluster names the cluster: it prefixes every stream, bucket and
	// subject, so several clusters can share a NATS server (default "kabuto").
	Cluster string
	// Partitions is the number of guard partitions (accounts) and of
	// watchtower partitions (instruments) (default 16). Every node of a
	// cluster must use the same number.
	Partitions int
	// LeaseTTL is how long a partition's lease and a node's heartbeat last
	// without renewal (default 3 s); leases are renewed every third of it.
	LeaseTTL time.Duration
	// Retain is how long the streams keep records (default 7 days): the
	// most a new owner reads to rebuild a partition.
	Retain time.Duration
	// Replicas is the number of copies of every stream and bucket in a
	// NATS cluster (default 1, for a single server).
	Replicas int
	// SnapshotEvery is how often the node saves the state of the guard
	// partitions it owns to the cluster's object store (default 1 min); a
	// new owner loads the latest and replays only the stream after it.
	// Negative: no snapshot is saved or loaded (every rebuild reads the
	// whole retained stream).
	SnapshotEvery time.Duration
	// Pipeline is the node's guard: its risk engine decides the actions of
	// the accounts the node owns, its sink stores decisions and alerts, its
	// watchtower configuration is that of every instrument partition.
	Pipeline *pipeline.Pipeline
	// OnAlert, when set, carries out an alert raised by a watchtower
	// partition this node owns (the back office: halts, freezes, cases).
	// Unset, the node writes the alert's halt or freezes to the bucket
	// itself.
	OnAlert func(ctx context.Context, a event.Alert)
	// Reference are the reference records (instruments) the node's
	// pipeline was given at start (pipeline.Reference feeds a single
	// process the database's): every watchtower partition learns them
	// before it reads the stream, as a single process's watchtower does,
	// so that it knows each issue's previous close, market and volume
	// from the first order (without them no market-walk alert is raised).
	// Instruments listed later reach every node through the stream.
	Reference []*event.Record
	// Loose lets the node decide on what its watchtower has read of the
	// stream so far. By default a node first waits until its watchtower
	// has read the stream up to its latest record (the time its consumer
	// takes to get there, and, when other nodes are live, a stream-info
	// request shared by the decisions waiting for one), so that every
	// decision sees the heat, halts, freezes and bars of every record
	// stored before it, as in a single process. Loose is faster; its decisions may miss what was stored a
	// few milliseconds before them.
	Loose bool
	// Log receives the node's diagnostics (default slog.Default()).
	Log *slog.Logger
	// Now tells the time of metrics (default clock.Real).
	Now func() time.Time
}

var clusterName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func (c *Config) defaults() error {
	if c.NATS == nil {
		return errors.New("cluster: no NATS connection")
	}
	if c.Pipeline == nil {
		return errors.New("cluster: no pipeline")
	}
	if c.Cluster == "" {
		c.Cluster = "kabuto"
	}
	if !clusterName.MatchString(c.Cluster) {
		return fmt.Errorf("cluster: name %q: want 1 to 32 letters, digits, - or _", c.Cluster)
	}
	if !clusterName.MatchString(c.Node) {
		return fmt.Errorf("cluster: node name %q: want 1 to 32 letters, digits, - or _", c.Node)
	}
	if c.Partitions == 0 {
		c.Partitions = 16
	}
	if c.Partitions < 1 || c.Partitions > 1024 {
		return fmt.Errorf("cluster: %d partitions: want 1 to 1024", c.Partitions)
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = 3 * time.Second
	}
	if c.LeaseTTL < time.Second {
		return fmt.Errorf("cluster: lease TTL %v: want at least 1s", c.LeaseTTL)
	}
	if c.Retain == 0 {
		c.Retain = 7 * 24 * time.Hour
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = time.Minute
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = clock.Real{}.Now
	}
	return nil
}

// Node is one Kabuto node of a cluster. It implements guard.Guard: Decide
// and Observe route each record to the node that owns its account.
type Node struct {
	cfg  Config
	nc   *nats.Conn
	js   jetstream.JetStream
	pipe *pipeline.Pipeline
	log  *slog.Logger

	records, alerts  jetstream.Stream
	controls, leases jetstream.KeyValue
	members          jetstream.KeyValue
	snaps            jetstream.ObjectStore // nil when snapshots are off

	guards  []*guardPart
	watches []*watchPart

	mu         sync.Mutex
	owners     map[string]string // lease key → node, as the lease bucket says
	memberList []string          // the live nodes at the last lease round
	heat       map[string]int    // last heat written per symbol by this node
	started    bool

	// What the node's engine took from the stream through its watchtower
	// partitions (feed, in watch.go): every record's heat, halts and
	// freezes, and the reference records (also read by readReference).
	feedMu    sync.Mutex
	refSeq    uint64        // last reference record in the engine
	alertFrom uint64        // alerts of records up to here are the bucket's
	fed       chan struct{} // closed when watchSeq moves or an alert is carried out, for catchUp
	watchSeq  atomic.Uint64 // last record whose heat and alerts are in the engine
	// Alerts that halt or freeze, by their cluster id: those seen
	// carried out (a done key in the bucket), and those the node's
	// watchtower raised that are not yet (catchUp waits for them).
	carried, uncarried map[string]bool
	// view is the node's own watchtower over the whole stream, read
	// once: it feeds the engine, answers held proceeds, and raises the
	// alerts the node carries out for the watchtower partitions it owns.
	view *watchPart
	// The alerts the view raised in the alerts stream's duplicate window
	// (for a partition's new owner), and the emissions this node raised
	// (stored and carried out) among them.
	// acked is the last stream sequence acknowledged to this node for a
	// record it stored; probe* coalesce catchUp's stream-info requests.
	acked     atomic.Uint64
	probeMu   sync.Mutex
	probeNext *probe
	probing   bool

	raiseMu sync.Mutex
	recent  []emitted
	raised  map[string]bool
	raiseQ  chan emitted // to raiseLoop

	ticked        atomic.Bool // the first lease round is done
	controlsReady atomic.Bool // the bucket's values are applied
	refReady      atomic.Bool // the reference records are read
	leaving       atomic.Bool
	stop          context.CancelFunc
	done          sync.WaitGroup

	metrics *metrics
}

// New connects a node to the cluster's streams and buckets, creating them
// when missing. Start runs it.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	log := cfg.Log.With("node", cfg.Node)
	js, err := jetstream.New(cfg.NATS, jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
		log.Error("record not stored in the stream", "subject", m.Subject, "id", m.Header.Get(jetstream.MsgIDHeader), "err", err)
	}))
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, nc: cfg.NATS, js: js, pipe: cfg.Pipeline, log: log,
		owners: map[string]string{}, heat: map[string]int{}, fed: make(chan struct{}),
		carried: map[string]bool{}, uncarried: map[string]bool{}, raised: map[string]bool{}, raiseQ: make(chan emitted, 1024), view: &watchPart{id: -1, key: "view"}}
	pre := n.subject("")
	n.records, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        n.streamName("RECORDS"),
		Description: "Kabuto: every record with its decision, by account and instrument partition",
		Subjects:    []string{pre + "rec.>"},
		MaxAge:      cfg.Retain,
		Duplicates:  10 * time.Minute,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: records stream: %w", err)
	}
	n.alerts, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        n.streamName("ALERTS"),
		Description: "Kabuto: surveillance alerts, by instrument partition",
		Subjects:    []string{pre + "alert.>"},
		MaxAge:      cfg.Retain,
		Duplicates:  10 * time.Minute,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: alerts stream: %w", err)
	}
	n.controls, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: n.bucketName("controls"), Description: "Kabuto: halts, freezes and heat, written through by the back office",
		History: 5, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: controls bucket: %w", err)
	}
	n.leases, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: n.bucketName("leases"), Description: "Kabuto: which node owns each partition",
		TTL: cfg.LeaseTTL, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: leases bucket: %w", err)
	}
	n.members, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: n.bucketName("members"), Description: "Kabuto: the live nodes",
		TTL: cfg.LeaseTTL, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: members bucket: %w", err)
	}
	if cfg.SnapshotEvery > 0 {
		n.snaps, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket: n.bucketName("snapshots"), Description: "Kabuto: the guard partitions' saved state, with the stream sequence each covers",
			Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("cluster: snapshots bucket: %w", err)
		}
	}
	for i := range cfg.Partitions {
		n.guards = append(n.guards, &guardPart{id: i, key: fmt.Sprintf("g.%d", i), decided: map[string]*decided{}, accounts: map[string]struct{}{}})
		n.watches = append(n.watches, &watchPart{id: i, key: fmt.Sprintf("w.%d", i)})
	}
	n.metrics = newMetrics(n)
	return n, nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Node }

func (n *Node) streamName(s string) string { return "KABUTO_" + n.cfg.Cluster + "_" + s }
func (n *Node) bucketName(s string) string { return "kabuto_" + n.cfg.Cluster + "_" + s }
func (n *Node) subject(s string) string    { return "kabuto." + n.cfg.Cluster + "." + s }

// Start runs the node until ctx ends or Leave or Kill is called: its
// heartbeat and leases, the controls it applies, the reference records.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	if n.started {
		n.mu.Unlock()
		return errors.New("cluster: node started twice")
	}
	n.started = true
	n.mu.Unlock()
	n.pipe.Cluster = n
	ctx, n.stop = context.WithCancel(ctx)
	// Alerts of the records stored before now are carried out already:
	// their halts and freezes come from the bucket.
	info, err := n.records.Info(ctx)
	if err != nil {
		return fmt.Errorf("cluster: records stream: %w", err)
	}
	n.feedMu.Lock()
	n.alertFrom = info.State.LastSeq
	n.feedMu.Unlock()
	// The reference records before the controls: the engine's instrument
	// table then lists the instruments in the stream's order, as on every
	// node, and a saved snapshot (which names instruments by their place
	// in it) loads anywhere.
	if err := n.readReference(ctx); err != nil {
		return err
	}
	if err := waitFlag(ctx, &n.refReady); err != nil {
		return err
	}
	if err := n.watchControls(ctx); err != nil {
		return err
	}
	n.done.Add(1)
	go func() {
		defer n.done.Done()
		n.raiseLoop(ctx)
	}()
	n.done.Add(1)
	go func() {
		defer n.done.Done()
		n.readStream(ctx)
		<-ctx.Done()
		n.view.stopConsume()
	}()
	if err := n.watchLeases(ctx); err != nil {
		return err
	}
	n.done.Add(1)
	go func() {
		defer n.done.Done()
		n.leaseLoop(ctx)
	}()
	if n.snaps != nil {
		n.done.Add(1)
		go func() {
			defer n.done.Done()
			n.snapshotLoop(ctx)
		}()
	}
	return nil
}

// Ready reports whether the node holds the state of every partition it
// should own: the controls and reference records are read, and each
// partition the cluster gives it is leased and rebuilt.
func (n *Node) Ready() bool {
	if !n.ticked.Load() || !n.controlsReady.Load() || !n.refReady.Load() || !n.view.ready.Load() || n.leaving.Load() {
		return false
	}
	members := n.liveMembers()
	for _, g := range n.guards {
		if n.wants(members, g.key) && !g.ready.Load() {
			return false
		}
	}
	for _, w := range n.watches {
		if n.wants(members, w.key) && !w.ready.Load() {
			return false
		}
	}
	return true
}

// Kill stops the node at once, as a crash would: no lease is given back
// (they expire), nothing is flushed. Tests use it to fail a node over.
func (n *Node) Kill() {
	if n.stop != nil {
		n.stop()
	}
	for _, g := range n.guards {
		g.mu.Lock()
		g.deactivate()
		g.mu.Unlock()
	}
	for _, w := range n.watches {
		w.stopConsume()
	}
	n.nc.Close()
}

// Leave hands the node's partitions over before it exits: it stops
// answering for them, saves their snapshots, deletes its leases and its
// heartbeat so that the other nodes take them at once, and stops.
func (n *Node) Leave(ctx context.Context) error {
	n.leaving.Store(true)
	if n.stop != nil {
		n.stop()
	}
	n.done.Wait()
	var errs []error
	for _, g := range n.guards {
		if g.held {
			errs = append(errs, n.releaseGuard(ctx, g))
		}
	}
	for _, w := range n.watches {
		if w.held {
			errs = append(errs, n.releaseWatch(ctx, w))
		}
	}
	if err := n.members.Delete(ctx, n.cfg.Node); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		errs = append(errs, err)
	}
	n.log.Info("left the cluster; partitions handed over")
	return errors.Join(errs...)
}

// accountPart returns the guard partition of an account.
func (n *Node) accountPart(account string) int {
	return int(hash32(account) % uint32(n.cfg.Partitions))
}

// instrumentPart returns the watchtower partition of a record: its
// instrument's, or, for a record of no instrument, its account's.
func (n *Node) instrumentPart(r *event.Record) int {
	if r.Symbol != "" {
		return int(hash32(r.Symbol) % uint32(n.cfg.Partitions))
	}
	return int(hash32(r.Account) % uint32(n.cfg.Partitions))
}

func hash32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// Delete removes a cluster's streams and buckets from the NATS server:
// every record, decision, alert, halt, freeze and lease it kept. Tests use
// it to clean up; an operator, to start a cluster afresh.
func Delete(ctx context.Context, nc *nats.Conn, cluster string) error {
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range []string{"RECORDS", "ALERTS"} {
		if err := js.DeleteStream(ctx, "KABUTO_"+cluster+"_"+s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			errs = append(errs, err)
		}
	}
	for _, b := range []string{"controls", "leases", "members"} {
		if err := js.DeleteKeyValue(ctx, "kabuto_"+cluster+"_"+b); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			errs = append(errs, err)
		}
	}
	if err := js.DeleteObjectStore(ctx, "kabuto_"+cluster+"_snapshots"); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) && !errors.Is(err, jetstream.ErrBucketNotFound) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// waitFlag waits until flag is set, looking every 20 ms, or until ctx
// ends (its error).
func waitFlag(ctx context.Context, flag *atomic.Bool) error {
	for !flag.Load() {
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
