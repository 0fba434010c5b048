package kafkacluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/risk"
)

// Record headers of the records topic and of forwarded requests.
const (
	hdrNode     = "Kabuto-Node"     // the node that decided or stored the record
	hdrDecision = "Kabuto-Decision" // the decision on the record, as JSON
	hdrOp       = "Kabuto-Op"       // forwarded: decide, observe or batch
	hdrReply    = "Kabuto-Reply"    // forwarded: the topic to answer on
	hdrCorr     = "Kabuto-Corr"     // forwarded: the requester's correlation id
	hdrError    = "Kabuto-Error"    // an answer's failure: not_owner or failed
)

// errNotOwner: the node asked does not own the partition (any more).
var errNotOwner = errors.New("kafkacluster: not the partition's owner")

// errNoAnswer: a forwarded request got no answer in time.
var errNoAnswer = errors.New("kafkacluster: no answer from the partition's owner")

// ForwardTimeout is how long Decide and Observe keep trying to reach the
// owner of a partition, across a failover (a session timeout plus the new
// owner's rebuild).
const ForwardTimeout = 30 * time.Second

// attemptTimeout is how long one forwarded request waits for its answer
// before it is sent again.
const attemptTimeout = 3 * time.Second

// guardPart is one guard partition: the accounts whose hash falls in it.
type guardPart struct {
	id int32

	mu       sync.Mutex
	assigned bool                // the group gave it to this node
	active   bool                // rebuilt and answering
	gen      int                 // bumped when the partition is given up
	decided  map[string]*decided // record id → decision, of every tenure
	next     int64               // the records partition's first offset not in the engine
	inflight sync.WaitGroup      // decisions not yet acknowledged by Kafka

	ready    atomic.Bool
	rebuild  atomic.Int64  // nanoseconds the last rebuild took
	replayed atomic.Uint64 // records read by this node's rebuilds, in all
	served   atomic.Uint64 // forwarded requests answered
}

// decided is a decision made (or being made) on one record id.
type decided struct {
	done chan struct{}
	d    event.Decision
	err  error
}

func doneDecided(d event.Decision) *decided {
	e := &decided{done: make(chan struct{}), d: d}
	close(e.done)
	return e
}

// deactivate stops answering for the partition; g.mu is held.
func (g *guardPart) deactivate() {
	g.active, g.assigned = false, false
	g.ready.Store(false)
	g.gen++
}

func (g *guardPart) isActive() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.active
}

// Decide decides the customer action r on the node that owns its account:
// here, or forwarded to the owner. It keeps trying across a failover for
// up to ForwardTimeout; an error means no decision could be had.
func (n *Node) Decide(ctx context.Context, r *event.Record) (event.Decision, error) {
	if !r.Type.Action() {
		return event.Decision{}, pipeline.ErrNotAction
	}
	ds, err := n.route(ctx, n.accountPart(r.Account), []*event.Record{r}, "decide")
	if err != nil {
		return event.Decision{}, err
	}
	return ds[0], nil
}

// Observe takes a record that needs no decision. Reference records of no
// account (instruments, bars) go to the reference topic, read by every
// node; an account's records (fills, snapshots) go to the account's owner,
// which learns from them and stores them in the records topic.
func (n *Node) Observe(ctx context.Context, r *event.Record) error {
	if r.Type.Action() {
		_, err := n.Decide(ctx, r)
		return err
	}
	if r.Account == "" {
		rec := &kgo.Record{Topic: n.t.reference, Partition: 0, Key: []byte(r.Symbol), Value: r.AppendJSON(nil),
			Headers: []kgo.RecordHeader{{Key: hdrNode, Value: []byte(n.cfg.Node)}}}
		// Not waited for: market data decides nothing by itself, and a
		// bar a minute for every issue is most of the traffic.
		n.prod.Produce(ctx, rec, func(rec *kgo.Record, err error) {
			if err != nil && !n.killed.Load() {
				n.log.Error("reference record not stored", "err", err)
			}
		})
		return nil
	}
	_, err := n.route(ctx, n.accountPart(r.Account), []*event.Record{r}, "observe")
	return err
}

// DecideBatch decides the customer actions among recs and observes the
// rest, as Decide and Observe would one by one, and returns the actions'
// decisions in order. The records of each partition go to its owner in
// one request; the partitions are decided at once.
func (n *Node) DecideBatch(ctx context.Context, recs []*event.Record) ([]event.Decision, error) {
	parts := map[int32][]int{}
	var order []int32
	for i, r := range recs {
		if r.Account == "" && !r.Type.Action() {
			if err := n.Observe(ctx, r); err != nil {
				return nil, err
			}
			continue
		}
		p := n.accountPart(r.Account)
		if _, ok := parts[p]; !ok {
			order = append(order, p)
		}
		parts[p] = append(parts[p], i)
	}
	all := make([]event.Decision, len(recs))
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for k, p := range order {
		wg.Go(func() {
			idx := parts[p]
			sub := make([]*event.Record, len(idx))
			for j, i := range idx {
				sub[j] = recs[i]
			}
			ds, err := n.route(ctx, p, sub, "batch")
			if err != nil {
				errs[k] = err
				return
			}
			for j, i := range idx {
				all[i] = ds[j]
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make([]event.Decision, 0, len(recs))
	for i, r := range recs {
		if r.Type.Action() {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// route has recs, all of partition p, decided (op decide or batch) or
// observed where p is owned: here, or by its owner through the requests
// topic; it tries again across a failover for up to ForwardTimeout.
func (n *Node) route(ctx context.Context, p int32, recs []*event.Record, op string) ([]event.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, ForwardTimeout)
	defer cancel()
	g := n.guards[p]
	for {
		var ds []event.Decision
		var err error
		if g.isActive() {
			ds, err = n.ownedBatch(ctx, g, recs, op != "observe")
			if err == nil {
				n.local.Add(uint64(len(recs)))
			}
		} else {
			ds, err = n.forward(ctx, p, recs, op)
			if err == nil {
				n.fwd.Add(uint64(len(recs)))
			}
		}
		if err == nil || !(errors.Is(err, errNotOwner) || errors.Is(err, errNoAnswer)) {
			return ds, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("kafkacluster: no owner of guard partition %d answered: %w", p, err)
		}
		if e := sleep(ctx, 20*time.Millisecond); e != nil {
			return nil, fmt.Errorf("kafkacluster: no owner of guard partition %d answered: %w", p, err)
		}
	}
}

// forward sends recs to partition p of the requests topic and waits for
// the owner's answer on this node's reply topic.
func (n *Node) forward(ctx context.Context, p int32, recs []*event.Record, op string) ([]event.Decision, error) {
	corr := n.cfg.Node + "-" + strconv.FormatUint(n.corr.Add(1), 36)
	ch := make(chan *kgo.Record, 1)
	n.waitMu.Lock()
	n.waiters[corr] = ch
	n.waitMu.Unlock()
	defer func() {
		n.waitMu.Lock()
		delete(n.waiters, corr)
		n.waitMu.Unlock()
	}()
	var val []byte
	for _, r := range recs {
		val = append(r.AppendJSON(val), '\n')
	}
	rec := &kgo.Record{Topic: n.t.requests, Partition: p, Key: []byte(recs[0].Account), Value: val, Headers: []kgo.RecordHeader{
		{Key: hdrOp, Value: []byte(op)}, {Key: hdrReply, Value: []byte(n.t.reply)}, {Key: hdrCorr, Value: []byte(corr)}}}
	if err := n.prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return nil, fmt.Errorf("kafkacluster: forwarding to partition %d: %w", p, err)
	}
	t := time.NewTimer(attemptTimeout)
	defer t.Stop()
	var resp *kgo.Record
	select {
	case resp = <-ch:
	case <-t.C:
		return nil, errNoAnswer
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	switch e := header(resp, hdrError); e {
	case "":
	case "not_owner":
		return nil, errNotOwner
	default:
		return nil, fmt.Errorf("kafkacluster: the owner of partition %d could not decide: %s", p, resp.Value)
	}
	if op == "observe" {
		return make([]event.Decision, len(recs)), nil
	}
	var ds []event.Decision
	if err := json.Unmarshal(resp.Value, &ds); err != nil || len(ds) != len(recs) {
		return nil, fmt.Errorf("kafkacluster: the owner's decisions: %d for %d records (%v)", len(ds), len(recs), err)
	}
	return ds, nil
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// startReplies reads this node's reply topic from its end and hands each
// answer to the request waiting for it.
func (n *Node) startReplies(ctx context.Context) error {
	end, err := n.endOffsets(ctx, n.t.reply, []int32{0})
	if err != nil {
		return err
	}
	n.replies, err = kgo.NewClient(n.opts(kgo.ClientID("kabuto-"+n.cfg.Node+"-replies"), kgo.FetchMaxWait(time.Second),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{n.t.reply: {0: kgo.NewOffset().At(end[0])}}))...)
	if err != nil {
		return err
	}
	n.done.Add(1)
	go func() {
		defer n.done.Done()
		for {
			fs := n.replies.PollFetches(ctx)
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				n.waitMu.Lock()
				ch := n.waiters[header(r, hdrCorr)]
				n.waitMu.Unlock()
				if ch != nil {
					select {
					case ch <- r:
					default:
					}
				}
			})
		}
	}()
	return nil
}

// pollRequests hands the requests the group fetches to their partition's
// worker.
func (n *Node) pollRequests(ctx context.Context) {
	for {
		fs := n.grp.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(t string, p int32, err error) {
			n.log.Warn("fetching requests", "topic", t, "partition", p, "err", err)
		})
		fs.EachRecord(func(r *kgo.Record) {
			if int(r.Partition) < len(n.work) {
				select {
				case n.work[r.Partition] <- r:
				case <-ctx.Done():
				}
			}
		})
	}
}

// worker answers the forwarded requests of partition g, in order.
func (n *Node) worker(ctx context.Context, g *guardPart, ch chan *kgo.Record) {
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-ch:
			n.serve(ctx, g, req)
		}
	}
}

// serve answers one forwarded request. One of a partition this node no
// longer owns is left unanswered and uncommitted: the next owner reads it.
func (n *Node) serve(ctx context.Context, g *guardPart, req *kgo.Record) {
	if !g.isActive() {
		return
	}
	reply := &kgo.Record{Topic: header(req, hdrReply), Partition: 0,
		Headers: []kgo.RecordHeader{{Key: hdrCorr, Value: []byte(header(req, hdrCorr))}, {Key: hdrNode, Value: []byte(n.cfg.Node)}}}
	fail := func(code string, msg []byte) {
		reply.Headers = append(reply.Headers, kgo.RecordHeader{Key: hdrError, Value: []byte(code)})
		reply.Value = msg
	}
	var recs []*event.Record
	var bad error
	for line := range bytes.SplitSeq(bytes.TrimSpace(req.Value), []byte("\n")) {
		r, err := event.Decode(line)
		if err != nil {
			bad = err
			break
		}
		recs = append(recs, r)
	}
	op := header(req, hdrOp)
	switch {
	case bad != nil || len(recs) == 0:
		fail("failed", fmt.Appendf(nil, "bad request: %v", bad))
	default:
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ds, err := n.ownedBatch(ctx, g, recs, op != "observe")
		cancel()
		switch {
		case errors.Is(err, errNotOwner):
			return // the next owner answers it
		case err != nil:
			fail("failed", []byte(err.Error()))
		default:
			b := []byte{'['}
			for i := range ds {
				if i > 0 {
					b = append(b, ',')
				}
				b = ds[i].AppendJSON(b)
			}
			reply.Value = append(b, ']')
		}
	}
	g.served.Add(1)
	if reply.Topic != "" {
		n.prod.Produce(ctx, reply, func(_ *kgo.Record, err error) {
			if err != nil && ctx.Err() == nil {
				n.log.Warn("answer not sent; the requester tries again", "to", reply.Topic, "err", err)
			}
		})
	}
	n.grp.MarkCommitRecords(req)
}

// pending is a record of an owned partition whose decision is made and on
// its way to Kafka, or one another call is deciding.
type pending struct {
	r        *event.Record
	decide   bool
	e        *decided
	existing bool // e is another call's (or a former tenure's)
	res      risk.Result
	ack      chan produced
}

type produced struct {
	offset int64
	err    error
}

// ownedBatch decides (decide true, customer actions only) or observes recs
// of partition g, which this node owns, in order, once per record id: all
// are sent to Kafka before any acknowledgement is waited for, and a
// decision is returned only once Kafka holds it.
func (n *Node) ownedBatch(ctx context.Context, g *guardPart, recs []*event.Record, decide bool) ([]event.Decision, error) {
	ps := make([]*pending, 0, len(recs))
	var err error
	for _, r := range recs {
		var p *pending
		if p, err = n.start(g, r, decide && r.Type.Action()); err != nil {
			break
		}
		ps = append(ps, p)
	}
	out := make([]event.Decision, len(recs))
	for i, p := range ps {
		d, e := n.finish(ctx, g, p)
		if e != nil && err == nil {
			err = e
		}
		out[i] = d
	}
	return out, err
}

// start decides (or observes) r and sends it to the records topic without
// waiting. Records of a partition are started in order under its lock, so
// the topic keeps each account's order.
func (n *Node) start(g *guardPart, r *event.Record, decide bool) (*pending, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.active {
		return nil, errNotOwner
	}
	if e := g.decided[r.ID]; e != nil {
		return &pending{r: r, e: e, existing: true}, nil
	}
	p := &pending{r: r, decide: decide, e: &decided{done: make(chan struct{})}, ack: make(chan produced, 1)}
	if decide {
		if n.pipe.Explain {
			p.res.Features = make(map[string]any, 32)
		}
		n.pipe.Risk.DecideInto(r, &p.res, n.pipe.Explain)
		n.holdProceeds(r, &p.res)
		p.res.Decision.Node = n.cfg.Node
	} else {
		n.pipe.Risk.Observe(r)
	}
	rec := &kgo.Record{Topic: n.t.records, Partition: g.id, Key: []byte(r.Account), Value: r.AppendJSON(nil),
		Headers: []kgo.RecordHeader{{Key: hdrNode, Value: []byte(n.cfg.Node)}}}
	if decide {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: hdrDecision, Value: p.res.Decision.AppendJSON(nil)})
	}
	g.decided[r.ID] = p.e
	g.inflight.Add(1)
	// The node's context, not the caller's: once sent, the record is
	// either stored or failed by the producer (RecordDeliveryTimeout),
	// never left half known because a caller went away.
	n.prod.Produce(n.ctx, rec, func(rec *kgo.Record, err error) { p.ack <- produced{rec.Offset, err} })
	return p, nil
}

// finish waits for Kafka to hold p, and logs the decision.
func (n *Node) finish(ctx context.Context, g *guardPart, p *pending) (event.Decision, error) {
	e := p.e
	if p.existing {
		select {
		case <-e.done:
		case <-ctx.Done():
			return event.Decision{}, ctx.Err()
		}
		return e.d, e.err
	}
	ack := <-p.ack
	defer g.inflight.Done()
	if ack.err != nil {
		g.mu.Lock()
		if g.decided[p.r.ID] == e {
			delete(g.decided, p.r.ID)
		}
		g.mu.Unlock()
		e.err = fmt.Errorf("kafkacluster: Kafka did not take the decision: %w", ack.err)
		close(e.done)
		return event.Decision{}, e.err
	}
	if p.decide {
		if err := n.pipe.Sink.Decision(ctx, p.r, &p.res); err != nil {
			n.log.Error("decision not logged in the database (it is in Kafka)", "event", p.r.ID, "err", err)
		}
		if n.pipe.Tap != nil {
			n.pipe.Tap(p.r, &p.res.Decision)
		}
	}
	g.mu.Lock()
	g.next = max(g.next, ack.offset+1)
	g.mu.Unlock()
	e.d = p.res.Decision
	close(e.done)
	return p.res.Decision, nil
}

// assigned is the group's OnPartitionsAssigned: the node rebuilds each
// partition it was given, before the group fetches its requests.
func (n *Node) assigned(ctx context.Context, _ *kgo.Client, parts map[string][]int32) {
	n.assigning.Add(1)
	defer n.assigning.Add(-1)
	n.joined.Store(true)
	var wg sync.WaitGroup
	for _, p := range parts[n.t.requests] {
		if int(p) >= len(n.guards) {
			continue
		}
		g := n.guards[p]
		g.mu.Lock()
		g.assigned = true
		gen := g.gen
		g.mu.Unlock()
		wg.Go(func() { n.acquire(ctx, g, gen) })
	}
	wg.Wait()
}

// revoked is the group's OnPartitionsRevoked: the node stops answering for
// the partitions, waits until its decisions in flight are in Kafka (the
// next owner's rebuild reads them) and commits the requests answered.
func (n *Node) revoked(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	if n.killed.Load() {
		return
	}
	n.lost(ctx, cl, parts)
	if err := cl.CommitMarkedOffsets(ctx); err != nil && ctx.Err() == nil {
		n.log.Warn("answered requests not committed; the next owner answers them again from its decided ids", "err", err)
	}
}

// lost is the group's OnPartitionsLost: the node stops answering.
func (n *Node) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	for _, p := range parts[n.t.requests] {
		if int(p) >= len(n.guards) {
			continue
		}
		g := n.guards[p]
		g.mu.Lock()
		g.deactivate()
		g.mu.Unlock()
		g.inflight.Wait()
		n.log.Info("guard partition given up", "partition", p)
	}
}

// acquire rebuilds partition g, which the group just gave this node, from
// the records topic, and starts answering for it.
func (n *Node) acquire(ctx context.Context, g *guardPart, gen int) {
	start := n.cfg.Now()
	for {
		err := n.rebuild(ctx, g)
		if err == nil {
			break
		}
		if ctx.Err() != nil || n.ctx.Err() != nil {
			return
		}
		n.log.Error("guard partition not rebuilt; trying again", "partition", g.id, "err", err)
		if sleep(ctx, 500*time.Millisecond) != nil {
			return
		}
	}
	if n.gate != nil {
		select {
		case <-n.gate:
		case <-ctx.Done():
			return
		}
	}
	g.mu.Lock()
	if g.gen != gen || !g.assigned || n.killed.Load() {
		g.mu.Unlock()
		return // given up while rebuilding
	}
	g.active = true
	took := n.cfg.Now().Sub(start)
	g.rebuild.Store(int64(took))
	g.ready.Store(true)
	next := g.next
	g.mu.Unlock()
	n.log.Info("guard partition owned", "partition", g.id, "rebuild", took.Round(time.Millisecond), "offset", next)
	if n.watchReady.Load() {
		n.flushHeld(ctx, g.id)
	}
}

// rebuild feeds the engine what the records topic holds for partition g
// after what it already learnt: each record with its stored decision is
// learnt from (not decided again), and its id is remembered with that
// decision. The first stored decision of an id stands.
func (n *Node) rebuild(ctx context.Context, g *guardPart) error {
	g.mu.Lock()
	from := g.next
	g.mu.Unlock()
	end, err := n.endOffsets(ctx, n.t.records, []int32{g.id})
	if err != nil {
		return err
	}
	return n.readRange(ctx, n.t.records, g.id, from, end[g.id], func(rec *kgo.Record) error {
		r, err := event.Decode(rec.Value)
		if err != nil {
			n.log.Error("stored record not read", "partition", g.id, "offset", rec.Offset, "err", err)
			return nil
		}
		g.replayed.Add(1)
		g.mu.Lock()
		_, seen := g.decided[r.ID]
		g.mu.Unlock()
		if !seen {
			var d event.Decision
			if h := header(rec, hdrDecision); h != "" {
				if err := json.Unmarshal([]byte(h), &d); err != nil {
					return fmt.Errorf("decision at offset %d: %w", rec.Offset, err)
				}
				var res risk.Result
				n.pipe.Risk.DecideInto(r, &res, false) // to learn from it, as pipeline.Warm does
			} else {
				n.pipe.Risk.Observe(r)
			}
			g.mu.Lock()
			g.decided[r.ID] = doneDecided(d)
			g.mu.Unlock()
		}
		g.mu.Lock()
		g.next = max(g.next, rec.Offset+1)
		g.mu.Unlock()
		return nil
	})
}

// endOffsets returns the end (the next offset to be written) of each of
// topic's partitions parts.
func (n *Node) endOffsets(ctx context.Context, topic string, parts []int32) (map[int32]int64, error) {
	return endOffsets(ctx, n.prod, topic, parts)
}

func endOffsets(ctx context.Context, cl *kgo.Client, topic string, parts []int32) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	t := kmsg.NewListOffsetsRequestTopic()
	t.Topic = topic
	for _, p := range parts {
		tp := kmsg.NewListOffsetsRequestTopicPartition()
		tp.Partition, tp.Timestamp = p, -1 // latest
		t.Partitions = append(t.Partitions, tp)
	}
	req.Topics = append(req.Topics, t)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("kafkacluster: end offsets of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return nil, fmt.Errorf("kafkacluster: end offset of %s/%d: %w", topic, rp.Partition, err)
			}
			out[rp.Partition] = rp.Offset
		}
	}
	for _, p := range parts {
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("kafkacluster: no end offset of %s/%d", topic, p)
		}
	}
	return out, nil
}

// readRange reads partition p of topic from offset from up to end with a
// client of its own.
func (n *Node) readRange(ctx context.Context, topic string, p int32, from, end int64, fn func(*kgo.Record) error) error {
	if from >= end {
		return nil
	}
	cl, err := kgo.NewClient(n.opts(kgo.ClientID("kabuto-"+n.cfg.Node+"-rebuild"), kgo.FetchMaxWait(500*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().At(from)}}))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if fs.IsClientClosed() {
			return kgo.ErrClientClosed
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil && !kerr.IsRetriable(ferr) {
			return ferr
		}
		var done bool
		var cerr error
		fs.EachRecord(func(rec *kgo.Record) {
			if done || cerr != nil || rec.Offset >= end {
				done = true
				return
			}
			cerr = fn(rec)
			done = rec.Offset+1 >= end
		})
		if cerr != nil {
			return cerr
		}
		if done {
			return nil
		}
		// A compacted or aborted tail: the partition's high watermark
		// says where it ends.
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if fp.HighWatermark >= end && len(fp.Records) == 0 && fp.Err == nil && fp.LogStartOffset >= end {
				done = true
			}
		})
		if done {
			return nil
		}
	}
}

// holdProceeds holds a withdrawal that would take proceeds of trades the
// watchtower flagged, as pipeline.Pipeline does in a single process. The
// node's watchtower reads the whole records topic, so it knows every
// account's held proceeds once it has read it to its end; until then the
// withdrawal is held for an analyst: money movement fails closed.
func (n *Node) holdProceeds(r *event.Record, res *risk.Result) {
	d := &res.Decision
	if r.Type != event.TypeWithdrawal || d.Action == event.Deny || d.Action == event.Hold {
		return
	}
	known := n.watchReady.Load()
	var held int64
	if known {
		n.wmu.Lock()
		held = n.watch.HeldProceeds(r.Account, r.Time)
		n.wmu.Unlock()
		if held <= 0 {
			return
		}
	}
	d.Action, d.Factor = event.Hold, ""
	d.Score = max(d.Score, 70)
	why := pipeline.ReasonProceedsHeld
	if !known {
		why = "surveillance_unavailable"
	}
	d.Reasons = append(d.Reasons, why)
	res.Rules = append(res.Rules, risk.Hit{ID: why, Reason: why, Action: risk.ActionHold})
	if res.Features != nil && known {
		res.Features["surveil.held_proceeds_jpy"] = held
	}
}
