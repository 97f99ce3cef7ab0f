package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// handleAlterConfigs replaces a topic's config overrides (AlterConfigs is
// not incremental). Every key and value is validated here first; one bad
// entry fails the whole resource with INVALID_CONFIG.
func (c *conn) handleAlterConfigs(s *slot, req *kmsg.AlterConfigsRequest) {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	resp.Resources = make([]kmsg.AlterConfigsResponseResource, len(req.Resources))
	pending := 1
	done := func() {
		if pending--; pending == 0 {
			c.complete(s, resp)
		}
	}
	for i := range req.Resources {
		r := &req.Resources[i]
		rr := &resp.Resources[i]
		*rr = kmsg.NewAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		if r.ResourceType != kmsg.ConfigResourceTypeTopic {
			rr.ErrorCode = errInvalidRequest
			rr.ErrorMessage = kmsg.StringPtr("only topic configs can be altered")
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
		pending++
		c.be.AlterConfigs(r.ResourceName, set, req.ValidateOnly, func(code int16) {
			defer c.recoverPanic()
			rr.ErrorCode = code
			done()
		})
	}
	done()
}
