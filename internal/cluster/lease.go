package cluster

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// leaseLoop beats the node's heart and takes, renews and gives back its
// partitions' leases, every third of the lease's time to live.
func (n *Node) leaseLoop(ctx context.Context) {
	t := time.NewTicker(n.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		n.leaseRound(ctx)
		n.ticked.Store(true)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// leaseRound is one round of the lease loop.
func (n *Node) leaseRound(ctx context.Context) {
	if _, err := n.members.PutString(ctx, n.cfg.Node, n.cfg.Now().UTC().Format(time.RFC3339Nano)); err != nil {
		if ctx.Err() == nil {
			n.log.Warn("heartbeat not written", "err", err)
		}
		return
	}
	members := n.fetchMembers(ctx)
	for _, g := range n.guards {
		want := n.wants(members, g.key)
		switch {
		case g.held && !want:
			if err := n.releaseGuard(ctx, g); err != nil {
				n.log.Warn("guard partition not handed over cleanly", "partition", g.id, "err", err)
			}
		case g.held:
			rev, err := n.leases.Update(ctx, g.key, []byte(n.cfg.Node), g.rev)
			if err != nil {
				n.log.Error("guard partition lease lost", "partition", g.id, "err", err)
				g.mu.Lock()
				g.deactivate()
				g.mu.Unlock()
				g.held = false
				continue
			}
			g.rev = rev
		case want:
			rev, err := n.leases.Create(ctx, g.key, []byte(n.cfg.Node))
			if err != nil {
				continue // held by a node that has not handed it over yet, or expiring
			}
			g.held, g.rev = true, rev
			go n.acquireGuard(ctx, g)
		}
	}
	for _, w := range n.watches {
		want := n.wants(members, w.key)
		switch {
		case w.held && !want:
			if err := n.releaseWatch(ctx, w); err != nil {
				n.log.Warn("watchtower partition not handed over cleanly", "partition", w.id, "err", err)
			}
		case w.held:
			rev, err := n.leases.Update(ctx, w.key, []byte(n.cfg.Node), w.rev)
			if err != nil {
				n.log.Error("watchtower partition lease lost", "partition", w.id, "err", err)
				w.stopConsume()
				w.held = false
				continue
			}
			w.rev = rev
		case want:
			rev, err := n.leases.Create(ctx, w.key, []byte(n.cfg.Node))
			if err != nil {
				continue
			}
			w.held, w.rev = true, rev
			go n.acquireWatch(ctx, w)
		}
	}
}

// fetchMembers reads the live nodes and keeps them for Ready.
func (n *Node) fetchMembers(ctx context.Context) []string {
	var members []string
	lister, err := n.members.ListKeys(ctx)
	if err == nil {
		for k := range lister.Keys() {
			members = append(members, k)
		}
	}
	if !slices.Contains(members, n.cfg.Node) {
		members = append(members, n.cfg.Node)
	}
	slices.Sort(members)
	n.mu.Lock()
	n.memberList = members
	n.mu.Unlock()
	return members
}

func (n *Node) liveMembers() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.memberList
}

// wants reports whether this node should own the partition of the lease
// key among members: the member of the highest rendezvous hash.
func (n *Node) wants(members []string, key string) bool {
	if n.leaving.Load() {
		return false
	}
	return owner(members, key) == n.cfg.Node
}

// owner returns the member that should own key: the one whose hash with
// the key is highest, so that a node joining or leaving moves only its
// own share of the partitions.
func owner(members []string, key string) string {
	best, who := uint64(0), ""
	for _, m := range members {
		if h := mix(hash64(key + "/" + m)); who == "" || h > best {
			best, who = h, m
		}
	}
	return who
}

// watchLeases keeps the node's view of who owns each partition, for the
// metrics.
func (n *Node) watchLeases(ctx context.Context) error {
	w, err := n.leases.WatchAll(ctx)
	if err != nil {
		return err
	}
	n.done.Add(1)
	go func() {
		defer n.done.Done()
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue
				}
				n.mu.Lock()
				if e.Operation() == jetstream.KeyValuePut {
					n.owners[e.Key()] = string(e.Value())
				} else {
					delete(n.owners, e.Key())
				}
				n.mu.Unlock()
			}
		}
	}()
	return nil
}

// giveBack deletes a lease this node holds at revision rev.
func (n *Node) giveBack(ctx context.Context, key string, rev uint64) error {
	err := n.leases.Delete(ctx, key, jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	return err
}

// mix spreads the bits of an FNV hash, which alone differs little for
// names that differ in one letter (splitmix64's finaliser).
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
