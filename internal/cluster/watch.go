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
// The node that holds its lease carries out the alerts of its partition
// and writes its instruments' heat. The watchtower that raises them is the
// node's own (view): one per node, reading the whole records stream once,
// every account's records in every instrument, as a single process's
// does: its detectors follow an account from the holdings it sells to the
// issue it buys, across partitions.
//
// The view is a watchPart too (id -1): its fields below mu are the
// watchtower's and its consumer's; a partition's are unused.
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

// stopConsume stops reading and drops the partition's state: the view's
// watchtower, or a partition's ownership.
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

// emitted is an alert the node's watchtower raised for partition q, from
// a record stored at at, kept for the duplicate window of the alerts
// stream: a node that takes partition q over stores and carries out those
// the node that held it did not (it died first).
type emitted struct {
	q  int
	at time.Time
	a  event.Alert
}

// dupWindow is how long the streams recognise a message id again.
const dupWindow = 10 * time.Minute

// acquireWatch takes watchtower partition p, whose lease this node just
// took: once the node's watchtower has read the stream, the node carries
// out p's alerts, first those raised in the stream's duplicate window
// (the stream recognises those stored already, and the bucket those
// carried out).
func (n *Node) acquireWatch(ctx context.Context, p *watchPart) {
	p.mu.Lock()
	gen := p.gen
	p.mu.Unlock()
	start := n.cfg.Now()
	if waitFlag(ctx, &n.view.ready) != nil {
		return
	}
	p.mu.Lock()
	if p.gen != gen {
		p.mu.Unlock()
		return // given up meanwhile
	}
	p.rebuild.Store(int64(n.cfg.Now().Sub(start)))
	p.ready.Store(true)
	p.mu.Unlock()
	n.log.Info("watchtower partition owned", "partition", p.id, "waited", n.cfg.Now().Sub(start).Round(time.Millisecond))
	n.raiseMu.Lock()
	var again []emitted
	for _, e := range n.recent {
		if e.q == p.id {
			again = append(again, e)
		}
	}
	n.raiseMu.Unlock()
	for _, e := range again {
		n.raise(ctx, e.q, e.a)
	}
}

// ownsWatch reports whether this node carries out the alerts of
// watchtower partition q.
func (n *Node) ownsWatch(q int) bool { return n.watches[q].ready.Load() }

// readStream runs the node's own watchtower (the view) over the whole
// retained stream, and goes on reading it.
func (n *Node) readStream(ctx context.Context) {
	p := n.view
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
			n.log.Error("records stream not read by the node's watchtower", "err", err)
		}
		return
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			return
		}
		p.lag.Store(meta.NumPending)
		n.watchMsg(ctx, p, w, gen, m, meta)
		if meta.NumPending == 0 && !p.ready.Load() {
			p.rebuild.Store(int64(n.cfg.Now().Sub(start)))
			p.ready.Store(true)
			n.log.Info("watchtower read the stream", "rebuild", n.cfg.Now().Sub(start).Round(time.Millisecond))
		}
	})
	if err != nil {
		n.log.Error("records stream not read by the node's watchtower", "err", err)
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

// watchMsg feeds one stored record to the node's watchtower, and carries
// out the alerts it raises of the partitions this node owns.
func (n *Node) watchMsg(ctx context.Context, p *watchPart, w *surveil.Watch, gen int, m jetstream.Msg, meta *jetstream.MsgMetadata) {
	seq := meta.Sequence.Stream
	r, err := event.Decode(m.Data())
	if err != nil {
		n.log.Error("stored record not read", "err", err)
		return
	}
	var d *event.Decision
	if h := m.Headers().Get(hdrDecision); h != "" {
		d = new(event.Decision)
		if err := decodeDecision([]byte(h), d); err != nil {
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
	if heat >= 0 && p.ready.Load() && n.ownsWatch(n.instrumentPart(r)) {
		n.putHeat(ctx, r.Symbol, heat)
	}
	if len(alerts) == 0 {
		return
	}
	// Remembered before the ownership is looked at: a partition taken
	// meanwhile (acquireWatch) raises what was remembered before it was.
	n.raiseMu.Lock()
	for i := range alerts {
		n.recent = append(n.recent, emitted{q: n.alertPart(&alerts[i]), at: meta.Timestamp, a: alerts[i]})
	}
	k := 0
	for k < len(n.recent) && meta.Timestamp.Sub(n.recent[k].at) > dupWindow {
		k++
	}
	if k > 0 {
		for _, e := range n.recent[:k] {
			_, _, id := emission(e.q, e.a)
			delete(n.raised, id)
		}
		n.recent = append(n.recent[:0], n.recent[k:]...)
	}
	n.raiseMu.Unlock()
	for i := range alerts {
		if q := n.alertPart(&alerts[i]); n.ownsWatch(q) {
			select { // carried out by raiseLoop: the watchtower reads on
			case n.raiseQ <- emitted{q: q, a: alerts[i]}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// raiseLoop carries out, in order, the alerts the node's watchtower
// raised for the partitions this node owns, until ctx ends: apart from
// the watchtower's consumer, which goes on feeding the engine (and
// catchUp) while an alert is stored and its halt or freezes written.
func (n *Node) raiseLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-n.raiseQ:
			n.raise(ctx, e.q, e.a)
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
	n.raiseMu.Lock()
	again := n.raised[emit]
	n.raised[emit] = true
	n.raiseMu.Unlock()
	if again {
		return // raised by this node already
	}
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
	p.stopConsume() // the node's watchtower goes on reading
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
// the node's watchtower: its heat, its alerts' halts and freezes, and r
// itself when it is a reference record, as a single process's pipeline
// does after each record. Heat and alerts of records stored before the node
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

// noteSeq notes that the stream acknowledged a record this node stored at
// sequence seq.
func (n *Node) noteSeq(seq uint64) {
	for {
		at := n.acked.Load()
		if seq <= at || n.acked.CompareAndSwap(at, seq) {
			return
		}
	}
}

// alone reports whether this node is the only live one of its cluster
// (as of its last lease round): then it stores every record of the
// stream, and the sequences it was acknowledged tell where the stream
// ends without asking.
func (n *Node) alone() bool {
	m := n.liveMembers()
	return len(m) == 1 && m[0] == n.cfg.Node
}

// probe is one request for the stream's last sequence, shared by the
// catchUp calls that came before it was sent.
type probe struct {
	done chan struct{}
	seq  uint64
	err  error
}

// streamLast returns the stream's last sequence, as the server tells it
// in a request sent after streamLast was called. One request is in
// flight at a time: the calls that come meanwhile share the next one.
func (n *Node) streamLast(ctx context.Context) (uint64, error) {
	n.probeMu.Lock()
	p := n.probeNext
	if p == nil {
		p = &probe{done: make(chan struct{})}
		n.probeNext = p
	}
	if !n.probing {
		n.probing = true
		go n.runProbes()
	}
	n.probeMu.Unlock()
	select {
	case <-p.done:
		return p.seq, p.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// runProbes sends the probes asked for, one after the other, until none
// is waiting.
func (n *Node) runProbes() {
	for {
		n.probeMu.Lock()
		p := n.probeNext
		n.probeNext = nil
		if p == nil {
			n.probing = false
			n.probeMu.Unlock()
			return
		}
		n.probeMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), catchUpWait)
		info, err := n.records.Info(ctx)
		cancel()
		if err == nil {
			p.seq = info.State.LastSeq
		}
		p.err = err
		close(p.done)
	}
}

// catchUp waits until the node's watchtower has fed its engine every
// record the stream holds now, so that a decision made next sees what
// every record stored before it told the watchtower (see Config.Loose).
// Where the stream ends: on a node alone in its cluster, the last
// sequence the stream acknowledged to it; otherwise, one stream-info
// request shared by the decisions that came while the one before was in
// flight. A node whose watchtower has not read the stream yet, or one
// that does not catch up within catchUpWait, decides on what it has.
func (n *Node) catchUp(ctx context.Context) {
	if n.cfg.Loose {
		return
	}
	if !n.view.ready.Load() {
		return
	}
	last := n.acked.Load()
	if !n.alone() {
		s, err := n.streamLast(ctx)
		if err != nil {
			return
		}
		last = max(last, s)
	}
	wait := catchUpWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, dl.Sub(n.cfg.Now())/2)
	}
	var t *time.Timer
	for {
		n.feedMu.Lock()
		at, ch, open := n.watchSeq.Load(), n.fed, len(n.uncarried)
		n.feedMu.Unlock()
		if at >= last && open == 0 {
			return
		}
		if t == nil {
			t = time.NewTimer(wait)
			defer t.Stop()
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

// decodeDecision reads a decision stored in the records stream's
// Kabuto-Decision header (event.Decision.AppendJSON's JSON).
func decodeDecision(b []byte, d *event.Decision) error {
	return json.Unmarshal(b, d)
}
