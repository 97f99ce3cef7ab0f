package cli

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// partitionResult is one partition's outcome of `strand partition elect`
// or `reassign`.
type partitionResult struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Result    string `json:"result"` // "ok", "not needed", or the Kafka error name
	Message   string `json:"message,omitempty"`
}

// reassignmentStatus is one line of `strand partition reassignments`.
type reassignmentStatus struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Replicas  []int32 `json:"replicas"`
	Adding    []int32 `json:"adding"`
	Removing  []int32 `json:"removing"`
}

func partitionCmd(g *globals) *cobra.Command {
	var unclean, cancel bool
	elect := &cobra.Command{
		Use:   "elect [TOPIC[/PARTITION]...]",
		Short: "Give partitions back to their preferred leader (or, with --unclean, any live replica)",
		Long: `Run a leader election (Kafka's ElectLeaders) for the partitions named, every
partition of a TOPIC given alone, or every partition of the cluster with no
argument. Preferred (the default): the first replica leads again if it is
live and in sync. --unclean: a partition with no live leader gets the first
live replica, in sync or not, which may lose acknowledged records.
Exit 1 if any election failed ("not needed" is no failure).`,
		RunE: runAdmin(g, func(cmd *cobra.Command, args []string, adm *kadm.Client) error {
			set, err := partitionSet(cmd.Context(), adm, args)
			if err != nil {
				return err
			}
			how := kadm.ElectPreferredReplica
			if unclean {
				how = kadm.ElectLiveReplica
			}
			rs, err := adm.ElectLeaders(cmd.Context(), how, set)
			if err != nil {
				return err
			}
			var out []partitionResult
			for _, ps := range rs {
				for _, r := range ps {
					out = append(out, partitionOutcome(r.Topic, r.Partition, r.Err, r.ErrMessage, kerr.ElectionNotNeeded))
				}
			}
			return writeResults(g, "election", out)
		}),
	}
	elect.Flags().BoolVar(&unclean, "unclean", false, "elect any live replica where no in-sync one is live (may lose acknowledged records)")

	reassign := &cobra.Command{
		Use:   "reassign TOPIC/PARTITION=BROKER,BROKER... ...",
		Short: "Move partitions to other brokers (or, with --cancel TOPIC/PARTITION..., stop moving them)",
		Long: `Start a reassignment (Kafka's AlterPartitionReassignments) of each partition
to the brokers listed, the first its preferred leader: the new replicas
fetch the partition from its leader, and once every one is in sync the
partition holds exactly those. --cancel TOPIC/PARTITION... stops
reassignments in progress. ` + "`strand partition reassignments`" + ` lists them.
Exit 1 if any was refused.`,
		Args: minArgs(1, "at least one TOPIC/PARTITION=BROKER,... (or TOPIC/PARTITION with --cancel)"),
		RunE: runAdmin(g, func(cmd *cobra.Command, args []string, adm *kadm.Client) error {
			var req kadm.AlterPartitionAssignmentsReq
			for _, a := range args {
				tp, brokers, hasBrokers := strings.Cut(a, "=")
				topic, p, err := parseTopicPartition(tp)
				if err != nil {
					return err
				}
				switch {
				case cancel && hasBrokers:
					return usageErrorf("%q: --cancel takes TOPIC/PARTITION alone", a)
				case cancel:
					req.CancelAssign(topic, p)
					continue
				case !hasBrokers:
					return usageErrorf("%q: want TOPIC/PARTITION=BROKER,BROKER...", a)
				}
				var ids []int32
				for _, b := range strings.Split(brokers, ",") {
					id, err := strconv.ParseInt(b, 10, 32)
					if err != nil || id < 0 {
						return usageErrorf("%q: broker %q is not a broker id", a, b)
					}
					ids = append(ids, int32(id))
				}
				req.Assign(topic, p, ids)
			}
			rs, err := adm.AlterPartitionAssignments(cmd.Context(), req)
			if err != nil {
				return err
			}
			var out []partitionResult
			for _, r := range rs.Sorted() {
				out = append(out, partitionOutcome(r.Topic, r.Partition, r.Err, r.ErrMessage, nil))
			}
			return writeResults(g, "reassignment", out)
		}),
	}
	reassign.Flags().BoolVar(&cancel, "cancel", false, "cancel the reassignments of the TOPIC/PARTITION arguments")

	list := &cobra.Command{
		Use:   "reassignments",
		Short: "List the partition reassignments in progress",
		Args:  exactArgs(0, "no arguments"),
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			cl, err := g.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer cl.Close()
			resp, err := kmsg.NewPtrListPartitionReassignmentsRequest().RequestWith(cmd.Context(), cl)
			if err != nil {
				return err
			}
			if kErr := kerr.ErrorForCode(resp.ErrorCode); kErr != nil {
				return failedf("listing reassignments: %v", kErr)
			}
			out := []reassignmentStatus{}
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					out = append(out, reassignmentStatus{Topic: rt.Topic, Partition: rp.Partition, Replicas: rp.Replicas,
						Adding: rp.AddingReplicas, Removing: rp.RemovingReplicas})
				}
			}
			if g.json {
				return writeJSON(g.env.Stdout, out)
			}
			tb := newTable(g.env.Stdout, "TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING")
			for _, r := range out {
				tb.row(r.Topic, r.Partition, ids(r.Replicas), ids(r.Adding), ids(r.Removing))
			}
			tb.flush()
			return nil
		}),
	}
	return parentCmd("partition", "Elect partition leaders and move partitions between brokers", elect, reassign, list)
}

// parseTopicPartition reads TOPIC/PARTITION (a topic name has no '/').
func parseTopicPartition(s string) (string, int32, error) {
	i := strings.LastIndexByte(s, '/')
	if i <= 0 {
		return "", 0, usageErrorf("%q: want TOPIC/PARTITION", s)
	}
	p, err := strconv.ParseInt(s[i+1:], 10, 32)
	if err != nil || p < 0 {
		return "", 0, usageErrorf("%q: partition %q is not a partition number", s, s[i+1:])
	}
	return s[:i], int32(p), nil
}

// partitionSet is the partitions args name (nil, every partition, for
// none); a TOPIC alone stands for all of its partitions.
func partitionSet(ctx context.Context, adm *kadm.Client, args []string) (kadm.TopicsSet, error) {
	if len(args) == 0 {
		return nil, nil
	}
	set := kadm.TopicsSet{}
	var whole []string
	for _, a := range args {
		if !strings.Contains(a, "/") {
			whole = append(whole, a)
			continue
		}
		topic, p, err := parseTopicPartition(a)
		if err != nil {
			return nil, err
		}
		set.Add(topic, p)
	}
	if len(whole) > 0 {
		md, err := adm.Metadata(ctx, whole...)
		if err != nil {
			return nil, err
		}
		for _, t := range md.Topics {
			if t.Err != nil {
				return nil, failedf("topic %s: %v", t.Topic, t.Err)
			}
			for p := range t.Partitions {
				set.Add(t.Topic, p)
			}
		}
	}
	return set, nil
}

func partitionOutcome(topic string, p int32, err error, msg string, benign error) partitionResult {
	r := partitionResult{Topic: topic, Partition: p, Result: "ok", Message: msg}
	var ke *kerr.Error
	switch {
	case err == nil:
	case benign != nil && errors.Is(err, benign):
		r.Result = "not needed"
	case errors.As(err, &ke):
		r.Result = ke.Message
	default:
		r.Result = err.Error()
	}
	return r
}

// writeResults prints per-partition outcomes and fails (exit 1) if any
// is an error.
func writeResults(g *globals, what string, out []partitionResult) error {
	if out == nil {
		out = []partitionResult{}
	}
	failed := 0
	for _, r := range out {
		if r.Result != "ok" && r.Result != "not needed" {
			failed++
		}
	}
	if g.json {
		if err := writeJSON(g.env.Stdout, out); err != nil {
			return err
		}
	} else {
		tb := newTable(g.env.Stdout, "TOPIC", "PARTITION", "RESULT", "MESSAGE")
		for _, r := range out {
			tb.row(r.Topic, r.Partition, r.Result, r.Message)
		}
		tb.flush()
	}
	if failed > 0 {
		return failedf("%d partition %s(s) failed", failed, what)
	}
	return nil
}

func ids(l []int32) string {
	s := make([]string, len(l))
	for i, id := range l {
		s[i] = strconv.Itoa(int(id))
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}
