package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"

	"github.com/strand-io/strand/cluster/group"
	"github.com/strand-io/strand/shard"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetsTopic is the internal topic holding committed offsets. Each group
// belongs to one of its partitions (by a hash of the group id); the core
// owning that partition runs the group's coordinator.
const OffsetsTopic = "__consumer_offsets"

// offsetsPartitionFor maps a group to its partition of the offsets topic.
func offsetsPartitionFor(groupID string, partitions int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(groupID))
	return int32(h.Sum32() % uint32(partitions))
}

// Records in the offsets log use Kafka's own layout, so tools that read
// __consumer_offsets understand them:
//
//	key   (version 1): int16 1 | string group | string topic | int32 partition
//	value (version 3): int16 3 | int64 offset | int32 leaderEpoch | string metadata | int64 commitTimestamp
//	a null value is a tombstone (the offset was deleted)
//
// and a group's membership (kmsg.GroupMetadataKey/Value):
//
//	key   (version 2): int16 2 | string group
//	value (version 3): int16 3 | string protocolType | int32 generation | string protocol
//	                   | string leader | int64 stateTimestamp | members [memberID, instanceID,
//	                   clientID, clientHost, rebalanceTimeout, sessionTimeout, subscription, assignment]
//	a null value is a tombstone (the group was deleted)
//
// Strings are int16 length + bytes.
func encodeRecordKey(r group.Record) []byte {
	if r.IsMeta {
		k := kmsg.NewGroupMetadataKey()
		k.Version, k.Group = 2, r.Group
		return k.AppendTo(nil)
	}
	return encodeOffsetKey(r)
}

// encodeRecordValue is nil for a tombstone.
func encodeRecordValue(r group.Record) []byte {
	if !r.IsMeta {
		return encodeOffsetValue(r.Offset)
	}
	if r.Meta == nil {
		return nil
	}
	m := r.Meta
	v := kmsg.NewGroupMetadataValue()
	v.Version, v.ProtocolType, v.Generation, v.CurrentStateTimestamp = 3, m.ProtocolType, m.Generation, m.StateTimestampMs
	if m.Protocol != "" {
		v.Protocol = kmsg.StringPtr(m.Protocol)
	}
	if m.Leader != "" {
		v.Leader = kmsg.StringPtr(m.Leader)
	}
	for _, mm := range m.Members {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID, vm.InstanceID, vm.ClientID, vm.ClientHost = mm.MemberID, mm.InstanceID, mm.ClientID, mm.ClientHost
		vm.RebalanceTimeoutMillis, vm.SessionTimeoutMillis = mm.RebalanceTimeoutMs, mm.SessionTimeoutMs
		vm.Subscription, vm.Assignment = mm.Subscription, mm.Assignment
		v.Members = append(v.Members, vm)
	}
	return v.AppendTo(nil)
}

func decodeGroupRecord(key, value []byte, hasValue bool) (group.Record, error) {
	var k kmsg.GroupMetadataKey
	if err := k.ReadFrom(key); err != nil {
		return group.Record{}, err
	}
	r := group.Record{Group: k.Group, IsMeta: true}
	if !hasValue {
		return r, nil
	}
	var v kmsg.GroupMetadataValue
	if err := v.ReadFrom(value); err != nil {
		return r, fmt.Errorf("group %q metadata: %w", k.Group, err)
	}
	m := &group.GroupMeta{ProtocolType: v.ProtocolType, Generation: v.Generation, StateTimestampMs: v.CurrentStateTimestamp}
	if v.Protocol != nil {
		m.Protocol = *v.Protocol
	}
	if v.Leader != nil {
		m.Leader = *v.Leader
	}
	for _, vm := range v.Members {
		m.Members = append(m.Members, group.MemberMeta{MemberID: vm.MemberID, InstanceID: vm.InstanceID, ClientID: vm.ClientID,
			ClientHost: vm.ClientHost, RebalanceTimeoutMs: vm.RebalanceTimeoutMillis, SessionTimeoutMs: vm.SessionTimeoutMillis,
			Subscription: vm.Subscription, Assignment: vm.Assignment})
	}
	r.Meta = m
	return r, nil
}

func encodeOffsetKey(r group.Record) []byte {
	b := binary.BigEndian.AppendUint16(nil, 1)
	b = kbin.AppendString(b, r.Group)
	b = kbin.AppendString(b, r.TP.Topic)
	return kbin.AppendInt32(b, r.TP.Partition)
}

func encodeOffsetValue(o *group.CommittedOffset) []byte {
	if o == nil {
		return nil
	}
	b := binary.BigEndian.AppendUint16(nil, 3)
	b = kbin.AppendInt64(b, o.Offset)
	b = kbin.AppendInt32(b, o.LeaderEpoch)
	b = kbin.AppendNullableString(b, o.Metadata)
	return kbin.AppendInt64(b, o.CommitTimestampMs)
}

func decodeOffsetRecord(key, value []byte, hasValue bool) (group.Record, error) {
	kr := kbin.Reader{Src: key}
	switch kr.Int16() {
	case 1:
	case 2:
		return decodeGroupRecord(key, value, hasValue)
	default:
		return group.Record{}, errors.New("unknown offsets log key version")
	}
	r := group.Record{Group: kr.String(), TP: group.TopicPartition{Topic: kr.String(), Partition: kr.Int32()}}
	if err := kr.Complete(); err != nil {
		return r, err
	}
	if !hasValue {
		return r, nil
	}
	vr := kbin.Reader{Src: value}
	if v := vr.Int16(); v != 3 {
		return r, fmt.Errorf("unknown offset value version %d", v)
	}
	o := &group.CommittedOffset{Offset: vr.Int64(), LeaderEpoch: vr.Int32(), Metadata: vr.NullableString(), CommitTimestampMs: vr.Int64()}
	r.Offset = o
	return r, vr.Complete()
}

// encodeBatch builds one uncompressed v2 record batch of recs.
func encodeBatch(recs []group.Record, nowMs int64) []byte {
	var body []byte
	for i, r := range recs {
		key, val := encodeRecordKey(r), encodeRecordValue(r)
		var rec []byte
		rec = append(rec, 0)                   // attributes
		rec = kbin.AppendVarlong(rec, 0)       // timestamp delta
		rec = kbin.AppendVarint(rec, int32(i)) // offset delta
		rec = kbin.AppendVarint(rec, int32(len(key)))
		rec = append(rec, key...)
		if val == nil {
			rec = kbin.AppendVarint(rec, -1)
		} else {
			rec = kbin.AppendVarint(rec, int32(len(val)))
			rec = append(rec, val...)
		}
		rec = kbin.AppendVarint(rec, 0) // headers
		body = kbin.AppendVarint(body, int32(len(rec)))
		body = append(body, rec...)
	}
	b := make([]byte, shard.BatchHeaderSize, shard.BatchHeaderSize+len(body))
	be := binary.BigEndian
	be.PutUint32(b[8:], uint32(shard.BatchHeaderSize+len(body)-12))
	be.PutUint32(b[12:], 0xffffffff)
	b[16] = 2
	be.PutUint32(b[23:], uint32(len(recs)-1))
	be.PutUint64(b[27:], uint64(nowMs))
	be.PutUint64(b[35:], uint64(nowMs))
	be.PutUint64(b[43:], ^uint64(0))
	be.PutUint16(b[51:], 0xffff)
	be.PutUint32(b[53:], 0xffffffff)
	be.PutUint32(b[57:], uint32(len(recs)))
	b = append(b, body...)
	be.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// decodeBatches calls fn for each offset record in data (whole batches).
func decodeBatches(data []byte, fn func(group.Record)) error {
	for len(data) > 0 {
		h, err := shard.ParseBatchHeader(data)
		if err != nil {
			return err
		}
		if h.Attributes&0x07 != 0 {
			return errors.New("compressed batch in the offsets log")
		}
		r := kbin.Reader{Src: data[shard.BatchHeaderSize:h.Size()]}
		for i := int32(0); i < h.RecordCount; i++ {
			length := r.Varint()
			rec := kbin.Reader{Src: r.Span(int(length))}
			rec.Int8()
			rec.Varlong()
			rec.Varint()
			key := rec.Span(int(rec.Varint()))
			vlen := rec.Varint()
			var val []byte
			if vlen >= 0 {
				val = rec.Span(int(vlen))
			}
			rec.Varint() // header count: the coordinator writes none
			if err := rec.Complete(); err != nil {
				return fmt.Errorf("offsets log record: %w", err)
			}
			or, err := decodeOffsetRecord(key, val, vlen >= 0)
			if err != nil {
				return err
			}
			fn(or)
		}
		if err := r.Complete(); err != nil {
			return fmt.Errorf("offsets log batch at offset %d: %w", h.BaseOffset, err)
		}
		data = data[h.Size():]
	}
	return nil
}
