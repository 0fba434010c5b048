package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// watchPart is one watchtower partition: the instruments whose hash falls
// in it (and the alerts of no instrument of the accounts whose hash does).
// Its watchtower reads the whole records stream, every account's records
// in every instrument, as a single process's does: its detectors follow
// an account from the holdings it sells to the issue it buys, across
// partitions. It carries out only the alerts of its own partition, and
// writes only its own instruments' heat.
type watchPart struct {
	id  int
	key string

	held bool // the lease loop's
	rev  uint64

	mu  sync.Mutex
	gen int
	w   *surveil.Watch
	cc  jetstream.ConsumeContext

	ready   atomic.Bool
	lag     atomic.Uint64
	rebuild atomic.Int64
	seen    atomic.Uint64
}

// stopConsume stops reading and drops the partition's state.
func (p *watchPart) stopConsume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	p.ready.Store(false)
	if p.cc != nil {
		p.cc.Stop()
		p.cc = nil
	}
	p.w = nil
}

// acquireWatch rebuilds watchtower partition p from the whole retained
// stream into a new watchtower and goes on reading it.
// While it catches up, the alerts it raises again are recognised by their
// ids (a watchtower fed the same records in the same order raises the same
// alerts with the same ids) and not carried out twice.
func (n *Node) acquireWatch(ctx context.Context, p *watchPart) {
	p.mu.Lock()
	gen := p.gen
	w := surveil.New(n.pipe.Watch.Config())
	for _, r := range n.cfg.Reference {
		w.Observe(r, nil)
	}
	p.w = w
	p.mu.Unlock()
	start := n.cfg.Now()
	cons, err := n.js.OrderedConsumer(ctx, n.records.CachedInfo().Config.Name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{n.subject("rec.>")}, // the whole stream, reference records too
	})
	if err == nil {
		var info *jetstream.ConsumerInfo
		if info, err = cons.Info(ctx); err == nil && info.NumPending == 0 {
			p.rebuild.Store(int64(n.cfg.Now().Sub(start)))
			p.ready.Store(true)
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			n.log.Error("watchtower partition not read", "partition", p.id, "err", err)
		}
		return
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		p.lag.Store(meta.NumPending)
		n.watchMsg(ctx, p, w, gen, m, meta.Sequence.Stream)
		if meta.NumPending == 0 && !p.ready.Load() {
			p.rebuild.Store(int64(n.cfg.Now().Sub(start)))
			p.ready.Store(true)
			n.log.Info("watchtower partition owned", "partition", p.id, "rebuild", n.cfg.Now().Sub(start).Round(time.Millisecond))
		}
	})
	if err != nil {
		n.log.Error("watchtower partition not read", "partition", p.id, "err", err)
		return
	}
	p.mu.Lock()
	if p.gen != gen {
		p.mu.Unlock()
		cc.Stop()
		return
	}
	p.cc = cc
	p.mu.Unlock()
}

// watchMsg feeds one stored record to partition p's watchtower and carries
// out the alerts it raises.
func (n *Node) watchMsg(ctx context.Context, p *watchPart, w *surveil.Watch, gen int, m jetstream.Msg, seq uint64) {
	r, err := event.Decode(m.Data())
	if err != nil {
		n.log.Error("stored record not read", "err", err)
		return
	}
	var d *event.Decision
	if h := m.Headers().Get(hdrDecision); h != "" {
		d = new(event.Decision)
		if err := json.Unmarshal([]byte(h), d); err != nil {
			n.log.Error("stored decision not read", "event", r.ID, "err", err)
			return
		}
	}
	p.mu.Lock()
	if p.gen != gen {
		p.mu.Unlock()
		return
	}
	alerts := w.Observe(r, d)
	heat := -1
	if r.Symbol != "" {
		heat = w.Heat(r.Symbol)
	}
	p.mu.Unlock()
	p.seen.Add(1)
	n.feed(seq, r, heat, alerts)
	if heat >= 0 && p.ready.Load() && n.instrumentPart(r) == p.id {
		n.putHeat(ctx, r.Symbol, heat)
	}
	for i := range alerts {
		if n.alertPart(&alerts[i]) == p.id {
			n.raise(ctx, p.id, alerts[i])
		}
	}
}

// emission returns alert a of partition q as the cluster stores it (its
// ids prefixed with the partition, unique across partitions), its JSON,
// and the id of this emission of it: the watchtower emits an alert again
// when it grows (a higher score, an action, more accounts to freeze),
// and every emission is stored and carried out once. Every watchtower
// fed the same stream emits the same alerts, so the id is the same on
// every node.
func emission(q int, a event.Alert) (event.Alert, []byte, string) {
	pre := "c" + strconv.Itoa(q) + "-"
	a.Alert = pre + a.Alert
	if a.Campaign != "" {
		a.Campaign = pre + a.Campaign
	}
	data := a.AppendJSON(nil)
	return a, data, a.Alert + "." + strconv.FormatUint(hash64(string(data)), 36)
}

// alertPart is the watchtower partition that carries out alert a: its
// instrument's, or, for an alert of no instrument, its first account's.
func (n *Node) alertPart(a *event.Alert) int {
	switch {
	case a.Symbol != "":
		return int(hash32(a.Symbol) % uint32(n.cfg.Partitions))
	case len(a.Accounts) > 0:
		return int(hash32(a.Accounts[0]) % uint32(n.cfg.Partitions))
	}
	return 0
}

// raise stores alert a of partition q in the alerts stream and, unless
// the stream had it already, carries out its action.
func (n *Node) raise(ctx context.Context, q int, a event.Alert) {
	a, data, emit := emission(q, a)
	msg := nats.NewMsg(n.subject("alert." + strconv.Itoa(q)))
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, emit)
	msg.Header.Set(hdrNode, n.cfg.Node)
	acts := a.Action == event.AlertHaltBuys || a.Action == event.AlertFreezeAccounts
	ack, err := n.js.PublishMsg(ctx, msg)
	if err != nil {
		n.log.Error("alert not stored in the stream; carrying it out", "alert", a.Alert, "err", err)
	} else if ack.Duplicate {
		// Raised before this node took the partition. Its halt or
		// freeze was carried out then, unless the node that raised it
		// died first: then it is carried out here.
		if !acts {
			return
		}
		if _, err := n.controls.Get(ctx, doneKey(emit)); err == nil || !errors.Is(err, jetstream.ErrKeyNotFound) {
			return
		}
		n.log.Warn("alert raised by a node that died before carrying it out; carrying it out", "alert", a.Alert)
	}
	if acts {
		defer n.markCarried(ctx, emit)
	}
	if err := n.pipe.Sink.Alert(ctx, &a); err != nil {
		n.log.Error("alert not logged in the database", "alert", a.Alert, "err", err)
	}
	if n.cfg.OnAlert != nil {
		n.cfg.OnAlert(ctx, a)
		return
	}
	switch a.Action {
	case event.AlertHaltBuys:
		if a.Symbol != "" {
			n.SetHalt(a.Symbol, true)
		}
	case event.AlertFreezeAccounts:
		for _, acct := range a.Accounts {
			n.SetFrozen(acct, true)
		}
	}
}

// releaseWatch hands watchtower partition p over.
func (n *Node) releaseWatch(ctx context.Context, p *watchPart) error {
	p.stopConsume()
	p.held = false
	return n.giveBack(ctx, p.key, p.rev)
}

// readReference reads the reference records (instruments, bars) into the
// node's engine, from the start of the stream and as they come, until the
// node's own watchtower (view) has caught up and feeds them.
func (n *Node) readReference(ctx context.Context) error {
	cons, err := n.js.OrderedConsumer(ctx, n.records.CachedInfo().Config.Name, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{n.subject("rec.ref.*")},
	})
	if err != nil {
		return err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return err
	}
	if info.NumPending == 0 {
		n.refReady.Store(true)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		if r, err := event.Decode(m.Data()); err == nil {
			n.feedMu.Lock()
			if meta.Sequence.Stream > n.refSeq {
				n.refSeq = meta.Sequence.Stream
				n.pipe.Risk.Observe(r)
			}
			n.feedMu.Unlock()
		}
		if meta.NumPending == 0 {
			n.refReady.Store(true)
		}
	})
	if err != nil {
		return err
	}
	// Once the node's own watchtower (view) reads the stream, it feeds
	// the engine the reference records: this reader stops.
	n.done.Add(1)
	go func() {
		defer n.done.Done()
		defer cc.Stop()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for !n.view.ready.Load() {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// feed gives the node's engine what record r, at stream sequence seq, told
// a watchtower partition of this node: its heat, its alerts' halts and
// freezes, and r itself when it is a reference record, as a single
// process's pipeline does after each record. Every partition of the node
// reads the whole stream; the first to reach a record feeds it, the
// others skip it. Heat and alerts of records stored before the node
// started are the bucket's (a halt an analyst lifted since stays lifted).
func (n *Node) feed(seq uint64, r *event.Record, heat int, alerts []event.Alert) {
	n.feedMu.Lock()
	defer n.feedMu.Unlock()
	if seq <= n.watchSeq.Load() {
		return
	}
	if r.Account == "" && !r.Type.Action() && seq > n.refSeq {
		n.refSeq = seq
		n.pipe.Risk.Observe(r)
	}
	if seq > n.alertFrom {
		if heat >= 0 {
			n.pipe.Risk.SetHeat(r.Symbol, heat)
		}
		for i := range alerts {
			a := &alerts[i]
			switch a.Action {
			case event.AlertHaltBuys:
				if a.Symbol != "" {
					n.pipe.Risk.SetHalt(a.Symbol, true)
				}
			case event.AlertFreezeAccounts:
				for _, acct := range a.Accounts {
					n.pipe.Risk.SetFrozen(acct, true)
				}
			default:
				continue
			}
			if _, _, id := emission(n.alertPart(a), *a); !n.carried[id] {
				n.uncarried[id] = true
			}
		}
	}
	n.watchSeq.Store(seq)
	close(n.fed)
	n.fed = make(chan struct{})
}

// liveFeed reports whether a watchtower partition of this node feeds its
// engine records stored since it started (heat then comes from there, not
// from the bucket, which other nodes write a moment later).
func (n *Node) liveFeed() bool {
	n.feedMu.Lock()
	defer n.feedMu.Unlock()
	return n.watchSeq.Load() > n.alertFrom
}

// catchUpWait is the longest catchUp waits for the node's watchtower and
// for the alerts it raised to be carried out; never more than half the
// time the decision has left.
const catchUpWait = 2 * time.Second

// doneKey is the bucket key that says an alert's emission (see emission)
// was carried out: its halt and freezes are in the database.
func doneKey(id string) string { return "done." + keyPart(id) }

// markCarried writes that alert id was carried out.
func (n *Node) markCarried(ctx context.Context, id string) {
	if _, err := n.controls.PutString(ctx, doneKey(id), "1"); err != nil && ctx.Err() == nil {
		n.log.Warn("alert carried out, but not marked so in the bucket", "alert", id, "err", err)
	}
}

// carriedOut notes, from the bucket, that alert id was carried out.
func (n *Node) carriedOut(id string) {
	n.feedMu.Lock()
	defer n.feedMu.Unlock()
	n.carried[id] = true
	if n.uncarried[id] {
		delete(n.uncarried, id)
		close(n.fed)
		n.fed = make(chan struct{})
	}
}

// catchUp waits until a watchtower partition of this node has fed its
// engine every record the stream holds now, so that a decision made next
// sees what every record stored before it told the watchtower (see
// Config.Loose). A node with no partition reading the stream, or one that
// does not catch up within catchUpWait, decides on what it has.
func (n *Node) catchUp(ctx context.Context) {
	if n.cfg.Loose {
		return
	}
	if !n.view.ready.Load() {
		return
	}
	info, err := n.records.Info(ctx)
	if err != nil {
		return
	}
	last := info.State.LastSeq
	wait := catchUpWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, dl.Sub(n.cfg.Now())/2)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		n.feedMu.Lock()
		at, ch, open := n.watchSeq.Load(), n.fed, len(n.uncarried)
		n.feedMu.Unlock()
		if at >= last && open == 0 {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		case <-t.C:
			n.metrics.catchUpLate.Add(1)
			n.log.Warn("watchtower behind the stream, or its halts and freezes not yet carried out; deciding on what it has", "at", at, "stream", last, "alerts", open, "waited", wait)
			return
		}
	}
}
