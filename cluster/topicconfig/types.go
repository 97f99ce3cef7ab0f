package topicconfig

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// Type is a config's value type, Kafka's ConfigDef.Type.
type Type uint8

// Kafka's config value types.
const (
	TypeBoolean Type = iota + 1
	TypeString
	TypeInt
	TypeLong
	TypeDouble
	TypeList
	TypeClass
	TypePassword
)

var typeNames = [...]string{"", "boolean", "string", "int", "long", "double", "list", "class", "password"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "unknown"
}

// The kinds of refusal; an *Error wraps exactly one, for errors.Is.
var (
	// ErrUnknownKey: Kafka defines no topic config of that name.
	ErrUnknownKey = errors.New("unknown topic config")
	// ErrInvalidValue: the value does not parse as the key's type or
	// fails Kafka's validation for it.
	ErrInvalidValue = errors.New("invalid topic config value")
	// ErrUnsupported: a legal Kafka value for a feature Strand does not
	// have (tiered storage).
	ErrUnsupported = errors.New("unsupported topic config value")
	// ErrReadOnly: a broker config Strand reports but sets only at start
	// (Kafka: "Cannot update these configs dynamically").
	ErrReadOnly = errors.New("broker config cannot be updated dynamically")
	// ErrInvalidRequest: an alteration that is malformed as a request (a
	// key named twice, no value to set, an unknown operation), whatever
	// the keys.
	ErrInvalidRequest = errors.New("invalid config alteration")
)

// Error is a refused config. Its message names the key, so a client's
// INVALID_CONFIG says which of its configs was wrong.
type Error struct {
	Key    string
	Value  string
	Reason string
	Broker bool // a broker config, not a topic's
	kind   error
}

func (e *Error) Error() string {
	what := "topic config "
	if e.Broker {
		what = "broker config "
	}
	switch e.kind {
	case ErrUnknownKey:
		return "unknown " + what + strconv.Quote(e.Key)
	case ErrReadOnly, ErrInvalidRequest:
		return what + e.Key + ": " + e.Reason
	}
	return "invalid value " + strconv.Quote(e.Value) + " for " + what + e.Key + ": " + e.Reason
}

// Unwrap returns the kind of refusal.
func (e *Error) Unwrap() error { return e.kind }

// maxLong is Kafka's Long.MAX_VALUE default ("never").
const maxLong = "9223372036854775807"

// parse checks that v is a legal value of type t, as Kafka's ConfigDef
// parses it (numbers and booleans are trimmed first).
func parse(t Type, v string) (num float64, reason string) {
	s := strings.TrimSpace(v)
	switch t {
	case TypeBoolean:
		if !strings.EqualFold(s, "true") && !strings.EqualFold(s, "false") {
			return 0, "expected true or false"
		}
	case TypeInt:
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return 0, "expected a 32-bit integer"
		}
		return float64(n), ""
	case TypeLong:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, "expected a 64-bit integer"
		}
		return float64(n), ""
	case TypeDouble:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(n) {
			return 0, "expected a number"
		}
		return n, ""
	}
	return 0, ""
}

// A validator checks a value that already parses as its key's type.
type validator struct {
	text  string // Kafka's "Valid Values" column
	check func(v string, num float64) string
}

func atLeast(min int64) validator {
	return validator{
		text: "[" + strconv.FormatInt(min, 10) + ",...]",
		check: func(v string, _ float64) string {
			// Compare as integers: float64 loses precision near 2^63.
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if n < min {
				return "must be at least " + strconv.FormatInt(min, 10)
			}
			return ""
		},
	}
}

func between(lo, hi float64) validator {
	f := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	return validator{
		text: "[" + f(lo) + ",...," + f(hi) + "]",
		check: func(_ string, n float64) string {
			if n < lo || n > hi {
				return "must be between " + f(lo) + " and " + f(hi)
			}
			return ""
		},
	}
}

// levelOr accepts lo..hi or the codec's "default level" sentinel.
func levelOr(lo, hi, sentinel int64) validator {
	return validator{
		text: "[" + strconv.FormatInt(lo, 10) + ",...," + strconv.FormatInt(hi, 10) + "] or " + strconv.FormatInt(sentinel, 10),
		check: func(v string, _ float64) string {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if n != sentinel && (n < lo || n > hi) {
				return "must be " + strconv.FormatInt(sentinel, 10) + " or between " + strconv.FormatInt(lo, 10) + " and " + strconv.FormatInt(hi, 10)
			}
			return ""
		},
	}
}

// oneOf is Kafka's ValidString.in: case-sensitive, on the value Kafka's
// parser trimmed.
func oneOf(opts ...string) validator {
	return validator{
		text: "[" + strings.Join(opts, ", ") + "]",
		check: func(v string, _ float64) string {
			v = strings.TrimSpace(v)
			for _, o := range opts {
				if v == o {
					return ""
				}
			}
			return "must be one of " + strings.Join(opts, ", ")
		},
	}
}

// listOf is Kafka 3.x's ValidList.in over a comma-separated list: every
// element one of opts. The empty list is valid (for cleanup.policy it
// means no cleanup at all).
func listOf(opts ...string) validator {
	in := oneOf(opts...)
	return validator{
		text: in.text,
		check: func(v string, _ float64) string {
			if strings.TrimSpace(v) == "" {
				return ""
			}
			for _, p := range strings.Split(v, ",") {
				if in.check(strings.TrimSpace(p), 0) != "" {
					return "each element must be one of " + strings.Join(opts, ", ")
				}
			}
			return ""
		},
	}
}

// throttledReplicas is Kafka's ThrottledReplicaListValidator: empty, "*",
// or partition:broker pairs.
var throttledReplicas = validator{
	text: "[partitionId]:[brokerId],[partitionId]:[brokerId],... or *",
	check: func(v string, _ float64) string {
		s := strings.TrimSpace(v)
		if s == "" || s == "*" {
			return ""
		}
		for _, p := range strings.Split(s, ",") {
			a, b, ok := strings.Cut(strings.TrimSpace(p), ":")
			if !ok || !isDigits(a) || !isDigits(b) {
				return "must be * or a list of partitionId:brokerId"
			}
		}
		return ""
	},
}

// messageFormatVersion accepts what Kafka 3.x's validator accepts: a
// release from 0.8.0 to 3.x, optionally with an -IVn suffix ("2.8",
// "0.10.2-IV0", "3.0-IV1"). Kafka 3.x ignores it for v2 formats, as
// Strand does.
var messageFormatVersion = validator{
	text: "[0.8.0, ..., 3.x] (a Kafka release, optionally -IVn)",
	check: func(v string, _ float64) string {
		s, iv, hasIV := strings.Cut(v, "-IV")
		if hasIV && !isDigits(iv) {
			return "not a Kafka version"
		}
		parts := strings.Split(s, ".")
		if len(parts) < 2 || len(parts) > 3 {
			return "not a Kafka version"
		}
		for _, p := range parts {
			if !isDigits(p) {
				return "not a Kafka version"
			}
		}
		major, _ := strconv.Atoi(parts[0])
		minor, _ := strconv.Atoi(parts[1])
		if major > 3 || major == 0 && minor < 8 {
			return "not a Kafka version from 0.8.0 to 3.x"
		}
		return ""
	},
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
