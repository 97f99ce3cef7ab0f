package perf

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topic administration uses raw kmsg requests through a kgo client rather
// than kadm, which is not a dependency of this module.

// adminTimeout bounds each create/delete/metadata round trip, so a broker
// that never answers fails the run instead of hanging it.
const adminTimeout = 30 * time.Second

// createTopics creates topics with partitions each and waits until every
// partition has a leader, so the first produce does not race the topic's
// creation.
func createTopics(ctx context.Context, cl *kgo.Client, topics []string, partitions, rf int) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(adminTimeout / time.Millisecond)
	for _, name := range topics {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = name, int32(partitions), int16(rf)
		req.Topics = append(req.Topics, t)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			msg := ""
			if t.ErrorMessage != nil {
				msg = ": " + *t.ErrorMessage
			}
			return fmt.Errorf("create topic %s: %w%s", t.Topic, err, msg)
		}
	}
	return waitTopicsReady(ctx, cl, topics, partitions)
}

// waitTopicsReady polls metadata until every partition of every topic has
// a leader, or ctx ends.
func waitTopicsReady(ctx context.Context, cl *kgo.Client, topics []string, partitions int) error {
	backoff := 20 * time.Millisecond
	for {
		missing, err := topicsNotReady(ctx, cl, topics, partitions)
		if err == nil && missing == "" {
			return nil
		}
		if err == nil {
			err = errors.New(missing)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics not ready: %w", err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// topicsNotReady describes the first topic or partition without a leader,
// or returns "" when all are ready.
func topicsNotReady(ctx context.Context, cl *kgo.Client, topics []string, partitions int) (string, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, name := range topics {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, t)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return "", err
	}
	seen := map[string]bool{}
	for _, t := range resp.Topics {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Sprintf("topic %s: %v", name, err), nil
		}
		if len(t.Partitions) < partitions {
			return fmt.Sprintf("topic %s has %d of %d partitions", name, len(t.Partitions), partitions), nil
		}
		for _, p := range t.Partitions {
			if p.Leader < 0 || p.ErrorCode != 0 {
				return fmt.Sprintf("topic %s partition %d has no leader", name, p.Partition), nil
			}
		}
		seen[name] = true
	}
	for _, name := range topics {
		if !seen[name] {
			return fmt.Sprintf("topic %s not in metadata", name), nil
		}
	}
	return "", nil
}

// deleteTopics removes the run's topics. Errors are returned, not fatal:
// the run's results stand either way.
func deleteTopics(ctx context.Context, cl *kgo.Client, topics []string) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = int32(adminTimeout / time.Millisecond)
	req.TopicNames = topics
	for _, name := range topics {
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, t)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("delete topics: %w", err)
	}
	var errs []error
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			name := ""
			if t.Topic != nil {
				name = *t.Topic
			}
			errs = append(errs, fmt.Errorf("delete topic %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// producerOpts are the client options of one producer: acks=all always,
// idempotence off unless asked (so the broker needs no producer-ID
// support), no compression (payloads are random and would not shrink;
// compressing would measure the client's CPU), and a partitioner per key
// distributor (see KeyDistributor).
func producerOpts(brokers []string, w *Workload) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(w.Linger()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(w.MaxBufferedRecords),
		// A record the broker never acks fails after this and is counted
		// as an error, instead of hanging the end of the run.
		kgo.RecordDeliveryTimeout(30 * time.Second),
	}
	if w.KeyDistributor == KeyRoundRobin {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	} else {
		opts = append(opts, kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	}
	if !w.Idempotent {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	return opts
}

// consumerOpts reads the given partitions from their start. Partitions are
// assigned directly, not through a consumer group: every subscription still
// reads every message once (OMB's semantics), and results do not depend on
// the broker's group coordinator or on rebalance timing.
func consumerOpts(brokers []string, parts map[string][]int32) []kgo.Opt {
	assign := map[string]map[int32]kgo.Offset{}
	for topic, ps := range parts {
		assign[topic] = map[int32]kgo.Offset{}
		for _, p := range ps {
			assign[topic][p] = kgo.NewOffset().AtStart()
		}
	}
	return []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(assign),
		kgo.FetchMaxWait(100 * time.Millisecond), // tail reads: don't let an idle fetch sit
	}
}
