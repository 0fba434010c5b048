package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// Decisions reads a cluster's records stream from its start and returns,
// by record id, how many decisions it holds and the node that made the
// last: an audit that each record was decided exactly once.
func Decisions(ctx context.Context, nc *nats.Conn, cluster string) (count map[string]int, by map[string]string, err error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, nil, err
	}
	cons, err := js.OrderedConsumer(ctx, "KABUTO_"+cluster+"_RECORDS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"kabuto." + cluster + ".rec.>"}})
	if err != nil {
		return nil, nil, err
	}
	count, by = map[string]int{}, map[string]string{}
	info, err := cons.Info(ctx)
	if err != nil || info.NumPending == 0 {
		return count, by, err
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, nil, err
	}
	defer it.Stop()
	for {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		m, err := it.Next()
		if err != nil {
			return nil, nil, err
		}
		meta, err := m.Metadata()
		if err != nil {
			return nil, nil, err
		}
		if h := m.Headers().Get(hdrDecision); h != "" {
			var d event.Decision
			if err := json.Unmarshal([]byte(h), &d); err != nil {
				return nil, nil, fmt.Errorf("decision at %d: %w", meta.Sequence.Stream, err)
			}
			count[d.Event]++
			by[d.Event] = d.Node
		}
		if meta.NumPending == 0 {
			return count, by, nil
		}
	}
}

// InstrumentOwner returns the node that holds the lease of symbol's
// watchtower partition, as this node last saw the lease bucket ("" when
// none does).
func (n *Node) InstrumentOwner(symbol string) string {
	p := n.instrumentPart(&event.Record{Symbol: symbol})
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.owners["w."+strconv.Itoa(p)]
}

// AccountOwner returns the node that holds the lease of account's guard
// partition, as this node last saw the lease bucket.
func (n *Node) AccountOwner(account string) string {
	p := n.accountPart(account)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.owners["g."+strconv.Itoa(p)]
}
