package cluster

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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/pipeline"
	"github.com/kabuto-sec/kabuto/internal/risk"
)

// Message headers of the records stream and of forwarded requests.
const (
	hdrNode     = "Kabuto-Node"     // the node that decided or stored the record
	hdrDecision = "Kabuto-Decision" // the decision on the record, as JSON
	hdrOp       = "Kabuto-Op"       // forwarded: decide or observe
	hdrError    = "Kabuto-Error"    // a forwarded request's failure: not_owner or failed
)

// errNotOwner: the node asked does not own the partition (any more).
var errNotOwner = errors.New("cluster: not the partition's owner")

// ForwardTimeout is how long Decide and Observe keep trying to reach the
// owner of a partition, across a failover (a lease's time to live plus the
// new owner's rebuild).
const ForwardTimeout = 15 * time.Second

// guardPart is one guard partition: the accounts whose hash falls in it.
type guardPart struct {
	id  int
	key string // lease key

	// held and rev belong to the lease loop (and Leave, after it stopped).
	held bool
	rev  uint64

	mu       sync.Mutex
	active   bool                // rebuilt and answering
	gen      int                 // bumped when the partition is given up
	sub      *nats.Subscription  // forwarded requests
	decided  map[string]*decided // record id → decision, of every tenure
	applied  uint64              // last stream sequence in the engine
	inflight sync.WaitGroup      // decisions not yet acknowledged by the stream
	pendingN int                 // how many: a snapshot waits for none
	accounts map[string]struct{} // the partition's accounts the engine knows
	snapSeq  uint64              // the sequence the last snapshot saved or loaded covers
	fromSnap bool                // the partition's state here started from a snapshot

	replayed  atomic.Uint64 // records this node's rebuilds of the partition read from the stream, in all
	snapBytes atomic.Uint64 // size of the last snapshot saved

	ready   atomic.Bool
	rebuild atomic.Int64 // nanoseconds the last rebuild took
	served  atomic.Uint64
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
	g.active = false
	g.ready.Store(false)
	g.gen++
	if g.sub != nil {
		g.sub.Unsubscribe()
		g.sub = nil
	}
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
	var d event.Decision
	err := n.route(ctx, r, true, &d)
	return d, err
}

// Observe takes a record that needs no decision. Reference records of no
// account (instruments, bars) go to the stream for every node; an
// account's records (snapshots, fills) go to the account's owner, which
// learns from them and stores them.
func (n *Node) Observe(ctx context.Context, r *event.Record) error {
	if r.Type.Action() {
		_, err := n.Decide(ctx, r)
		return err
	}
	if r.Account == "" {
		msg := nats.NewMsg(n.subject("rec.ref." + strconv.Itoa(n.instrumentPart(r))))
		msg.Data = r.AppendJSON(nil)
		msg.Header.Set(jetstream.MsgIDHeader, r.ID)
		msg.Header.Set(hdrNode, n.cfg.Node)
		// Stored before Observe returns, as a single process has taken
		// a record in when Observe returns: a decision asked for after
		// it, on any node, sees it (catchUp, watch.go).
		ack, err := n.js.PublishMsg(ctx, msg)
		if err == nil {
			n.noteSeq(ack.Sequence)
		}
		return err
	}
	return n.route(ctx, r, false, nil)
}

// route decides (or observes) r where its account is owned.
func (n *Node) route(ctx context.Context, r *event.Record, decide bool, out *event.Decision) error {
	ctx, cancel := context.WithTimeout(ctx, ForwardTimeout)
	defer cancel()
	g := n.guards[n.accountPart(r.Account)]
	for {
		var err error
		if g.isActive() {
			err = n.owned(ctx, g, r, decide, out)
			n.metrics.local.Add(1)
		} else {
			err = n.forward(ctx, g.id, r, decide, out)
			if err == nil {
				n.metrics.forwarded.Add(1)
			}
		}
		if err == nil || !retryable(err) {
			return err
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("cluster: no owner of guard partition %d answered: %w", g.id, err)
		case <-t.C:
		}
	}
}

func retryable(err error) bool {
	return errors.Is(err, errNotOwner) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout)
}

// forward asks the owner of partition p to decide or observe r.
func (n *Node) forward(ctx context.Context, p int, r *event.Record, decide bool, out *event.Decision) error {
	msg := nats.NewMsg(n.subject("decide." + strconv.Itoa(p)))
	msg.Data = r.AppendJSON(nil)
	op := "observe"
	if decide {
		op = "decide"
	}
	msg.Header.Set(hdrOp, op)
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := n.nc.RequestMsgWithContext(rctx, msg)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = nats.ErrTimeout
	}
	if err != nil {
		return err
	}
	switch resp.Header.Get(hdrError) {
	case "":
	case "not_owner":
		return errNotOwner
	default:
		return fmt.Errorf("cluster: the owner of partition %d could not decide: %s", p, resp.Data)
	}
	if out != nil {
		if err := json.Unmarshal(resp.Data, out); err != nil {
			return fmt.Errorf("cluster: the owner's decision: %w", err)
		}
	}
	return nil
}

// serveGuard answers forwarded requests for partition g.
func (n *Node) serveGuard(g *guardPart) (*nats.Subscription, error) {
	return n.nc.Subscribe(n.subject("decide."+strconv.Itoa(g.id)), func(m *nats.Msg) {
		reply := nats.NewMsg(m.Reply)
		if m.Header.Get(hdrOp) == "batch" {
			n.serveBatch(g, m, reply)
			return
		}
		r, err := event.Decode(m.Data)
		if err != nil {
			reply.Header.Set(hdrError, "failed")
			reply.Data = []byte(err.Error())
			m.RespondMsg(reply)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var d event.Decision
		decide := m.Header.Get(hdrOp) == "decide"
		err = n.owned(ctx, g, r, decide, &d)
		switch {
		case errors.Is(err, errNotOwner):
			reply.Header.Set(hdrError, "not_owner")
		case err != nil:
			reply.Header.Set(hdrError, "failed")
			reply.Data = []byte(err.Error())
		case decide:
			reply.Data = d.AppendJSON(nil)
		}
		g.served.Add(1)
		m.RespondMsg(reply)
	})
}

// serveBatch answers a forwarded batch for partition g.
func (n *Node) serveBatch(g *guardPart, m *nats.Msg, reply *nats.Msg) {
	var recs []*event.Record
	for line := range bytes.SplitSeq(bytes.TrimSpace(m.Data), []byte("\n")) {
		r, err := event.Decode(line)
		if err != nil {
			reply.Header.Set(hdrError, "failed")
			reply.Data = []byte(err.Error())
			m.RespondMsg(reply)
			return
		}
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ds, err := n.ownedBatch(ctx, g, recs)
	switch {
	case errors.Is(err, errNotOwner):
		reply.Header.Set(hdrError, "not_owner")
	case err != nil:
		reply.Header.Set(hdrError, "failed")
		reply.Data = []byte(err.Error())
	default:
		b := []byte{'['}
		for i := range ds {
			if i > 0 {
				b = append(b, ',')
			}
			b = ds[i].AppendJSON(b)
		}
		reply.Data = append(b, ']')
	}
	g.served.Add(1)
	m.RespondMsg(reply)
}

// owned decides (or observes) r in partition g, which this node owns:
// once per record id. The decision is durable in the stream before it is
// returned; without the stream's acknowledgement there is no decision.
func (n *Node) owned(ctx context.Context, g *guardPart, r *event.Record, decide bool, out *event.Decision) error {
	if decide {
		n.catchUp(ctx) // watch.go: the decision sees every record stored before it
	}
	p, err := n.start(g, r, decide)
	if err != nil {
		return err
	}
	d, err := n.finish(ctx, g, p)
	if err == nil && out != nil {
		*out = d
	}
	return err
}

// pending is a record of an owned partition whose decision is made and
// on its way to the stream, or one another call is deciding.
type pending struct {
	r        *event.Record
	decide   bool
	e        *decided
	existing bool // e is another call's (or a former tenure's)
	res      risk.Result
	fut      jetstream.PubAckFuture
}

// start decides (or observes) r and sends it to the stream without
// waiting: finish waits. Records of one partition are started in order,
// under its lock, so the stream keeps each account's order.
func (n *Node) start(g *guardPart, r *event.Record, decide bool) (*pending, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.active {
		return nil, errNotOwner
	}
	if e := g.decided[r.ID]; e != nil {
		return &pending{r: r, e: e, existing: true}, nil
	}
	p := &pending{r: r, decide: decide}
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
	fut, err := n.js.PublishMsgAsync(n.recordMsg(g.id, r, decide, &p.res.Decision))
	if err != nil {
		return nil, err
	}
	p.e, p.fut = &decided{done: make(chan struct{})}, fut
	g.decided[r.ID] = p.e
	g.accounts[r.Account] = struct{}{}
	g.inflight.Add(1)
	g.pendingN++
	return p, nil
}

// finish waits for the stream to hold p, and logs the decision.
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
	defer func() {
		g.mu.Lock()
		g.pendingN--
		g.mu.Unlock()
		g.inflight.Done()
	}()
	fail := func(err error) (event.Decision, error) {
		g.mu.Lock()
		delete(g.decided, p.r.ID)
		g.mu.Unlock()
		e.err = err
		close(e.done)
		return event.Decision{}, err
	}
	var ack *jetstream.PubAck
	select {
	case ack = <-p.fut.Ok():
	case err := <-p.fut.Err():
		return fail(fmt.Errorf("cluster: the stream did not take the decision: %w", err))
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	if ack.Duplicate {
		// Another tenure stored this id first: its decision stands.
		d, err := n.storedDecision(ctx, ack.Sequence)
		if err != nil {
			return fail(err)
		}
		p.res.Decision = d
	} else if p.decide {
		if err := n.pipe.Sink.Decision(ctx, p.r, &p.res); err != nil {
			n.log.Error("decision not logged in the database (it is in the stream)", "event", p.r.ID, "err", err)
		}
		if n.pipe.Tap != nil {
			n.pipe.Tap(p.r, &p.res.Decision)
		}
	}
	g.mu.Lock()
	g.applied = max(g.applied, ack.Sequence)
	g.mu.Unlock()
	n.noteSeq(ack.Sequence)
	e.d = p.res.Decision
	close(e.done)
	return p.res.Decision, nil
}

// ownedBatch decides (or observes) recs of partition g, which this node
// owns, in order: all are sent to the stream before any acknowledgement
// is waited for.
func (n *Node) ownedBatch(ctx context.Context, g *guardPart, recs []*event.Record) ([]event.Decision, error) {
	n.catchUp(ctx) // watch.go: the decisions see every record stored before them
	ps := make([]*pending, 0, len(recs))
	var err error
	for _, r := range recs {
		var p *pending
		if p, err = n.start(g, r, r.Type.Action()); err != nil {
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

// DecideBatch decides the customer actions among recs and observes the
// rest, as Decide and Observe would one by one, and returns the actions'
// decisions in order. The records of each partition go to its owner in
// one request and to the stream without waiting for each other; the
// partitions are decided at once.
func (n *Node) DecideBatch(ctx context.Context, recs []*event.Record) ([]event.Decision, error) {
	parts := map[int][]int{} // partition → indexes in recs
	var order []int
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			idx := parts[p]
			sub := make([]*event.Record, len(idx))
			for j, i := range idx {
				sub[j] = recs[i]
			}
			ds, err := n.routeBatch(ctx, p, sub)
			if err != nil {
				errs[k] = err
				return
			}
			for j, i := range idx {
				all[i] = ds[j]
			}
		}()
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

// routeBatch has recs of partition p decided where p is owned, trying
// again across a failover for up to ForwardTimeout.
func (n *Node) routeBatch(ctx context.Context, p int, recs []*event.Record) ([]event.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, ForwardTimeout)
	defer cancel()
	g := n.guards[p]
	for {
		var ds []event.Decision
		var err error
		if g.isActive() {
			ds, err = n.ownedBatch(ctx, g, recs)
			n.metrics.local.Add(uint64(len(recs)))
		} else {
			ds, err = n.forwardBatch(ctx, p, recs)
			if err == nil {
				n.metrics.forwarded.Add(uint64(len(recs)))
			}
		}
		if err == nil || !retryable(err) {
			return ds, err
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("cluster: no owner of guard partition %d answered: %w", p, err)
		case <-t.C:
		}
	}
}

// forwardBatch asks the owner of partition p to decide recs, sent as JSON
// Lines; it answers a JSON array of their decisions.
func (n *Node) forwardBatch(ctx context.Context, p int, recs []*event.Record) ([]event.Decision, error) {
	msg := nats.NewMsg(n.subject("decide." + strconv.Itoa(p)))
	for _, r := range recs {
		msg.Data = append(r.AppendJSON(msg.Data), '\n')
	}
	msg.Header.Set(hdrOp, "batch")
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := n.nc.RequestMsgWithContext(rctx, msg)
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		err = nats.ErrTimeout
	}
	if err != nil {
		return nil, err
	}
	switch resp.Header.Get(hdrError) {
	case "":
	case "not_owner":
		return nil, errNotOwner
	default:
		return nil, fmt.Errorf("cluster: the owner of partition %d could not decide: %s", p, resp.Data)
	}
	var ds []event.Decision
	if err := json.Unmarshal(resp.Data, &ds); err != nil || len(ds) != len(recs) {
		return nil, fmt.Errorf("cluster: the owner's decisions: %d for %d records (%v)", len(ds), len(recs), err)
	}
	return ds, nil
}

// recordMsg is the stream's message of r and its decision.
func (n *Node) recordMsg(p int, r *event.Record, decide bool, d *event.Decision) *nats.Msg {
	msg := nats.NewMsg(n.subject("rec." + strconv.Itoa(p) + "." + strconv.Itoa(n.instrumentPart(r))))
	msg.Data = r.AppendJSON(nil)
	msg.Header.Set(jetstream.MsgIDHeader, r.ID)
	msg.Header.Set(hdrNode, n.cfg.Node)
	if decide {
		msg.Header.Set(hdrDecision, string(d.AppendJSON(nil)))
	}
	return msg
}

// storedDecision reads the decision stored at sequence seq.
func (n *Node) storedDecision(ctx context.Context, seq uint64) (event.Decision, error) {
	m, err := n.records.GetMsg(ctx, seq)
	if err != nil {
		return event.Decision{}, err
	}
	var d event.Decision
	if err := json.Unmarshal([]byte(m.Header.Get(hdrDecision)), &d); err != nil {
		return d, fmt.Errorf("cluster: stored decision at %d: %w", seq, err)
	}
	return d, nil
}

// acquireGuard rebuilds partition g, whose lease this node just took,
// from the stream, and starts answering for it.
func (n *Node) acquireGuard(ctx context.Context, g *guardPart) {
	g.mu.Lock()
	gen := g.gen
	g.mu.Unlock()
	start := n.cfg.Now()
	// The reference records first, so that the engine's instrument table
	// is in the stream's order, as on every node: a snapshot names
	// instruments by their place in it.
	if waitFlag(ctx, &n.refReady) != nil {
		return
	}
	g.mu.Lock()
	never := g.applied == 0
	fromSnap := g.fromSnap // taken back: the state goes on from the same start
	g.mu.Unlock()
	if never {
		seq, err := n.loadGuard(ctx, g)
		if err != nil {
			n.log.Warn("guard partition's snapshot not loaded; rebuilding from the whole stream", "partition", g.id, "err", err)
		}
		fromSnap = seq > 0
	}
	for {
		err := n.rebuildGuard(ctx, g)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		n.log.Error("guard partition not rebuilt; trying again", "partition", g.id, "err", err)
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gen != gen || ctx.Err() != nil {
		return // given up while rebuilding
	}
	sub, err := n.serveGuard(g)
	if err != nil {
		n.log.Error("guard partition not served", "partition", g.id, "err", err)
		return
	}
	g.sub, g.active = sub, true
	g.fromSnap = fromSnap
	g.rebuild.Store(int64(n.cfg.Now().Sub(start)))
	g.ready.Store(true)
	n.log.Info("guard partition owned", "partition", g.id, "rebuild", n.cfg.Now().Sub(start).Round(time.Millisecond), "snapshot", fromSnap, "replayed", g.replayed.Load(), "seq", g.applied)
}

// rebuildGuard feeds the engine what the stream holds for partition g
// after what it already learnt.
func (n *Node) rebuildGuard(ctx context.Context, g *guardPart) error {
	g.mu.Lock()
	from := g.applied
	g.mu.Unlock()
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{n.subject("rec." + strconv.Itoa(g.id) + ".*")}}
	if from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from+1
	}
	return n.readAll(ctx, cfg, func(m jetstream.Msg, seq uint64) error {
		r, err := event.Decode(m.Data())
		if err != nil {
			return fmt.Errorf("record at %d: %w", seq, err)
		}
		g.replayed.Add(1)
		var res risk.Result
		if h := m.Headers().Get(hdrDecision); h != "" {
			var d event.Decision
			if err := json.Unmarshal([]byte(h), &d); err != nil {
				return fmt.Errorf("decision at %d: %w", seq, err)
			}
			n.pipe.Risk.DecideInto(r, &res, false) // to learn from it, as pipeline.Warm does
			g.mu.Lock()
			g.decided[r.ID] = doneDecided(d)
			g.mu.Unlock()
		} else {
			n.pipe.Risk.Observe(r)
			g.mu.Lock()
			g.decided[r.ID] = doneDecided(event.Decision{})
			g.mu.Unlock()
		}
		g.mu.Lock()
		g.accounts[r.Account] = struct{}{}
		g.applied = max(g.applied, seq)
		g.mu.Unlock()
		return nil
	})
}

// readAll reads a consumer's messages until none is pending.
func (n *Node) readAll(ctx context.Context, cfg jetstream.OrderedConsumerConfig, fn func(m jetstream.Msg, seq uint64) error) error {
	cons, err := n.js.OrderedConsumer(ctx, n.records.CachedInfo().Config.Name, cfg)
	if err != nil {
		return err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return err
	}
	if info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m, err := it.Next()
		if err != nil {
			return err
		}
		meta, err := m.Metadata()
		if err != nil {
			return err
		}
		if err := fn(m, meta.Sequence.Stream); err != nil {
			return err
		}
		if meta.NumPending == 0 {
			return nil
		}
	}
}

// releaseGuard hands partition g over: it stops answering, waits for the
// decisions in flight to be in the stream, saves its snapshot, and deletes
// the lease.
func (n *Node) releaseGuard(ctx context.Context, g *guardPart) error {
	g.mu.Lock()
	rebuilt := g.active
	g.deactivate()
	g.mu.Unlock()
	g.inflight.Wait()
	g.held = false
	var err error
	if rebuilt {
		_, err = n.saveGuard(ctx, g, true)
	}
	return errors.Join(err, n.giveBack(ctx, g.key, g.rev))
}

// holdProceeds holds a withdrawal that would take proceeds of trades the
// watchtower flagged, as pipeline.Pipeline does in a single process. The
// node's watchtower reads the whole stream, so it knows the account's held
// proceeds; until it has read the stream, the node holds the withdrawal
// for an analyst: money movement fails closed.
func (n *Node) holdProceeds(r *event.Record, res *risk.Result) {
	d := &res.Decision
	if r.Type != event.TypeWithdrawal || d.Action == event.Deny || d.Action == event.Hold {
		return
	}
	held, known := int64(0), false
	if w := n.view; w.ready.Load() {
		w.mu.Lock()
		if w.w != nil {
			held, known = w.w.HeldProceeds(r.Account, r.Time), true
		}
		w.mu.Unlock()
	}
	if known && held <= 0 {
		return
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
