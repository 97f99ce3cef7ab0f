package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func topicAlterConfigCmd(g *globals) *cobra.Command {
	var sets, dels []string
	c := &cobra.Command{
		Use:   "alter-config TOPIC --set KEY=VALUE... --delete KEY...",
		Short: "Change topic configs (set or reset to default); others keep their values",
		Args:  exactArgs(1, "one TOPIC"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			kvs, err := parseKV("set", sets)
			if err != nil {
				return err
			}
			if len(kvs) == 0 && len(dels) == 0 {
				return usageErrorf("nothing to change: give --set KEY=VALUE or --delete KEY")
			}
			topic := args[0]
			adm, err := g.adminClient(cmd.Context())
			if err != nil {
				return err
			}
			defer adm.Close()
			var changes []kadm.AlterConfig
			for _, kv := range kvs {
				changes = append(changes, kadm.AlterConfig{Op: kadm.SetConfig, Name: kv[0], Value: &kv[1]})
			}
			for _, k := range dels {
				changes = append(changes, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			}
			api, err := alterTopicConfig(cmd.Context(), adm, topic, changes)
			if err != nil {
				return failedf("%v", kafkaErr(err, topic))
			}
			if g.json {
				return writeJSON(g.env.Stdout, map[string]any{"topic": topic, "api": api, "set": len(kvs), "deleted": len(dels)})
			}
			fmt.Fprintf(g.env.Stdout, "altered %s: %d set, %d reset to default (%s)\n", topic, len(kvs), len(dels), api)
			return nil
		}),
	}
	c.Flags().StringArrayVar(&sets, "set", nil, "config KEY=VALUE to set (repeatable)")
	c.Flags().StringArrayVar(&dels, "delete", nil, "config KEY to reset to its default (repeatable)")
	return c
}

// alterTopicConfig applies changes with IncrementalAlterConfigs and, for a
// broker without it (Strand before issue 11), with AlterConfigs, which replaces every
// override: so the fallback reads the topic's current overrides first and
// sends them merged with the changes. It returns the API it used.
func alterTopicConfig(ctx context.Context, adm *kadm.Client, topic string, changes []kadm.AlterConfig) (string, error) {
	resps, err := adm.AlterTopicConfigs(ctx, changes, topic)
	if err == nil {
		err = respErr(resps, topic)
	}
	if err == nil {
		return "IncrementalAlterConfigs", nil
	}
	if !errors.Is(err, kerr.UnsupportedVersion) && !lacksKey(ctx, adm, kmsg.IncrementalAlterConfigs.Int16()) {
		return "", err
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return "", err
	}
	rc, err := cfgs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return "", err
	}
	merged := map[string]*string{}
	for _, c := range rc.Configs {
		if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			merged[c.Key] = c.Value
		}
	}
	for _, c := range changes {
		if c.Op == kadm.DeleteConfig {
			delete(merged, c.Name)
		} else {
			merged[c.Name] = c.Value
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	full := make([]kadm.AlterConfig, 0, len(keys))
	for _, k := range keys {
		full = append(full, kadm.AlterConfig{Name: k, Value: merged[k]})
	}
	resps, err = adm.AlterTopicConfigsState(ctx, full, topic)
	if err == nil {
		err = respErr(resps, topic)
	}
	if err != nil {
		return "", err
	}
	return "AlterConfigs", nil
}

func respErr(resps kadm.AlterConfigsResponses, topic string) error {
	r, err := resps.On(topic, nil)
	if err != nil {
		return err
	}
	return withMessage(r.Err, r.ErrMessage)
}

// lacksKey reports whether some broker does not advertise the API key:
// kgo then refuses the request itself instead of sending it and getting
// UNSUPPORTED_VERSION back.
func lacksKey(ctx context.Context, adm *kadm.Client, key int16) bool {
	vs, err := adm.ApiVersions(ctx)
	if err != nil {
		return false
	}
	for _, v := range vs {
		if v.Err != nil {
			continue
		}
		if _, ok := v.KeyMaxVersion(key); !ok {
			return true
		}
	}
	return false
}
