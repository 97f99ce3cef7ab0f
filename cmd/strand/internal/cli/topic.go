package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func topicCmd(g *globals) *cobra.Command {
	return parentCmd("topic", "Create, list, describe, delete and configure topics",
		topicCreateCmd(g), topicListCmd(g), topicDescribeCmd(g), topicDeleteCmd(g), topicAlterConfigCmd(g))
}

func topicCreateCmd(g *globals) *cobra.Command {
	var partitions int32
	var rf int16
	var configs []string
	c := &cobra.Command{
		Use:   "create TOPIC...",
		Short: "Create topics",
		Args:  minArgs(1, "at least one TOPIC"),
		RunE: run(func(cmd *cobra.Command, topics []string) error {
			kvs, err := parseKV("config", configs)
			if err != nil {
				return err
			}
			cfg := make(map[string]*string, len(kvs))
			for _, kv := range kvs {
				cfg[kv[0]] = &kv[1]
			}
			adm, err := g.adminClient(cmd.Context())
			if err != nil {
				return err
			}
			defer adm.Close()
			resps, err := adm.CreateTopics(cmd.Context(), partitions, rf, cfg, topics...)
			if err != nil {
				return err
			}
			type created struct {
				Topic             string `json:"topic"`
				Partitions        int32  `json:"partitions"`
				ReplicationFactor int16  `json:"replication_factor"`
				Error             string `json:"error,omitempty"`
			}
			var out []created
			var errs []error
			for _, t := range topics {
				r := resps[t]
				c := created{Topic: t, Partitions: r.NumPartitions, ReplicationFactor: r.ReplicationFactor}
				if r.Err != nil {
					e := kafkaErr(withMessage(r.Err, r.ErrMessage), t)
					c.Error = e.Error()
					errs = append(errs, e)
				}
				out = append(out, c)
			}
			if g.json {
				if err := writeJSON(g.env.Stdout, out); err != nil {
					return err
				}
			} else {
				tb := newTable(g.env.Stdout, "TOPIC", "PARTITIONS", "REPLICAS", "STATUS")
				for _, c := range out {
					status := "created"
					if c.Error != "" {
						status = "failed"
					}
					tb.row(c.Topic, c.Partitions, c.ReplicationFactor, status)
				}
				tb.flush()
			}
			return errors.Join(errs...)
		}),
	}
	c.Flags().Int32VarP(&partitions, "partitions", "p", 1, "number of partitions (-1: the broker's default)")
	c.Flags().Int16VarP(&rf, "replication-factor", "r", -1, "replicas per partition (-1: the broker's default)")
	c.Flags().StringArrayVarP(&configs, "config", "c", nil, "topic config KEY=VALUE (repeatable)")
	return c
}

// withMessage adds a broker's error message to a Kafka error.
func withMessage(err error, msg string) error {
	if err == nil || msg == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, msg)
}

func topicListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List topics",
		Args:  exactArgs(0, "no arguments"),
		RunE: runAdmin(g, func(cmd *cobra.Command, _ []string, adm *kadm.Client) error {
			td, err := adm.ListTopics(cmd.Context())
			if err != nil {
				return err
			}
			type listed struct {
				Topic             string `json:"topic"`
				Partitions        int    `json:"partitions"`
				ReplicationFactor int    `json:"replication_factor"`
			}
			out := []listed{}
			for _, name := range td.Names() {
				d := td[name]
				rf := 0
				for _, p := range d.Partitions {
					rf = len(p.Replicas)
					break
				}
				out = append(out, listed{name, len(d.Partitions), rf})
			}
			if g.json {
				return writeJSON(g.env.Stdout, out)
			}
			tb := newTable(g.env.Stdout, "TOPIC", "PARTITIONS", "REPLICAS")
			for _, l := range out {
				tb.row(l.Topic, l.Partitions, l.ReplicationFactor)
			}
			tb.flush()
			return nil
		}),
	}
}

// describedPartition is one partition of `topic describe`.
type describedPartition struct {
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	StartOffset int64   `json:"start_offset"`
	EndOffset   int64   `json:"end_offset"`
	Error       string  `json:"error,omitempty"`
}

type describedConfig struct {
	Name   string  `json:"name"`
	Value  *string `json:"value"`
	Source string  `json:"source"`
}

type describedTopic struct {
	Topic      string               `json:"topic"`
	Partitions []describedPartition `json:"partitions"`
	Configs    []describedConfig    `json:"configs"`
}

func topicDescribeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe TOPIC...",
		Short: "Show topics' partitions, leaders, offsets and configs",
		Args:  minArgs(1, "at least one TOPIC"),
		RunE: runAdmin(g, func(cmd *cobra.Command, topics []string, adm *kadm.Client) error {
			out, err := describeTopics(cmd.Context(), adm, topics)
			if err != nil {
				return err
			}
			if g.json {
				return writeJSON(g.env.Stdout, out)
			}
			for i, d := range out {
				if i > 0 {
					fmt.Fprintln(g.env.Stdout)
				}
				fmt.Fprintf(g.env.Stdout, "TOPIC %s\n\n", d.Topic)
				tb := newTable(g.env.Stdout, "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "START", "END")
				for _, p := range d.Partitions {
					tb.row(p.Partition, p.Leader, p.LeaderEpoch, ints(p.Replicas), ints(p.ISR), p.StartOffset, p.EndOffset)
				}
				tb.flush()
				fmt.Fprintln(g.env.Stdout)
				tb = newTable(g.env.Stdout, "CONFIG", "VALUE", "SOURCE")
				for _, c := range d.Configs {
					v := "-"
					if c.Value != nil {
						v = *c.Value
					}
					tb.row(c.Name, v, c.Source)
				}
				tb.flush()
			}
			return nil
		}),
	}
}

func ints(is []int32) string {
	s := make([]string, len(is))
	for i, v := range is {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ",")
}

func describeTopics(ctx context.Context, adm *kadm.Client, topics []string) ([]describedTopic, error) {
	td, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, err
	}
	for _, t := range topics {
		d, ok := td[t]
		if !ok {
			return nil, failedf("%v", kafkaErr(kerr.UnknownTopicOrPartition, t))
		}
		if d.Err != nil {
			return nil, failedf("%v", kafkaErr(d.Err, t))
		}
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, err
	}
	out := make([]describedTopic, 0, len(topics))
	for _, t := range topics {
		d := describedTopic{Topic: t, Partitions: []describedPartition{}, Configs: []describedConfig{}}
		for _, p := range td[t].Partitions.Sorted() {
			dp := describedPartition{
				Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: p.Replicas, ISR: p.ISR, StartOffset: -1, EndOffset: -1,
			}
			var errs []error
			if p.Err != nil {
				errs = append(errs, p.Err)
			}
			if s, ok := starts.Lookup(t, p.Partition); ok {
				dp.StartOffset = s.Offset
				if s.Err != nil {
					errs = append(errs, s.Err)
				}
			}
			if e, ok := ends.Lookup(t, p.Partition); ok {
				dp.EndOffset = e.Offset
				if e.Err != nil {
					errs = append(errs, e.Err)
				}
			}
			if err := errors.Join(errs...); err != nil {
				dp.Error = err.Error()
			}
			d.Partitions = append(d.Partitions, dp)
		}
		rc, err := cfgs.On(t, nil)
		if err == nil && rc.Err != nil {
			err = rc.Err
		}
		if err != nil {
			return nil, failedf("%v", kafkaErr(err, t))
		}
		for _, c := range rc.Configs {
			d.Configs = append(d.Configs, describedConfig{c.Key, c.Value, sourceName(c.Source)})
		}
		sort.Slice(d.Configs, func(i, j int) bool { return d.Configs[i].Name < d.Configs[j].Name })
		out = append(out, d)
	}
	return out, nil
}

func sourceName(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "topic"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	case kmsg.ConfigSourceStaticBrokerConfig, kmsg.ConfigSourceDynamicBrokerConfig, kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return "broker"
	}
	return strings.ToLower(s.String())
}

func topicDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete TOPIC...",
		Short: "Delete topics and their data",
		Args:  minArgs(1, "at least one TOPIC"),
		RunE: runAdmin(g, func(cmd *cobra.Command, topics []string, adm *kadm.Client) error {
			resps, err := adm.DeleteTopics(cmd.Context(), topics...)
			if err != nil {
				return err
			}
			type deleted struct {
				Topic string `json:"topic"`
				Error string `json:"error,omitempty"`
			}
			var out []deleted
			var errs []error
			for _, t := range topics {
				d := deleted{Topic: t}
				r, ok := resps[t]
				switch {
				case !ok:
					d.Error = kafkaErr(kerr.UnknownTopicOrPartition, t).Error()
				case r.Err != nil:
					d.Error = kafkaErr(withMessage(r.Err, r.ErrMessage), t).Error()
				}
				if d.Error != "" {
					errs = append(errs, errors.New(d.Error))
				}
				out = append(out, d)
			}
			if g.json {
				if err := writeJSON(g.env.Stdout, out); err != nil {
					return err
				}
			} else {
				tb := newTable(g.env.Stdout, "TOPIC", "STATUS")
				for _, d := range out {
					status := "deleted"
					if d.Error != "" {
						status = "failed"
					}
					tb.row(d.Topic, status)
				}
				tb.flush()
			}
			return errors.Join(errs...)
		}),
	}
}
