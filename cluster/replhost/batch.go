package replhost

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/strand-io/strand/cluster/replication"
	"github.com/strand-io/strand/shard"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EncodeBatch writes b as a Kafka v2 record batch stamped with its offset
// and leader epoch, one record per value (an 8-byte big-endian value, no
// key, no headers).
func EncodeBatch(b replication.Batch) []byte {
	var recs []byte
	for i, v := range b.Values {
		var r []byte
		r = append(r, 0)                     // attributes
		r = binary.AppendVarint(r, 0)        // timestamp delta
		r = binary.AppendVarint(r, int64(i)) // offset delta
		r = binary.AppendVarint(r, -1)       // no key
		r = binary.AppendVarint(r, 8)        // value length
		r = binary.BigEndian.AppendUint64(r, v)
		r = binary.AppendVarint(r, 0) // no headers
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	out := make([]byte, shard.BatchHeaderSize, shard.BatchHeaderSize+len(recs))
	out = append(out, recs...)
	be := binary.BigEndian
	pid, epoch, seq := int64(-1), int16(-1), int32(-1)
	if b.ProducerID != 0 {
		pid, epoch, seq = b.ProducerID, 0, b.BaseSeq
	}
	be.PutUint64(out[0:], uint64(b.Base))
	be.PutUint32(out[8:], uint32(len(out)-12))
	be.PutUint32(out[12:], uint32(b.Epoch))
	out[16] = 2
	be.PutUint32(out[23:], uint32(len(b.Values)-1))
	be.PutUint64(out[43:], uint64(pid))
	be.PutUint16(out[51:], uint16(epoch))
	be.PutUint32(out[53:], uint32(seq))
	be.PutUint32(out[57:], uint32(len(b.Values)))
	be.PutUint32(out[17:], crc32.Checksum(out[21:], castagnoli))
	return out
}

// DecodeBatches reads back concatenated batches that EncodeBatch wrote.
func DecodeBatches(data []byte) ([]replication.Batch, error) {
	var out []replication.Batch
	for len(data) > 0 {
		h, err := shard.ParseBatchHeader(data)
		if err != nil {
			return nil, err
		}
		if h.Size() > len(data) {
			return nil, fmt.Errorf("replhost: batch of %d bytes, %d left", h.Size(), len(data))
		}
		b := replication.Batch{Base: replication.Offset(h.BaseOffset), Epoch: replication.Epoch(h.LeaderEpoch)}
		if h.ProducerID >= 0 {
			b.ProducerID, b.BaseSeq = h.ProducerID, h.BaseSequence
		}
		recs := data[shard.BatchHeaderSize:h.Size()]
		for range h.RecordCount {
			v, err := decodeRecord(&recs)
			if err != nil {
				return nil, fmt.Errorf("replhost: batch at %d: %w", h.BaseOffset, err)
			}
			b.Values = append(b.Values, v)
		}
		out = append(out, b)
		data = data[h.Size():]
	}
	return out, nil
}

func decodeRecord(p *[]byte) (uint64, error) {
	b := *p
	n, k := binary.Varint(b)
	if k <= 0 || n < 0 || int64(len(b)-k) < n {
		return 0, errors.New("bad record length")
	}
	r := b[k : k+int(n)]
	*p = b[k+int(n):]
	r = r[1:]     // attributes
	for range 3 { // timestamp delta, offset delta, key length (-1)
		_, k := binary.Varint(r)
		if k <= 0 {
			return 0, errors.New("bad record field")
		}
		r = r[k:]
	}
	vl, k := binary.Varint(r)
	if k <= 0 || vl != 8 || len(r) < k+8 {
		return 0, errors.New("bad record value")
	}
	return binary.BigEndian.Uint64(r[k:]), nil
}
