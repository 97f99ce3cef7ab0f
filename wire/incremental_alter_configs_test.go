package wire

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func iacResource(typ kmsg.ConfigResourceType, name string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsRequestResource {
	r := kmsg.NewIncrementalAlterConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.Configs = typ, name, ops
	return r
}

func iacOp(name string, op kmsg.IncrementalAlterConfigOp, value *string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	c.Name, c.Op, c.Value = name, op, value
	return c
}

func describeOne(t *testing.T, h *harness, typ kmsg.ConfigResourceType, name, key string) kmsg.DescribeConfigsResponseResourceConfig {
	t.Helper()
	dc := kmsg.NewPtrDescribeConfigsRequest()
	r := kmsg.NewDescribeConfigsRequestResource()
	r.ResourceType, r.ResourceName, r.ConfigNames = typ, name, []string{key}
	dc.Resources = append(dc.Resources, r)
	d := h.do(t, dc, 4).(*kmsg.DescribeConfigsResponse)
	if len(d.Resources) != 1 || len(d.Resources[0].Configs) != 1 {
		t.Fatalf("describe %s %s: %+v", name, key, d.Resources)
	}
	return d.Resources[0].Configs[0]
}

// The wire layer's share of IncrementalAlterConfigs: resources map onto
// the backend's typed call, errors onto Kafka's codes per resource, and
// one bad resource leaves the others applied.
func TestIncrementalAlterConfigs(t *testing.T) {
	h := newHarness(Config{})
	h.broker.createTopic("t", 1, nil)
	s := kmsg.StringPtr
	topic, broker := kmsg.ConfigResourceTypeTopic, kmsg.ConfigResourceTypeBroker
	cases := []struct {
		res  kmsg.IncrementalAlterConfigsRequestResource
		code int16
		msg  string
	}{
		{iacResource(topic, "t", iacOp("retention.ms", kmsg.IncrementalAlterConfigOpSet, s("1000")),
			iacOp("cleanup.policy", kmsg.IncrementalAlterConfigOpAppend, s("compact"))), errNone, ""},
		{iacResource(topic, "t2"), errUnknownTopicOrPartition, ""},
		{iacResource(topic, "t", iacOp("retention.mss", kmsg.IncrementalAlterConfigOpSet, s("1"))), errInvalidConfig, `unknown topic config "retention.mss"`},
		{iacResource(topic, "t", iacOp("retention.ms", kmsg.IncrementalAlterConfigOpAppend, s("1"))), errInvalidConfig, "append is not allowed"},
		{iacResource(topic, "t", iacOp("retention.ms", kmsg.IncrementalAlterConfigOpSet, s("1")), iacOp("retention.ms", kmsg.IncrementalAlterConfigOpDelete, nil)), errInvalidRequest, "twice"},
		{iacResource(broker, "1", iacOp("log.retention.ms", kmsg.IncrementalAlterConfigOpSet, s("5000"))), errNone, ""},
		{iacResource(broker, "1", iacOp("broker.id", kmsg.IncrementalAlterConfigOpSet, s("5"))), errInvalidRequest, "broker.id: cannot be updated dynamically"},
		{iacResource(broker, "1", iacOp("log.segment.bytes", kmsg.IncrementalAlterConfigOpSet, s("3"))), errInvalidRequest, "log.segment.bytes"},
		{iacResource(broker, "1", iacOp("num.io.threads", kmsg.IncrementalAlterConfigOpSet, s("3"))), errInvalidConfig, `unknown broker config "num.io.threads"`},
		{iacResource(broker, "9", iacOp("log.retention.ms", kmsg.IncrementalAlterConfigOpSet, s("1"))), errInvalidRequest, ""},
		{iacResource(kmsg.ConfigResourceType(32), "g"), errInvalidRequest, "only topic and broker"},
	}
	check := func(what string, r kmsg.IncrementalAlterConfigsResponseResource, code int16, want string) {
		t.Helper()
		msg := ""
		if r.ErrorMessage != nil {
			msg = *r.ErrorMessage
		}
		if r.ErrorCode != code || !strings.Contains(msg, want) {
			t.Errorf("%s (%s): %s %q, want %s containing %q", what, r.ResourceName, errName(r.ErrorCode), msg, errName(code), want)
		}
	}
	for _, v := range []int16{0, 1} {
		for i, c := range cases {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			req.Resources = append(req.Resources, c.res)
			resp := h.do(t, req, v).(*kmsg.IncrementalAlterConfigsResponse)
			if len(resp.Resources) != 1 {
				t.Fatalf("v%d case %d: %d resources", v, i, len(resp.Resources))
			}
			check(fmt.Sprintf("v%d case %d", v, i), resp.Resources[0], c.code, c.msg)
		}
	}
	// A resource named twice in one request is refused both times; the
	// others in the request are served.
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{
		iacResource(topic, "t", iacOp("segment.ms", kmsg.IncrementalAlterConfigOpSet, s("1000"))),
		iacResource(broker, "1", iacOp("log.roll.ms", kmsg.IncrementalAlterConfigOpSet, s("60000"))),
		iacResource(topic, "t", iacOp("segment.ms", kmsg.IncrementalAlterConfigOpSet, s("2000"))),
	}
	resp := h.do(t, req, 1).(*kmsg.IncrementalAlterConfigsResponse)
	check("duplicate 1", resp.Resources[0], errInvalidRequest, "duplicate resource")
	check("other", resp.Resources[1], errNone, "")
	check("duplicate 2", resp.Resources[2], errInvalidRequest, "duplicate resource")
	if c := describeOne(t, h, topic, "t", "segment.ms"); c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("a duplicated resource changed segment.ms to %q", *c.Value)
	}
	if c := describeOne(t, h, topic, "t", "cleanup.policy"); *c.Value != "delete,compact" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("cleanup.policy after APPEND: %q %v", *c.Value, c.Source)
	}
	if c := describeOne(t, h, broker, "1", "log.retention.ms"); *c.Value != "5000" || c.Source != kmsg.ConfigSourceDynamicBrokerConfig || c.ReadOnly {
		t.Errorf("log.retention.ms: %q %v read-only %v", *c.Value, c.Source, c.ReadOnly)
	}

	// validate_only changes nothing, however valid.
	vo := kmsg.NewPtrIncrementalAlterConfigsRequest()
	vo.ValidateOnly = true
	vo.Resources = []kmsg.IncrementalAlterConfigsRequestResource{
		iacResource(topic, "t", iacOp("retention.ms", kmsg.IncrementalAlterConfigOpDelete, nil)),
		iacResource(broker, "1", iacOp("log.retention.ms", kmsg.IncrementalAlterConfigOpSet, s("7"))),
	}
	for i, r := range h.do(t, vo, 1).(*kmsg.IncrementalAlterConfigsResponse).Resources {
		if r.ErrorCode != errNone {
			t.Fatalf("validate only, resource %d: %s", i, errName(r.ErrorCode))
		}
	}
	if c := describeOne(t, h, topic, "t", "retention.ms"); *c.Value != "1000" {
		t.Errorf("validate_only deleted retention.ms: %q", *c.Value)
	}
	if c := describeOne(t, h, broker, "1", "log.retention.ms"); *c.Value != "5000" {
		t.Errorf("validate_only set log.retention.ms: %q", *c.Value)
	}

	// AlterConfigs on a broker replaces its dynamic configs.
	ac := kmsg.NewPtrAlterConfigsRequest()
	ar := kmsg.NewAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = broker, "1"
	ar.Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: "log.roll.ms", Value: s("60000")}}
	ac.Resources = append(ac.Resources, ar)
	if r := h.do(t, ac, 2).(*kmsg.AlterConfigsResponse).Resources[0]; r.ErrorCode != errNone {
		t.Fatalf("alter broker: %s", errName(r.ErrorCode))
	}
	if c := describeOne(t, h, broker, "1", "log.retention.ms"); *c.Value != "604800000" || c.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("AlterConfigs kept log.retention.ms: %q %v", *c.Value, c.Source)
	}
	if c := describeOne(t, h, broker, "1", "log.roll.ms"); *c.Value != "60000" {
		t.Errorf("AlterConfigs did not set log.roll.ms: %q", *c.Value)
	}
}
