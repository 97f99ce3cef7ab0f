package wire

import (
	"strconv"

	"github.com/strand-io/strand/cluster/topicconfig"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The topic-config table itself (names, types, defaults, validation) is
// cluster/topicconfig; this file only maps it onto the protocol.

// configTypes maps the table's types onto DescribeConfigs' (v3+).
var configTypes = [...]kmsg.ConfigType{
	topicconfig.TypeBoolean:  kmsg.ConfigTypeBoolean,
	topicconfig.TypeString:   kmsg.ConfigTypeString,
	topicconfig.TypeInt:      kmsg.ConfigTypeInt,
	topicconfig.TypeLong:     kmsg.ConfigTypeLong,
	topicconfig.TypeDouble:   kmsg.ConfigTypeDouble,
	topicconfig.TypeList:     kmsg.ConfigTypeList,
	topicconfig.TypeClass:    kmsg.ConfigTypeClass,
	topicconfig.TypePassword: kmsg.ConfigTypePassword,
}

func configType(t topicconfig.Type) kmsg.ConfigType {
	if int(t) < len(configTypes) {
		return configTypes[t]
	}
	return kmsg.ConfigTypeUnknown
}

// validateConfigSet validates every entry against the table, then the
// rules that span keys, and returns the entries as a map, or the first
// error: INVALID_CONFIG with the table's message (which names the key),
// or INVALID_REQUEST for a key named twice, as in Kafka.
func validateConfigSet(n int, entry func(i int) (string, *string)) (map[string]*string, int16, string) {
	set := make(map[string]*string, n)
	for i := 0; i < n; i++ {
		name, value := entry(i)
		if err := topicconfig.Validate(name, value); err != nil {
			return nil, errInvalidConfig, err.Error()
		}
		if _, dup := set[name]; dup {
			return nil, errInvalidRequest, "duplicate config " + strconv.Quote(name)
		}
		set[name] = value
	}
	values := make(map[string]string, len(set))
	for k, v := range set {
		if v != nil {
			values[k] = *v
		}
	}
	if err := topicconfig.ValidateSet(values); err != nil {
		return nil, errInvalidConfig, err.Error()
	}
	return set, errNone, ""
}
