package wire

import (
	"errors"
	"fmt"
	"testing"

	"github.com/strand-io/strand/cluster/topicconfig"
	"github.com/strand-io/strand/shard"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestErrorCode pins the one mapping from domain errors to Kafka codes,
// for the bare sentinels and for the wrapped forms the log returns.
func TestErrorCode(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("partition t-0: %w", err) }
	cases := []struct {
		err  error
		want *kerr.Error
	}{
		{shard.ErrCorruptBatch, kerr.CorruptMessage},
		{shard.ErrShortBatch, kerr.CorruptMessage},
		{shard.ErrCorruptRecords, kerr.CorruptMessage},
		{&shard.CorruptionError{File: "x.log", Err: shard.ErrCorruptBatch}, kerr.CorruptMessage},
		{&shard.CorruptionError{File: "x.log", Err: errors.New("epoch went back")}, kerr.CorruptMessage},
		{shard.ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
		{shard.ErrBatchTooLarge, kerr.MessageTooLarge},
		{shard.ErrRecordsTooLarge, kerr.MessageTooLarge},
		{shard.ErrInvalidBatch, kerr.InvalidRecord},
		{shard.ErrOutOfOrderSequence, kerr.OutOfOrderSequenceNumber},
		{shard.ErrProducerFenced, kerr.InvalidProducerEpoch},
		{shard.ErrBacklogFull, kerr.RequestTimedOut},
		{shard.ErrKeylessCompacted, kerr.InvalidRecord},
		{shard.ErrTimestampOutOfRange, kerr.InvalidTimestamp},
		{&topicconfig.Error{Key: "k"}, kerr.KafkaStorageError}, // no kind: not a config refusal
		{shard.ErrNoSpace, kerr.KafkaStorageError},
		{shard.ErrLogFailed, kerr.KafkaStorageError},
		{shard.ErrClosed, kerr.KafkaStorageError},
		{errors.New("some I/O error"), kerr.KafkaStorageError},
		// Kafka errors (the replication protocol answers with kerr values)
		// keep their own code.
		{kerr.NotEnoughReplicas, kerr.NotEnoughReplicas},
		{kerr.NotLeaderForPartition, kerr.NotLeaderForPartition},
		// Config refusals (topicconfig): the key or value is the client's
		// fault, the request's shape INVALID_REQUEST.
		{topicconfig.ErrUnknownKey, kerr.InvalidConfig},
		{topicconfig.ErrInvalidValue, kerr.InvalidConfig},
		{topicconfig.ErrUnsupported, kerr.InvalidConfig},
		{topicconfig.ErrReadOnly, kerr.InvalidRequest},
		{topicconfig.ErrInvalidRequest, kerr.InvalidRequest},
	}
	for _, c := range cases {
		for _, err := range []error{c.err, wrap(c.err)} {
			if got := ErrorCode(err); got != c.want.Code {
				t.Errorf("ErrorCode(%v) = %s, want %s", err, errName(got), c.want.Message)
			}
		}
	}
	if got := ErrorCode(nil); got != 0 {
		t.Errorf("ErrorCode(nil) = %d", got)
	}
}
