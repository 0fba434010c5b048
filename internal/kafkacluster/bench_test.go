package kafkacluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/kafkacluster"
)

// BenchmarkKafkaDecide: decisions asked of one node of three on an
// in-process Kafka, one at a time: on accounts the node owns (local: one
// produce to the records topic) and on accounts another node owns
// (forwarded: the request and the answer through Kafka as well).
func BenchmarkKafkaDecide(b *testing.B) {
	brokers := kafka(b)
	ctx := context.Background()
	var nodes []*testNode
	for _, name := range []string{"a", "b", "c"} {
		n := newNode(b, brokers, name, nil)
		start(b, n)
		nodes = append(nodes, n)
	}
	waitFor(b, 20*time.Second, "the nodes settled", func() bool {
		owned := 0
		for _, n := range nodes {
			if !n.node.Ready() {
				return false
			}
			owned += len(n.node.Owned())
		}
		return owned == parts
	})
	var local, remote []string
	for i := range 1000 {
		acct := fmt.Sprintf("BA%04d", i)
		if slices.Contains(nodes[0].node.Owned(), kafkacluster.PartOf(nodes[0].node, acct)) {
			local = append(local, acct)
		} else {
			remote = append(remote, acct)
		}
	}
	seq := 0
	for _, c := range []struct {
		name  string
		accts []string
	}{{"local", local}, {"forwarded", remote}} {
		b.Run(c.name, func(b *testing.B) {
			for i := range b.N {
				seq++
				r := login(fmt.Sprintf("BN%08d", seq), c.accts[i%len(c.accts)], at.Add(time.Duration(seq)*time.Millisecond))
				if _, err := nodes[0].node.Decide(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
