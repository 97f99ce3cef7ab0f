package metadata

import "fmt"

// Code is the outcome of applying a command. The numbers travel in Raft
// results between brokers of different versions: never renumber one. The
// broker maps them to Kafka error codes at the protocol edge.
type Code uint8

// Result codes. Every code but OK means the state was left unchanged.
const (
	OK                  Code = 0
	ErrMalformed        Code = 1  // the command did not decode
	ErrInvalidArgument  Code = 2  // a name, address, count or config out of range
	ErrBrokerConflict   Code = 3  // another broker has that address, or cores shrink under replicas
	ErrUnknownBroker    Code = 4  // the broker is not registered
	ErrTopicExists      Code = 5  // a topic with that name or id exists
	ErrUnknownTopic     Code = 6  // no such topic (or its id differs)
	ErrUnknownPartition Code = 7  // no such partition
	ErrInvalidReplicas  Code = 8  // empty, duplicate, unknown broker, bad core, length mismatch
	ErrInvalidISR       Code = 9  // not a subset, empty, leader outside it or fenced
	ErrStaleEpoch       Code = 10 // the leader or partition epoch is not the current one
	ErrBrokerInUse      Code = 11 // the broker still holds replicas
	ErrExhausted        Code = 12 // producer ids ran out
	// ErrElectionNotNeeded: the partition already has the leader asked for.
	ErrElectionNotNeeded Code = 13
	// ErrPreferredNotAvailable: the preferred replica is fenced or not in sync.
	ErrPreferredNotAvailable Code = 14
	// ErrEligibleNotAvailable: no live replica could lead.
	ErrEligibleNotAvailable Code = 15
	// ErrNoReassignment: a cancel found no reassignment in progress.
	ErrNoReassignment Code = 16
)

var codeNames = [...]string{
	OK: "OK", ErrMalformed: "MALFORMED", ErrInvalidArgument: "INVALID_ARGUMENT",
	ErrBrokerConflict: "BROKER_CONFLICT", ErrUnknownBroker: "UNKNOWN_BROKER",
	ErrTopicExists: "TOPIC_EXISTS", ErrUnknownTopic: "UNKNOWN_TOPIC",
	ErrUnknownPartition: "UNKNOWN_PARTITION", ErrInvalidReplicas: "INVALID_REPLICAS",
	ErrInvalidISR: "INVALID_ISR", ErrStaleEpoch: "STALE_EPOCH",
	ErrBrokerInUse: "BROKER_IN_USE", ErrExhausted: "EXHAUSTED",
	ErrElectionNotNeeded: "ELECTION_NOT_NEEDED", ErrPreferredNotAvailable: "PREFERRED_NOT_AVAILABLE",
	ErrEligibleNotAvailable: "ELIGIBLE_NOT_AVAILABLE", ErrNoReassignment: "NO_REASSIGNMENT",
}

func (c Code) String() string {
	if int(c) < len(codeNames) && codeNames[c] != "" {
		return codeNames[c]
	}
	return fmt.Sprintf("Code(%d)", uint8(c))
}

// Result is what applying a command returned.
type Result struct {
	Code    Code
	Message string // why it was rejected; empty when OK
	// Value is the command's output: the first producer id of an
	// AllocateProducerIDs block, otherwise 0.
	Value int64
	// Version is the state's version after the command (unchanged when
	// rejected), so a proposer can wait for its View to reach it.
	Version uint64
}

// Accepted reports whether the command was applied.
func (r Result) Accepted() bool { return r.Code == OK }

// Err returns nil when the command was applied, otherwise a *Rejection.
func (r Result) Err() error {
	if r.Code == OK {
		return nil
	}
	return &Rejection{Code: r.Code, Message: r.Message}
}

// Rejection is a command the state machine refused.
type Rejection struct {
	Code    Code
	Message string
}

func (e *Rejection) Error() string { return "metadata: " + e.Code.String() + ": " + e.Message }

func reject(code Code, format string, args ...any) Result {
	return Result{Code: code, Message: fmt.Sprintf(format, args...)}
}

// EncodeResult gives the bytes a Raft result carries. The layout is
// code, version (uvarint), value (varint), message (string).
func EncodeResult(r Result) []byte {
	e := encoder{b: make([]byte, 0, 16+len(r.Message))}
	e.byte(byte(r.Code))
	e.uvarint(r.Version)
	e.varint(r.Value)
	e.str(r.Message)
	return e.b
}

// DecodeResult is EncodeResult's inverse.
func DecodeResult(b []byte) (Result, error) {
	d := decoder{b: b}
	var r Result
	r.Code = Code(d.byte("code"))
	r.Version = d.uvarint("version")
	r.Value = d.varint("value")
	r.Message = d.str("message")
	return r, d.end()
}
