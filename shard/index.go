package shard

import (
	"encoding/binary"
	"sort"
)

// The sparse indexes of one segment. One entry is added per
// Config.IndexIntervalBytes of log data, always at a batch boundary.
//
//	.index      entries of 8 bytes:  relOffset uint32 | filePos uint32
//	.timeindex  entries of 12 bytes: maxTimestampSoFar int64 | relOffset uint32
//
// relOffset is the batch's base offset minus the segment base. Entries are
// strictly increasing in both fields. The files are written with ordinary
// buffered I/O: a closed segment's index is written and synced when it is
// sealed; the active segment's index is checkpointed as it grows, and
// recovery re-validates the last checkpointed entry against the data before
// trusting it, so a torn index write costs a longer scan, never wrong data.
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

type offsetEntry struct {
	rel uint32
	pos uint32
}

type timeEntry struct {
	ts  int64
	rel uint32
}

type offsetIndex struct{ entries []offsetEntry }

// lookup returns the greatest entry whose offset is <= rel, or {0,0}.
func (x *offsetIndex) lookup(rel uint32) offsetEntry {
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].rel > rel })
	if i == 0 {
		return offsetEntry{}
	}
	return x.entries[i-1]
}

func (x *offsetIndex) add(rel, pos uint32) {
	if n := len(x.entries); n > 0 && (x.entries[n-1].rel >= rel || x.entries[n-1].pos >= pos) {
		panic("shard: offset index entries must increase")
	}
	x.entries = append(x.entries, offsetEntry{rel, pos})
}

// truncate drops entries at or past position pos.
func (x *offsetIndex) truncate(pos uint32) {
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].pos >= pos })
	x.entries = x.entries[:i]
}

func (x *offsetIndex) encode(from int) []byte {
	b := make([]byte, 0, (len(x.entries)-from)*offsetEntrySize)
	for _, e := range x.entries[from:] {
		b = binary.BigEndian.AppendUint32(b, e.rel)
		b = binary.BigEndian.AppendUint32(b, e.pos)
	}
	return b
}

// decodeOffsetIndex parses index bytes, stopping at the first entry that
// breaks monotonicity or points past dataSize (a torn or stale tail).
func decodeOffsetIndex(b []byte, dataSize int64) offsetIndex {
	var x offsetIndex
	for len(b) >= offsetEntrySize {
		e := offsetEntry{binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])}
		n := len(x.entries)
		if int64(e.pos) >= dataSize || (n > 0 && (e.rel <= x.entries[n-1].rel || e.pos <= x.entries[n-1].pos)) || (n == 0 && e.rel == 0 && e.pos == 0) {
			break
		}
		x.entries = append(x.entries, e)
		b = b[offsetEntrySize:]
	}
	return x
}

type timeIndex struct{ entries []timeEntry }

// lookup returns the relOffset from which to scan for the first batch with
// maxTimestamp >= ts: the last entry whose timestamp is < ts.
func (x *timeIndex) lookup(ts int64) uint32 {
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].ts >= ts })
	if i == 0 {
		return 0
	}
	return x.entries[i-1].rel
}

func (x *timeIndex) add(ts int64, rel uint32) {
	n := len(x.entries)
	if n > 0 && (ts <= x.entries[n-1].ts || rel <= x.entries[n-1].rel) {
		return // only a new maximum is worth an entry
	}
	x.entries = append(x.entries, timeEntry{ts, rel})
}

func (x *timeIndex) truncate(rel uint32) {
	i := sort.Search(len(x.entries), func(i int) bool { return x.entries[i].rel >= rel })
	x.entries = x.entries[:i]
}

func (x *timeIndex) maxTimestamp() int64 {
	if len(x.entries) == 0 {
		return -1
	}
	return x.entries[len(x.entries)-1].ts
}

func (x *timeIndex) encode(from int) []byte {
	b := make([]byte, 0, (len(x.entries)-from)*timeEntrySize)
	for _, e := range x.entries[from:] {
		b = binary.BigEndian.AppendUint64(b, uint64(e.ts))
		b = binary.BigEndian.AppendUint32(b, e.rel)
	}
	return b
}

func decodeTimeIndex(b []byte, maxRel uint32) timeIndex {
	var x timeIndex
	for len(b) >= timeEntrySize {
		e := timeEntry{int64(binary.BigEndian.Uint64(b)), binary.BigEndian.Uint32(b[8:])}
		n := len(x.entries)
		if e.rel > maxRel || (n > 0 && (e.ts <= x.entries[n-1].ts || e.rel <= x.entries[n-1].rel)) {
			break
		}
		x.entries = append(x.entries, e)
		b = b[timeEntrySize:]
	}
	return x
}
