package kafkacluster

// SetRebuildGate makes n hold every partition it rebuilt back from
// answering until gate is closed (tests: Ready stays false meanwhile).
// Call it before Start.
func SetRebuildGate(n *Node, gate chan struct{}) { n.gate = gate }

// Assigned reports whether the group gave n any partition.
func Assigned(n *Node) bool {
	for _, g := range n.guards {
		g.mu.Lock()
		a := g.assigned
		g.mu.Unlock()
		if a {
			return true
		}
	}
	return false
}

// Watched returns how many records of the records topic n's watchtower
// read.
func Watched(n *Node) uint64 { return n.watched.Load() }

// Held returns how many alerts n keeps for a handover.
func Held(n *Node) int {
	n.wmu.Lock()
	defer n.wmu.Unlock()
	k := 0
	for _, h := range n.held {
		k += len(h)
	}
	return k
}

// PartOf returns the guard partition of account.
func PartOf(n *Node, account string) int { return int(n.accountPart(account)) }
