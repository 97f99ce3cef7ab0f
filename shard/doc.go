// Package shard holds the partition log: the segments, indexes and recovery
// of one Kafka partition, owned by exactly one core.
//
// A Log is a plain struct driven by events. Appends, reads and timer ticks
// come in as method calls; disk work goes out as operations on the core's
// dma.Engine; completions come back as callbacks that the engine runs on the
// same core. There is no mutex, goroutine, clock or direct syscall on the data
// path, so the whole log runs deterministically over dma.MemFS in tests.
//
// Main types: Log (one partition), Config, BatchHeader (the Kafka v2 record
// batch header, which is also Strand's on-disk record header), FileCache
// (the open files of a core's sealed segments, shared by its logs like the
// read pool), StorageError (a storage failure with its cause in words),
// segment and offsetIndex/timeIndex (unexported). ValidateRecords
// (records.go) walks a produced batch's records, decompressing if need be,
// before it is stored; appendpolicy.go walks them again for the policies
// that depend on the log's config (no keyless record in a compacted log,
// CreateTime timestamp bounds).
//
// Descriptors: an open Log holds DescriptorsPerLog (its active segment's
// file); see filecache.go. Disk space: space.go.
//
// The on-disk format is drawn in batch.go (record batch) and index.go (index
// entries), the write pipeline behind the durability rule in log.go (Log);
// docs/ARCHITECTURE.md describes both.
package shard
