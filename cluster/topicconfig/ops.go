package topicconfig

import (
	"slices"
	"strconv"
	"strings"
)

// OpKind is an IncrementalAlterConfigs operation; the numbers are Kafka's
// (AlterConfigOp.OpType).
type OpKind int8

// IncrementalAlterConfigs operations.
const (
	OpSet      OpKind = 0 // set the value
	OpDelete   OpKind = 1 // back to the inherited value or default
	OpAppend   OpKind = 2 // add elements to a list, skipping those present
	OpSubtract OpKind = 3 // remove elements from a list
)

// Op is one operation on one key.
type Op struct {
	Name  string
	Kind  OpKind
	Value *string
}

// ApplyTopicOps returns a topic's overrides after ops, as Kafka's
// IncrementalAlterConfigs computes them, or the first error (an *Error):
// a key named twice or an operation with no value (ErrInvalidRequest); an
// unknown key (ErrUnknownKey); APPEND or SUBTRACT on a key that is not a
// list, or a value Validate or ValidateSet refuses (ErrInvalidValue).
// APPEND and SUBTRACT start from the override, else the default. inherited
// is what the topic takes from the dynamic broker configs: the set is
// validated as it will be in effect. cur is not modified.
func ApplyTopicOps(cur map[string]string, inherited map[string]Inherited, ops []Op) (map[string]string, error) {
	next, err := applyOps(cur, ops, false)
	if err != nil {
		return nil, err
	}
	if err := ValidateSet(Merge(inherited, next)); err != nil {
		return nil, err
	}
	return next, nil
}

// ApplyBrokerOps is ApplyTopicOps for a broker resource's dynamic configs:
// keys are dynamic broker configs (ValidateBroker). With replace (Kafka's
// non-incremental AlterConfigs) the result holds only what ops set.
func ApplyBrokerOps(cur map[string]string, ops []Op, replace bool) (map[string]string, error) {
	if replace {
		cur = nil
	}
	return applyOps(cur, ops, true)
}

func applyOps(cur map[string]string, ops []Op, broker bool) (map[string]string, error) {
	next := make(map[string]string, len(cur)+len(ops))
	for k, v := range cur {
		next[k] = v
	}
	seen := make(map[string]bool, len(ops))
	for _, op := range ops {
		bad := func(reason string) error {
			return &Error{Key: op.Name, Broker: broker, Reason: reason, kind: ErrInvalidRequest}
		}
		if seen[op.Name] {
			return nil, bad("named twice in one resource")
		}
		seen[op.Name] = true
		typ, def, err := keyInfo(op.Name, broker)
		if err != nil {
			return nil, err
		}
		if op.Kind != OpDelete && op.Value == nil {
			return nil, bad("null value not supported")
		}
		switch op.Kind {
		case OpSet:
			next[op.Name] = *op.Value
		case OpDelete:
			delete(next, op.Name)
			continue
		case OpAppend, OpSubtract:
			if typ != TypeList {
				verb := map[OpKind]string{OpAppend: "append", OpSubtract: "subtract"}[op.Kind]
				return nil, &Error{Key: op.Name, Value: *op.Value, Broker: broker, kind: ErrInvalidValue,
					Reason: "config value " + verb + " is not allowed: it is a " + typ.String() + ", not a list"}
			}
			old, ok := next[op.Name]
			if !ok {
				old = def
			}
			next[op.Name] = listOp(old, *op.Value, op.Kind)
		default:
			return nil, bad("unknown operation " + strconv.Itoa(int(op.Kind)))
		}
		v := next[op.Name]
		if broker {
			err = ValidateBroker(op.Name, &v)
		} else {
			err = Validate(op.Name, &v)
		}
		if err != nil {
			return nil, err
		}
	}
	return next, nil
}

// keyInfo is a key's type and the default APPEND and SUBTRACT start from,
// or the error for a key that cannot be altered.
func keyInfo(name string, broker bool) (Type, string, error) {
	if broker {
		if err := ValidateBroker(name, nil); err != nil {
			return 0, "", err
		}
		d, _ := lookupDynamic(name)
		t, def := d.typeAndDefault()
		return t, def, nil
	}
	k, ok := Lookup(name)
	if !ok {
		return 0, "", &Error{Key: name, kind: ErrUnknownKey}
	}
	return k.Type, k.Default, nil
}

// listOp is Kafka's APPEND (old then new elements, each once) or SUBTRACT
// (old elements not in value) on comma-separated lists.
func listOp(old, value string, kind OpKind) string {
	split := func(s string) []string {
		var out []string
		for _, e := range strings.Split(s, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
		return out
	}
	cur, arg := split(old), split(value)
	var out []string
	if kind == OpAppend {
		for _, e := range append(cur, arg...) {
			if !slices.Contains(out, e) {
				out = append(out, e)
			}
		}
	} else {
		for _, e := range cur {
			if !slices.Contains(arg, e) {
				out = append(out, e)
			}
		}
	}
	return strings.Join(out, ",")
}
