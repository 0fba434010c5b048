package kafkacluster

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// heldMax is how many alerts of a partition it does not own a node keeps
// for a handover.
const heldMax = 64

// startBroadcast reads, from their start and as they come, the topics
// every node reads: the controls into the engine, the reference records
// into the engine and the watchtower, the records with their decisions
// into the watchtower.
func (n *Node) startBroadcast(ctx context.Context) error {
	parts := make([]int32, n.cfg.Partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	recEnd, err := n.endOffsets(ctx, n.t.records, parts)
	if err != nil {
		return err
	}
	ctlEnd, err := n.endOffsets(ctx, n.t.controls, []int32{0})
	if err != nil {
		return err
	}
	refEnd, err := n.endOffsets(ctx, n.t.reference, []int32{0})
	if err != nil {
		return err
	}
	// What must be read before the node is of use: targets per topic and
	// partition, dropped as they are reached.
	refLeft := map[string]int64{}
	if ctlEnd[0] > 0 {
		refLeft[n.t.controls] = ctlEnd[0]
	}
	if refEnd[0] > 0 {
		refLeft[n.t.reference] = refEnd[0]
	}
	recLeft := map[int32]int64{}
	for p, e := range recEnd {
		if e > 0 {
			recLeft[p] = e
		}
	}
	if len(refLeft) == 0 {
		n.refReady.Store(true)
	}
	if len(recLeft) == 0 {
		n.watchReady.Store(true)
	}
	start := kgo.NewOffset().AtStart()
	recs := map[int32]kgo.Offset{}
	for _, p := range parts {
		recs[p] = start
	}
	n.bcast, err = kgo.NewClient(n.opts(kgo.ClientID("kabuto-"+n.cfg.Node+"-broadcast"), kgo.FetchMaxWait(time.Second),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			n.t.controls: {0: start}, n.t.reference: {0: start}, n.t.records: recs,
		}))...)
	if err != nil {
		return err
	}
	n.done.Add(1)
	go func() {
		defer n.done.Done()
		for {
			fs := n.bcast.PollFetches(ctx)
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(rec *kgo.Record) {
				switch rec.Topic {
				case n.t.controls:
					n.applyControl(string(rec.Key), string(rec.Value))
				case n.t.reference:
					n.reference(rec)
				case n.t.records:
					n.watchRecord(ctx, rec)
				}
				if !n.refReady.Load() {
					if e, ok := refLeft[rec.Topic]; ok && rec.Offset+1 >= e {
						delete(refLeft, rec.Topic)
						if len(refLeft) == 0 {
							n.refReady.Store(true)
						}
					}
				}
				if !n.watchReady.Load() && rec.Topic == n.t.records {
					if e, ok := recLeft[rec.Partition]; ok && rec.Offset+1 >= e {
						delete(recLeft, rec.Partition)
						if len(recLeft) == 0 {
							n.watchCaughtUp(ctx)
						}
					}
				}
			})
		}
	}()
	return nil
}

// watchCaughtUp marks the watchtower as having read the records topic to
// its end at start, and carries out what it held for the partitions the
// node owns.
func (n *Node) watchCaughtUp(ctx context.Context) {
	n.watchReady.Store(true)
	n.log.Info("watchtower read the records topic")
	for _, g := range n.guards {
		if g.ready.Load() {
			n.flushHeld(ctx, g.id)
		}
	}
}

// reference feeds an instrument or bar to the engine and the watchtower.
func (n *Node) reference(rec *kgo.Record) {
	r, err := event.Decode(rec.Value)
	if err != nil {
		n.log.Error("reference record not read", "offset", rec.Offset, "err", err)
		return
	}
	n.pipe.Risk.Observe(r)
	n.wmu.Lock()
	n.watch.Observe(r, nil) // reference records raise no alert
	n.wmu.Unlock()
}

// watchRecord feeds a stored record with its decision to the watchtower,
// writes the heat of the instruments this node answers for, and carries
// out (or keeps, see held) the alerts raised.
func (n *Node) watchRecord(ctx context.Context, rec *kgo.Record) {
	r, err := event.Decode(rec.Value)
	if err != nil {
		n.log.Error("stored record not read", "partition", rec.Partition, "offset", rec.Offset, "err", err)
		return
	}
	var d *event.Decision
	if h := header(rec, hdrDecision); h != "" {
		d = new(event.Decision)
		if err := json.Unmarshal([]byte(h), d); err != nil {
			n.log.Error("stored decision not read", "event", r.ID, "err", err)
			return
		}
	}
	n.watched.Add(1)
	n.wmu.Lock()
	alerts := n.watch.Observe(r, d)
	if r.Time.After(n.lastTime) {
		n.lastTime = r.Time
	}
	heat, heatChanged := -1, false
	if r.Symbol != "" {
		heat = n.watch.Heat(r.Symbol)
		old, ok := n.heat[r.Symbol]
		heatChanged = !ok || old != heat
	}
	n.wmu.Unlock()
	if heatChanged && n.watchReady.Load() && n.guards[n.symbolPart(r.Symbol)].ready.Load() {
		n.wmu.Lock()
		n.heat[r.Symbol] = heat
		n.wmu.Unlock()
		n.putControl(ctx, "heat."+r.Symbol, strconv.Itoa(heat), false)
	}
	for _, a := range alerts {
		n.raised(ctx, a)
	}
}

// alertPart is the partition whose owner carries out alert a: its
// instrument's, or, for an alert of no instrument, its first account's.
func (n *Node) alertPart(a *event.Alert) int32 {
	switch {
	case a.Symbol != "":
		return n.symbolPart(a.Symbol)
	case len(a.Accounts) > 0:
		return n.accountPart(a.Accounts[0])
	}
	return 0
}

// raised handles an alert of the node's watchtower: carried out if the
// node owns its partition and its watchtower is up to date, kept for a
// handover otherwise.
func (n *Node) raised(ctx context.Context, a event.Alert) {
	q := n.alertPart(&a)
	pre := "k" + strconv.Itoa(int(q)) + "-" + n.cfg.Node + "-"
	a.Alert = pre + a.Alert
	if a.Campaign != "" {
		a.Campaign = pre + a.Campaign
	}
	if n.watchReady.Load() && n.guards[q].ready.Load() {
		n.carryOut(ctx, q, a)
		return
	}
	n.wmu.Lock()
	h := append(n.held[q], a)
	if len(h) > heldMax {
		h = h[len(h)-heldMax:]
	}
	n.held[q] = h
	n.wmu.Unlock()
}

// alertKey says what an alert is about: two alerts of one key are one
// alert raised by two nodes' watchtowers.
func alertKey(a *event.Alert) string {
	accts := slices.Clone(a.Accounts)
	slices.Sort(accts)
	return a.Kind + "|" + a.Symbol + "|" + a.Action + "|" + strings.Join(accts, ",")
}

// flushHeld carries out the alerts of partition q the node's watchtower
// raised while the node did not own q, in the last HandoverWindow of
// stream time, unless the alerts topic already holds one about the same
// (the former owner carried it out).
func (n *Node) flushHeld(ctx context.Context, q int32) {
	n.wmu.Lock()
	held := n.held[q]
	n.held[q] = nil
	cutoff := n.lastTime.Add(-n.cfg.HandoverWindow)
	n.wmu.Unlock()
	var todo []event.Alert
	for _, a := range held {
		if !a.Time.Before(cutoff) {
			todo = append(todo, a)
		}
	}
	if len(todo) == 0 {
		return
	}
	end, err := n.endOffsets(ctx, n.t.alerts, []int32{q})
	if err != nil {
		n.log.Error("alerts topic not read; carrying out the alerts held for the handover", "partition", q, "err", err)
		end = map[int32]int64{q: 0}
	}
	done := map[string]bool{}
	err = n.readRange(ctx, n.t.alerts, q, 0, end[q], func(rec *kgo.Record) error {
		var a event.Alert
		if json.Unmarshal(rec.Value, &a) == nil && !a.Time.Before(cutoff) {
			done[alertKey(&a)] = true
		}
		return nil
	})
	if err != nil {
		n.log.Error("alerts topic not read; carrying out the alerts held for the handover", "partition", q, "err", err)
	}
	for _, a := range todo {
		if !done[alertKey(&a)] {
			n.carryOut(ctx, q, a)
		}
	}
}

// carryOut stores alert a of partition q in the alerts topic, logs it,
// and carries out its action.
func (n *Node) carryOut(ctx context.Context, q int32, a event.Alert) {
	rec := &kgo.Record{Topic: n.t.alerts, Partition: q, Key: []byte(a.Symbol), Value: a.AppendJSON(nil),
		Headers: []kgo.RecordHeader{{Key: hdrNode, Value: []byte(n.cfg.Node)}}}
	if err := n.prod.ProduceSync(ctx, rec).FirstErr(); err != nil && ctx.Err() == nil {
		n.log.Error("alert not stored in Kafka; carrying it out", "alert", a.Alert, "err", err)
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

// applyControl applies one value of the controls topic to the engine.
func (n *Node) applyControl(key, v string) {
	kind, name, ok := strings.Cut(key, ".")
	if !ok || name == "" {
		return
	}
	switch kind {
	case "halt":
		n.pipe.Risk.SetHalt(name, v == "1")
		if v != "1" {
			n.wmu.Lock()
			n.watch.Release(name)
			n.wmu.Unlock()
		}
	case "freeze":
		n.pipe.Risk.SetFrozen(name, v == "1")
	case "heat":
		if h, err := strconv.Atoi(v); err == nil {
			n.pipe.Risk.SetHeat(name, h)
		}
	}
}

// putControl writes one value to the controls topic. A halt or freeze
// (wait true) is tried again for a while: one that did not reach the
// topic holds on this node only (and on every node after a restart, from
// the database).
func (n *Node) putControl(ctx context.Context, key, v string, wait bool) {
	rec := &kgo.Record{Topic: n.t.controls, Partition: 0, Key: []byte(key), Value: []byte(v)}
	if !wait {
		n.prod.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil && ctx.Err() == nil {
				n.log.Warn("heat not written", "key", key, "err", err)
			}
		})
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for {
		err := n.prod.ProduceSync(ctx, rec).FirstErr()
		if err == nil {
			return
		}
		if ctx.Err() != nil || n.killed.Load() {
			n.log.Error("halt or freeze not written to the cluster's controls topic; other nodes learn it at their next start", "key", key, "err", err)
			return
		}
		if sleep(ctx, 100*time.Millisecond) != nil {
			return
		}
	}
}

// SetHalt tells every node of the cluster that buying of symbol is halted
// (or resumed): the back office calls it through pipeline.Pipeline.SetHalt
// after telling this node's guard.
func (n *Node) SetHalt(symbol string, halted bool) {
	n.putControl(context.Background(), "halt."+symbol, onOff(halted), true)
}

// SetFrozen tells every node of the cluster that account is frozen (or
// reopened).
func (n *Node) SetFrozen(account string, frozen bool) {
	n.putControl(context.Background(), "freeze."+account, onOff(frozen), true)
}

func onOff(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
