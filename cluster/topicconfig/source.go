package topicconfig

// Source says where a config's effective value comes from, as Kafka's
// DescribeConfigs reports it (ConfigSource). The precedence, highest
// first, is Kafka's: a topic override, this broker's dynamic config, the
// cluster-wide dynamic default, the broker's static setting, the default.
type Source uint8

// Config sources.
const (
	SourceDefault        Source = iota // Kafka's default, which is Strand's
	SourceStatic                       // set at start: a strand serve flag or config file
	SourceTopic                        // a topic override
	SourceDynamicBroker                // this broker's dynamic config (IncrementalAlterConfigs on broker "<id>")
	SourceDynamicDefault               // the cluster-wide dynamic default (broker resource "")
)

// Inherited is a topic key's value taken from the dynamic broker configs.
type Inherited struct {
	Value  string
	Source Source // SourceDynamicBroker or SourceDynamicDefault
	// Synonyms are every dynamic broker config that sets the key, in
	// precedence order (the first is where Value comes from), each in its
	// own unit, for DescribeConfigs' synonyms.
	Synonyms []Synonym
}

// Synonym is one config that sets a key, as DescribeConfigs' synonyms
// list them (v1+): a topic override, a broker config of another name
// (log.retention.ms for retention.ms), or the default.
type Synonym struct {
	Name   string
	Value  string
	Source Source
}

// Merge returns a topic's effective overrides: the values it inherits from
// the dynamic broker configs, with its own overrides on top. LogConfig and
// ValidateSet take the result.
func Merge(inherited map[string]Inherited, overrides map[string]string) map[string]string {
	if len(inherited) == 0 {
		return overrides
	}
	m := make(map[string]string, len(inherited)+len(overrides))
	for k, v := range inherited {
		m[k] = v.Value
	}
	for k, v := range overrides {
		m[k] = v
	}
	return m
}
