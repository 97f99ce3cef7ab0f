package wire

import (
	"errors"

	"github.com/strand-io/strand/cluster/topicconfig"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleIncrementalAlterConfigs applies SET, DELETE, APPEND and SUBTRACT
// operations to topics and to dynamic broker configs (broker "<id>", or
// "" for the cluster default). Each resource succeeds or fails whole;
// with validate_only nothing changes. The operations' rules and the
// validation are cluster/topicconfig's (ApplyTopicOps, ApplyBrokerOps),
// run by the backend on the resource's current configs.
func (c *conn) handleIncrementalAlterConfigs(s *slot, req *kmsg.IncrementalAlterConfigsRequest) {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	resp.Resources = make([]kmsg.IncrementalAlterConfigsResponseResource, len(req.Resources))
	fan := c.answerAfter(s, resp)
	// A resource named twice is refused both times, as Kafka does: which
	// of the two would win is not defined.
	type resourceKey struct {
		typ  kmsg.ConfigResourceType
		name string
	}
	named := make(map[resourceKey]int, len(req.Resources))
	for _, r := range req.Resources {
		named[resourceKey{r.ResourceType, r.ResourceName}]++
	}
	for i := range req.Resources {
		r := &req.Resources[i]
		rr := &resp.Resources[i]
		*rr = kmsg.NewIncrementalAlterConfigsResponseResource()
		rr.ResourceType, rr.ResourceName = r.ResourceType, r.ResourceName
		if named[resourceKey{r.ResourceType, r.ResourceName}] > 1 {
			rr.ErrorCode = kerr.InvalidRequest.Code
			rr.ErrorMessage = kmsg.StringPtr("duplicate resource in the request")
			continue
		}
		a := ConfigAlteration{Name: r.ResourceName, ValidateOnly: req.ValidateOnly}
		switch r.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
		case kmsg.ConfigResourceTypeBroker:
			a.Broker = true
		default:
			rr.ErrorCode = kerr.InvalidRequest.Code
			rr.ErrorMessage = kmsg.StringPtr("only topic and broker configs can be altered")
			continue
		}
		a.Ops = make([]topicconfig.Op, len(r.Configs))
		for j, cfg := range r.Configs {
			a.Ops[j] = topicconfig.Op{Name: cfg.Name, Kind: topicconfig.OpKind(cfg.Op), Value: cfg.Value}
		}
		fan.add()
		c.be.AlterConfigOps(a, func(err error) {
			defer c.recoverPanic()
			if err != nil {
				rr.ErrorCode = configErrorCode(err, a.Broker)
				rr.ErrorMessage = kmsg.StringPtr(err.Error())
			}
			fan.done()
		})
	}
	fan.done()
}

// configErrorCode maps an alteration's error. For broker resources Kafka
// answers a value its validator refuses with INVALID_REQUEST, not
// INVALID_CONFIG (KAFKA-13609 keeps it for compatibility); clients see
// the same code from Strand.
func configErrorCode(err error, broker bool) int16 {
	if broker && errors.Is(err, topicconfig.ErrInvalidValue) {
		return kerr.InvalidRequest.Code
	}
	return ErrorCode(err)
}
