package metadata

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// Snapshot layout (all varints as in commands):
//
//	byte      format (0)
//	uvarint   version
//	varint    next producer id
//	uvarint   broker count, then per broker in id order:
//	            id, kafka addr, raft addr, rack, cores, fenced, last heartbeat ms
//	uvarint   topic count, then per topic in name order:
//	            name, id (16 bytes), internal, configs (sorted pairs),
//	            partition count, then per partition:
//	              replicas, cores, isr, leader, leader epoch, partition epoch
//	format bit 1 (broker configs) only:
//	uvarint   broker config resource count (>= 1), then per resource in
//	            name order: name, configs (sorted pairs, >= 1)
//	format bit 2 (log dir ids) only:
//	uvarint   count (>= 1) of brokers with a log dir id, then per broker
//	            in id order: id, log dir id (uvarint, non-zero)
//	format bit 4 (reassignments) only:
//	uvarint   count (>= 1) of partitions being reassigned, then per
//	            partition in topic name and partition order: topic name,
//	            partition, adding, removing
//	4 bytes   CRC-32C (Castagnoli) of everything before, big-endian
//
// Equal states give equal bytes: every collection is written in a fixed
// order and the decoder accepts only that order. The format byte is a set
// of optional sections, each present exactly when it is not empty: a
// state without them is written in format 0, byte for byte what brokers
// before them wrote, and an older broker refuses a snapshot with a
// section it does not know.

const (
	snapshotFormat              = 0
	snapshotFormatBrokerConfigs = 1
	snapshotFormatLogDirs       = 2
	snapshotFormatReassignments = 4
	snapshotFormatsKnown        = snapshotFormatBrokerConfigs | snapshotFormatLogDirs | snapshotFormatReassignments
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Save writes the state's snapshot to w.
func (s *State) Save(w io.Writer) error { return s.View().Save(w) }

// Save writes the view's snapshot to w. A View never changes, so this may
// run on any goroutine while the State moves on.
func (v *View) Save(w io.Writer) error {
	_, err := w.Write(v.AppendSnapshot(nil))
	return err
}

// AppendSnapshot appends the view's snapshot encoding to b.
func (v *View) AppendSnapshot(b []byte) []byte {
	e := encoder{b: b}
	start := len(e.b)
	format := byte(snapshotFormat)
	if len(v.brokerConfigs) > 0 {
		format |= snapshotFormatBrokerConfigs
	}
	dirs := 0
	for _, id := range v.brokerIDs {
		if v.brokers[id].LogDirID != 0 {
			dirs++
		}
	}
	if dirs > 0 {
		format |= snapshotFormatLogDirs
	}
	moving := 0
	for _, n := range v.names {
		for i := range v.topics[n].Partitions {
			if v.topics[n].Partitions[i].Reassigning() {
				moving++
			}
		}
	}
	if moving > 0 {
		format |= snapshotFormatReassignments
	}
	e.byte(format)
	e.uvarint(v.version)
	e.varint(v.nextProducerID)
	e.uvarint(uint64(len(v.brokerIDs)))
	for _, id := range v.brokerIDs {
		br := v.brokers[id]
		e.broker(br.ID)
		e.str(br.KafkaAddr)
		e.str(br.RaftAddr)
		e.str(br.Rack)
		e.varint(int64(br.Cores))
		e.bool(br.Fenced)
		e.varint(br.LastHeartbeatMs)
	}
	e.uvarint(uint64(len(v.names)))
	for _, n := range v.names {
		t := v.topics[n]
		e.str(t.Name)
		e.id(t.ID)
		e.bool(t.Internal)
		e.strMap(t.Configs)
		e.uvarint(uint64(len(t.Partitions)))
		for i := range t.Partitions {
			p := &t.Partitions[i]
			e.brokers(p.Replicas)
			e.cores(p.Cores)
			e.brokers(p.ISR)
			e.broker(p.Leader)
			e.varint(int64(p.LeaderEpoch))
			e.varint(int64(p.PartitionEpoch))
		}
	}
	if format&snapshotFormatBrokerConfigs != 0 {
		v.encodeBrokerConfigs(&e)
	}
	if format&snapshotFormatLogDirs != 0 {
		e.uvarint(uint64(dirs))
		for _, id := range v.brokerIDs {
			if d := v.brokers[id].LogDirID; d != 0 {
				e.broker(id)
				e.uvarint(d)
			}
		}
	}
	if format&snapshotFormatReassignments != 0 {
		e.uvarint(uint64(moving))
		for _, n := range v.names {
			for i := range v.topics[n].Partitions {
				if p := &v.topics[n].Partitions[i]; p.Reassigning() {
					e.str(n)
					e.varint(int64(i))
					e.brokers(p.Adding)
					e.brokers(p.Removing)
				}
			}
		}
	}
	return binary.BigEndian.AppendUint32(e.b, crc32.Checksum(e.b[start:], castagnoli))
}

// Recover replaces the state with the snapshot read from r. The snapshot
// must decode exactly and pass Invariants; otherwise Recover returns an
// error and leaves the state as it was.
func (s *State) Recover(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ns, err := decodeSnapshot(b)
	if err != nil {
		return err
	}
	*s = *ns
	return nil
}

func decodeSnapshot(b []byte) (*State, error) {
	if len(b) < 5 {
		return nil, errors.New("metadata: snapshot too short")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, errors.New("metadata: snapshot checksum mismatch")
	}
	d := decoder{b: body}
	f := d.byte("format")
	if f&^snapshotFormatsKnown != 0 {
		return nil, fmt.Errorf("metadata: snapshot format %d unsupported", f)
	}
	s := New()
	s.version = d.uvarint("version")
	s.nextProducerID = d.varint("next producer id")
	nb := d.count("brokers", 7)
	for i := 0; i < nb && d.err == nil; i++ {
		br := &Broker{}
		br.ID = d.broker("broker id")
		br.KafkaAddr = d.str("kafka addr")
		br.RaftAddr = d.str("raft addr")
		br.Rack = d.str("rack")
		br.Cores = d.int32("cores")
		br.Fenced = d.bool("fenced")
		br.LastHeartbeatMs = d.varint("heartbeat")
		if i > 0 && br.ID <= s.brokerIDs[i-1] {
			d.fail("broker id", errors.New("not ascending"))
		}
		s.brokers[br.ID] = br
		s.brokerIDs = append(s.brokerIDs, br.ID)
	}
	nt := d.count("topics", 20)
	for i := 0; i < nt && d.err == nil; i++ {
		t := &Topic{}
		t.Name = d.str("topic name")
		t.ID = d.id("topic id")
		t.Internal = d.bool("internal")
		t.Configs = d.strMap("configs")
		np := d.count("partitions", 6)
		if np > 0 {
			t.Partitions = make([]Partition, np)
		}
		for j := 0; j < np && d.err == nil; j++ {
			p := &t.Partitions[j]
			p.Replicas = d.brokers("replicas")
			p.Cores = d.cores("cores")
			p.ISR = d.brokers("isr")
			p.Leader = d.broker("leader")
			p.LeaderEpoch = Epoch(d.int32("leader epoch"))
			p.PartitionEpoch = d.int32("partition epoch")
		}
		if i > 0 && t.Name <= s.names[i-1] {
			d.fail("topic name", errors.New("not ascending"))
		}
		if _, dup := s.byID[t.ID]; dup {
			d.fail("topic id", errors.New("duplicate"))
		}
		s.topics[t.Name] = t
		s.names = append(s.names, t.Name)
		s.byID[t.ID] = t.Name
	}
	if f&snapshotFormatBrokerConfigs != 0 && d.err == nil {
		s.decodeBrokerConfigs(&d)
	}
	if f&snapshotFormatLogDirs != 0 && d.err == nil {
		s.decodeLogDirs(&d)
	}
	if f&snapshotFormatReassignments != 0 && d.err == nil {
		s.decodeReassignments(&d)
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	if err := s.Invariants(); err != nil {
		return nil, fmt.Errorf("metadata: snapshot breaks an invariant: %w", err)
	}
	return s, nil
}

// decodeLogDirs reads the log dir id section: at least one entry, brokers
// registered, ascending, ids non-zero (a zero id is written by leaving
// the broker out).
func (s *State) decodeLogDirs(d *decoder) {
	n := d.count("log dirs", 2)
	if n == 0 && d.err == nil {
		d.fail("log dirs", errors.New("empty section"))
	}
	prev := BrokerID(-1)
	for i := 0; i < n && d.err == nil; i++ {
		id := d.broker("log dir broker")
		dir := d.uvarint("log dir id")
		b, ok := s.brokers[id]
		switch {
		case d.err != nil:
		case !ok || id <= prev:
			d.fail("log dir broker", errors.New("unknown or not ascending"))
		case dir == 0:
			d.fail("log dir id", errRange)
		default:
			b.LogDirID, prev = dir, id
		}
	}
}

// decodeReassignments reads the reassignment section: at least one entry,
// partitions that exist, in order, each with a non-empty list (the
// invariants check the rest).
func (s *State) decodeReassignments(d *decoder) {
	n := d.count("reassignments", 4)
	if n == 0 && d.err == nil {
		d.fail("reassignments", errors.New("empty section"))
	}
	prevName, prevPart := "", -1
	for i := 0; i < n && d.err == nil; i++ {
		name := d.str("reassignment topic")
		part := int(d.int32("reassignment partition"))
		adding := d.brokers("adding")
		removing := d.brokers("removing")
		t, ok := s.topics[name]
		switch {
		case d.err != nil:
		case !ok || part < 0 || part >= len(t.Partitions):
			d.fail("reassignment", errors.New("unknown partition"))
		case name < prevName || name == prevName && part <= prevPart:
			d.fail("reassignment", errors.New("not in order"))
		case len(adding) == 0 && len(removing) == 0:
			d.fail("reassignment", errors.New("empty"))
		default:
			t.Partitions[part].Adding, t.Partitions[part].Removing = adding, removing
			prevName, prevPart = name, part
		}
	}
}
