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
