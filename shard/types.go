package shard

import "fmt"

// Offset is a Kafka record offset within one partition.
type Offset int64

// Epoch is a partition leader epoch.
type Epoch int32

// FilePos is a byte position within one segment file.
type FilePos int64

// SegmentBase is the offset of a segment's first record; it names the file.
type SegmentBase Offset

func (b SegmentBase) fileName(ext string) string { return fmt.Sprintf("%020d%s", int64(b), ext) }
