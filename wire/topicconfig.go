package wire

import (
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicConfig describes one supported topic config key.
type topicConfig struct {
	name  string
	typ   kmsg.ConfigType
	check func(v string) bool
	doc   string
}

func atLeast(min int64, bits int) func(string) bool {
	return func(v string) bool {
		n, err := strconv.ParseInt(v, 10, bits)
		return err == nil && n >= min
	}
}

func oneOf(opts ...string) func(string) bool {
	return func(v string) bool {
		for _, o := range opts {
			if v == o {
				return true
			}
		}
		return false
	}
}

// cleanupPolicy accepts a comma-separated list of delete and compact.
func cleanupPolicy(v string) bool {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "delete" && p != "compact" {
			return false
		}
	}
	return true
}

// topicConfigs is the set of topic configs Strand understands. Anything else
// is INVALID_CONFIG (40) in CreateTopics and AlterConfigs. Ranges follow
// Kafka's own validators.
var topicConfigs = []topicConfig{
	{"cleanup.policy", kmsg.ConfigTypeList, cleanupPolicy, "delete and/or compact"},
	{"max.message.bytes", kmsg.ConfigTypeInt, atLeast(0, 32), "largest record batch the topic accepts"},
	{"message.timestamp.type", kmsg.ConfigTypeString, oneOf("CreateTime", "LogAppendTime"), "CreateTime or LogAppendTime"},
	{"retention.bytes", kmsg.ConfigTypeLong, atLeast(-1, 64), "per-partition size cap; -1 unlimited"},
	{"retention.ms", kmsg.ConfigTypeLong, atLeast(-1, 64), "age cap; -1 unlimited"},
	{"segment.bytes", kmsg.ConfigTypeInt, atLeast(14, 32), "segment file size"},
	{"segment.ms", kmsg.ConfigTypeLong, atLeast(1, 64), "time before a segment rolls"},
}

// TopicConfigKeys lists the topic config names Strand supports.
func TopicConfigKeys() []string {
	keys := make([]string, len(topicConfigs))
	for i, c := range topicConfigs {
		keys[i] = c.name
	}
	return keys
}

func lookupTopicConfig(name string) (topicConfig, bool) {
	for _, c := range topicConfigs {
		if c.name == name {
			return c, true
		}
	}
	return topicConfig{}, false
}

// ValidateTopicConfig checks one key and value. A nil value means "use the
// default" and is valid for every known key. It returns INVALID_CONFIG (40)
// and a message, or 0.
func ValidateTopicConfig(name string, value *string) (int16, string) {
	c, ok := lookupTopicConfig(name)
	if !ok {
		return errInvalidConfig, "unknown topic config " + strconv.Quote(name)
	}
	if value != nil && !c.check(*value) {
		return errInvalidConfig, "invalid value " + strconv.Quote(*value) + " for " + name + " (" + c.doc + ")"
	}
	return errNone, ""
}

// validateConfigSet validates every entry and returns them as a map, or the
// first error. Duplicate keys are INVALID_REQUEST, as in Kafka.
func validateConfigSet(n int, entry func(i int) (string, *string)) (map[string]*string, int16, string) {
	set := make(map[string]*string, n)
	for i := 0; i < n; i++ {
		name, value := entry(i)
		if code, msg := ValidateTopicConfig(name, value); code != errNone {
			return nil, code, msg
		}
		if _, dup := set[name]; dup {
			return nil, errInvalidRequest, "duplicate config " + strconv.Quote(name)
		}
		set[name] = value
	}
	return set, errNone, ""
}
