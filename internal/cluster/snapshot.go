package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// Saved snapshots. Every SnapshotEvery the owner of a guard partition saves
// its state to the cluster's object store, under the partition's lease key
// (g.<p>), with the stream sequence it covers: the risk engine's profiles
// of the partition's accounts (risk.Engine.ExportAccounts) and the
// decisions of the partition's record ids, so that a retry of an old id is
// still answered with its decision. A node that takes a partition it never
// held loads the latest snapshot and replays only the stream after it; a
// snapshot it cannot use (corrupt, of another version, of an engine whose
// instrument table differs) is logged and the partition rebuilt from the
// whole retained stream instead. A node leaving gracefully saves its
// partitions before handing them over.
//
// The watchtower's partitions are not snapshotted: surveil.Watch has no
// saved form yet, and a new owner rebuilds them from the retained stream.

// snapshot is the saved state of one guard partition.
type snapshot struct {
	Partition int                       `json:"partition"`
	Seq       uint64                    `json:"seq"` // the last stream sequence it covers
	Node      string                    `json:"node"`
	Saved     time.Time                 `json:"saved"`
	Accounts  []string                  `json:"accounts"`
	Engine    []byte                    `json:"engine"`
	Decided   map[string]event.Decision `json:"decided"` // record id → decision; an observed record's is empty
}

// SaveSnapshots saves the state of every guard partition this node owns
// and has changed since its last snapshot, and returns how many it saved.
// A partition with decisions still on their way to the stream is left for
// the next round: its engine has learnt records the sequence does not
// cover yet.
func (n *Node) SaveSnapshots(ctx context.Context) (int, error) {
	if n.snaps == nil {
		return 0, nil
	}
	saved := 0
	var errs []error
	for _, g := range n.guards {
		ok, err := n.saveGuard(ctx, g, false)
		if err != nil {
			errs = append(errs, fmt.Errorf("guard partition %d: %w", g.id, err))
		}
		if ok {
			saved++
		}
	}
	return saved, errors.Join(errs...)
}

// saveGuard saves partition g's snapshot; handover saves a partition
// just deactivated, whose decisions are all in the stream.
func (n *Node) saveGuard(ctx context.Context, g *guardPart, handover bool) (bool, error) {
	if n.snaps == nil {
		return false, nil
	}
	g.mu.Lock()
	if (!g.active && !handover) || g.pendingN > 0 || g.applied == 0 || g.applied == g.snapSeq {
		g.mu.Unlock()
		return false, nil
	}
	s := snapshot{Partition: g.id, Seq: g.applied, Node: n.cfg.Node, Saved: n.cfg.Now().UTC(), Decided: make(map[string]event.Decision, len(g.decided))}
	for a := range g.accounts {
		s.Accounts = append(s.Accounts, a)
	}
	for id, e := range g.decided {
		select {
		case <-e.done:
			if e.err == nil {
				s.Decided[id] = e.d
			}
		default:
		}
	}
	var err error
	s.Engine, err = n.pipe.Risk.ExportAccounts(s.Accounts)
	g.mu.Unlock()
	if err != nil {
		return false, err
	}
	slices.Sort(s.Accounts)
	b, err := json.Marshal(&s)
	if err != nil {
		return false, err
	}
	if _, err := n.snaps.PutBytes(ctx, g.key, b); err != nil {
		return false, err
	}
	g.mu.Lock()
	g.snapSeq = max(g.snapSeq, s.Seq)
	g.mu.Unlock()
	g.snapBytes.Store(uint64(len(b)))
	return true, nil
}

// loadGuard loads the latest snapshot of partition g into the engine, if
// there is one it can use, and returns the sequence it covers (0: none).
func (n *Node) loadGuard(ctx context.Context, g *guardPart) (uint64, error) {
	if n.snaps == nil {
		return 0, nil
	}
	b, err := n.snaps.GetBytes(ctx, g.key)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, fmt.Errorf("snapshot: %w", err)
	}
	if s.Partition != g.id || s.Seq == 0 {
		return 0, fmt.Errorf("snapshot of partition %d at %d under key %s", s.Partition, s.Seq, g.key)
	}
	if _, err := n.pipe.Risk.ImportAccounts(s.Engine); err != nil {
		return 0, err
	}
	g.mu.Lock()
	for _, a := range s.Accounts {
		g.accounts[a] = struct{}{}
	}
	for id, d := range s.Decided {
		if g.decided[id] == nil {
			g.decided[id] = doneDecided(d)
		}
	}
	g.applied = max(g.applied, s.Seq)
	g.snapSeq = max(g.snapSeq, s.Seq)
	g.mu.Unlock()
	return s.Seq, nil
}

// snapshotLoop saves the node's guard partitions every SnapshotEvery.
func (n *Node) snapshotLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.SnapshotEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if k, err := n.SaveSnapshots(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("snapshots not all saved", "saved", k, "err", err)
		}
	}
}
