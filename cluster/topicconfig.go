package cluster

import (
	"strconv"

	"github.com/strand-io/strand/shard"
)

// Topic config defaults, Kafka's own.
var configDefaults = map[string]string{
	"cleanup.policy":         "delete",
	"max.message.bytes":      "1048588",
	"message.timestamp.type": "CreateTime",
	"retention.bytes":        "-1",
	"retention.ms":           "604800000",
	"segment.bytes":          "1073741824",
	"segment.ms":             "604800000",
}

// configValue returns a topic's effective value for key.
func configValue(overrides map[string]string, key string) string {
	if v, ok := overrides[key]; ok {
		return v
	}
	return configDefaults[key]
}

func configInt(overrides map[string]string, key string) int64 {
	v, _ := strconv.ParseInt(configValue(overrides, key), 10, 64)
	return v
}

// logConfig derives a partition log's settings from the broker's base
// settings and the topic's configs.
func logConfig(base shard.Config, dir string, overrides map[string]string) shard.Config {
	c := base
	c.Dir = dir
	c.SegmentBytes = configInt(overrides, "segment.bytes")
	c.SegmentMs = configInt(overrides, "segment.ms")
	c.RetentionBytes = configInt(overrides, "retention.bytes")
	c.RetentionMs = configInt(overrides, "retention.ms")
	c.MaxBatchBytes = int(configInt(overrides, "max.message.bytes"))
	c.LogAppendTime = configValue(overrides, "message.timestamp.type") == "LogAppendTime"
	// Compaction settings: a key with no value here leaves shard's
	// default, which is Kafka's.
	c.Cleanup = shard.ParseCleanupPolicy(configValue(overrides, "cleanup.policy"))
	c.DeleteRetentionMs = configInt(overrides, "delete.retention.ms")
	c.MinCompactionLagMs = configInt(overrides, "min.compaction.lag.ms")
	c.MaxCompactionLagMs = configInt(overrides, "max.compaction.lag.ms")
	if r, err := strconv.ParseFloat(configValue(overrides, "min.cleanable.dirty.ratio"), 64); err == nil {
		// Kafka allows 0 (clean whenever anything is dirty); shard reads 0
		// as its default, so 0 becomes the smallest positive ratio.
		c.MinCleanableDirtyRatio = max(r, 1e-9)
	}
	return c
}
