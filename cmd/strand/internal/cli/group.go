package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func groupCmd(g *globals) *cobra.Command {
	return parentCmd("group", "List, describe, seek and delete consumer groups",
		groupListCmd(g), groupDescribeCmd(g), groupSeekCmd(g), groupDeleteCmd(g))
}

func groupListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List consumer groups",
		Args:  exactArgs(0, "no arguments"),
		RunE: runAdmin(g, func(cmd *cobra.Command, _ []string, adm *kadm.Client) error {
			ls, err := adm.ListGroups(cmd.Context())
			if err != nil {
				return err
			}
			type listed struct {
				Group        string `json:"group"`
				State        string `json:"state"`
				ProtocolType string `json:"protocol_type"`
				Coordinator  int32  `json:"coordinator"`
			}
			out := []listed{}
			for _, l := range ls.Sorted() {
				out = append(out, listed{l.Group, l.State, l.ProtocolType, l.Coordinator})
			}
			if g.json {
				return writeJSON(g.env.Stdout, out)
			}
			tb := newTable(g.env.Stdout, "GROUP", "STATE", "PROTOCOL-TYPE", "COORDINATOR")
			for _, l := range out {
				tb.row(l.Group, l.State, l.ProtocolType, l.Coordinator)
			}
			tb.flush()
			return nil
		}),
	}
}

type groupMember struct {
	MemberID string           `json:"member_id"`
	ClientID string           `json:"client_id"`
	Host     string           `json:"host"`
	Assigned map[string][]int `json:"assigned"`
}

type groupOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
	MemberID  string `json:"member_id,omitempty"`
}

type describedGroup struct {
	Group       string        `json:"group"`
	State       string        `json:"state"`
	Protocol    string        `json:"protocol"`
	Coordinator int32         `json:"coordinator"`
	Members     []groupMember `json:"members"`
	Offsets     []groupOffset `json:"offsets"`
	TotalLag    int64         `json:"total_lag"`
}

func groupDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP...",
		Short: "Show groups' members, assignments, committed offsets and lag",
		Args:  minArgs(1, "at least one GROUP"),
		RunE: runAdmin(g, func(cmd *cobra.Command, groups []string, adm *kadm.Client) error {
			lags, err := adm.Lag(cmd.Context(), groups...)
			if err != nil {
				return err
			}
			var out []describedGroup
			for _, name := range groups {
				l, ok := lags[name]
				if !ok {
					return failedf("group %q: no answer from its coordinator", name)
				}
				if err := l.Error(); err != nil {
					return failedf("group %q: %v", name, err)
				}
				d := toDescribedGroup(l)
				// Kafka describes an unknown group as Dead, with nothing in it.
				if (d.State == "Dead" || d.State == "") && len(d.Members) == 0 && len(d.Offsets) == 0 {
					return failedf("group %q does not exist (`strand group list` shows the groups)", name)
				}
				out = append(out, d)
			}
			if g.json {
				return writeJSON(g.env.Stdout, out)
			}
			for i, d := range out {
				if i > 0 {
					fmt.Fprintln(g.env.Stdout)
				}
				printGroup(g, d)
			}
			return nil
		}),
	}
}

func toDescribedGroup(l kadm.DescribedGroupLag) describedGroup {
	d := describedGroup{
		Group: l.Group, State: l.State, Protocol: l.Protocol, Coordinator: l.Coordinator.NodeID,
		Members: []groupMember{}, Offsets: []groupOffset{}, TotalLag: l.Lag.Total(),
	}
	for _, m := range l.Members {
		gm := groupMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assigned: map[string][]int{}}
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				for _, p := range t.Partitions {
					gm.Assigned[t.Topic] = append(gm.Assigned[t.Topic], int(p))
				}
				sort.Ints(gm.Assigned[t.Topic])
			}
		}
		d.Members = append(d.Members, gm)
	}
	for _, ml := range l.Lag.Sorted() {
		o := groupOffset{Topic: ml.Topic, Partition: ml.Partition, Committed: ml.Commit.At, End: ml.End.Offset, Lag: ml.Lag}
		if ml.Member != nil {
			o.MemberID = ml.Member.MemberID
		}
		d.Offsets = append(d.Offsets, o)
	}
	return d
}

func printGroup(g *globals, d describedGroup) {
	w := g.env.Stdout
	fmt.Fprintf(w, "GROUP %s\nSTATE %s\nPROTOCOL %s\nCOORDINATOR %d\nMEMBERS %d\nTOTAL LAG %d\n\n",
		d.Group, d.State, d.Protocol, d.Coordinator, len(d.Members), d.TotalLag)
	if len(d.Members) > 0 {
		tb := newTable(w, "MEMBER", "CLIENT", "HOST", "ASSIGNED")
		for _, m := range d.Members {
			var parts []string
			for t, ps := range m.Assigned {
				s := make([]string, len(ps))
				for i, p := range ps {
					s[i] = strconv.Itoa(p)
				}
				parts = append(parts, t+":"+strings.Join(s, ","))
			}
			sort.Strings(parts)
			tb.row(m.MemberID, m.ClientID, m.Host, strings.Join(parts, " "))
		}
		tb.flush()
		fmt.Fprintln(w)
	}
	tb := newTable(w, "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "MEMBER")
	for _, o := range d.Offsets {
		member := o.MemberID
		if member == "" {
			member = "-"
		}
		committed := "-" // no commit yet
		if o.Committed >= 0 {
			committed = strconv.FormatInt(o.Committed, 10)
		}
		tb.row(o.Topic, o.Partition, committed, o.End, o.Lag, member)
	}
	tb.flush()
}

func groupSeekCmd(g *globals) *cobra.Command {
	var to string
	var topics []string
	c := &cobra.Command{
		Use:   "seek GROUP --to oldest|newest|OFFSET|TIME",
		Short: "Move a stopped group's committed offsets",
		Long: `Commit new offsets for a group with no running members: --to oldest or
newest, an offset N (clamped to each partition's start and end), or an
RFC 3339 time (the first record at or after it). The topics are --topic, or
every topic the group has committed offsets for.`,
		Args: exactArgs(1, "one GROUP"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			target, err := parseSeekTarget(to)
			if err != nil {
				return err
			}
			return groupSeek(cmd.Context(), g, args[0], target, topics)
		}),
	}
	c.Flags().StringVar(&to, "to", "", "oldest, newest, an offset N, or an RFC 3339 time (required)")
	c.Flags().StringArrayVarP(&topics, "topic", "t", nil, "topic to seek (repeatable; default: the group's committed topics)")
	return c
}

// seekTarget is a parsed --to.
type seekTarget struct {
	kind   string // oldest, newest, offset, timestamp
	offset int64
	millis int64
}

func parseSeekTarget(to string) (seekTarget, error) {
	switch to {
	case "":
		return seekTarget{}, usageErrorf("--to is required: oldest, newest, an offset N, or an RFC 3339 time")
	case "oldest", "start":
		return seekTarget{kind: "oldest"}, nil
	case "newest", "end":
		return seekTarget{kind: "newest"}, nil
	}
	if n, err := strconv.ParseInt(to, 10, 64); err == nil && n >= 0 {
		return seekTarget{kind: "offset", offset: n}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, to); err == nil {
		return seekTarget{kind: "timestamp", millis: t.UnixMilli()}, nil
	}
	return seekTarget{}, usageErrorf("--to %q: want oldest, newest, an offset N >= 0, or an RFC 3339 time", to)
}

func groupSeek(ctx context.Context, g *globals, group string, target seekTarget, topics []string) error {
	adm, err := g.adminClient(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	dg, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return err
	}
	d, err := dg.On(group, nil)
	if err == nil {
		err = d.Err
	}
	if err != nil {
		return fmt.Errorf("group %q: %w", group, err)
	}
	if len(d.Members) > 0 {
		return failedf("group %q has %d running member(s) (state %s): stop its consumers first; seek only moves a stopped group", group, len(d.Members), d.State)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("group %q: %w", group, err)
	}
	if len(topics) == 0 {
		for t := range committed {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		if len(topics) == 0 {
			return usageErrorf("group %q has no committed offsets: name the topics with --topic", group)
		}
	}
	for _, t := range topics {
		if err := checkTopic(ctx, adm, t, -1); err != nil {
			return err
		}
	}
	startOffs, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return err
	}
	endOffs, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return err
	}
	var atTime kadm.ListedOffsets
	if target.kind == "timestamp" {
		if atTime, err = adm.ListOffsetsAfterMilli(ctx, target.millis, topics...); err != nil {
			return err
		}
	}
	type moved struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Old       int64  `json:"old"`
		New       int64  `json:"new"`
	}
	var plan []moved
	commit := kadm.Offsets{}
	var listErr error
	endOffs.Each(func(e kadm.ListedOffset) {
		if e.Err != nil {
			listErr = errors.Join(listErr, kafkaErr(e.Err, e.Topic))
			return
		}
		s, _ := startOffs.Lookup(e.Topic, e.Partition)
		var at int64
		switch target.kind {
		case "oldest":
			at = s.Offset
		case "newest":
			at = e.Offset
		case "offset":
			at = min(max(target.offset, s.Offset), e.Offset)
		case "timestamp":
			at = e.Offset
			if a, ok := atTime.Lookup(e.Topic, e.Partition); ok && a.Err == nil && a.Offset >= 0 {
				at = a.Offset
			}
		}
		old := int64(-1)
		if c, ok := committed.Lookup(e.Topic, e.Partition); ok && c.Err == nil {
			old = c.At
		}
		plan = append(plan, moved{e.Topic, e.Partition, old, at})
		commit.Add(kadm.Offset{Topic: e.Topic, Partition: e.Partition, At: at, LeaderEpoch: -1})
	})
	if listErr != nil {
		return listErr
	}
	sort.Slice(plan, func(i, j int) bool {
		if plan[i].Topic != plan[j].Topic {
			return plan[i].Topic < plan[j].Topic
		}
		return plan[i].Partition < plan[j].Partition
	})
	resps, err := adm.CommitOffsets(ctx, group, commit)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		if errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.IllegalGeneration) || errors.Is(err, kerr.RebalanceInProgress) {
			return failedf("group %q started a consumer while seeking: stop its consumers and retry (%v)", group, err)
		}
		return fmt.Errorf("group %q: committing offsets: %w", group, err)
	}
	if g.json {
		return writeJSON(g.env.Stdout, plan)
	}
	tb := newTable(g.env.Stdout, "TOPIC", "PARTITION", "OLD", "NEW")
	for _, m := range plan {
		old := "-"
		if m.Old >= 0 {
			old = strconv.FormatInt(m.Old, 10)
		}
		tb.row(m.Topic, m.Partition, old, m.New)
	}
	tb.flush()
	return nil
}

func groupDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete GROUP...",
		Short: "Delete stopped groups and their committed offsets",
		Args:  minArgs(1, "at least one GROUP"),
		RunE: runAdmin(g, func(cmd *cobra.Command, groups []string, adm *kadm.Client) error {
			resps, err := adm.DeleteGroups(cmd.Context(), groups...)
			if err != nil {
				return err
			}
			type deleted struct {
				Group string `json:"group"`
				Error string `json:"error,omitempty"`
			}
			var out []deleted
			var errs []error
			for _, name := range groups {
				d := deleted{Group: name}
				r, ok := resps[name]
				var e error
				switch {
				case !ok:
					e = fmt.Errorf("group %q: no answer from its coordinator", name)
				case errors.Is(r.Err, kerr.GroupIDNotFound):
					e = fmt.Errorf("group %q does not exist (`strand group list` shows the groups)", name)
				case errors.Is(r.Err, kerr.NonEmptyGroup):
					e = fmt.Errorf("group %q has running members: stop its consumers first", name)
				case r.Err != nil:
					e = fmt.Errorf("group %q: %w", name, withMessage(r.Err, r.ErrMessage))
				}
				if e != nil {
					d.Error = e.Error()
					errs = append(errs, e)
				}
				out = append(out, d)
			}
			if g.json {
				if err := writeJSON(g.env.Stdout, out); err != nil {
					return err
				}
			} else {
				tb := newTable(g.env.Stdout, "GROUP", "STATUS")
				for _, d := range out {
					status := "deleted"
					if d.Error != "" {
						status = "failed"
					}
					tb.row(d.Group, status)
				}
				tb.flush()
			}
			return errors.Join(errs...)
		}),
	}
}
