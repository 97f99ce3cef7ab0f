package metadata

import (
	"errors"
	"fmt"
	"maps"
	"strconv"
)

// Dynamic broker configs are kept per BROKER resource, as Kafka's KRaft
// metadata keeps them: a broker id in decimal for one broker's own
// settings, "" for the cluster-wide default. The state holds only
// resources with at least one key, so equal configurations give equal
// snapshots.

// brokerResourcesMax bounds how many broker resources the state can hold:
// every registered broker plus the default, with room for brokers being
// configured before they register.
const brokerResourcesMax = 4096

// ValidBrokerResource reports whether name is a BROKER resource name: ""
// (the cluster default) or a broker id in canonical decimal.
func ValidBrokerResource(name string) bool {
	if name == "" {
		return true
	}
	n, err := strconv.ParseInt(name, 10, 32)
	return err == nil && n >= 0 && strconv.FormatInt(n, 10) == name
}

func (s *State) mutBrokerConfigs() {
	if s.brokerConfigsShared || s.brokerConfigs == nil {
		s.brokerConfigs = maps.Clone(s.brokerConfigs)
		if s.brokerConfigs == nil {
			s.brokerConfigs = map[string]map[string]string{}
		}
		s.brokerConfigsShared = false
	}
}

func (s *State) alterBrokerConfigs(c *AlterBrokerConfigs) Result {
	if !ValidBrokerResource(c.Resource) {
		return reject(ErrInvalidArgument, "broker resource %q is neither empty nor a broker id", c.Resource)
	}
	if r, ok := checkConfigs(c.Set); !ok {
		return r
	}
	if c.Replace && len(c.Delete) > 0 {
		return reject(ErrInvalidArgument, "broker resource %q: replace with deletes", c.Resource)
	}
	for _, k := range c.Delete {
		if _, ok := c.Set[k]; ok || k == "" {
			return reject(ErrInvalidArgument, "broker resource %q: config key %q both set and deleted, or empty", c.Resource, k)
		}
	}
	cur, had := s.brokerConfigs[c.Resource]
	if !had && len(s.brokerConfigs) >= brokerResourcesMax && len(c.Set) > 0 {
		return reject(ErrInvalidArgument, "at most %d broker resources have configs", brokerResourcesMax)
	}
	m := map[string]string{}
	if !c.Replace {
		maps.Copy(m, cur)
	}
	maps.Copy(m, c.Set)
	for _, k := range c.Delete {
		delete(m, k)
	}
	s.mutBrokerConfigs()
	if len(m) == 0 {
		delete(s.brokerConfigs, c.Resource)
	} else {
		s.brokerConfigs[c.Resource] = m
	}
	if c.Resource == "" {
		s.uncleanSweep() // the cluster default may have allowed unclean election
	}
	return Result{}
}

// BrokerConfigs returns the dynamic configs of a BROKER resource (a broker
// id in decimal, or "" for the cluster default); nil if it has none. The
// map is shared: do not modify it.
func (v *View) BrokerConfigs(resource string) map[string]string { return v.brokerConfigs[resource] }

// BrokerConfigResources returns the broker resources that have dynamic
// configs, sorted ("" first).
func (v *View) BrokerConfigResources() []string { return sortedKeys(v.brokerConfigs) }

// encodeBrokerConfigs writes the snapshot's broker-config section.
func (v *View) encodeBrokerConfigs(e *encoder) {
	names := sortedKeys(v.brokerConfigs)
	e.uvarint(uint64(len(names)))
	for _, n := range names {
		e.str(n)
		e.strMap(v.brokerConfigs[n])
	}
}

// decodeBrokerConfigs reads what encodeBrokerConfigs wrote: at least one
// resource (a snapshot without any has format 0 and no section), in order,
// each with at least one key.
func (s *State) decodeBrokerConfigs(d *decoder) {
	n := d.count("broker config resources", 2)
	if n == 0 && d.err == nil {
		d.fail("broker config resources", errors.New("empty section"))
	}
	s.brokerConfigs = make(map[string]map[string]string, n)
	prev := ""
	for i := 0; i < n && d.err == nil; i++ {
		name := d.str("broker config resource")
		m := d.strMap("broker configs")
		switch {
		case i > 0 && name <= prev:
			d.fail("broker config resource", errors.New("not ascending"))
		case len(m) == 0:
			d.fail("broker configs", fmt.Errorf("resource %q without configs", name))
		}
		s.brokerConfigs[name], prev = m, name
	}
}

// checkBrokerConfigs is the broker-config part of View.Invariants.
func (v *View) checkBrokerConfigs() error {
	if len(v.brokerConfigs) > brokerResourcesMax {
		return fmt.Errorf("%d broker config resources (max %d)", len(v.brokerConfigs), brokerResourcesMax)
	}
	for name, m := range v.brokerConfigs {
		if !ValidBrokerResource(name) || len(m) == 0 {
			return fmt.Errorf("broker config resource %q: bad name or no configs", name)
		}
		if r, ok := checkConfigs(m); !ok {
			return fmt.Errorf("broker config resource %q: %s", name, r.Message)
		}
	}
	return nil
}
