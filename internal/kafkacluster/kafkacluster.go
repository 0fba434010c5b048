// Package kafkacluster runs Kabuto as one node of several on Apache Kafka
// (with github.com/twmb/franz-go), for brokerages that already run Kafka.
// It is the Kafka twin of internal/cluster (NATS JetStream): a Node
// implements pipeline.Cluster and has the same methods (New, Start, Ready,
// Leave, Kill, Decide, DecideBatch, Observe, SetHalt, SetFrozen, Handler),
// so kabuto serve treats both alike; --cluster kafka://HOST:9092 picks it.
//
// Topics (all prefixed kabuto.<cluster>.):
//
//   - records: one Kafka partition per guard partition. Every customer
//     action with its decision (header Kabuto-Decision) and every account
//     record (fills, snapshots) goes to the partition of its account
//     (fnv32a(account) mod Partitions), written by that partition's owner
//     with an idempotent producer. The topic is the guard's durable state.
//   - reference: one partition; instruments and bars (records of no
//     account). Every node reads it from the start into its engine.
//   - controls: one partition, compacted; halts (halt.<symbol>), freezes
//     (freeze.<account>) and the watchtower's heat (heat.<symbol>), the
//     latest value per key. Every node reads it from the start and applies
//     each value to its engine; pipeline.Pipeline's SetHalt and SetFrozen
//     write through to it (Node.SetHalt, Node.SetFrozen), as with the NATS
//     bucket.
//   - alerts: one partition per guard partition; the alerts carried out.
//   - requests: one partition per guard partition; decisions forwarded to
//     a partition's owner.
//   - reply.<node>: one partition per node; the owners' answers to it.
//
// Ownership is a Kafka consumer group (kabuto.<cluster>.guard) on the
// requests topic: whoever the group assigns requests partition p owns
// guard partition p. Each node is a static member (its instance id is its
// node name), so a node that restarts under the same name gets its
// partitions back without a rebalance, and one that dies keeps them until
// its session times out (Config.SessionTimeout); then the group gives them
// to the survivors. In OnPartitionsAssigned, before the group fetches any
// request of the partition, the new owner reads the partition of the
// records topic from where its engine last stopped to its end, learning
// from each record with its stored decision (it does not decide them
// again: risk.Engine.DecideInto for the profile, the stored decision is
// kept), and only then answers for it. Ready is false until every
// partition assigned to the node is rebuilt (and the controls and
// reference topics are read). In OnPartitionsRevoked the old owner stops
// answering and waits until its decisions in flight are in the topic, so
// that the next owner's rebuild sees them. Leave hands over at once (the
// node stops answering, commits, and sends the group a LeaveGroup for its
// instance id); Kill leaves nothing, as a crash.
//
// Any node answers: Decide on a node that owns the account's partition
// decides there; otherwise it sends the record to that partition of the
// requests topic, with its reply topic and a correlation id in the headers,
// and waits for the answer on its reply topic, trying again across a
// failover. Forwarding through Kafka rather than by HTTP between nodes
// needs no address book and no second transport: a request lands on the
// one partition only the current owner consumes, so routing follows the
// group's assignment exactly, and a request sent while a partition has no
// owner waits in the topic for the next one (offsets are committed only
// after a request is answered). The decision says which node decided
// (event.Decision.Node).
//
// Exactly once per record id: the owner keeps the ids of its partition
// (rebuilt from the records topic, the first stored decision of an id
// winning) and answers a retry, from any node, with the decision made.
// The producer is idempotent, so a retried produce does not store a
// decision twice. A node stalled for longer than its session, which the
// group has already replaced, could still store a second decision on an
// id before it learns it lost the partition; the rebuild keeps the first.
//
// The watchtower: every node runs one over the whole records and reference
// topics (every account in every instrument, as a single process sees
// them; Kafka orders within a partition only, so the interleaving of
// partitions differs a little from node to node). A node carries out the
// alerts of the instruments whose partition (fnv32a(symbol) mod
// Partitions) it owns as a guard partition, writes their heat to the
// controls topic and the alerts to the alerts topic. Because every node's
// watchtower is always warm, a new owner needs no watchtower rebuild: the
// alerts of a partition it raised while it did not own it, in the last
// HandoverWindow of stream time, are carried out when it takes the
// partition, unless the alerts topic already holds one of the same kind,
// symbol and accounts (the old owner carried it out). A withdrawal decided
// before the node's watchtower has read the whole topic is held for an
// analyst (surveillance_unavailable): money movement fails closed.
package kafkacluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// Config configures a Node.
type Config struct {
	// Brokers are the Kafka bootstrap servers, HOST:PORT (see ParseURL).
	Brokers []string
	// Node names this node; unique in the cluster. It is the node's static
	// group instance id and names its reply topic.
	Node string
	// Cluster names the cluster: it prefixes every topic and the group, so
	// several clusters can share a Kafka cluster (default "kabuto").
	Cluster string
	// Partitions is the number of guard partitions (default 16): the
	// partitions of the records, requests and alerts topics. Every node of
	// a cluster must use the same number; New refuses existing topics of
	// another.
	Partitions int
	// SessionTimeout is how long the group waits for a node that stopped
	// heartbeating before it gives its partitions to the others (default
	// 10 s; the broker's group.min.session.timeout.ms bounds it).
	SessionTimeout time.Duration
	// Retain is how long the topics keep records (default 7 days): the
	// most a new owner reads to rebuild a partition.
	Retain time.Duration
	// Replicas is the replication factor of the topics New creates
	// (default: the broker's default).
	Replicas int
	// HandoverWindow is how far back, in stream time, a new owner carries
	// out alerts of the partition that its own watchtower raised before it
	// owned it and that the alerts topic does not hold (default 5 min).
	HandoverWindow time.Duration
	// Pipeline is the node's guard: its engine decides the actions of the
	// accounts the node owns, its sink stores decisions and alerts, its
	// watchtower configuration is the node's watchtower's.
	Pipeline *pipeline.Pipeline
	// OnAlert, when set, carries out an alert of a partition this node
	// owns (the back office: halts, freezes, cases). Unset, the node
	// writes the alert's halt or freezes to the controls topic itself.
	OnAlert func(ctx context.Context, a event.Alert)
	// Reference are the reference records (instruments) the node's
	// pipeline was given at start (pipeline.Reference): the node's
	// watchtower learns them before it reads the topics, as a single
	// process's does, so that it knows each issue's previous close, market
	// and volume from the first order. Instruments listed later reach
	// every node through the reference topic.
	Reference []*event.Record
	// Log receives the node's diagnostics (default slog.Default()).
	Log *slog.Logger
	// Now tells the time of rebuild durations (default clock.Real).
	Now func() time.Time
	// Opts are more franz-go options for every client of the node (TLS,
	// SASL).
	Opts []kgo.Opt
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

func (c *Config) defaults() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafkacluster: no Kafka brokers")
	}
	if c.Pipeline == nil {
		return errors.New("kafkacluster: no pipeline")
	}
	if c.Cluster == "" {
		c.Cluster = "kabuto"
	}
	if !nameRE.MatchString(c.Cluster) {
		return fmt.Errorf("kafkacluster: cluster name %q: want 1 to 32 letters, digits, - or _", c.Cluster)
	}
	if !nameRE.MatchString(c.Node) {
		return fmt.Errorf("kafkacluster: node name %q: want 1 to 32 letters, digits, - or _", c.Node)
	}
	if c.Partitions == 0 {
		c.Partitions = 16
	}
	if c.Partitions < 1 || c.Partitions > 1024 {
		return fmt.Errorf("kafkacluster: %d partitions: want 1 to 1024", c.Partitions)
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.Retain == 0 {
		c.Retain = 7 * 24 * time.Hour
	}
	if c.Replicas == 0 {
		c.Replicas = -1
	}
	if c.HandoverWindow == 0 {
		c.HandoverWindow = 5 * time.Minute
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = clock.Real{}.Now
	}
	return nil
}

// topics are the names of a cluster's topics.
type topics struct {
	records, reference, controls, alerts, requests, reply, group string
}

func topicNames(cluster, node string) topics {
	p := "kabuto." + cluster + "."
	return topics{records: p + "records", reference: p + "reference", controls: p + "controls", alerts: p + "alerts",
		requests: p + "requests", reply: p + "reply." + node, group: p + "guard"}
}

// Node is one Kabuto node of a cluster on Kafka. It implements
// pipeline.Cluster: Decide and Observe route each record to the node that
// owns its account.
type Node struct {
	cfg  Config
	pipe *pipeline.Pipeline
	log  *slog.Logger
	t    topics

	prod    *kgo.Client // idempotent producer; admin requests
	grp     *kgo.Client // the consumer group on the requests topic
	bcast   *kgo.Client // controls, reference, records: read by every node
	replies *kgo.Client // this node's reply topic

	guards []*guardPart
	work   []chan *kgo.Record // requests, per partition

	wmu      sync.Mutex
	watch    *surveil.Watch
	held     [][]event.Alert // per partition: alerts raised while not owned
	heat     map[string]int  // last heat written per symbol
	lastTime time.Time       // latest record time the watchtower saw
	watched  atomic.Uint64   // records of the records topic the watchtower read

	waitMu  sync.Mutex
	waiters map[string]chan *kgo.Record
	corr    atomic.Uint64

	joined       atomic.Bool  // the group assigned this node (maybe nothing) once
	assigning    atomic.Int32 // OnPartitionsAssigned is rebuilding
	refReady     atomic.Bool  // controls and reference topics read
	watchReady   atomic.Bool  // the watchtower read the records topic to its end at start
	leaving      atomic.Bool
	killed       atomic.Bool
	started      atomic.Bool
	gate         chan struct{} // tests: holds rebuilt partitions back
	ctx          context.Context
	stop         context.CancelFunc
	done         sync.WaitGroup
	local, fwd   atomic.Uint64
	closeClients sync.Once
}

// New connects a node to the cluster's topics, creating them when
// missing. Start runs it.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, pipe: cfg.Pipeline, log: cfg.Log.With("node", cfg.Node), t: topicNames(cfg.Cluster, cfg.Node),
		heat: map[string]int{}, waiters: map[string]chan *kgo.Record{}, held: make([][]event.Alert, cfg.Partitions)}
	n.watch = surveil.New(n.pipe.Watch.Config())
	for _, r := range cfg.Reference {
		n.watch.Observe(r, nil)
	}
	for i := range cfg.Partitions {
		n.guards = append(n.guards, &guardPart{id: int32(i), decided: map[string]*decided{}})
		n.work = append(n.work, make(chan *kgo.Record, 256))
	}
	var err error
	n.prod, err = kgo.NewClient(n.opts(
		kgo.ClientID("kabuto-"+cfg.Node+"-producer"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent: every in-sync replica
		kgo.ProducerLinger(0),
		kgo.RecordDeliveryTimeout(10*time.Second),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafkacluster: %w", err)
	}
	if err := n.createTopics(ctx); err != nil {
		n.prod.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) opts(more ...kgo.Opt) []kgo.Opt {
	o := []kgo.Opt{kgo.SeedBrokers(n.cfg.Brokers...)}
	o = append(o, n.cfg.Opts...)
	return append(o, more...)
}

// createTopics creates the cluster's topics and this node's reply topic,
// and checks that existing ones have the cluster's partitions.
func (n *Node) createTopics(ctx context.Context) error {
	retain := strconv.FormatInt(n.cfg.Retain.Milliseconds(), 10)
	hour := strconv.FormatInt(time.Hour.Milliseconds(), 10)
	p := int32(n.cfg.Partitions)
	want := []struct {
		name  string
		parts int32
		conf  map[string]string
	}{
		{n.t.records, p, map[string]string{"retention.ms": retain}},
		{n.t.alerts, p, map[string]string{"retention.ms": retain}},
		{n.t.requests, p, map[string]string{"retention.ms": hour}},
		{n.t.reference, 1, map[string]string{"retention.ms": retain}},
		{n.t.controls, 1, map[string]string{"cleanup.policy": "compact"}},
		{n.t.reply, 1, map[string]string{"retention.ms": hour}},
	}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 15000
	for _, w := range want {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = w.name, w.parts, int16(n.cfg.Replicas)
		for k, v := range w.conf {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			t.Configs = append(t.Configs, c)
		}
		req.Topics = append(req.Topics, t)
	}
	resp, err := req.RequestWith(ctx, n.prod)
	if err != nil {
		return fmt.Errorf("kafkacluster: creating topics: %w", err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafkacluster: creating topic %s: %w", t.Topic, err)
		}
	}
	// The topics are known to every broker a moment after they are made.
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		err := n.checkPartitions(ctx, want[0].name, want[1].name, want[2].name)
		if err == nil {
			return nil
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-deadline.C:
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// checkPartitions checks that the topics have the cluster's partitions.
func (n *Node) checkPartitions(ctx context.Context, names ...string) error {
	req := kmsg.NewPtrMetadataRequest()
	for _, name := range names {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, t)
	}
	resp, err := req.RequestWith(ctx, n.prod)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("kafkacluster: topic %s: %w", *t.Topic, err)
		}
		if len(t.Partitions) != n.cfg.Partitions {
			return fmt.Errorf("kafkacluster: topic %s has %d partitions; this node has --partitions %d (every node of a cluster must use the topics' number)",
				*t.Topic, len(t.Partitions), n.cfg.Partitions)
		}
	}
	return nil
}

// Name returns the node's name.
func (n *Node) Name() string { return n.cfg.Node }

// Start runs the node until ctx ends or Leave or Kill is called: it reads
// the controls and reference topics to their end, then joins the group
// that gives it its partitions, and goes on reading the records topic
// into its watchtower.
func (n *Node) Start(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("kafkacluster: node started twice")
	}
	n.pipe.Cluster = n
	n.ctx, n.stop = context.WithCancel(ctx)
	ctx = n.ctx
	if err := n.startBroadcast(ctx); err != nil {
		return err
	}
	for !n.refReady.Load() {
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	if err := n.startReplies(ctx); err != nil {
		return err
	}
	var err error
	n.grp, err = kgo.NewClient(n.opts(
		kgo.ClientID("kabuto-"+n.cfg.Node+"-group"),
		kgo.ConsumerGroup(n.t.group),
		kgo.ConsumeTopics(n.t.requests),
		kgo.InstanceID(n.cfg.Node),
		kgo.SessionTimeout(n.cfg.SessionTimeout),
		kgo.HeartbeatInterval(max(n.cfg.SessionTimeout/5, 50*time.Millisecond)),
		kgo.RebalanceTimeout(max(2*n.cfg.SessionTimeout, 10*time.Second)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(time.Second),
		kgo.FetchMaxWait(time.Second),
		kgo.OnPartitionsAssigned(n.assigned),
		kgo.OnPartitionsRevoked(n.revoked),
		kgo.OnPartitionsLost(n.lost),
	)...)
	if err != nil {
		return fmt.Errorf("kafkacluster: group: %w", err)
	}
	for i := range n.guards {
		n.done.Add(1)
		go func() {
			defer n.done.Done()
			n.worker(ctx, n.guards[i], n.work[i])
		}()
	}
	n.done.Add(1)
	go func() {
		defer n.done.Done()
		n.pollRequests(ctx)
	}()
	return nil
}

// Ready reports whether the node holds the state of every partition the
// group gave it: the controls and reference topics are read, its
// watchtower has read the records topic up to where it ended at start, the
// group has assigned it its share, and each of those partitions is
// rebuilt.
func (n *Node) Ready() bool {
	if !n.refReady.Load() || !n.watchReady.Load() || !n.joined.Load() || n.assigning.Load() > 0 || n.leaving.Load() || n.killed.Load() {
		return false
	}
	for _, g := range n.guards {
		g.mu.Lock()
		ok := !g.assigned || g.active
		g.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// Owned returns the guard partitions this node owns and has rebuilt.
func (n *Node) Owned() []int {
	var out []int
	for _, g := range n.guards {
		if g.ready.Load() {
			out = append(out, int(g.id))
		}
	}
	return out
}

// Kill stops the node at once, as a crash would: it does not leave the
// group (the others take its partitions when its session times out) and
// flushes nothing. Tests use it to fail a node over.
func (n *Node) Kill() {
	n.killed.Store(true)
	if n.stop != nil {
		n.stop()
	}
	for _, g := range n.guards {
		g.mu.Lock()
		g.deactivate()
		g.mu.Unlock()
	}
	n.closeAll()
}

func (n *Node) closeAll() {
	n.closeClients.Do(func() {
		for _, c := range []*kgo.Client{n.grp, n.bcast, n.replies, n.prod} {
			if c != nil {
				c.Close()
			}
		}
	})
}

// Leave hands the node's partitions over before it exits: it stops
// answering for them, waits until its decisions in flight are stored,
// commits the requests it answered, leaves the group (a static member
// must ask for it by its instance id) so that the others take over at
// once, and stops.
func (n *Node) Leave(ctx context.Context) error {
	n.leaving.Store(true)
	var errs []error
	for _, g := range n.guards {
		g.mu.Lock()
		g.deactivate()
		g.mu.Unlock()
		g.inflight.Wait()
	}
	if n.grp != nil {
		if err := n.grp.CommitMarkedOffsets(ctx); err != nil {
			errs = append(errs, fmt.Errorf("committing answered requests: %w", err))
		}
		n.grp.Close() // a static member: this does not leave the group
	}
	if n.stop != nil {
		n.stop()
	}
	n.done.Wait()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = n.t.group
	m := kmsg.NewLeaveGroupRequestMember()
	m.InstanceID = kmsg.StringPtr(n.cfg.Node)
	req.Members = append(req.Members, m)
	resp, err := req.RequestWith(ctx, n.prod)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
		for _, m := range resp.Members {
			if e := kerr.ErrorForCode(m.ErrorCode); e != nil && !errors.Is(e, kerr.UnknownMemberID) && err == nil {
				err = e
			}
		}
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("leaving the group: %w", err))
	}
	if err := n.prod.Flush(ctx); err != nil {
		errs = append(errs, err)
	}
	n.closeAll()
	n.log.Info("left the cluster; partitions handed over")
	return errors.Join(errs...)
}

// accountPart returns the guard partition of an account.
func (n *Node) accountPart(account string) int32 {
	return int32(hash32(account) % uint32(n.cfg.Partitions))
}

// symbolPart returns the partition whose owner carries out the alerts of
// an instrument and writes its heat.
func (n *Node) symbolPart(symbol string) int32 {
	return int32(hash32(symbol) % uint32(n.cfg.Partitions))
}

func hash32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
