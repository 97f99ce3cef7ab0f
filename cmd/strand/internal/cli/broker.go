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
	Error          string          `json:"error,omitempty"`
}

// unregisterTimeout bounds the UnregisterBroker round trip; the broker
// answers within its --metadata-timeout (10 s by default) twice over
// (the registration, then the Raft replica).
const unregisterTimeout = 45 * time.Second

func brokerCmd(g *globals) *cobra.Command {
	decom := &cobra.Command{
		Use:   "decommission ID",
		Short: "Remove a broker that leads and holds no partition from the cluster",
		Long: `Remove broker ID from the cluster: its registration and its metadata Raft
replica (Kafka's UnregisterBroker, sent to another broker). It is refused,
listing them, while the broker still leads or holds a replica of any
partition: moving replicas between brokers comes with replication (issue
#13); until then delete the topics it holds. Stop the broker's process
first: a removed node id cannot rejoin the cluster (start the machine again
with an empty data dir, a new --node-id and --join).`,
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
			res, err := decommission(cmd.Context(), cl, int32(id))
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
	return parentCmd("broker", "Manage the cluster's brokers", decom)
}

// decommission removes broker id unless it still holds partitions. The
// result, if not nil, is what to print; an error says why it failed.
func decommission(ctx context.Context, cl *kgo.Client, id int32) (*decommissionResult, error) {
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
	fmt.Fprintf(&b, "broker %d still holds %d partition(s) (it leads %d of them): %s; a broker is removed only once it holds none. "+
		"Moving replicas to other brokers comes with replication (issue #13)", id, len(ps), leads, partitionList(ps, 10))
	if len(topics) > 0 {
		fmt.Fprintf(&b, "; until then, delete the topics it holds (`strand topic delete %s`) and run this again", strings.Join(topics, " "))
	}
	if len(internal) > 0 {
		fmt.Fprintf(&b, "; %s is internal and cannot be deleted, so the broker stays until replication can move it", strings.Join(internal, ", "))
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
