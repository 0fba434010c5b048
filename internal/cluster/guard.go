package cluster

import (
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
// account (instruments, bars) go to the stream for every node, without
// waiting for the stream's acknowledgement; an
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
		// Published without waiting for the stream's acknowledgement:
		// market data decides nothing by itself, and a bar a minute
		// for every issue is most of the stream. A failure is logged.
		_, err := n.js.PublishMsgAsync(msg)
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

// owned decides (or observes) r in partition g, which this node owns:
// once per record id. The decision is durable in the stream before it is
// returned; without the stream's acknowledgement there is no decision.
func (n *Node) owned(ctx context.Context, g *guardPart, r *event.Record, decide bool, out *event.Decision) error {
	g.mu.Lock()
	if !g.active {
		g.mu.Unlock()
		return errNotOwner
	}
	if e := g.decided[r.ID]; e != nil {
		g.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if e.err != nil {
			return e.err
		}
		if out != nil {
			*out = e.d
		}
		return nil
	}
	var res risk.Result
	if decide {
		if n.pipe.Explain {
			res.Features = make(map[string]any, 32)
		}
		n.pipe.Risk.DecideInto(r, &res, n.pipe.Explain)
		res.Decision.Node = n.cfg.Node
	} else {
		n.pipe.Risk.Observe(r)
	}
	e := &decided{done: make(chan struct{})}
	g.decided[r.ID] = e
	msg := n.recordMsg(g.id, r, decide, &res.Decision)
	fut, err := n.js.PublishMsgAsync(msg)
	g.inflight.Add(1)
	g.mu.Unlock()
	defer g.inflight.Done()
	fail := func(err error) error {
		g.mu.Lock()
		delete(g.decided, r.ID)
		g.mu.Unlock()
		e.err = err
		close(e.done)
		return err
	}
	if err != nil {
		return fail(err)
	}
	var ack *jetstream.PubAck
	select {
	case ack = <-fut.Ok():
	case err = <-fut.Err():
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
		res.Decision = d
	} else if decide {
		if err := n.pipe.Sink.Decision(ctx, r, &res); err != nil {
			n.log.Error("decision not logged in the database (it is in the stream)", "event", r.ID, "err", err)
		}
		if n.pipe.Tap != nil {
			n.pipe.Tap(r, &res.Decision)
		}
	}
	g.mu.Lock()
	g.applied = max(g.applied, ack.Sequence)
	g.mu.Unlock()
	e.d = res.Decision
	close(e.done)
	if out != nil {
		*out = res.Decision
	}
	return nil
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
	start := time.Now()
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
	g.rebuild.Store(int64(time.Since(start)))
	g.ready.Store(true)
	n.log.Info("guard partition owned", "partition", g.id, "rebuild", time.Since(start).Round(time.Millisecond), "from_seq", g.applied)
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
// decisions in flight to be in the stream, and deletes the lease.
func (n *Node) releaseGuard(ctx context.Context, g *guardPart) error {
	g.mu.Lock()
	g.deactivate()
	g.mu.Unlock()
	g.inflight.Wait()
	g.held = false
	return n.giveBack(ctx, g.key, g.rev)
}
