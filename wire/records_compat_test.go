package wire

import (
	"encoding/binary"
	"math/rand"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"

	"github.com/strand-io/strand/shard"
)

// kgoRecords decodes records the way franz-go's consumer does
// (kgo/source.go readRawRecordsDirect, v1.22.2) and returns how many it
// got before it stopped. A consumer that gets fewer than the batch's
// recordCount is the consumer that stalls.
func kgoRecords(in []byte, n int) int {
	got := 0
	for ; got < n; got++ {
		length, used := kbin.Varint(in)
		total := used + int(length)
		if used <= 0 || length < 0 || len(in) < total {
			break
		}
		b := kbin.Reader{Src: in[used:total]}
		b.Int8()
		b.Varlong()
		b.Varint()
		b.VarintBytes()
		b.VarintBytes()
		if nh := int(b.VarintArrayLen()); nh > 0 {
			for range nh {
				b.VarintString()
				b.VarintBytes()
			}
		}
		if !b.Ok() {
			break
		}
		in = in[total:]
	}
	return got
}

// mutateRecords applies one random edit to record bytes: flip a byte, set
// one to a varint-significant value, cut, insert or duplicate a range.
func mutateRecords(rng *rand.Rand, recs []byte) []byte {
	out := append([]byte(nil), recs...)
	if len(out) == 0 {
		return append(out, byte(rng.Intn(256)))
	}
	i := rng.Intn(len(out))
	switch rng.Intn(6) {
	case 0:
		out[i] ^= byte(1 << rng.Intn(8))
	case 1:
		out[i] = []byte{0x00, 0x01, 0x02, 0x7f, 0x80, 0xff}[rng.Intn(6)]
	case 2:
		out = out[:i]
	case 3:
		out = append(out[:i], out[i+1:]...)
	case 4:
		out = append(out[:i], append([]byte{byte(rng.Intn(256))}, out[i:]...)...)
	default:
		j := i + rng.Intn(len(out)-i)
		out = append(out[:j], append(append([]byte(nil), out[i:j]...), out[j:]...)...)
	}
	return out
}

// TestAcceptedRecordsDecodeLikeKgo mutates the records of valid batches
// (keeping the CRC right) and checks that whatever ValidateRecords accepts,
// franz-go's consumer decodes whole: every one of recordCount records.
func TestAcceptedRecordsDecodeLikeKgo(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	accepted, refused := 0, 0
	for range 20_000 {
		values := make([][]byte, 1+rng.Intn(4))
		for i := range values {
			values[i] = make([]byte, rng.Intn(20))
			rng.Read(values[i])
		}
		good := makeBatch(values...)
		recs := good[BatchHeaderLen:]
		for range 1 + rng.Intn(3) {
			recs = mutateRecords(rng, recs)
		}
		count := len(values)
		if rng.Intn(4) == 0 {
			count = max(1, count+rng.Intn(3)-1)
		}
		b := withRecords(good, 0, recs)
		binary.BigEndian.PutUint32(b[57:], uint32(count))
		binary.BigEndian.PutUint32(b[23:], uint32(count-1))
		binary.BigEndian.PutUint32(b[17:], crcOf(b))
		if _, err := shard.ValidateRecords(b, 0, 1<<20); err != nil {
			refused++
			continue
		}
		accepted++
		if got := kgoRecords(recs, count); got != count {
			t.Fatalf("accepted a batch of %d records franz-go decodes %d of: % x", count, got, recs)
		}
	}
	// Both outcomes must be common, or the test checks nothing.
	if accepted < 1000 || refused < 1000 {
		t.Fatalf("%d accepted, %d refused", accepted, refused)
	}
	t.Logf("%d accepted, %d refused", accepted, refused)
}
