package cluster

import (
	"encoding/binary"

	"github.com/strand-io/strand/shard"
	"github.com/strand-io/strand/wire"
)

// coreProbe counts one core's Kafka requests. Only that core writes it (the
// wire layer calls the backend's probe methods on the connection's core);
// a reader elsewhere asks the core for a copy by message (see
// Node.Snapshot), so counting costs an increment and no atomic.
type coreProbe struct {
	requests          [wire.MaxAPIKey + 1]uint64
	bytesIn, bytesOut uint64
	unknownKeys       uint64 // requests for keys past wire.MaxAPIKey
}

var _ wire.RequestProbe = (*backend)(nil)

func (b *backend) ObserveRequest(key int16, bytes int) {
	p := &b.cs.probe
	if key >= 0 && int(key) < len(p.requests) {
		p.requests[key]++
	} else {
		p.unknownKeys++
	}
	p.bytesIn += uint64(bytes)
}

func (b *backend) ObserveResponse(_ int16, bytes int) {
	b.cs.probe.bytesOut += uint64(bytes)
}

// partProbe counts one partition's traffic; its owning core writes it.
type partProbe struct {
	recordsIn, bytesIn, recordsOut, bytesOut uint64
}

// appended counts a successful append of batch.
func (p *partProbe) appended(r shard.AppendResult, batchBytes int) {
	p.recordsIn += uint64(r.Last-r.Base) + 1
	p.bytesIn += uint64(batchBytes)
}

// read counts the records of the batches a fetch returned.
func (p *partProbe) read(data []byte) {
	p.bytesOut += uint64(len(data))
	p.recordsOut += uint64(recordsIn(data))
}

// recordsIn counts the offsets the record batches in data cover, from each
// batch's header (lastOffsetDelta + 1), without decoding records:
//
//	0       8        12                    23               27
//	| base  | length | epoch, magic, crc,  | lastOffsetDelta | ...
//	| int64 | int32  | attributes          | int32           |
//
// A trailing partial batch (a fetch may end mid-batch) is not counted.
func recordsIn(data []byte) int64 {
	var n int64
	for len(data) >= 27 {
		size := int64(binary.BigEndian.Uint32(data[8:12])) + 12
		if size < 27 || size > int64(len(data)) {
			break
		}
		n += int64(int32(binary.BigEndian.Uint32(data[23:27]))) + 1
		data = data[size:]
	}
	return n
}
