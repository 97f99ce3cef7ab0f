package wire

import (
	"strconv"

	"github.com/strand-io/strand/cluster/topicconfig"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDescribeConfigs serves topic and broker configs from the backend.
// Broker loggers get an empty list, which keeps admin tools that describe
// them working; other resource types are INVALID_REQUEST.
func (c *conn) handleDescribeConfigs(s *slot, req *kmsg.DescribeConfigsRequest) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, r := range req.Resources {
		rr := kmsg.NewDescribeConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		switch r.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			entries, code := c.be.DescribeConfigs(r.ResourceName, r.ConfigNames)
			rr.ErrorCode = code
			if code == errNone {
				rr.Configs = describeEntries(entries, req)
			}
		case kmsg.ConfigResourceTypeBroker:
			entries, code := c.be.DescribeBrokerConfigs(r.ResourceName, r.ConfigNames)
			rr.ErrorCode = code
			if code == errNone {
				rr.Configs = describeEntries(entries, req)
			} else {
				rr.ErrorMessage = kmsg.StringPtr("unexpected broker id " + strconv.Quote(r.ResourceName))
			}
		case kmsg.ConfigResourceTypeBrokerLogger:
		default:
			rr.ErrorCode = errInvalidRequest
			rr.ErrorMessage = kmsg.StringPtr("unsupported config resource type")
		}
		resp.Resources = append(resp.Resources, rr)
	}
	c.complete(s, resp)
}

func describeEntries(entries []ConfigEntry, req *kmsg.DescribeConfigsRequest) []kmsg.DescribeConfigsResponseResourceConfig {
	out := make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(entries))
	for _, e := range entries {
		rc := kmsg.NewDescribeConfigsResponseResourceConfig()
		rc.Name, rc.Value, rc.ReadOnly, rc.IsSensitive = e.Name, e.Value, e.ReadOnly, e.Sensitive
		rc.IsDefault = e.Source == topicconfig.SourceDefault
		rc.Source = configSources[e.Source]
		rc.ConfigType = configType(e.Type)
		if req.IncludeDocumentation && e.Doc != "" {
			rc.Documentation = kmsg.StringPtr(e.Doc)
		}
		if req.IncludeSynonyms && len(e.Synonyms) == 0 {
			syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			syn.Name, syn.Value, syn.Source = e.Name, e.Value, rc.Source
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, syn)
		}
		for _, s := range e.Synonyms {
			if !req.IncludeSynonyms {
				break
			}
			syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			syn.Name, syn.Value, syn.Source = s.Name, kmsg.StringPtr(s.Value), configSources[s.Source]
			rc.ConfigSynonyms = append(rc.ConfigSynonyms, syn)
		}
		out = append(out, rc)
	}
	return out
}

// configSources maps a source onto Kafka's (v1+).
var configSources = [...]kmsg.ConfigSource{
	topicconfig.SourceDefault:        kmsg.ConfigSourceDefaultConfig,
	topicconfig.SourceStatic:         kmsg.ConfigSourceStaticBrokerConfig,
	topicconfig.SourceTopic:          kmsg.ConfigSourceDynamicTopicConfig,
	topicconfig.SourceDynamicBroker:  kmsg.ConfigSourceDynamicBrokerConfig,
	topicconfig.SourceDynamicDefault: kmsg.ConfigSourceDynamicDefaultBrokerConfig,
}
