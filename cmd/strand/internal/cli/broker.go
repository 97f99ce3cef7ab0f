package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// heldPartition is a partition a broker leads or holds a replica of.
type heldPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Leader    bool   `json:"leader"`
	Internal  bool   `json:"internal"` // of an internal topic, which cannot be deleted
}

// decommissionResult is `strand broker decommission --json`'s output.
// Partitions are those the broker still holds: a refusal lists them.
type decommissionResult struct {
	Broker         int32           `json:"broker"`
	Decommissioned bool            `json:"decommissioned"`
	WasRunning     bool            `json:"was_running"` // listed as live (unfenced) by the cluster
	Partitions     []heldPartition `json:"partitions"`
	// Moved are the partitions whose replica on the broker was moved to
	// another broker by reassignment first.
	Moved []heldPartition `json:"moved,omitempty"`
	Error string          `json:"error,omitempty"`
}

// unregisterTimeout bounds the UnregisterBroker round trip; the broker
// answers within its --metadata-timeout (10 s by default) twice over
// (the registration, then the Raft replica).
const unregisterTimeout = 45 * time.Second

func brokerCmd(g *globals) *cobra.Command {
	var moveTimeout time.Duration
	decom := &cobra.Command{
		Use:   "decommission ID",
		Short: "Move a broker's replicas to other brokers, then remove it from the cluster",
		Long: `Remove broker ID from the cluster: first every replica it holds is moved to
another live broker by partition reassignment (Kafka's
AlterPartitionReassignments; each goes to the broker holding the fewest
replicas among those without one of that partition, so its copy is
fetched from the partition's leader), waiting up to --move-timeout for the
moves to complete; then its registration and its metadata Raft replica
are removed (Kafka's UnregisterBroker, sent to another broker). It is
refused, listing them, while a partition it holds cannot be moved (no
other live broker can take it) or has not moved in time: run it again.
Keep the broker running while its replicas move (it may be the only copy);
stop its process once it is removed.`,
		Args: exactArgs(1, "the ID of the broker to remove"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 32)
			if err != nil || id < 0 {
				return usageErrorf("ID %q: want a broker id (`strand cluster info` lists them)", args[0])
			}
			cl, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer cl.Close()
			res, err := decommission(cmd.Context(), cl, int32(id), moveTimeout)
			if g.json && res != nil {
				if werr := writeJSON(g.env.Stdout, res); werr != nil {
					return werr
				}
			} else if res != nil && len(res.Partitions) > 0 {
				tb := newTable(g.env.Stdout, "TOPIC", "PARTITION", "ROLE")
				for _, p := range res.Partitions {
					role := "replica"
					if p.Leader {
						role = "leader"
					}
					tb.row(p.Topic, p.Partition, role)
				}
				tb.flush()
			}
			if err != nil {
				return err
			}
			if !g.json {
				fmt.Fprintf(g.env.Stdout, "broker %d removed from the cluster\n", id)
				if res.WasRunning {
					fmt.Fprintf(g.env.Stdout, "it was still listed as live: if its strand serve process runs, stop it; its node id cannot rejoin\n")
				}
			}
			return nil
		}),
	}
	decom.Flags().DurationVar(&moveTimeout, "move-timeout", 10*time.Minute, "how long to wait for the broker's replicas to move to other brokers")
	return parentCmd("broker", "Manage the cluster's brokers", decom)
}

// decommission moves broker id's replicas away, then removes it. The
// result, if not nil, is what to print; an error says why it failed.
func decommission(ctx context.Context, cl *kgo.Client, id int32, moveTimeout time.Duration) (*decommissionResult, error) {
	adm := kadm.NewClient(cl)
	md, err := adm.Metadata(ctx)
	if err != nil {
		return nil, err
	}
	res := &decommissionResult{Broker: id, Partitions: held(md, id)}
	// A broker cannot remove itself, so the request goes to another.
	to := int32(-1)
	for _, b := range md.Brokers {
		if b.NodeID == id {
			res.WasRunning = true
		} else if to < 0 {
			to = b.NodeID
		}
	}
	if len(res.Partitions) > 0 {
		moved, err := moveOff(ctx, cl, md, id)
		if err != nil {
			res.Error = err.Error()
			return res, err
		}
		if moved != nil {
			res.Moved = moved
			md, err = waitMoved(ctx, adm, id, moveTimeout)
			if err != nil && md.Topics == nil {
				return nil, err
			}
			res.Partitions = held(md, id)
			if err != nil {
				res.Error = err.Error()
				return res, err
			}
		}
	}
	if n := len(res.Partitions); n > 0 {
		err := failedf("%s", refusal(id, res.Partitions))
		res.Error = err.Error()
		return res, err
	}
	if to < 0 {
		err := failedf("broker %d is the only live broker the cluster lists, and a broker cannot remove itself", id)
		res.Error = err.Error()
		return res, err
	}
	req := kmsg.NewPtrUnregisterBrokerRequest()
	req.BrokerID = id
	rctx, cancel := context.WithTimeout(ctx, unregisterTimeout)
	defer cancel()
	kresp, err := cl.Broker(int(to)).Request(rctx, req)
	if err != nil {
		// A network error stays one (exit 3); a broker without
		// UnregisterBroker says so in kgo's words.
		return nil, fmt.Errorf("asking broker %d to unregister broker %d: %w", to, id, err)
	}
	resp := kresp.(*kmsg.UnregisterBrokerResponse)
	if kErr := kerr.ErrorForCode(resp.ErrorCode); kErr != nil {
		err := unregisterErr(id, kErr, resp.ErrorMessage)
		res.Error = err.Error()
		return res, err
	}
	res.Decommissioned = true
	return res, nil
}

// held lists the partitions broker id leads or holds a replica of, in
// topic and partition order.
func held(md kadm.Metadata, id int32) []heldPartition {
	out := []heldPartition{}
	for _, t := range md.Topics.Sorted() {
		for _, p := range t.Partitions.Sorted() {
			if p.Leader == id || slices.Contains(p.Replicas, id) {
				out = append(out, heldPartition{Topic: t.Topic, Partition: p.Partition, Leader: p.Leader == id, Internal: t.IsInternal})
			}
		}
	}
	return out
}

// refusal says why broker id, which holds ps, is not removed, and what
// to do about it.
func refusal(id int32, ps []heldPartition) string {
	leads := 0
	var topics, internal []string
	for _, p := range ps {
		if p.Leader {
			leads++
		}
		switch {
		case p.Internal && !slices.Contains(internal, p.Topic):
			internal = append(internal, p.Topic)
		case !p.Internal && !slices.Contains(topics, p.Topic):
			topics = append(topics, p.Topic)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "broker %d still holds %d partition(s) (it leads %d of them): %s; a broker is removed only once it holds none, "+
		"and no other live broker can take some of them (each already holds a replica, or there is none)", id, len(ps), leads, partitionList(ps, 10))
	if len(topics) > 0 {
		fmt.Fprintf(&b, "; add a broker, or delete the topics it holds (`strand topic delete %s`), and run this again", strings.Join(topics, " "))
	}
	if len(internal) > 0 {
		fmt.Fprintf(&b, "; %s is internal and cannot be deleted: add a broker to move it to", strings.Join(internal, ", "))
	}
	return b.String()
}

// partitionList names up to limit partitions as topic/partition.
func partitionList(ps []heldPartition, limit int) string {
	var names []string
	for i, p := range ps {
		if i == limit {
			names = append(names, fmt.Sprintf("and %d more", len(ps)-limit))
			break
		}
		names = append(names, fmt.Sprintf("%s/%d", p.Topic, p.Partition))
	}
	return strings.Join(names, ", ")
}

// unregisterErr explains an UnregisterBroker error code.
func unregisterErr(id int32, err error, msg *string) error {
	detail := ""
	if msg != nil && *msg != "" {
		detail = ": " + *msg
	}
	switch {
	case errors.Is(err, kerr.BrokerIDNotRegistered):
		return failedf("broker %d is not registered in the cluster (`strand cluster info` lists the live brokers)", id)
	case errors.Is(err, kerr.InvalidRequest):
		return failedf("broker %d cannot be removed%s (it may have been given a partition since it was checked: run this again)", id, detail)
	case errors.Is(err, kerr.RequestTimedOut):
		return failedf("removing broker %d timed out%s; the cluster may have lost its metadata quorum: run this again once it is back", id, detail)
	}
	return failedf("removing broker %d: %v%s", id, err, detail)
}

// moveOff starts the reassignments that move every replica of broker id
// to another live broker, the one holding the fewest replicas among those
// without one of that partition (lowest id first), in id's place in the
// replica list (so a preferred leader's successor is preferred). It
// returns nil when some partition has nowhere to go (nothing started;
// the caller refuses), else the partitions it started moving.
func moveOff(ctx context.Context, cl *kgo.Client, md kadm.Metadata, id int32) ([]heldPartition, error) {
	load := map[int32]int{}
	for _, b := range md.Brokers {
		if b.NodeID != id {
			load[b.NodeID] = 0
		}
	}
	for _, t := range md.Topics {
		for _, p := range t.Partitions {
			for _, r := range p.Replicas {
				if _, ok := load[r]; ok {
					load[r]++
				}
			}
		}
	}
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.TimeoutMillis = int32(unregisterTimeout / time.Millisecond)
	var moving []heldPartition
	for _, t := range md.Topics.Sorted() {
		rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
		rt.Topic = t.Topic
		for _, p := range t.Partitions.Sorted() {
			i := slices.Index(p.Replicas, id)
			if i < 0 {
				continue
			}
			to := int32(-1)
			for b, n := range load {
				if !slices.Contains(p.Replicas, b) && (to < 0 || n < load[to] || n == load[to] && b < to) {
					to = b
				}
			}
			if to < 0 {
				return nil, failedf("%s", refusal(id, held(md, id)))
			}
			load[to]++
			target := slices.Clone(p.Replicas)
			target[i] = to
			rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
			rp.Partition, rp.Replicas = p.Partition, target
			rt.Partitions = append(rt.Partitions, rp)
			moving = append(moving, heldPartition{Topic: t.Topic, Partition: p.Partition, Leader: p.Leader == id, Internal: t.IsInternal})
		}
		if len(rt.Partitions) > 0 {
			req.Topics = append(req.Topics, rt)
		}
	}
	if len(moving) == 0 {
		return nil, nil // it leads only what it does not hold: nothing to move
	}
	rctx, cancel := context.WithTimeout(ctx, unregisterTimeout)
	defer cancel()
	resp, err := req.RequestWith(rctx, cl)
	if err != nil {
		return nil, fmt.Errorf("moving broker %d's replicas: %w", id, err)
	}
	if kErr := kerr.ErrorForCode(resp.ErrorCode); kErr != nil {
		return nil, failedf("moving broker %d's replicas: %v", id, kErr)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if kErr := kerr.ErrorForCode(rp.ErrorCode); kErr != nil {
				msg := ""
				if rp.ErrorMessage != nil {
					msg = ": " + *rp.ErrorMessage
				}
				return nil, failedf("moving %s/%d off broker %d: %v%s", rt.Topic, rp.Partition, id, kErr, msg)
			}
		}
	}
	return moving, nil
}

// waitMoved polls the metadata until broker id holds no partition, or
// timeout passes (an error naming what still has to move).
func waitMoved(ctx context.Context, adm *kadm.Client, id int32, timeout time.Duration) (kadm.Metadata, error) {
	deadline := time.Now().Add(timeout)
	for {
		md, err := adm.Metadata(ctx)
		if err != nil {
			return md, err
		}
		left := held(md, id)
		if len(left) == 0 {
			return md, nil
		}
		if time.Now().After(deadline) {
			return md, failedf("broker %d still holds %d partition(s) after --move-timeout %v: %s; their new replicas are still catching up (ListPartitionReassignments, e.g. kafka-reassign-partitions.sh --list, shows them): run this again",
				id, len(left), timeout, partitionList(left, 10))
		}
		select {
		case <-ctx.Done():
			return md, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
