package wire

import (
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crcOf(b []byte) uint32 { return crc32.Checksum(b[21:], castagnoli) }

func TestErrorCodesMatchKerr(t *testing.T) {
	for code, want := range map[int16]*kerr.Error{
		errOffsetOutOfRange: kerr.OffsetOutOfRange, errCorruptMessage: kerr.CorruptMessage,
		errUnknownTopicOrPartition: kerr.UnknownTopicOrPartition, errLeaderNotAvailable: kerr.LeaderNotAvailable,
		errInvalidTopic: kerr.InvalidTopicException, errInvalidRequiredAcks: kerr.InvalidRequiredAcks,
		errUnsupportedVersion: kerr.UnsupportedVersion, errTopicAlreadyExists: kerr.TopicAlreadyExists,
		errInvalidPartitions: kerr.InvalidPartitions, errInvalidReplicationFactor: kerr.InvalidReplicationFactor,
		errInvalidReplicaAssignment: kerr.InvalidReplicaAssignment, errInvalidConfig: kerr.InvalidConfig,
		errInvalidRequest: kerr.InvalidRequest, errFetchSessionIDNotFound: kerr.FetchSessionIDNotFound,
		errInvalidRecord: kerr.InvalidRecord, errUnknownTopicID: kerr.UnknownTopicID,
	} {
		if code != want.Code {
			t.Errorf("%s: code %d, kerr says %d", want.Message, code, want.Code)
		}
	}
}

func TestTrimBatches(t *testing.T) {
	a, b, c := makeBatch(make([]byte, 100)), makeBatch(make([]byte, 200)), makeBatch(make([]byte, 300))
	all := append(append(append([]byte(nil), a...), b...), c...)
	cases := []struct {
		limit      int
		allowFirst bool
		want       int
	}{
		{len(all), false, len(all)},
		{len(a) + len(b), false, len(a) + len(b)},
		{len(a) + len(b) - 1, false, len(a)},
		{10, false, 0},
		{10, true, len(a)},
		{-5, true, len(a)},
	}
	for _, tc := range cases {
		if got := len(trimBatches(all, tc.limit, tc.allowFirst)); got != tc.want {
			t.Errorf("limit %d allowFirst %v: %d bytes, want %d", tc.limit, tc.allowFirst, got, tc.want)
		}
	}
	if got := len(trimBatches(all[:len(all)-1], len(all), false)); got != len(a)+len(b) {
		t.Errorf("partial tail kept: %d", got)
	}
}
