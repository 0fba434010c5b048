package kafkacluster

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kabuto-sec/kabuto/internal/event"
)

// Decisions reads a cluster's records topic from its start to its end and
// returns, by record id, how many decisions it holds and the node that
// made the last: an audit that each record was decided exactly once.
// opts are more franz-go options (TLS, SASL).
func Decisions(ctx context.Context, brokers []string, cluster string, opts ...kgo.Opt) (count map[string]int, by map[string]string, err error) {
	t := topicNames(cluster, "audit")
	adm, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		return nil, nil, err
	}
	defer adm.Close()
	req := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(t.records)
	req.Topics = append(req.Topics, mt)
	meta, err := req.RequestWith(ctx, adm)
	if err != nil {
		return nil, nil, err
	}
	if len(meta.Topics) != 1 || len(meta.Topics[0].Partitions) == 0 {
		return nil, nil, fmt.Errorf("kafkacluster: no records topic %s", t.records)
	}
	var parts []int32
	for _, p := range meta.Topics[0].Partitions {
		parts = append(parts, p.Partition)
	}
	end, err := endOffsets(ctx, adm, t.records, parts)
	if err != nil {
		return nil, nil, err
	}
	start := map[int32]kgo.Offset{}
	left := 0
	for p, e := range end {
		if e > 0 {
			start[p] = kgo.NewOffset().AtStart()
			left++
		}
	}
	count, by = map[string]int{}, map[string]string{}
	if left == 0 {
		return count, by, nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...), kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{t.records: start})}, opts...)...)
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		var ferr error
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Offset >= end[rec.Partition] {
				return
			}
			if h := header(rec, hdrDecision); h != "" {
				var d event.Decision
				if err := json.Unmarshal([]byte(h), &d); err != nil {
					ferr = err
					return
				}
				count[d.Event]++
				by[d.Event] = d.Node
			}
			if rec.Offset+1 == end[rec.Partition] {
				left--
			}
		})
		if ferr != nil {
			return nil, nil, ferr
		}
	}
	return count, by, nil
}
