package wire

import (
	"github.com/strand-io/strand/cluster/topicconfig"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleAlterConfigs replaces a topic's config overrides, or a broker's
// dynamic configs (AlterConfigs is not incremental). Every key and value is
// validated first; one bad entry fails the whole resource (INVALID_CONFIG,
// or for a broker what IncrementalAlterConfigs answers).
func (c *conn) handleAlterConfigs(s *slot, req *kmsg.AlterConfigsRequest) {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	resp.Resources = make([]kmsg.AlterConfigsResponseResource, len(req.Resources))
	fan := c.answerAfter(s, resp)
	for i := range req.Resources {
		r := &req.Resources[i]
		rr := &resp.Resources[i]
		*rr = kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		if r.ResourceType == kmsg.ConfigResourceTypeBroker {
			a := ConfigAlteration{Broker: true, Name: r.ResourceName, Replace: true, ValidateOnly: req.ValidateOnly}
			for _, cfg := range r.Configs {
				op := topicconfig.Op{Name: cfg.Name, Value: cfg.Value}
				if cfg.Value == nil {
					op.Kind = topicconfig.OpDelete
				}
				a.Ops = append(a.Ops, op)
			}
			fan.add()
			c.be.AlterConfigOps(a, func(err error) {
				defer c.recoverPanic()
				if err != nil {
					rr.ErrorCode, rr.ErrorMessage = configErrorCode(err, true), kmsg.StringPtr(err.Error())
				}
				fan.done()
			})
			continue
		}
		if r.ResourceType != kmsg.ConfigResourceTypeTopic {
			rr.ErrorCode = errInvalidRequest
			rr.ErrorMessage = kmsg.StringPtr("only topic and broker configs can be altered")
			continue
		}
		if _, ok := c.be.Topic(r.ResourceName); !ok {
			rr.ErrorCode = errUnknownTopicOrPartition
			continue
		}
		set, code, msg := validateConfigSet(len(r.Configs), func(j int) (string, *string) {
			return r.Configs[j].Name, r.Configs[j].Value
		})
		if code != errNone {
			rr.ErrorCode, rr.ErrorMessage = code, kmsg.StringPtr(msg)
			continue
		}
		fan.add()
		c.be.AlterConfigs(r.ResourceName, set, req.ValidateOnly, func(code int16) {
			defer c.recoverPanic()
			rr.ErrorCode = code
			fan.done()
		})
	}
	fan.done()
}
